import assert from "node:assert/strict";
import { prng } from "../testing/prng.ts";
import type { MsiMessage } from "../../bus/types.ts";
import { FakeClock } from "../testing/fake_context.ts";
import {
  DM_EXTINT,
  DM_FIXED,
  DM_LOWEST_PRIORITY,
  DM_NMI,
  entryToMsi,
  Ioapic,
  IOAPIC_EOI,
  IOAPIC_IOREGSEL,
  IOAPIC_IOWIN,
  IOAPIC_PINS,
  IOAPIC_REG_ARB,
  IOAPIC_REG_ID,
  IOAPIC_REG_REDTBL,
  IOAPIC_REG_VERSION,
  type IoapicOptions,
  type IoapicState,
  REDIR_DELIVERY_STATUS,
  REDIR_DEST_MODE,
  REDIR_MASKED,
  REDIR_REMOTE_IRR,
  REDIR_TRIGGER_LEVEL,
} from "./ioapic.ts";

interface Delivery {
  pin: number;
  msg: MsiMessage;
}

class Recorder {
  readonly deliveries: Delivery[] = [];
  readonly routes: { pin: number; msg: MsiMessage | null }[] = [];
  readonly logs: string[] = [];
  deliver(msg: MsiMessage, pin: number): void {
    this.deliveries.push({ pin, msg });
  }
  routeChanged(pin: number, msg: MsiMessage | null): void {
    this.routes.push({ pin, msg });
  }
  vectors(): number[] {
    return this.deliveries.map((d) => d.msg.data & 0xff);
  }
}

function make(
  extra: Partial<IoapicOptions> = {},
): { io: Ioapic; rec: Recorder; clock: FakeClock } {
  const rec = new Recorder();
  const clock = new FakeClock();
  const io = new Ioapic({
    sink: rec,
    clock,
    log: (l, m) => rec.logs.push(`${l}: ${m}`),
    ...extra,
  });
  return { io, rec, clock };
}

function writeReg(io: Ioapic, index: number, value: number): void {
  io.write(IOAPIC_IOREGSEL, 4, index);
  io.write(IOAPIC_IOWIN, 4, value);
}

function readReg(io: Ioapic, index: number): number {
  io.write(IOAPIC_IOREGSEL, 4, index);
  return io.read(IOAPIC_IOWIN, 4);
}

function program(io: Ioapic, pin: number, lo: number, hi = 0): void {
  writeReg(io, IOAPIC_REG_REDTBL + 2 * pin + 1, hi);
  writeReg(io, IOAPIC_REG_REDTBL + 2 * pin, lo);
}

const LEVEL = REDIR_TRIGGER_LEVEL;

