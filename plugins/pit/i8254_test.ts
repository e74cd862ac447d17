import assert from "node:assert/strict";
import { FakeClock } from "../testing/fake_context.ts";
import { I8254 } from "./i8254.ts";
import { ticksToNs } from "./pit_clock.ts";

function make() {
  const clock = new FakeClock();
  let irqs = 0;
  const pit = new I8254({ clock, irq0: () => irqs++ });
  /** Advance to exactly `ticks` PIT ticks after time 0. */
  const at = (ticks: number) => clock.advance(ticksToNs(ticks) - clock.now());
  return { clock, pit, at, irqs: () => irqs };
}

/** Program counter `n`: mode, LSB/MSB, binary, then the count. */
function program(pit: I8254, n: number, mode: number, count: number): void {
  pit.write(3, n << 6 | 3 << 4 | mode << 1);
  pit.write(n, count & 0xff);
  pit.write(n, count >> 8);
}

function readLatched(pit: I8254, n: number): number {
  pit.write(3, n << 6); // counter latch
  const lo = pit.read(n);
  return pit.read(n) << 8 | lo;
}

Deno.test("i8254", async (t) => {
  await t.step("mode 0: counts down, OUT rises once at terminal count", () => {
    const { pit, at } = make();
    program(pit, 0, 0, 1000);
    assert.equal(pit.out(0), false);
    at(400);
    assert.equal(readLatched(pit, 0), 600);
    at(999);
    assert.equal(pit.out(0), false);
    at(1000);
    assert.equal(pit.out(0), true);
    at(1010);
    assert.equal(readLatched(pit, 0), 0x10000 - 10); // keeps wrapping
    assert.equal(pit.out(0), true);
  });
  await t.step("unlatched LSB/MSB reads alternate bytes", () => {
    const { pit, at } = make();
    program(pit, 0, 0, 0x1234);
    at(0x34);
    assert.equal(pit.read(0), 0x00);
    assert.equal(pit.read(0), 0x12);
  });
  await t.step("latch freezes the value; a second latch is ignored", () => {
    const { pit, at } = make();
    program(pit, 1, 2, 5000);
    at(100);
    pit.write(3, 0x40);
    at(2000);
    pit.write(3, 0x40);
    const lo = pit.read(1);
    assert.equal(pit.read(1) << 8 | lo, 4900);
    assert.equal(readLatched(pit, 1), 3000);
  });
  await t.step("LSB-only and MSB-only access modes", () => {
    const { pit, at } = make();
    pit.write(3, 0x10); // counter 0, LSB only, mode 0
    pit.write(0, 200);
    at(50);
    assert.equal(pit.read(0), 150);
    pit.write(3, 0x20); // counter 0, MSB only, mode 0: count 0x0300
    pit.write(0, 3);
    at(50 + 0x100);
    assert.equal(pit.read(0), 2);
  });
  await t.step(
    "mode 2: periodic reload; OUT low one tick before reload",
    () => {
      const { pit, at } = make();
      program(pit, 0, 2, 100);
      at(99);
      assert.equal(pit.out(0), false);
      assert.equal(readLatched(pit, 0), 1);
      at(100);
      assert.equal(pit.out(0), true);
      assert.equal(readLatched(pit, 0), 100);
      at(250);
      assert.equal(readLatched(pit, 0), 50);
    },
  );
  await t.step("mode 3: square wave, half high, half low", () => {
    const { pit, at } = make();
    program(pit, 0, 3, 100);
    at(49);
    assert.equal(pit.out(0), true);
    at(50);
    assert.equal(pit.out(0), false);
    at(100);
    assert.equal(pit.out(0), true);
  });
  await t.step("mode 4: one-tick low strobe at terminal count", () => {
    const { pit, at } = make();
    program(pit, 0, 4, 10);
    at(9);
    assert.equal(pit.out(0), true);
    at(10);
    assert.equal(pit.out(0), false);
    at(11);
    assert.equal(pit.out(0), true);
  });
  await t.step("modes 6/7 alias 2/3 (status shows the alias)", () => {
    const { pit } = make();
    pit.write(3, 0x3c); // counter 0, LSB/MSB, mode 6
    pit.write(3, 0xe2); // read-back status of counter 0
    assert.equal((pit.read(0) >> 1) & 7, 2);
  });
  await t.step("read-back: status then count, null count until loaded", () => {
    const { pit, at } = make();
    pit.write(3, 0xb4); // counter 2, LSB/MSB, mode 2
    pit.write(3, 0xe8); // read-back status, counter 2
    assert.equal(pit.read(2), 0x40 | 0x80 | 0x30 | 0x04);
    pit.write(2, 0x00);
    pit.write(2, 0x10);
    pit.writePortB(1);
    at(0x100);
    pit.write(3, 0xc8); // read-back count and status, counter 2
    const status = pit.read(2);
    assert.equal(status & 0x40, 0, "count loaded");
    assert.equal(status & 0x3f, 0x34);
    const lo = pit.read(2);
    assert.equal(pit.read(2) << 8 | lo, 0x1000 - 0x100);
  });
  await t.step("BCD flag stored; count read and written in BCD", () => {
    const { pit, at } = make();
    pit.write(3, 0x31); // counter 0, LSB/MSB, mode 0, BCD
    pit.write(0, 0x00);
    pit.write(0, 0x10); // 1000 decimal
    at(1);
    assert.equal(readLatched(pit, 0), 0x0999);
    pit.write(3, 0xe2);
    assert.equal(pit.read(0) & 1, 1);
  });
  await t.step(
    "port 0x61: gate 2 starts/stops counter 2; OUT2 in bit 5",
    () => {
      const { pit, at } = make();
      pit.writePortB(0); // gate low
      program(pit, 2, 0, 500);
      at(1000);
      assert.equal(pit.readPortB() & 0x20, 0, "gate low: no count");
      assert.equal(readLatched(pit, 2), 500);
      pit.writePortB(0x03);
      assert.equal(pit.readPortB() & 0x03, 0x03);
      // The gate opened between ticks: allow one tick of phase.
      at(1498);
      assert.equal(pit.readPortB() & 0x20, 0);
      at(1501);
      assert.equal(pit.readPortB() & 0x20, 0x20);
    },
  );
  await t.step("mode 1 on counter 2: one-shot on gate rising edge", () => {
    const { pit, at } = make();
    program(pit, 2, 1, 300);
    at(100);
    assert.equal(pit.out(2), true, "waiting for trigger");
    pit.writePortB(1);
    assert.equal(pit.out(2), false);
    at(399);
    assert.equal(pit.out(2), false);
    at(400);
    assert.equal(pit.out(2), true);
  });
  await t.step("mode 5: strobe after gate trigger", () => {
    const { pit, at } = make();
    program(pit, 2, 5, 10);
    pit.writePortB(1);
    at(10);
    assert.equal(pit.out(2), false);
    at(11);
    assert.equal(pit.out(2), true);
  });
  await t.step("refresh toggle in port 0x61 bit 4 follows the clock", () => {
    const { pit, clock } = make();
    const a = pit.readPortB() & 0x10;
    clock.advance(15_085);
    assert.notEqual(pit.readPortB() & 0x10, a);
  });
  await t.step("service: periodic IRQ0 at each rising edge, drift-free", () => {
    const { pit, clock, irqs } = make();
    program(pit, 0, 2, 1193);
    let next = pit.service(clock.now());
    assert.equal(next, ticksToNs(1193));
    for (let k = 1; k <= 1000; k++) {
      clock.advance(next! - clock.now());
      next = pit.service(clock.now());
      assert.equal(next, ticksToNs(1193 * (k + 1)));
    }
    assert.equal(irqs(), 1000);
    assert.equal(pit.stats.missedIrq0, 0);
  });
  await t.step("service: late edges coalesce into one IRQ, counted", () => {
    const { pit, at, clock, irqs } = make();
    program(pit, 0, 3, 100);
    at(450);
    assert.equal(pit.service(clock.now()), ticksToNs(500));
    assert.equal(irqs(), 1);
    assert.equal(pit.stats.missedIrq0, 3);
    assert.equal(pit.service(clock.now()), ticksToNs(500));
    assert.equal(irqs(), 1);
  });
  await t.step("service: mode 0 fires once; reprogramming rearms", () => {
    const { pit, at, clock, irqs } = make();
    program(pit, 0, 0, 50);
    assert.equal(pit.service(clock.now()), ticksToNs(50));
    at(60);
    assert.equal(pit.service(clock.now()), null);
    assert.equal(irqs(), 1);
    pit.write(3, 0x30); // control word: counting stops, no edges
    assert.equal(pit.service(clock.now()), null);
    pit.write(0, 10);
    pit.write(0, 0);
    assert.equal(pit.service(clock.now()), clock.now() + ticksToNs(10));
  });
  await t.step("bad offsets are counted no-ops", () => {
    const { pit } = make();
    assert.equal(pit.read(3), 0xff);
    pit.write(7, 1);
    assert.equal(pit.stats.badAccesses, 2);
  });
  await t.step("snapshot → JSON → restore: identical reads", () => {
    const { pit, at, clock } = make();
    program(pit, 0, 2, 1000);
    program(pit, 2, 0, 5000);
    pit.writePortB(1);
    pit.write(3, 0x30 | 0 << 6);
    pit.write(0, 0x12); // half-written LSB/MSB count
    pit.write(3, 0xe4); // latched status of counter 1
    at(700);
    const s = JSON.parse(JSON.stringify(pit.snapshot()));
    const clock2 = new FakeClock();
    clock2.advance(123_456_789);
    const q = new I8254({ clock: clock2 });
    q.restore(s);
    assert.deepEqual(q.snapshot(), pit.snapshot());
    for (const p of [pit, q]) p.write(0, 0x00);
    assert.equal(q.read(1), pit.read(1));
    clock.advance(1_000_000);
    clock2.advance(1_000_000);
    assert.equal(readLatched(q, 2), readLatched(pit, 2));
    assert.equal(q.readPortB() & 0x2f, pit.readPortB() & 0x2f);
    assert.throws(() => q.restore({ ...s, version: 2 }), TypeError);
    assert.throws(
      () => q.restore({ ...s, counters: [s.counters[0]] }),
      TypeError,
    );
  });
});
