import assert from "node:assert/strict";
import { PitStub } from "./pit_stub.ts";

Deno.test("pit stub", async (t) => {
  await t.step("reads 0, counts writes", () => {
    const pit = new PitStub();
    pit.write(3, 0x34);
    pit.write(0, 0x9c);
    pit.write(0, 0x2e);
    for (let i = 0; i < 4; i++) assert.equal(pit.read(i), 0);
    assert.deepEqual(pit.stats, { reads: 4, writes: 3, badAccesses: 0 });
  });
  await t.step("bad offsets are counted no-ops", () => {
    const pit = new PitStub();
    assert.equal(pit.read(4), 0xff);
    pit.write(-1, 0);
    assert.equal(pit.stats.badAccesses, 2);
  });
});
