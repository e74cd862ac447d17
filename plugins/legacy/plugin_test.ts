import assert from "node:assert/strict";
import { readValue, writeValue } from "../testing/fake_context.ts";
import { FakeIrqChipContext } from "../testing/fake_irqchip.ts";
import { legacyPlugin } from "./plugin.ts";

Deno.test("legacy plugin", async (t) => {
  await t.step("claims PIC and PIT ports", () => {
    const regions = legacyPlugin().setup(new FakeIrqChipContext());
    assert.deepEqual(regions.map((r) => r.range), [
      { space: "pio", base: 0x20, length: 2 },
      { space: "pio", base: 0xa0, length: 2 },
      { space: "pio", base: 0x40, length: 4 },
    ]);
  });
  await t.step("port values through regions", () => {
    const [master, slave, pit] = legacyPlugin().setup(new FakeIrqChipContext());
    assert.equal(readValue(master, 1, 1), 0xff);
    assert.equal(readValue(slave, 1, 1), 0xff);
    assert.equal(readValue(master, 0, 1), 0);
    assert.equal(readValue(pit, 0, 1), 0);
    assert.equal(readValue(pit, 3, 1), 0);
  });
  await t.step("EOI reaches ctx.lapicEoi while the timer is active", () => {
    let active = false;
    const ctx = new FakeIrqChipContext();
    const p = legacyPlugin({ timerActive: () => active });
    const [master] = p.setup(ctx);
    writeValue(master, 0, 1, 0x20);
    assert.equal(ctx.lapicEois, 0);
    active = true;
    writeValue(master, 0, 1, 0x20);
    assert.equal(ctx.lapicEois, 1);
    assert.equal(p.pic()?.stats.eoisForwarded, 1);
  });
  await t.step("wide accesses are counted no-ops", () => {
    const ctx = new FakeIrqChipContext();
    const p = legacyPlugin({ timerActive: () => true });
    const [master, , pit] = p.setup(ctx);
    writeValue(master, 0, 2, 0x20);
    assert.equal(readValue(master, 0, 2), 0xffff);
    writeValue(pit, 0, 4, 0);
    assert.equal(ctx.lapicEois, 0);
    assert.equal(p.pic()?.stats.badAccesses, 2);
    assert.equal(p.pit()?.stats.badAccesses, 1);
  });
  await t.step("pic: false claims only the PIT ports", () => {
    const p = legacyPlugin({ pic: false });
    const regions = p.setup(new FakeIrqChipContext());
    assert.deepEqual(regions.map((r) => r.range), [
      { space: "pio", base: 0x40, length: 4 },
    ]);
    assert.equal(p.pic(), null);
    assert.notEqual(p.pit(), null);
    assert.equal(readValue(regions[0], 0, 1), 0);
    const withPic = legacyPlugin({ pic: true }).setup(new FakeIrqChipContext());
    assert.equal(withPic.length, 3);
  });
});