Deno.test("ioapic registers", async (t) => {
  await t.step("power-on values", () => {
    const { io } = make();
    assert.equal(readReg(io, IOAPIC_REG_ID), 0);
    assert.equal(readReg(io, IOAPIC_REG_VERSION), 0x00170020);
    assert.equal(readReg(io, IOAPIC_REG_ARB), 0);
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      assert.equal(readReg(io, IOAPIC_REG_REDTBL + 2 * pin), REDIR_MASKED);
      assert.equal(readReg(io, IOAPIC_REG_REDTBL + 2 * pin + 1), 0);
    }
    assert.equal(io.tmr(), 0);
  });
  await t.step("IOREGSEL reads back its low 8 bits", () => {
    const { io } = make();
    io.write(IOAPIC_IOREGSEL, 4, 0x1234);
    assert.equal(io.read(IOAPIC_IOREGSEL, 4), 0x34);
  });
  await t.step("ID bits 27:24 writable; arbitration mirrors ID", () => {
    const { io } = make();
    writeReg(io, IOAPIC_REG_ID, 0xffffffff);
    assert.equal(readReg(io, IOAPIC_REG_ID), 0x0f000000);
    assert.equal(readReg(io, IOAPIC_REG_ARB), 0x0f000000);
  });
  await t.step("version and arbitration are read-only", () => {
    const { io } = make();
    writeReg(io, IOAPIC_REG_VERSION, 0);
    writeReg(io, IOAPIC_REG_ARB, 0x0f000000);
    assert.equal(readReg(io, IOAPIC_REG_VERSION), 0x00170020);
    assert.equal(readReg(io, IOAPIC_REG_ARB), 0);
  });
  await t.step("redirection halves read back; RO bits ignore writes", () => {
    const { io } = make();
    program(io, 3, 0xffffffff, 0xab000000);
    const lo = readReg(io, IOAPIC_REG_REDTBL + 6);
    assert.equal(lo & REDIR_REMOTE_IRR, 0);
    assert.equal(lo & REDIR_DELIVERY_STATUS, 0);
    assert.equal(
      lo,
      (0xffffffff & ~(REDIR_REMOTE_IRR | REDIR_DELIVERY_STATUS)) >>> 0,
    );
    assert.equal(readReg(io, IOAPIC_REG_REDTBL + 7), 0xab000000);
    assert.equal(io.entry(3).destination, 0xab);
    assert.equal(io.tmr(), 1 << 3);
  });
  await t.step("bad registers, sizes and offsets are counted no-ops", () => {
    const { io } = make();
    assert.equal(readReg(io, 0x40), 0);
    writeReg(io, 0x03, 5);
    writeReg(io, 0xff, 5);
    assert.equal(io.stats.badRegisters, 3);
    assert.equal(io.read(IOAPIC_IOWIN, 1), 0);
    io.write(IOAPIC_IOWIN, 2, 0xffff);
    assert.equal(io.read(0x20, 4), 0);
    io.write(0x04, 4, 1);
    assert.equal(io.stats.badAccesses, 4);
    assert.equal(io.read(IOAPIC_EOI, 4), 0);
  });
});

Deno.test("ioapic MSI conversion", async (t) => {
  const cases: {
    name: string;
    lo: number;
    hi: number;
    want: MsiMessage | null;
  }[] = [
    {
      name: "fixed edge physical",
      lo: 0x30,
      hi: 0x01000000,
      want: { address: 0xfee01000, data: 0x30 },
    },
    {
      name: "fixed level logical",
      lo: 0x41 | LEVEL | REDIR_DEST_MODE,
      hi: 0xff000000,
      want: { address: 0xfeeff004, data: 0x41 | 0xc000 },
    },
    {
      name: "lowest priority sets redirection hint",
      lo: 0x50 | (DM_LOWEST_PRIORITY << 8) | REDIR_DEST_MODE,
      hi: 0x03000000,
      want: { address: 0xfee0300c, data: 0x150 },
    },
    {
      name: "NMI ignores the vector",
      lo: 0x02 | (DM_NMI << 8),
      hi: 0,
      want: { address: 0xfee00000, data: 0x402 },
    },
    { name: "vector below 0x10", lo: 0x0f, hi: 0, want: null },
    { name: "reserved mode 3", lo: 0x30 | (3 << 8), hi: 0, want: null },
    { name: "reserved mode 6", lo: 0x30 | (6 << 8), hi: 0, want: null },
    {
      name: "ExtINT unsupported",
      lo: 0x30 | (DM_EXTINT << 8),
      hi: 0,
      want: null,
    },
    {
      name: "reserved high bits ignored",
      lo: 0x30,
      hi: 0x00ffffff,
      want: { address: 0xfee00000, data: 0x30 },
    },
  ];
  for (const c of cases) {
    await t.step(
      c.name,
      () => assert.deepEqual(entryToMsi(c.lo, c.hi), c.want),
    );
  }
});

