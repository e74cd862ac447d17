import assert from "node:assert/strict";
import { FakeContext, readValue, writeValue } from "../testing/mod.ts";
import { debugExitPlugin } from "./plugin.ts";

Deno.test("debug exit plugin", async (t) => {
  await t.step("default range 0xF4, 4 ports", () => {
    const [r] = debugExitPlugin().setup(new FakeContext());
    assert.deepEqual(r.range, { space: "pio", base: 0xf4, length: 4 });
  });
  for (
    const [size, v, want] of [[1, 0x00, 1], [2, 0x1234, 0x2469], [
      4,
      0xdeadbeef,
      0xdeadbeef * 2 + 1,
    ]] as const
  ) {
    await t.step(`${size}-byte write of ${v.toString(16)}`, () => {
      const ctx = new FakeContext();
      const [r] = debugExitPlugin().setup(ctx);
      writeValue(r, 0, size, v);
      assert.equal(ctx.exitStatus, want);
    });
  }
  await t.step("reads return 0", () => {
    const [r] = debugExitPlugin().setup(new FakeContext());
    assert.equal(readValue(r, 0, 4), 0);
    assert.equal(readValue(r, 3, 1), 0);
  });
  await t.step("access crossing the end is a counted no-op", () => {
    const ctx = new FakeContext();
    const p = debugExitPlugin({ base: 0x501, iosize: 2 });
    const [r] = p.setup(ctx);
    writeValue(r, 1, 2, 5);
    assert.equal(ctx.exitStatus, null);
    assert.equal(p.device()?.stats.badAccesses, 1);
    writeValue(r, 0, 2, 5);
    assert.equal(ctx.exitStatus, 11);
  });
});
