import assert from "node:assert/strict";
import { DebugExit, debugExitStatus } from "./debug_exit.ts";

Deno.test("debug exit device", async (t) => {
  await t.step("status is v*2+1 without overflow", () => {
    assert.equal(debugExitStatus(0), 1);
    assert.equal(debugExitStatus(1), 3);
    assert.equal(debugExitStatus(0x7fffffff), 0xffffffff);
    assert.equal(debugExitStatus(0xffffffff), 0x1ffffffff);
  });
  await t.step("writes call exit; bad sizes are counted no-ops", () => {
    const got: number[] = [];
    const d = new DebugExit((s) => got.push(s));
    d.write(1, 0x10);
    d.write(2, 0x1234);
    d.write(4, 0xffffffff);
    d.write(8, 1);
    d.write(3, 1);
    assert.deepEqual(got, [0x21, 0x2469, 0x1ffffffff]);
    assert.deepEqual(d.stats, { writes: 3, badAccesses: 2 });
    assert.equal(d.lastStatus, 0x1ffffffff);
    assert.equal(d.read(), 0);
  });
});