Deno.test("ioapic delivery rules", async (t) => {
  await t.step("masked entries deliver nothing", () => {
    const { io, rec } = make();
    io.pulse(1);
    io.setLevel(2, true); // edge entry (power-on), masked: lost
    program(io, 3, 0x33 | LEVEL | REDIR_MASKED);
    io.setLevel(3, true);
    assert.equal(rec.deliveries.length, 0);
    assert.equal(io.stats.maskedEdges, 2);
  });
  await t.step("edge fires on rising edge only", () => {
    const { io, rec } = make();
    program(io, 1, 0x31);
    io.setLevel(1, true);
    io.setLevel(1, true);
    assert.deepEqual(rec.vectors(), [0x31]);
    io.setLevel(1, false);
    io.setLevel(1, true);
    assert.deepEqual(rec.vectors(), [0x31, 0x31]);
    assert.equal(io.entry(1).remoteIrr, false);
  });
  await t.step("masked edge is lost and not replayed on unmask", () => {
    const { io, rec } = make();
    program(io, 1, 0x31 | REDIR_MASKED);
    io.pulse(1);
    io.setLevel(1, true);
    program(io, 1, 0x31);
    assert.equal(rec.deliveries.length, 0);
    assert.equal(io.stats.maskedEdges, 2);
  });
  await t.step("level sets Remote IRR and coalesces until EOI", () => {
    const { io, rec } = make();
    program(io, 5, 0x45 | LEVEL, 0x02000000);
    io.setLevel(5, true);
    assert.deepEqual(rec.deliveries, [{
      pin: 5,
      msg: { address: 0xfee02000, data: 0xc045 },
    }]);
    assert.equal(io.entry(5).remoteIrr, true);
    io.setLevel(5, true);
    io.setLevel(5, false);
    io.setLevel(5, true);
    assert.equal(rec.deliveries.length, 1);
    assert.equal(io.stats.coalesced, 2);
  });
  await t.step("EOI with line deasserted clears Remote IRR only", () => {
    const { io, rec } = make();
    program(io, 5, 0x45 | LEVEL);
    io.setLevel(5, true);
    io.setLevel(5, false);
    io.eoi(0x45);
    assert.equal(io.entry(5).remoteIrr, false);
    assert.equal(rec.deliveries.length, 1);
    assert.equal(io.stats.eois, 1);
  });
  await t.step("EOI with line still asserted retriggers", () => {
    const { io, rec } = make();
    program(io, 5, 0x45 | LEVEL);
    io.setLevel(5, true);
    io.eoi(0x45);
    assert.equal(rec.deliveries.length, 2);
    assert.equal(io.entry(5).remoteIrr, true);
    assert.equal(io.stats.retriggers, 1);
  });
  await t.step("EOI register forwards to eoi", () => {
    const { io, rec } = make();
    program(io, 5, 0x45 | LEVEL);
    io.setLevel(5, true);
    io.setLevel(5, false);
    io.write(IOAPIC_EOI, 4, 0x45);
    assert.equal(io.entry(5).remoteIrr, false);
    assert.equal(rec.deliveries.length, 1);
  });
  await t.step("EOI clears every level pin with the vector", () => {
    const { io } = make();
    program(io, 2, 0x50 | LEVEL);
    program(io, 3, 0x50 | LEVEL);
    program(io, 4, 0x51 | LEVEL);
    io.setLevel(2, true);
    io.setLevel(3, true);
    io.setLevel(4, true);
    io.setLevel(2, false);
    io.setLevel(3, false);
    io.eoi(0x50);
    assert.equal(io.entry(2).remoteIrr, false);
    assert.equal(io.entry(3).remoteIrr, false);
    assert.equal(io.entry(4).remoteIrr, true);
  });
  await t.step("unmatched or garbage EOI is a counted no-op", () => {
    const { io } = make();
    io.eoi(0x99);
    io.eoi(-1);
    io.eoi(256);
    io.eoi(1.5);
    assert.equal(io.stats.spuriousEois, 4);
    assert.equal(io.stats.eois, 0);
  });
  await t.step("EOI of a masked entry clears IRR without delivery", () => {
    const { io, rec } = make();
    program(io, 6, 0x46 | LEVEL);
    io.setLevel(6, true);
    program(io, 6, 0x46 | LEVEL | REDIR_MASKED);
    io.eoi(0x46);
    assert.equal(io.entry(6).remoteIrr, false);
    assert.equal(rec.deliveries.length, 1);
    program(io, 6, 0x46 | LEVEL);
    assert.equal(rec.deliveries.length, 2);
  });
  await t.step("unmasking an asserted level line delivers it", () => {
    const { io, rec } = make();
    program(io, 7, 0x47 | LEVEL | REDIR_MASKED);
    io.setLevel(7, true);
    assert.equal(rec.deliveries.length, 0);
    program(io, 7, 0x47 | LEVEL);
    assert.deepEqual(rec.vectors(), [0x47]);
    assert.equal(io.entry(7).remoteIrr, true);
  });
  await t.step("rewriting an entry keeps Remote IRR for level", () => {
    const { io, rec } = make();
    program(io, 7, 0x47 | LEVEL);
    io.setLevel(7, true);
    program(io, 7, 0x47 | LEVEL | REDIR_REMOTE_IRR);
    program(io, 7, 0x47 | LEVEL);
    assert.equal(io.entry(7).remoteIrr, true);
    assert.equal(rec.deliveries.length, 1);
  });
  await t.step("switching to edge clears Remote IRR", () => {
    const { io, rec } = make();
    program(io, 8, 0x48 | LEVEL);
    io.setLevel(8, true);
    program(io, 8, 0x48);
    assert.equal(io.entry(8).remoteIrr, false);
    assert.equal(io.tmr(), 0);
    assert.equal(rec.deliveries.length, 1);
  });
  await t.step("invalid vector or mode: counted, logged once", () => {
    const { io, rec } = make();
    program(io, 9, 0x05 | LEVEL);
    io.setLevel(9, true);
    io.setLevel(9, true);
    program(io, 10, 0x30 | (6 << 8));
    io.pulse(10);
    io.pulse(10);
    assert.equal(rec.deliveries.length, 0);
    assert.equal(io.entry(9).remoteIrr, false);
    assert.ok(io.stats.invalidEntries >= 4);
    assert.equal(rec.logs.filter((l) => l.includes("pin 9 ")).length, 1);
    assert.equal(rec.logs.filter((l) => l.includes("pin 10 ")).length, 1);
  });
  await t.step("bad pins are counted no-ops", () => {
    const { io } = make();
    for (const pin of [-1, 24, 1.5, NaN, 1e9]) io.setLevel(pin, true);
    assert.equal(io.stats.badPins, 5);
    assert.equal(io.level(24), false);
    assert.throws(() => io.entry(24), RangeError);
  });
  await t.step("delivery mode and destination reach the sink", () => {
    const { io, rec } = make();
    program(io, 11, 0x60 | (DM_FIXED << 8) | REDIR_DEST_MODE, 0x0f000000);
    io.pulse(11);
    assert.deepEqual(rec.deliveries[0].msg, {
      address: 0xfee0f004,
      data: 0x60,
    });
  });
});

