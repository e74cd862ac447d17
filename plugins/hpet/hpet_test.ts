import assert from "node:assert/strict";
import type { MsiMessage } from "../../bus/types.ts";
import { FakeClock } from "../testing/fake_context.ts";
import { Hpet, HPET_CATCHUP_CAP, HPET_CFG, HPET_REG, HPET_TN } from "./hpet.ts";

const T0 = HPET_REG.TIMER;
const tn = (n: number, r: number) => HPET_REG.TIMER + 0x20 * n + r;

function device(lateTicks: "catchup" | "coalesce" = "coalesce") {
  const clock = new FakeClock();
  const lines: string[] = [];
  const msis: MsiMessage[] = [];
  const hpet = new Hpet({
    clock,
    legacyIrq0Gsi: 2,
    legacyIrq8Gsi: 8,
    lateTicks,
    sink: {
      setLine: (g, l) => lines.push(`${g}${l ? "+" : "-"}`),
      msi: (m) => msis.push(m),
    },
  });
  /** Advance to `ns` and service like the VM's alarm does. */
  const at = (ns: number) => {
    clock.advance(ns - clock.now());
    return hpet.service(clock.now());
  };
  return { clock, hpet, lines, msis, at };
}

Deno.test("hpet: capabilities and the main counter from the clock", () => {
  const { hpet, clock } = device();
  const cap = hpet.read(HPET_REG.CAP, 8);
  assert.equal(cap & 0xffn, 1n, "revision");
  assert.equal((cap >> 8n) & 0x1fn, 2n, "3 timers");
  assert.equal((cap >> 13n) & 1n, 1n, "64-bit counter");
  assert.equal((cap >> 15n) & 1n, 1n, "legacy route capable");
  assert.equal(cap >> 32n, 10_000_000n, "10 ns period");
  assert.equal(hpet.read(HPET_REG.CAP + 4, 4), 10_000_000n, "high half");
  clock.advance(1000);
  assert.equal(hpet.read(HPET_REG.COUNTER, 8), 0n, "halted");
  hpet.write(HPET_REG.CONFIG, 4, HPET_CFG.ENABLE);
  clock.advance(1005);
  assert.equal(hpet.read(HPET_REG.COUNTER, 8), 100n);
  hpet.write(HPET_REG.CONFIG, 4, 0n);
  clock.advance(1e6);
  assert.equal(hpet.read(HPET_REG.COUNTER, 4), 100n, "frozen when halted");
  hpet.write(HPET_REG.COUNTER + 4, 4, 1n); // high half while halted
  assert.equal(hpet.read(HPET_REG.COUNTER, 8), (1n << 32n) + 100n);
  hpet.write(HPET_REG.CAP, 8, 0n);
  assert.equal(hpet.read(HPET_REG.CAP, 8), cap, "read-only");
  hpet.read(HPET_REG.CAP, 2);
  hpet.write(HPET_REG.CONFIG, 1, 1n);
  assert.equal(hpet.stats.badAccesses, 2);
  assert.equal(hpet.read(HPET_REG.CONFIG, 8), 0n);
});

Deno.test("hpet: timer config caps are read-only, route cap 20-23", () => {
  const { hpet } = device();
  hpet.write(T0, 8, (1n << 64n) - 1n);
  const c = hpet.read(T0, 8);
  assert.equal(c >> 32n, 0x00f00000n);
  assert.ok(
    c & HPET_TN.PERIODIC_CAP && c & HPET_TN.SIZE_CAP && c & HPET_TN.FSB_CAP,
  );
  assert.equal(c & HPET_TN.VAL_SET, HPET_TN.VAL_SET);
  assert.equal(c & 1n, 0n, "reserved bit 0 stays 0");
});

Deno.test("hpet: one-shot edge on an IOAPIC route fires once at the match", () => {
  const { hpet, lines, at } = device();
  hpet.write(T0, 4, HPET_TN.ENABLE | (21n << HPET_TN.ROUTE_SHIFT));
  hpet.write(T0 + 8, 8, 1000n); // 10 µs
  assert.equal(at(0), null, "halted: nothing scheduled");
  hpet.write(HPET_REG.CONFIG, 4, HPET_CFG.ENABLE);
  assert.equal(at(0), 10_000);
  assert.equal(at(9_999), 10_000, "not early");
  assert.deepEqual(lines, []);
  assert.equal(at(10_000), null, "64-bit one-shot: no second match");
  assert.deepEqual(lines, ["21+", "21-"]);
  at(1e9);
  assert.equal(lines.length, 2);
  assert.equal(hpet.stats.interrupts, 1);
  // Re-arming by writing the comparator again.
  hpet.write(T0 + 8, 8, hpet.read(HPET_REG.COUNTER, 8) + 5n);
  at(1e9 + 50);
  assert.deepEqual(lines.slice(2), ["21+", "21-"]);
  // A comparator already passed does not fire (64-bit: needs a wrap).
  hpet.write(T0 + 8, 8, 1n);
  assert.equal(at(2e9), null);
  assert.equal(hpet.stats.interrupts, 2);
});

