import assert from "node:assert/strict";
import { FakeContext, readValue, writeValue } from "../testing/fake_context.ts";
import { testdevPlugin } from "./plugin.ts";

Deno.test("testdev plugin", async (t) => {
  await t.step("port 0x2000+n drives GSI n", () => {
    const ctx = new FakeContext();
    const [r] = testdevPlugin().setup(ctx);
    assert.deepEqual(r.range, { space: "pio", base: 0x2000, length: 24 });
    writeValue(r, 10, 1, 1);
    assert.equal(ctx.levels.get(10), true);
    assert.equal(readValue(r, 10, 1), 1);
    writeValue(r, 10, 1, 0);
    assert.equal(ctx.levels.get(10), false);
    assert.equal(readValue(r, 10, 1), 0);
  });
  await t.step("unwired ports and wide accesses are counted no-ops", () => {
    const ctx = new FakeContext();
    const p = testdevPlugin({ lines: 16 });
    const [r] = p.setup(ctx);
    writeValue(r, 20, 1, 1);
    writeValue(r, 0, 2, 0x0101);
    assert.equal(readValue(r, 20, 1), 0);
    assert.deepEqual(ctx.events, []);
    assert.equal(p.device()?.stats.badAccesses, 3);
  });
});
