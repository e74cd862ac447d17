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
import { readLe, writeLe } from "../../bus/le.ts";
import type { Region } from "../../bus/types.ts";

/** A 4-byte port write from vCPU `vcpu`. */
function writeFrom(r: Region, vcpu: number, value: number): void {
  const d = new Uint8Array(4);
  writeLe(d, value);
  r.write({ address: r.range.base, offset: 0, size: 4, vcpu }, d);
}

/** A 4-byte port read from vCPU `vcpu`. */
function readFrom(r: Region, vcpu: number): number {
  const d = new Uint8Array(4);
  r.read({ address: r.range.base, offset: 0, size: 4, vcpu }, d);
  return readLe(d);
}

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
  await t.step("each vCPU arms its own timer, ticking to its APIC ID", () => {
    const ctx = new FakeContext();
    const p = pvTimerPlugin();
    const [period] = p.setup(ctx);
    writeFrom(period, 1, 2000);
    assert.equal(ctx.tickSources.length, 2, "vCPU 1's source on first use");
    assert.deepEqual(ctx.tickSources[1].target, {
      kind: "msi",
      vector: 0x20,
      destination: 1,
    });
    assert.deepEqual((ctx.tickSources[1] as FakeTickSource).arms, [2_000_000]);
    assert.equal(ctx.tickSources[0].armed, false, "vCPU 0's timer untouched");
    assert.equal(readFrom(period, 1), 2000);
    assert.equal(readFrom(period, 0), 0);
    assert.equal(p.active, true);
    assert.equal(p.timerOf(1)?.periodUs, 2000);
    writeFrom(period, 0, 1000);
    const snap = p.snapshot();
    assert.deepEqual(snap, {
      version: 1,
      periodUs: 1000,
      vcpuPeriodsUs: [1000, 2000],
    });
    writeFrom(period, 1, 0);
    assert.equal(ctx.tickSources[1].armed, false);
    p.restore(snap);
    assert.equal(p.timerOf(1)?.periodUs, 2000, "restore re-arms vCPU 1");
    assert.throws(
      () => p.restore({ ...snap, vcpuPeriodsUs: [1000, 3] }),
      /vcpuPeriodsUs\[1\]/,
    );
    p.reset?.();
    assert.equal(p.active, false);
  });
  await t.step("a GSI target is one line: every vCPU shares the timer", () => {
    const ctx = new FakeContext();
    const p = pvTimerPlugin({ target: { kind: "gsi", gsi: 0 } });
    const [period] = p.setup(ctx);
    writeFrom(period, 2, 1000);
    assert.equal(ctx.tickSources.length, 1);
    assert.equal(readFrom(period, 0), 1000);
  });
});
