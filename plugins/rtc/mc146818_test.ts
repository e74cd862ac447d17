import assert from "node:assert/strict";
import { FakeClock } from "../testing/fake_context.ts";
import { Mc146818, RtcReg } from "./mc146818.ts";

const T0 = Date.UTC(2024, 1, 29, 23, 59, 58, 500); // Thu 29 Feb 2024

function make(extra: { ramBelow4g?: number; hostMs?: number } = {}) {
  const clock = new FakeClock();
  const levels: boolean[] = [];
  const rtc = new Mc146818({
    clock,
    hostTimeMs: () => extra.hostMs ?? T0,
    ramBelow4g: extra.ramBelow4g,
    setIrq: (l) => levels.push(l),
  });
  const rd = (r: number) => {
    rtc.writeIndex(r);
    return rtc.readData();
  };
  const wr = (r: number, v: number) => {
    rtc.writeIndex(r);
    rtc.writeData(v);
  };
  return { clock, rtc, rd, wr, levels };
}

const time = (rd: (r: number) => number) =>
  [0, 2, 4, 6, 7, 8, 9, 0x32].map((r) => rd(r).toString(16)).join(" ");

Deno.test("mc146818", async (t) => {
  await t.step("date from the host clock in BCD, 24-hour (power-on)", () => {
    const { rd } = make();
    assert.equal(time(rd), "58 59 23 5 29 2 24 20");
    assert.equal(rd(RtcReg.B), 0x02);
    assert.equal(rd(RtcReg.D), 0x80);
  });
  await t.step("binary and 12-hour modes", () => {
    const { rd, wr } = make();
    wr(RtcReg.B, 0x06); // binary, 24h
    assert.equal(rd(RtcReg.Hours), 23);
    assert.equal(rd(RtcReg.Year), 24);
    wr(RtcReg.B, 0x04); // binary, 12h: 11 PM
    assert.equal(rd(RtcReg.Hours), 0x80 | 11);
    wr(RtcReg.B, 0x00); // BCD, 12h
    assert.equal(rd(RtcReg.Hours), 0x91);
  });
  await t.step("time advances with the clock, across the leap day", () => {
    const { rd, clock } = make();
    clock.advance(2e9);
    assert.equal(time(rd), "0 0 0 6 1 3 24 20");
  });
  await t.step("UIP is set only in the 2228 µs before each update", () => {
    const { rd, clock } = make();
    clock.advance(0.4e9); // 58.9 s
    assert.equal(rd(RtcReg.A) & 0x80, 0);
    clock.advance(0.1e9 - 2_000_000); // 58.998 s
    assert.equal(rd(RtcReg.A) & 0x80, 0x80);
    clock.advance(2_000_000); // 59.000 s
    assert.equal(rd(RtcReg.A) & 0x80, 0);
    assert.equal(rd(RtcReg.A) & 0x7f, 0x26);
  });
  await t.step("SET freezes time; guest writes commit on release", () => {
    const { rd, wr, clock } = make();
    wr(RtcReg.B, 0x82 | 0x10); // SET (clears UIE), 24h BCD
    assert.equal(rd(RtcReg.B), 0x82);
    wr(RtcReg.Year, 0x99);
    wr(0x32, 0x19);
    wr(RtcReg.Month, 0x12);
    wr(RtcReg.DayOfMonth, 0x31);
    wr(RtcReg.Hours, 0x23);
    wr(RtcReg.Minutes, 0x59);
    wr(RtcReg.Seconds, 0x50);
    clock.advance(5e9);
    assert.equal(rd(RtcReg.Seconds), 0x50, "frozen while SET");
    wr(RtcReg.B, 0x02);
    clock.advance(10e9);
    assert.equal(time(rd), "0 0 0 7 1 1 0 20"); // Sat 1 Jan 2000
  });
  await t.step(
    "writing a time register without SET takes effect at once",
    () => {
      const { rd, wr } = make();
      wr(RtcReg.Minutes, 0x30);
      assert.equal(rd(RtcReg.Minutes), 0x30);
      assert.equal(rd(RtcReg.Hours), 0x23);
    },
  );
  await t.step(
    "update-ended interrupt: UF + IRQF, IRQ8 until C is read",
    () => {
      const { rd, wr, clock, rtc, levels } = make();
      rd(RtcReg.C);
      wr(RtcReg.B, 0x12); // UIE
      const due = rtc.service(clock.now());
      assert.equal(due, 0.5e9);
      clock.advance(due!);
      assert.equal(rtc.service(clock.now()), null, "level up: nothing due");
      assert.deepEqual(levels, [true]);
      const c = rd(RtcReg.C);
      assert.equal(c & 0x90, 0x90);
      assert.deepEqual(levels, [true, false]);
      assert.equal(rd(RtcReg.C) & 0x90, 0, "read cleared it");
    },
  );
  await t.step("periodic interrupt at the rate of register A", () => {
    const { rd, wr, clock, rtc, levels } = make();
    wr(RtcReg.A, 0x2a); // rate 10: period 2^9 / 32768 s (64 Hz)
    rd(RtcReg.C);
    wr(RtcReg.B, 0x42); // PIE
    const period = 512 * 1e9 / 32768;
    let irqs = 0;
    for (let k = 1; k <= 100; k++) {
      const due = rtc.service(clock.now());
      assert.ok(Math.abs(due! - k * period) < 1, `tick ${k} at ${due}`);
      clock.advance(due! - clock.now());
      rtc.service(clock.now());
      if (rd(RtcReg.C) & 0x40) irqs++;
    }
    assert.equal(irqs, 100);
    assert.equal(levels.filter((l) => l).length, 100);
    wr(RtcReg.A, 0x20); // rate 0: off
    rd(RtcReg.C);
    clock.advance(1e8);
    assert.equal(rd(RtcReg.C) & 0x40, 0);
  });
  await t.step("alarm: AF at the matching second, don't-care bytes", () => {
    const { rd, wr, clock, rtc, levels } = make();
    wr(RtcReg.SecondsAlarm, 0x02);
    wr(RtcReg.MinutesAlarm, 0xc0); // don't care
    wr(RtcReg.HoursAlarm, 0xff);
    rd(RtcReg.C);
    wr(RtcReg.B, 0x22); // AIE
    clock.advance(0.5e9); // 59
    rtc.service(clock.now());
    assert.equal(levels.length, 0);
    clock.advance(1e9); // 00
    rtc.service(clock.now());
    assert.equal(rd(RtcReg.C) & 0x20, 0);
    clock.advance(2e9); // 02
    rtc.service(clock.now());
    assert.deepEqual(levels, [true]);
    assert.equal(rd(RtcReg.C) & 0xa0, 0xa0);
  });
  await t.step("NMI mask bit and index port", () => {
    const { rtc } = make();
    rtc.writeIndex(0x8f);
    assert.equal(rtc.nmiDisabled, true);
    assert.equal(rtc.readIndex(), 0xff);
    rtc.writeData(0x5a); // CMOS 0x0F
    rtc.writeIndex(0x0f);
    assert.equal(rtc.nmiDisabled, false);
    assert.equal(rtc.readData(), 0x5a);
  });
  await t.step("C and D are read-only", () => {
    const { rd, wr, rtc } = make();
    wr(RtcReg.D, 0);
    wr(RtcReg.C, 0xff);
    assert.equal(rd(RtcReg.D), 0x80);
    assert.equal(rtc.stats.badAccesses, 2);
  });
  await t.step("CMOS memory-size bytes from the RAM size", () => {
    const { rd } = make({ ramBelow4g: 32 << 20 });
    const w = (r: number) => rd(r) | rd(r + 1) << 8;
    assert.equal(w(0x15), 640);
    assert.equal(w(0x17), 31 * 1024);
    assert.equal(w(0x30), 31 * 1024);
    assert.equal(w(0x34), (16 << 20) / 65536);
    const small = make({ ramBelow4g: 8 << 20 });
    assert.equal(small.rd(0x34) | small.rd(0x35) << 8, 0);
    const big = make({ ramBelow4g: 3 * 2 ** 30 });
    assert.equal(big.rd(0x17) | big.rd(0x18) << 8, 0xffff, "capped");
    assert.throws(
      () => new Mc146818({ clock: new FakeClock(), ramBelow4g: -1 }),
      RangeError,
    );
  });
  await t.step("snapshot → JSON → restore: identical register reads", () => {
    const a = make({ ramBelow4g: 64 << 20 });
    a.wr(RtcReg.A, 0x2c);
    a.wr(RtcReg.B, 0x46);
    a.wr(0x40, 0x77);
    a.rtc.writeIndex(0x80 | RtcReg.Minutes);
    a.clock.advance(3.25e9);
    const s = JSON.parse(JSON.stringify(a.rtc.snapshot()));
    const b = make({ hostMs: Date.UTC(1990, 0, 1) });
    b.clock.advance(77e9);
    b.rtc.restore(s);
    assert.equal(b.rtc.nmiDisabled, true);
    assert.equal(b.rtc.readData(), a.rtc.readData());
    for (const r of [0, 2, 4, 6, 7, 8, 9, 0x0a, 0x0b, 0x0d, 0x32, 0x34, 0x40]) {
      assert.equal(b.rd(r), a.rd(r), `register 0x${r.toString(16)}`);
    }
    assert.equal(b.rd(RtcReg.C), a.rd(RtcReg.C));
    assert.throws(() => b.rtc.restore({ ...s, cmos: [1] }), TypeError);
    assert.throws(() => b.rtc.restore({ ...s, version: 0 }), TypeError);
  });
});