Deno.test("ioapic routeChanged", async (t) => {
  await t.step("reports on change only, null when masked", () => {
    const { io, rec } = make();
    program(io, 4, 0x34 | REDIR_MASKED, 0x01000000);
    assert.deepEqual(rec.routes, []);
    program(io, 4, 0x34, 0x01000000);
    assert.deepEqual(rec.routes, [{
      pin: 4,
      msg: { address: 0xfee01000, data: 0x34 },
    }]);
    program(io, 4, 0x34, 0x01000000);
    assert.equal(rec.routes.length, 1);
    program(io, 4, 0x34, 0x02000000);
    assert.equal(rec.routes.length, 2);
    program(io, 4, 0x34 | REDIR_MASKED, 0x02000000);
    assert.deepEqual(rec.routes[2], { pin: 4, msg: null });
    assert.equal(io.route(4), null);
  });
  await t.step("reset reports masked routes", () => {
    const { io, rec } = make();
    program(io, 4, 0x34);
    io.reset();
    assert.deepEqual(rec.routes.at(-1), { pin: 4, msg: null });
    assert.equal(io.entry(4).masked, true);
  });
});

Deno.test("ioapic storm guard", async (t) => {
  await t.step("defers retriggers past the threshold", () => {
    const { io, rec, clock } = make({ stormThreshold: 3, stormDelayNs: 500 });
    program(io, 2, 0x42 | LEVEL);
    io.setLevel(2, true);
    for (let i = 0; i < 3; i++) io.eoi(0x42);
    assert.equal(rec.deliveries.length, 4);
    assert.equal(io.nextDeadline(), null);
    io.eoi(0x42);
    assert.equal(rec.deliveries.length, 4);
    assert.equal(io.stats.deferred, 1);
    assert.equal(io.nextDeadline(), 500);
    assert.equal(io.entry(2).deliveryStatus, true);
    assert.ok(readReg(io, IOAPIC_REG_REDTBL + 4) & REDIR_DELIVERY_STATUS);
    assert.equal(rec.logs.filter((l) => l.includes("storm")).length, 1);
    io.setLevel(2, true); // coalesced while deferred
    assert.equal(rec.deliveries.length, 4);
    io.service(499);
    assert.equal(rec.deliveries.length, 4);
    clock.advance(500);
    io.service(clock.now());
    assert.equal(rec.deliveries.length, 5);
    assert.equal(io.nextDeadline(), null);
    assert.equal(io.entry(2).remoteIrr, true);
  });
  await t.step("window expiry resets the count", () => {
    const { io, rec, clock } = make({ stormThreshold: 2, stormWindowNs: 100 });
    program(io, 2, 0x42 | LEVEL);
    io.setLevel(2, true);
    for (let i = 0; i < 10; i++) {
      clock.advance(101);
      io.eoi(0x42);
    }
    assert.equal(rec.deliveries.length, 11);
    assert.equal(io.stats.deferred, 0);
  });
  await t.step("EOI with the line low resets back-to-back count", () => {
    const { io, rec } = make({ stormThreshold: 2 });
    program(io, 2, 0x42 | LEVEL);
    for (let i = 0; i < 10; i++) {
      io.setLevel(2, true);
      io.eoi(0x42);
      io.setLevel(2, false);
      io.eoi(0x42);
    }
    assert.equal(io.stats.deferred, 0);
    assert.equal(rec.deliveries.length, 20);
  });
  await t.step("deferred pin deasserted or masked is dropped", () => {
    const { io, rec } = make({ stormThreshold: 1 });
    program(io, 2, 0x42 | LEVEL);
    io.setLevel(2, true);
    io.eoi(0x42); // retrigger 1: delivered
    io.eoi(0x42); // retrigger 2: deferred
    assert.equal(rec.deliveries.length, 2);
    io.setLevel(2, false);
    io.service(1e12);
    assert.equal(rec.deliveries.length, 2);
    assert.equal(io.nextDeadline(), null);
  });
});