Deno.test("hpet: periodic with the set-accumulator rule", () => {
  const { hpet, lines, at } = device();
  hpet.write(HPET_REG.CONFIG, 4, HPET_CFG.ENABLE);
  // Linux's sequence: PERIODIC|VAL_SET|32-bit, comparator = now + delta,
  // then the period, both as 4-byte writes.
  hpet.write(
    T0,
    4,
    HPET_TN.ENABLE | HPET_TN.PERIODIC | HPET_TN.VAL_SET | HPET_TN.MODE32 |
      (20n << HPET_TN.ROUTE_SHIFT),
  );
  hpet.write(T0 + 8, 4, 500n); // sets comparator and period (VAL_SET)
  assert.equal(hpet.read(T0, 4) & HPET_TN.VAL_SET, 0n, "VAL_SET clears");
  hpet.write(T0 + 8, 4, 1000n); // without VAL_SET: only the period
  assert.equal(hpet.read(T0 + 8, 8), 500n);
  assert.equal(at(0), 5_000);
  const seen: number[] = [];
  for (let i = 0; i < 5; i++) {
    const next = at(hpet.service(0) ?? 0);
    seen.push(Number(hpet.read(T0 + 8, 8)));
    assert.ok(next !== null);
  }
  assert.deepEqual(seen, [1500, 2500, 3500, 4500, 5500], "comparator advances");
  assert.equal(lines.filter((l) => l === "20+").length, 5);
  // Late by 3.5 periods: one interrupt, three counted missed, then in phase.
  at(55_000 + 35_000);
  assert.equal(lines.filter((l) => l === "20+").length, 6);
  assert.equal(hpet.stats.missedPeriods, 3);
  assert.equal(hpet.read(T0 + 8, 8), 9500n);
  // No drift: the 100th match is exactly at 5 µs + 99 × 10 µs.
  let n = 0;
  let when = hpet.service(at(0) ?? 0)!;
  while (n < 50) {
    when = at(when)!;
    n++;
  }
  assert.equal((when - 5_000) % 10_000, 0);
});

Deno.test("hpet: catch-up raises every late period, spaced, up to the cap", () => {
  const { hpet, lines, at } = device("catchup");
  hpet.write(HPET_REG.CONFIG, 4, HPET_CFG.ENABLE);
  hpet.write(
    T0,
    4,
    HPET_TN.ENABLE | HPET_TN.PERIODIC | HPET_TN.VAL_SET |
      (20n << HPET_TN.ROUTE_SHIFT),
  );
  hpet.write(T0 + 8, 8, 1000n); // every 10 µs
  assert.equal(at(0), 10_000);
  // Serviced 3.5 periods late: one interrupt now, the owed ones a quarter
  // period apart, then back in phase; none counted missed.
  let next = at(45_000)!;
  assert.equal(next, 47_500, "the next owed tick a quarter period on");
  while (next < 60_000) next = at(next)!;
  assert.equal(
    lines.filter((l) => l === "20+").length,
    5,
    "matches at 10..50 µs",
  );
  assert.equal(hpet.stats.missedPeriods, 0);
  assert.ok(hpet.stats.caughtUp >= 3, `${hpet.stats.caughtUp}`);
  assert.equal(next, 60_000, "in phase again");
  // Beyond the cap the rest are skipped and counted.
  at(60_000 + Number(HPET_CATCHUP_CAP + 5n) * 10_000);
  assert.equal(hpet.stats.missedPeriods, Number(HPET_CATCHUP_CAP + 5n));
});

