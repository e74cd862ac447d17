import assert from "node:assert/strict";
import {
  FakeContext,
  type FakeTickSource,
  readValue,
  writeValue,
} from "../testing/fake_context.ts";
import { FakeIrqChipContext } from "../testing/fake_irqchip.ts";
import { legacyPlugin } from "../legacy/plugin.ts";
import { pvTimerPlugin } from "./plugin.ts";

Deno.test("pv timer plugin", async (t) => {
  await t.step("ports 107/108 and the default MSI target", () => {
    const ctx = new FakeContext();
    const p = pvTimerPlugin();
    const [period, halt] = p.setup(ctx);
    assert.deepEqual(period.range, { space: "pio", base: 107, length: 1 });
    assert.deepEqual(halt.range, { space: "pio", base: 108, length: 1 });
    assert.equal(ctx.tickSources.length, 1);
    assert.deepEqual(ctx.tickSources[0].target, {
      kind: "msi",
      vector: 0x20,
      destination: 0,
    });
    assert.equal(p.active, false);
    writeValue(period, 0, 4, 1000);
    assert.equal(p.active, true);
    assert.equal(readValue(period, 0, 4), 1000);
    assert.deepEqual(ctx.tickSources[0].arms, [1_000_000]);
    writeValue(halt, 0, 1, 0);
    assert.equal(ctx.halts, 1);
    assert.equal(p.active, false);
    assert.equal(p.stats?.halts, 1);
  });
  await t.step("gsi target and custom range", () => {
    const ctx = new FakeContext();
    const p = pvTimerPlugin({ target: { kind: "gsi", gsi: 2 }, minUs: 500 });
    const [period] = p.setup(ctx);
    writeValue(period, 0, 4, 1);
    const src = ctx.tickSources[0] as FakeTickSource;
    assert.deepEqual(src.target, { kind: "gsi", gsi: 2 });
    assert.deepEqual(src.arms, [500_000]);
    assert.equal(ctx.logs.length, 1);
  });
  await t.step("close disarms; garbage sizes ignored", () => {
    const ctx = new FakeContext();
    const p = pvTimerPlugin();
    const [period] = p.setup(ctx);
    writeValue(period, 0, 2, 1000);
    assert.equal(p.active, false);
    writeValue(period, 0, 4, 1000);
    p.close?.();
    assert.equal(ctx.tickSources[0].armed, false);
    assert.equal(p.timer?.stats.badWrites, 1);
  });
  await t.step("active feeds the legacy PIC EOI bridge", () => {
    const ctx = new FakeIrqChipContext();
    const timer = pvTimerPlugin();
    const legacy = legacyPlugin({ timerActive: () => timer.active });
    const [period] = timer.setup(ctx);
    const [master] = legacy.setup(ctx);
    writeValue(master, 0, 1, 0x20);
    assert.equal(ctx.lapicEois, 0);
    writeValue(period, 0, 4, 100);
    writeValue(master, 0, 1, 0x20);
    assert.equal(ctx.lapicEois, 1);
  });
});