Deno.test("ioapic snapshot and restore", async (t) => {
  await t.step("round trip", () => {
    const a = make({ stormThreshold: 1 });
    writeReg(a.io, IOAPIC_REG_ID, 0x03000000);
    program(a.io, 1, 0x31 | LEVEL, 0x01000000);
    program(a.io, 2, 0x32, 0x02000000);
    program(a.io, 3, 0x33 | LEVEL);
    a.io.setLevel(1, true);
    a.io.setLevel(3, true);
    a.io.eoi(0x33);
    a.io.eoi(0x33); // deferred
    a.io.write(IOAPIC_IOREGSEL, 4, 0x12);
    const state = a.io.snapshot();
    const json = JSON.parse(JSON.stringify(state)) as IoapicState;
    const b = make();
    b.io.restore(json);
    assert.deepEqual(b.io.snapshot(), state);
    assert.equal(b.io.read(IOAPIC_IOREGSEL, 4), 0x12);
    assert.equal(readReg(b.io, IOAPIC_REG_ID), 0x03000000);
    assert.equal(b.rec.routes.length, IOAPIC_PINS);
    assert.deepEqual(b.io.route(1), a.io.route(1));
    assert.equal(b.io.entry(1).remoteIrr, true);
    assert.equal(b.io.nextDeadline(), 0);
    b.io.service(0);
    assert.deepEqual(b.rec.vectors(), [0x33]);
    b.io.eoi(0x31);
    assert.deepEqual(b.rec.vectors(), [0x33, 0x31]);
  });
  await t.step("malformed states throw and change nothing", () => {
    const { io } = make();
    const good = io.snapshot();
    const bad: unknown[] = [
      null,
      {},
      { ...good, version: 2 },
      { ...good, id: 1 },
      { ...good, ioregsel: 256 },
      { ...good, entries: good.entries.slice(1) },
      { ...good, entries: good.entries.map(() => [0, -1]) },
      { ...good, levels: good.levels.map(() => 1) },
      { ...good, deferred: [] },
    ];
    program(io, 0, 0x30);
    for (const s of bad) {
      assert.throws(() => io.restore(s as IoapicState), TypeError);
    }
    assert.equal(io.entry(0).masked, false);
  });
});