Deno.test("hpet: 32-bit mode compares the low half and wraps", () => {
  const { hpet, lines, at } = device();
  hpet.write(HPET_REG.COUNTER, 8, 0xffff_fff0n);
  hpet.write(
    T0,
    4,
    HPET_TN.ENABLE | HPET_TN.MODE32 | (22n << HPET_TN.ROUTE_SHIFT),
  );
  hpet.write(T0 + 8, 8, 0x1_0000_0010n); // upper half dropped: 0x10
  assert.equal(hpet.read(T0 + 8, 8), 0x10n);
  hpet.write(HPET_REG.CONFIG, 4, HPET_CFG.ENABLE);
  assert.equal(at(0), 0x20 * 10, "matches after the 32-bit wrap");
  at(0x20 * 10);
  assert.deepEqual(lines, ["22+", "22-"]);
  // A 32-bit one-shot matches again after 2^32 ticks.
  assert.equal(hpet.service(0x20 * 10), 0x20 * 10 + 2 ** 32 * 10);
});

Deno.test("hpet: level mode holds the line until GINTR_STA is cleared", () => {
  const { hpet, lines, at } = device();
  hpet.write(HPET_REG.CONFIG, 4, HPET_CFG.ENABLE);
  hpet.write(
    T0 + 0x20,
    4,
    HPET_TN.ENABLE | HPET_TN.LEVEL | (23n << HPET_TN.ROUTE_SHIFT),
  );
  hpet.write(T0 + 0x28, 8, 100n);
  at(1000);
  assert.deepEqual(lines, ["23+"]);
  assert.equal(hpet.read(HPET_REG.STATUS, 4), 2n);
  hpet.write(HPET_REG.STATUS, 4, 1n); // wrong bit: no effect
  assert.deepEqual(lines, ["23+"]);
  hpet.write(HPET_REG.STATUS, 4, 2n);
  assert.deepEqual(lines, ["23+", "23-"]);
  assert.equal(hpet.read(HPET_REG.STATUS, 4), 0n);
  // Disabling a level timer while asserted drops the line.
  hpet.write(T0 + 0x28, 8, hpet.read(HPET_REG.COUNTER, 8) + 1n);
  at(2000);
  assert.deepEqual(lines.slice(2), ["23+"]);
  hpet.write(T0 + 0x20, 4, HPET_TN.LEVEL);
  assert.deepEqual(lines.slice(3), ["23-"]);
});

Deno.test("hpet: legacy replacement routes timers 0 and 1 to IRQ0 and IRQ8", () => {
  const { hpet, lines, at } = device();
  hpet.write(T0, 4, HPET_TN.ENABLE | (20n << HPET_TN.ROUTE_SHIFT));
  hpet.write(T0 + 8, 8, 100n);
  hpet.write(tn(1, 0), 4, HPET_TN.ENABLE | (21n << HPET_TN.ROUTE_SHIFT));
  hpet.write(tn(1, 8), 8, 200n);
  hpet.write(tn(2, 0), 4, HPET_TN.ENABLE | (22n << HPET_TN.ROUTE_SHIFT));
  hpet.write(tn(2, 8), 8, 300n);
  hpet.write(HPET_REG.CONFIG, 4, HPET_CFG.ENABLE | HPET_CFG.LEGACY);
  at(3000);
  assert.deepEqual(lines, ["2+", "2-", "8+", "8-", "22+", "22-"]);
});

Deno.test("hpet: FSB delivery sends the programmed MSI", () => {
  const { hpet, lines, msis, at } = device();
  hpet.write(
    tn(2, 0),
    4,
    HPET_TN.ENABLE | HPET_TN.FSB_EN | HPET_TN.PERIODIC | HPET_TN.VAL_SET,
  );
  hpet.write(tn(2, 8), 8, 1000n);
  hpet.write(tn(2, 0x10), 8, (0xfee00000n << 32n) | 0x41n);
  hpet.write(HPET_REG.CONFIG, 4, HPET_CFG.ENABLE);
  at(10_000);
  at(20_000);
  assert.deepEqual(msis, [
    { address: 0xfee00000, data: 0x41 },
    { address: 0xfee00000, data: 0x41 },
  ]);
  assert.deepEqual(lines, []);
});

Deno.test("hpet: reset drops asserted lines and halts", () => {
  const { hpet, lines, at } = device();
  hpet.write(HPET_REG.CONFIG, 4, HPET_CFG.ENABLE);
  hpet.write(
    T0,
    4,
    HPET_TN.ENABLE | HPET_TN.LEVEL | (20n << HPET_TN.ROUTE_SHIFT),
  );
  hpet.write(T0 + 8, 8, 10n);
  at(100);
  hpet.reset();
  assert.deepEqual(lines, ["20+", "20-"]);
  assert.equal(hpet.read(HPET_REG.CONFIG, 8), 0n);
  assert.equal(hpet.read(HPET_REG.COUNTER, 8), 0n);
  assert.equal(at(1e6), null);
});
