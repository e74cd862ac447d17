import assert from "node:assert/strict";
import { FakeClock } from "../testing/fake_context.ts";
import {
  AcpiPm,
  PM1,
  PM1_CNT,
  PM_TIMER_HZ,
  pmTicks,
  pmTicksToNs,
} from "./pm.ts";

function device() {
  const clock = new FakeClock();
  const sci: boolean[] = [];
  const sleeps: number[] = [];
  const pm = new AcpiPm({
    clock,
    sci: (l) => sci.push(l),
    sleep: (t) => sleeps.push(t),
  });
  return { clock, sci, sleeps, pm };
}

Deno.test("acpi pm: the timer counts 3.579545 MHz from the clock", () => {
  const { clock, pm } = device();
  assert.equal(pm.readTimer(), 0);
  clock.advance(1_000); // 1 µs: 3.58 ticks
  assert.equal(pm.readTimer(), 3);
  clock.advance(1e9 - 1_000);
  assert.equal(pm.readTimer(), PM_TIMER_HZ);
  // Exact far from zero (no precision loss over an hour).
  clock.advance(3600e9);
  assert.equal(pm.readTimer(), (3601 * PM_TIMER_HZ) % 2 ** 32);
  for (const t of [0, 1, 3, 4, 1234567, PM_TIMER_HZ, 2 ** 31 + 5]) {
    const ns = pmTicksToNs(t);
    assert.equal(pmTicks(ns), t, `first instant of tick ${t}`);
    if (ns > 0) assert.equal(pmTicks(ns - 1), t - 1);
  }
});

Deno.test("acpi pm: TMR_STS on the bit-31 carry raises the SCI when enabled", () => {
  const { clock, pm, sci } = device();
  assert.equal(pm.service(clock.now()), null, "TMR_EN off: no deadline");
  pm.writeEnable(PM1.TMR);
  const due = pm.service(clock.now())!;
  assert.equal(due, pmTicksToNs(2 ** 31));
  clock.advance(due - 1);
  pm.service(clock.now());
  assert.equal(pm.readStatus() & PM1.TMR, 0, "not early");
  clock.advance(1);
  pm.service(clock.now());
  assert.equal(pm.readStatus() & PM1.TMR, PM1.TMR);
  assert.deepEqual(sci, [true]);
  assert.ok(pm.sciLevel);
  pm.writeStatus(PM1.TMR); // write 1 to clear
  assert.equal(pm.readStatus() & PM1.TMR, 0);
  assert.deepEqual(sci, [true, false]);
  assert.equal(pm.service(clock.now()), pmTicksToNs(2 ** 32), "next carry");
});

Deno.test("acpi pm: status is write-1-to-clear, enable masks the SCI", () => {
  const { clock, pm, sci } = device();
  clock.advance(pmTicksToNs(2 ** 31));
  assert.equal(pm.readStatus(), PM1.TMR);
  assert.deepEqual(sci, [], "TMR_EN off: no SCI");
  pm.writeStatus(0);
  assert.equal(pm.readStatus(), PM1.TMR, "writing 0 keeps it");
  pm.writeEnable(0xffff);
  assert.equal(pm.readEnable(), PM1.TMR | PM1.GBL | PM1.PWRBTN | PM1.RTC);
  assert.deepEqual(sci, [true]);
  pm.writeEnable(0);
  assert.deepEqual(sci, [true, false]);
});

Deno.test("acpi pm: SLP_EN reports SLP_TYP; SCI_EN stays set; SLP_EN reads 0", () => {
  const { pm, sleeps } = device();
  assert.equal(pm.readControl(), PM1_CNT.SCI_EN);
  pm.writeControl(3 << 10); // SLP_TYP without SLP_EN: nothing
  assert.deepEqual(sleeps, []);
  assert.equal(pm.readControl(), PM1_CNT.SCI_EN | (3 << 10));
  pm.writeControl((5 << 10) | PM1_CNT.SLP_EN);
  assert.deepEqual(sleeps, [5]);
  assert.equal(pm.readControl() & PM1_CNT.SLP_EN, 0);
  assert.equal(pm.readStatus() & PM1.WAK, PM1.WAK, "WAK_STS after resume");
  assert.equal(pm.stats.sleeps, 1);
  pm.reset();
  assert.equal(pm.readControl(), PM1_CNT.SCI_EN);
  assert.equal(pm.readStatus(), 0);
});
