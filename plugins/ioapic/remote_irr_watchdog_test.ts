import assert from "node:assert/strict";
import type { MsiMessage } from "../../bus/types.ts";
import { FakeIrqChipContext } from "../testing/fake_irqchip.ts";
import { Ioapic, REDIR_TRIGGER_LEVEL } from "./ioapic.ts";
import { ioapicPlugin } from "./plugin.ts";
import { RemoteIrrWatchdog } from "./remote_irr_watchdog.ts";

const MS = 1_000_000;

function setup() {
  const delivered: MsiMessage[] = [];
  const ioapic = new Ioapic({
    sink: { deliver: (m) => delivered.push(m) },
    clock: { now: () => 0 },
  });
  const busy = new Set<number>();
  const w = new RemoteIrrWatchdog({
    ioapic,
    lapicHasVector: (v) => busy.has(v),
    periodNs: 100 * MS,
  });
  // Pin 5: level, vector 0x40, unmasked.
  ioapic.write(0x00, 4, 0x10 + 2 * 5);
  ioapic.write(0x10, 4, REDIR_TRIGGER_LEVEL | 0x40);
  return { ioapic, w, busy, delivered };
}

Deno.test("remote-irr watchdog: idle when nothing is outstanding", () => {
  const { w } = setup();
  assert.equal(w.service(0), null);
  assert.equal(w.service(10_000 * MS), null);
  assert.equal(w.stats.checks, 0);
});

Deno.test("remote-irr watchdog: completes a lost EOI after two idle checks", () => {
  const { ioapic, w, busy, delivered } = setup();
  ioapic.setLevel(5, true);
  assert.equal(delivered.length, 1);
  assert.ok(ioapic.entry(5).remoteIrr);
  busy.add(0x40); // pending in the LAPIC, then in service
  assert.equal(w.service(0), 100 * MS);
  assert.equal(w.service(100 * MS), 200 * MS);
  assert.equal(w.service(200 * MS), 300 * MS);
  assert.equal(w.stats.completedEois, 0, "never while pending or in service");
  busy.delete(0x40); // handler EOI'd in the LAPIC; the exit got lost
  w.service(300 * MS); // first idle observation
  assert.equal(w.stats.completedEois, 0);
  assert.ok(ioapic.entry(5).remoteIrr);
  w.service(400 * MS); // second: complete it; the line is still high
  assert.equal(w.stats.completedEois, 1);
  assert.equal(delivered.length, 2, "still-asserted line re-delivered");
  // The line dropped: the next completed EOI leaves nothing outstanding.
  ioapic.setLevel(5, false);
  w.service(500 * MS);
  assert.equal(w.service(600 * MS), null);
  assert.equal(w.stats.completedEois, 2);
  assert.equal(ioapic.entry(5).remoteIrr, false);
  assert.equal(delivered.length, 2);
});

Deno.test("remote-irr watchdog: an EOI arriving in time resets the suspicion", () => {
  const { ioapic, w } = setup();
  ioapic.setLevel(5, true);
  w.service(0);
  w.service(100 * MS); // idle once
  ioapic.eoi(0x40); // the real EOI, re-delivered (line high)
  w.service(200 * MS); // a delivery happened in between: idle once only
  assert.equal(w.stats.completedEois, 0);
  w.service(300 * MS);
  assert.equal(w.stats.completedEois, 1, "idle twice with no delivery");
  // A changed vector between checks is not the same suspect.
  const w2 = setup();
  w2.ioapic.setLevel(5, true);
  w2.w.service(0);
  w2.w.service(100 * MS);
  w2.ioapic.write(0x00, 4, 0x10 + 2 * 5);
  w2.ioapic.write(0x10, 4, REDIR_TRIGGER_LEVEL | 0x41);
  w2.w.service(200 * MS);
  assert.equal(w2.w.stats.completedEois, 0);
});

Deno.test("remote-irr watchdog: wired through the plugin and ctx.lapicHasVector", () => {
  const ctx = new FakeIrqChipContext();
  const p = ioapicPlugin({ remoteIrrWatchdog: { periodNs: 10 * MS } });
  p.setup(ctx);
  assert.ok(p.watchdog);
  assert.equal(ioapicPlugin().watchdog, null);
  p.ioapic.write(0x00, 4, 0x10 + 2 * 3);
  p.ioapic.write(0x10, 4, REDIR_TRIGGER_LEVEL | 0x50);
  p.ioapic.setLevel(3, true);
  ctx.lapicVectors.add(0x50);
  assert.equal(p.service(0), 10 * MS);
  p.service(10 * MS);
  p.service(20 * MS);
  assert.equal(p.watchdog!.stats.completedEois, 0);
  ctx.lapicVectors.clear();
  p.service(30 * MS);
  p.service(40 * MS);
  assert.equal(p.watchdog!.stats.completedEois, 1);
  assert.equal(ctx.events.filter((e) => e.kind === "msi").length, 2);
});