Deno.test("ioapic randomized invariants", async (t) => {
  const PINS = 6;
  for (const seed of [1, 2, 3, 42, 0xdecaf]) {
    await t.step(`seed ${seed}`, () => {
      const rnd = prng(seed);
      const pick = (n: number) => Math.floor(rnd() * n);
      const rec = new Recorder();
      const clock = new FakeClock();
      const io = new Ioapic({
        sink: {
          deliver: (msg, pin) => onDeliver(msg, pin),
          routeChanged: (p, m) => rec.routeChanged(p, m),
        },
        clock,
        stormThreshold: 8,
        stormDelayNs: 1000,
      });
      // Model state per pin.
      const vector = (pin: number) => 0x40 + pin;
      const level = new Array(PINS).fill(false);
      const masked = new Array(PINS).fill(true);
      const levelTrig = new Array(PINS).fill(false);
      const inFlight = new Array(PINS).fill(0);
      let expectEdge = -1;

      function onDeliver(msg: MsiMessage, pin: number): void {
        assert.ok(pin >= 0 && pin < PINS);
        assert.equal(msg.data & 0xff, vector(pin));
        assert.equal(masked[pin], false, "delivery while masked");
        if (levelTrig[pin]) {
          assert.equal(msg.data & 0xc000, 0xc000);
          inFlight[pin]++;
          assert.ok(inFlight[pin] <= 1, "two level interrupts in flight");
          assert.ok(level[pin], "level delivery of a deasserted line");
        } else {
          assert.equal(msg.data & 0x8000, 0);
          assert.equal(pin, expectEdge, "edge delivery without rising edge");
          expectEdge = -1;
        }
      }
      function reprogram(pin: number): void {
        let lo = vector(pin);
        if (levelTrig[pin]) lo |= LEVEL;
        else inFlight[pin] = 0; // Remote IRR cleared
        if (masked[pin]) lo |= REDIR_MASKED;
        program(io, pin, lo, pick(4) << 24);
      }

      for (let op = 0; op < 4000; op++) {
        const pin = pick(PINS);
        switch (pick(6)) {
          case 0:
          case 1: {
            const v = rnd() < 0.5;
            const rising = v && !level[pin];
            level[pin] = v;
            if (rising && !levelTrig[pin] && !masked[pin]) expectEdge = pin;
            io.setLevel(pin, v);
            if (!levelTrig[pin] && rising && !masked[pin]) {
              assert.equal(expectEdge, -1, "edge lost");
            }
            break;
          }
          case 2:
            masked[pin] = !masked[pin];
            reprogram(pin);
            break;
          case 3:
            levelTrig[pin] = !levelTrig[pin];
            reprogram(pin);
            break;
          case 4: {
            const busy = [];
            for (let p = 0; p < PINS; p++) if (inFlight[p]) busy.push(p);
            if (busy.length) {
              const p = busy[pick(busy.length)];
              inFlight[p] = 0;
              io.eoi(vector(p));
            } else io.eoi(0x40 + pick(PINS));
            break;
          }
          case 5:
            clock.advance(pick(2000));
            io.service(clock.now());
            break;
        }
        expectEdge = -1;
        for (let p = 0; p < PINS; p++) {
          const e = io.entry(p);
          assert.equal(e.masked, masked[p]);
          assert.equal(e.levelTriggered, levelTrig[p]);
          assert.equal(e.remoteIrr, inFlight[p] === 1);
          if (levelTrig[p] && level[p] && !masked[p]) {
            assert.ok(
              inFlight[p] === 1 || e.deliveryStatus,
              `lost level interrupt on pin ${p} at op ${op}`,
            );
          }
          if (e.deliveryStatus) {
            const d = io.nextDeadline();
            assert.ok(d !== null && d <= clock.now() + 1000);
          }
        }
      }
      assert.ok(io.stats.deliveries > 100);
      assert.ok(io.stats.deferred > 0 || io.stats.retriggers > 0);
    });
  }
});
