import assert from "node:assert/strict";
import { FakeContext, readValue, writeValue } from "../testing/mod.ts";
import { rtcPlugin } from "./plugin.ts";

Deno.test("rtc plugin", async (t) => {
  await t.step("0x70/0x71 with IRQ8 driven from service()", () => {
    const ctx = new FakeContext();
    const p = rtcPlugin({
      hostTimeMs: () => Date.UTC(2025, 4, 6, 7, 8, 9, 900),
      ramBelow4g: 16 << 20,
    });
    const [r] = p.setup(ctx);
    assert.deepEqual(r.range, { space: "pio", base: 0x70, length: 2 });
    writeValue(r, 0, 1, 0x00);
    assert.equal(readValue(r, 1, 1), 0x09);
    writeValue(r, 0, 1, 0x17);
    assert.equal(readValue(r, 1, 1) | 0, (15 * 1024) & 0xff);
    writeValue(r, 0, 2, 0x120b); // 2-byte write: index 0x0B, then B = 0x12
    writeValue(r, 0, 1, 0x0b);
    assert.equal(readValue(r, 1, 1), 0x12);
    const due = p.service!(ctx.clock.now());
    assert.equal(due, 100_000_000);
    ctx.clock.advance(due!);
    p.service!(ctx.clock.now());
    assert.deepEqual(ctx.events, [{ kind: "level", gsi: 8, level: true }]);
    writeValue(r, 0, 1, 0x0c);
    assert.equal(readValue(r, 1, 1) & 0x90, 0x90);
    assert.equal(ctx.levels.get(8), false);
  });
  await t.step("snapshot/restore through the plugin", () => {
    const p = rtcPlugin({ hostTimeMs: () => 0 });
    const [r] = p.setup(new FakeContext());
    writeValue(r, 0, 1, 0x50);
    writeValue(r, 1, 1, 0xab);
    const q = rtcPlugin({ hostTimeMs: () => 1e12 });
    const [r2] = q.setup(new FakeContext());
    q.restore(JSON.parse(JSON.stringify(p.snapshot())));
    assert.equal(readValue(r2, 1, 1), 0xab);
    writeValue(r2, 0, 1, 0x09);
    writeValue(r, 0, 1, 0x09);
    assert.equal(readValue(r2, 1, 1), readValue(r, 1, 1));
    assert.throws(() => rtcPlugin().snapshot(), /not set up/);
  });
});
