import assert from "node:assert/strict";
import { FakeContext, readValue, writeValue } from "../testing/fake_context.ts";
import { FakeIrqChipContext } from "../testing/fake_irqchip.ts";
import { Ioapic, IOAPIC_DEFAULT_BASE, REDIR_TRIGGER_LEVEL } from "./ioapic.ts";
import { ioapicPlugin } from "./plugin.ts";

function setup() {
  const ctx = new FakeIrqChipContext();
  const ioapic = new Ioapic({
    sink: { deliver: (msg) => ctx.signalMsi(msg) },
    clock: ctx.clock,
  });
  const plugin = ioapicPlugin({ ioapic });
  const [region] = plugin.setup(ctx);
  return { ctx, ioapic, plugin, region };
}

Deno.test("ioapic plugin", async (t) => {
  await t.step("claims 0x100 bytes of MMIO at the default base", () => {
    const { region } = setup();
    assert.deepEqual(region.range, {
      space: "mmio",
      base: IOAPIC_DEFAULT_BASE,
      length: 0x100,
    });
    assert.equal(
      ioapicPlugin({ ioapic: setup().ioapic, base: 0xfec01000 }).setup(
        new FakeIrqChipContext(),
      )[0].range.base,
      0xfec01000,
    );
  });
  await t.step("4-byte register access through the region", () => {
    const { region } = setup();
    writeValue(region, 0x00, 4, 0x01);
    assert.equal(readValue(region, 0x10, 4), 0x00170020);
  });
  await t.step("other sizes are counted no-ops reading 0", () => {
    const { region, ioapic } = setup();
    writeValue(region, 0x00, 4, 0x01);
    assert.equal(readValue(region, 0x10, 1), 0);
    assert.equal(readValue(region, 0x10, 2), 0);
    writeValue(region, 0x00, 2, 0x02);
    assert.equal(readValue(region, 0x00, 4), 0x01);
    assert.equal(ioapic.stats.badAccesses, 3);
  });
  await t.step("guest programs an entry; eoi() forwards", () => {
    const { region, ioapic, ctx } = setup();
    writeValue(region, 0x00, 4, 0x10 + 2 * 9);
    writeValue(region, 0x10, 4, 0x39 | REDIR_TRIGGER_LEVEL);
    ioapic.setLevel(9, true);
    assert.deepEqual(ctx.events, [{
      kind: "msi",
      address: 0xfee00000,
      data: 0xc039,
    }]);
    ctx.eoi(0x39);
    assert.equal(ctx.events.length, 2);
    ioapic.setLevel(9, false);
    ctx.eoi(0x39);
    assert.equal(ioapic.entry(9).remoteIrr, false);
  });
  await t.step("reset masks entries", () => {
    const { region, ioapic, plugin } = setup();
    writeValue(region, 0x00, 4, 0x10);
    writeValue(region, 0x10, 4, 0x30);
    plugin.reset?.();
    assert.equal(ioapic.entry(0).masked, true);
  });
  await t.step("built-in device: context sink, routes, service", () => {
    const ctx = new FakeIrqChipContext();
    const plugin = ioapicPlugin({ storm: { stormThreshold: 1 } });
    const [region] = plugin.setup(ctx);
    assert.deepEqual(ctx.lineControllers, [plugin.ioapic]);
    writeValue(region, 0x00, 4, 0x10 + 2 * 3);
    writeValue(region, 0x10, 4, 0x33 | REDIR_TRIGGER_LEVEL);
    assert.deepEqual(ctx.routes.get(3), { address: 0xfee00000, data: 0xc033 });
    ctx.setLine(3, true);
    ctx.eoi(0x33); // retrigger 1
    ctx.eoi(0x33); // retrigger 2: deferred by the storm guard
    assert.equal(ctx.events.length, 2);
    const next = plugin.service(ctx.clock.now());
    assert.equal(next, 100_000);
    ctx.clock.advance(100_000);
    assert.equal(plugin.service(ctx.clock.now()), null);
    assert.equal(ctx.events.length, 3);
    // Masked while the level interrupt is in service: the route stays
    // until the EOI (KVM's EOI-exit bitmap comes from it), then goes.
    writeValue(region, 0x10, 4, 0x33 | REDIR_TRIGGER_LEVEL | 0x10000);
    assert.equal(ctx.routes.has(3), true);
    ctx.eoi(0x33);
    assert.equal(ctx.routes.has(3), false);
    // every level EOI is passed on for host irqfd resampling
    assert.deepEqual(ctx.resamples, [3, 3, 3]);
  });
  await t.step("needs the irqchip context: a device context is refused", () => {
    assert.throws(
      () => ioapicPlugin({}).setup(new FakeContext()),
      /interrupt controller/,
    );
  });
  await t.step(
    "snapshot -> restore into a fresh plugin: same registers",
    () => {
      const a = setup();
      writeValue(a.region, 0x00, 4, 0x10 + 2 * 5);
      writeValue(a.region, 0x10, 4, 0x45 | REDIR_TRIGGER_LEVEL);
      writeValue(a.region, 0x00, 4, 0x11 + 2 * 5);
      writeValue(a.region, 0x10, 4, 0x03000000);
      a.ioapic.setLevel(5, true);
      const state = JSON.parse(JSON.stringify(a.plugin.snapshot()));
      const b = setup();
      b.plugin.restore(state);
      assert.deepEqual(b.plugin.snapshot(), a.plugin.snapshot());
      for (const reg of [0x10 + 2 * 5, 0x11 + 2 * 5, 0x01]) {
        writeValue(a.region, 0x00, 4, reg);
        writeValue(b.region, 0x00, 4, reg);
        assert.equal(
          readValue(b.region, 0x10, 4),
          readValue(a.region, 0x10, 4),
        );
      }
      assert.throws(
        () => b.plugin.restore({ ...state, version: 99 }),
        TypeError,
      );
    },
  );
});
