/**
 * An Intel 8254 programmable interval timer (three counters) as a pure
 * state machine over port reads/writes and a clock. Nothing counts in the
 * host: every counter value and output level is derived from the clock at
 * the moment it is asked for (ticks of 1.193182 MHz since the count was
 * loaded), so a guest polling the counter costs no timers at all.
 *
 * Source: Intel 8254 datasheet (231164-005), "Control Word Format",
 * "Read Operations" (counter latch, read-back), "Mode Definitions" (modes
 * 0–5). Counter 2's gate and output appear in port 0x61 on a PC; counter 0's
 * output drives IRQ0.
 *
 * @module
 */
import type { Clock } from "../../bus/types.ts";
import { nsToTicks, ticksToNs } from "./pit_clock.ts";

/** First PIT port (counter 0); counters at +0..+2, control word at +3. */
export const I8254_BASE = 0x40;
/** Offset of the control-word register. */
export const I8254_CONTROL = 3;

/**
 * Access modes of a counter (control word bits 5:4); 0 is the counter
 * latch command.
 *
 * @example
 * ```ts
 * import { RwMode } from "./i8254.ts";
 * console.log(RwMode.LsbMsb); // 3
 * ```
 */
export const RwMode = {
  /** Counter latch command (not a mode). */
  Latch: 0,
  /** Least significant byte only. */
  Lsb: 1,
  /** Most significant byte only. */
  Msb: 2,
  /** LSB then MSB. */
  LsbMsb: 3,
} as const;

/**
 * Plain-data state of one counter (JSON-serializable).
 *
 * @example
 * ```ts
 * import { I8254 } from "./i8254.ts";
 * const pit = new I8254({ clock: { now: () => 0 } });
 * console.log(pit.snapshot().counters[0].mode); // 0
 * ```
 */
export interface I8254CounterState {
  /** Mode 0–5. */
  readonly mode: number;
  /** Access mode 1–3. */
  readonly rw: number;
  /** BCD counting (control word bit 0). */
  readonly bcd: boolean;
  /** Loaded count as written (0 = 65536 binary / 10000 BCD); null before the first load. */
  readonly count: number | null;
  /** Ticks counted before `elapsedNs` started (gate pauses). */
  readonly baseTicks: number;
  /** Nanoseconds counted since the last (re)start; null while not counting. */
  readonly elapsedNs: number | null;
  /** Modes 1 and 5: a gate rising edge has started the count. */
  readonly triggered: boolean;
  /** Gate input level. */
  readonly gate: boolean;
  /** Write side: the next byte written in LSB/MSB mode is the MSB. */
  readonly writeMsb: boolean;
  /** LSB held until the MSB arrives. */
  readonly writeLatch: number;
  /** Read side: the next unlatched byte read in LSB/MSB mode is the MSB. */
  readonly readMsb: boolean;
  /** Latched count bytes still to be read, first first. */
  readonly latchedBytes: readonly number[];
  /** Latched status byte, if any (read before the count). */
  readonly latchedStatus: number | null;
  /** A count was written but not yet loaded into the counter ("null count"). */
  readonly nullCount: boolean;
  /** Tick index of the last counter-0 output edge delivered as IRQ0. */
  readonly lastEdge: number;
}

/**
 * Plain-data state of an {@link I8254}.
 *
 * @example
 * ```ts
 * import { I8254 } from "./i8254.ts";
 * const s = new I8254({ clock: { now: () => 0 } }).snapshot();
 * console.log(s.version, s.counters.length); // 1 3
 * ```
 */
export interface I8254State {
  /** Format version, currently 1. */
  readonly version: 1;
  /** Counters 0, 1, 2. */
  readonly counters: readonly I8254CounterState[];
  /** Port 0x61 bits 3:0 (gate 2, speaker, parity enables). */
  readonly portB: number;
}

/**
 * Collaborators of an {@link I8254}.
 *
 * @example
 * ```ts
 * import type { I8254Options } from "./i8254.ts";
 * const o: I8254Options = { clock: { now: () => 0 }, irq0: () => {} };
 * ```
 */
export interface I8254Options {
  /** Monotonic nanoseconds. */
  readonly clock: Clock;
  /** Counter 0's output rose (an IRQ0 edge); called from {@link I8254.service}. */
  readonly irq0?: () => void;
}

/** Counters of an {@link I8254}. */
export interface I8254Stats {
  /** IRQ0 edges delivered. */
  irq0: number;
  /** Counter-0 edges coalesced because service came late. */
  missedIrq0: number;
  /** Ignored guest accesses (bad offsets, reads of the control port). */
  badAccesses: number;
}

const REFRESH_PERIOD_NS = 15_085; // port 0x61 bit 4 toggles every ~15 µs

function toBcd(v: number): number {
  return (v % 10) | (Math.floor(v / 10) % 10) << 4 |
    (Math.floor(v / 100) % 10) << 8 | (Math.floor(v / 1000) % 10) << 12;
}

function fromBcd(v: number): number {
  return (v & 0xf) % 10 + ((v >> 4) & 0xf) % 10 * 10 +
    ((v >> 8) & 0xf) % 10 * 100 + ((v >> 12) & 0xf) % 10 * 1000;
}

class Counter {
  mode = 0;
  rw: number = RwMode.Lsb;
  bcd = false;
  count: number | null = null;
  baseTicks = 0;
  startNs: number | null = null;
  triggered = false;
  gate: boolean;
  writeMsb = false;
  writeLatch = 0;
  readMsb = false;
  latched: number[] = [];
  status: number | null = null;
  nullCount = true;
  lastEdge = 0;

  constructor(gate: boolean) {
    this.gate = gate;
  }

  /** Reload value N in ticks (0 = the maximum). */
  get period(): number {
    const c = this.count ?? 0;
    if (this.bcd) return c === 0 ? 10000 : fromBcd(c) || 10000;
    return c === 0 ? 0x10000 : c;
  }

  /** Whether the counting element runs (gate, trigger). */
  get counting(): boolean {
    return this.startNs !== null;
  }

  ticks(now: number): number {
    return this.baseTicks +
      (this.startNs === null ? 0 : nsToTicks(now - this.startNs));
  }

  /** Counter element value (binary ticks remaining) at `now`. */
  value(now: number): number {
    if (this.count === null) return 0;
    const n = this.period;
    const d = this.ticks(now);
    const mod = this.bcd ? 10000 : 0x10000;
    switch (this.mode) {
      case 2:
        return n - (d % n);
      case 3:
        // Counts down by two each clock, twice per period.
        return n - ((2 * d) % n);
      case 1:
      case 5:
        if (!this.triggered) return n % mod;
        return ((n - d) % mod + mod) % mod;
      default:
        return ((n - d) % mod + mod) % mod;
    }
  }

  /** Output level at `now`. */
  out(now: number): boolean {
    if (this.count === null) return this.mode !== 0;
    const n = this.period;
    const d = this.ticks(now);
    switch (this.mode) {
      case 0:
        return d >= n;
      case 1:
        return !this.triggered || d >= n;
      case 2:
        if (!this.gate) return true;
        return d === 0 || d % n !== n - 1;
      case 3:
        if (!this.gate) return true;
        return d % n < ((n + 1) >> 1);
      case 4:
      case 5:
        if (this.mode === 5 && !this.triggered) return true;
        return d !== n;
      default:
        return true;
    }
  }

  /**
   * Tick index of the first output rising edge after tick `after`, or
   * null when the output will not rise again without guest action.
   */
  nextRise(after: number): number | null {
    if (this.count === null || !this.counting) return null;
    const n = this.period;
    switch (this.mode) {
      case 0:
      case 1:
        return after < n ? n : null;
      case 2:
      case 3:
        return (Math.floor(after / n) + 1) * n;
      case 4:
      case 5:
        return after < n + 1 ? n + 1 : null;
      default:
        return null;
    }
  }

  statusByte(now: number): number {
    return (this.out(now) ? 0x80 : 0) | (this.nullCount ? 0x40 : 0) |
      this.rw << 4 | this.mode << 1 | (this.bcd ? 1 : 0);
  }

  /** Restart counting from the loaded count at `now`. */
  start(now: number): void {
    this.baseTicks = 0;
    this.lastEdge = 0;
    this.startNs = now;
    this.nullCount = false;
  }

  pause(now: number): void {
    if (this.startNs === null) return;
    this.baseTicks = this.ticks(now);
    this.startNs = null;
  }

  resume(now: number): void {
    if (this.startNs === null) this.startNs = now;
  }
}

/**
 * The 8254. Ports are addressed by offset from 0x40 (0–2 counters, 3 the
 * control word); {@link I8254.readPortB}/{@link I8254.writePortB} are
 * port 0x61.
 *
 * @example
 * ```ts
 * import { I8254 } from "./i8254.ts";
 * let t = 0;
 * const pit = new I8254({ clock: { now: () => t } });
 * pit.write(3, 0x34);       // counter 0, LSB/MSB, mode 2
 * pit.write(0, 0x9c);
 * pit.write(0, 0x2e);       // 11932 ticks ≈ 10 ms
 * t = 5_000_000;
 * pit.write(3, 0x00);       // latch counter 0
 * const lo = pit.read(0), hi = pit.read(0);
 * console.log(hi * 256 + lo); // 5967
 * ```
 */
export class I8254 {
  readonly #clock: Clock;
  readonly #irq0: () => void;
  readonly #c: Counter[] = [
    new Counter(true),
    new Counter(true),
    new Counter(false),
  ];
  #portB = 0;
  /** Counters. */
  readonly stats: I8254Stats = { irq0: 0, missedIrq0: 0, badAccesses: 0 };

  /** Create a PIT in its power-on state (no counts loaded, gate 2 low). */
  constructor(options: I8254Options) {
    this.#clock = options.clock;
    this.#irq0 = options.irq0 ?? (() => {});
  }

  /** Guest read of one byte at offset 0–3. */
  read(offset: number): number {
    if (!(offset >= 0 && offset < I8254_CONTROL && Number.isInteger(offset))) {
      this.stats.badAccesses++;
      return 0xff;
    }
    const c = this.#c[offset];
    if (c.status !== null) {
      const s = c.status;
      c.status = null;
      return s;
    }
    if (c.latched.length > 0) return c.latched.shift()!;
    const v = this.#readable(c, this.#clock.now());
    switch (c.rw) {
      case RwMode.Msb:
        return v >> 8;
      case RwMode.LsbMsb: {
        const msb = c.readMsb;
        c.readMsb = !msb;
        return msb ? v >> 8 : v & 0xff;
      }
      default:
        return v & 0xff;
    }
  }

  /** Guest write of one byte at offset 0–3. */
  write(offset: number, value: number): void {
    const v = value & 0xff;
    if (offset === I8254_CONTROL) return this.#control(v);
    if (!(offset >= 0 && offset < I8254_CONTROL && Number.isInteger(offset))) {
      this.stats.badAccesses++;
      return;
    }
    const c = this.#c[offset];
    switch (c.rw) {
      case RwMode.Lsb:
        return this.#load(offset, v);
      case RwMode.Msb:
        return this.#load(offset, v << 8);
      default:
        if (!c.writeMsb) {
          c.writeLatch = v;
          c.writeMsb = true;
          // Mode 0: writing the first byte stops the count (datasheet).
          if (c.mode === 0) c.pause(this.#clock.now());
          return;
        }
        c.writeMsb = false;
        return this.#load(offset, c.writeLatch | v << 8);
    }
  }

  /** Port 0x61 read: gate 2, speaker, refresh toggle (bit 4), OUT2 (bit 5). */
  readPortB(): number {
    const now = this.#clock.now();
    const refresh = Math.floor(now / REFRESH_PERIOD_NS) & 1;
    return this.#portB | refresh << 4 | (this.#c[2].out(now) ? 0x20 : 0);
  }

  /** Port 0x61 write: bit 0 is counter 2's gate; bits 3:0 are kept. */
  writePortB(value: number): void {
    this.#portB = value & 0x0f;
    this.#setGate(2, (value & 1) !== 0);
  }

  /** Output level of counter `n` now. */
  out(n: number): boolean {
    return this.#c[n].out(this.#clock.now());
  }

  /** Drive counter `n`'s gate input (0 and 1 are tied high on a PC). */
  setGate(n: number, level: boolean): void {
    if (n >= 0 && n < 3) this.#setGate(n, level);
  }

  /**
   * Deliver counter 0's output rising edges due by `now` as one IRQ0 (late
   * edges are coalesced and counted, never replayed); returns when the next
   * edge is due (ns, same clock) or null.
   */
  service(now: number): number | null {
    const c = this.#c[0];
    if (c.count === null || !c.counting) return null;
    const d = c.ticks(now);
    let edge = c.nextRise(c.lastEdge);
    if (edge !== null && edge <= d) {
      let due = 0;
      const n = c.period;
      if (c.mode === 2 || c.mode === 3) {
        due = Math.floor(d / n) - Math.floor(c.lastEdge / n);
        c.lastEdge = Math.floor(d / n) * n;
      } else {
        due = 1;
        c.lastEdge = edge;
      }
      this.stats.irq0++;
      this.stats.missedIrq0 += due - 1;
      this.#irq0();
      edge = c.nextRise(c.lastEdge);
    }
    if (edge === null || c.startNs === null) return null;
    return c.startNs + ticksToNs(edge - c.baseTicks);
  }

  /** Power-on state. */
  reset(): void {
    for (let i = 0; i < 3; i++) this.#c[i] = new Counter(i !== 2);
    this.#portB = 0;
  }

  #readable(c: Counter, now: number): number {
    const v = c.value(now) & 0xffff;
    return c.bcd ? toBcd(v % 10000) : v;
  }

  #setGate(n: number, level: boolean): void {
    const c = this.#c[n];
    if (c.gate === level) return;
    const now = this.#clock.now();
    c.gate = level;
    if (c.count === null) return;
    switch (c.mode) {
      case 0:
      case 4:
        // Gate low suspends counting; high resumes it.
        if (level) c.resume(now);
        else c.pause(now);
        return;
      case 1:
      case 5:
        if (level) {
          c.triggered = true;
          c.start(now);
        }
        return;
      default:
        // Modes 2/3: low stops (output high), rising edge reloads.
        if (level) c.start(now);
        else c.pause(now);
    }
  }

  #control(v: number): void {
    const sel = v >> 6;
    if (sel === 3) return this.#readBack(v);
    const c = this.#c[sel];
    const rw = (v >> 4) & 3;
    if (rw === RwMode.Latch) {
      // Counter latch: a second latch before the read is ignored.
      if (c.latched.length === 0) this.#latchCount(c, this.#clock.now());
      return;
    }
    const mode = (v >> 1) & 7;
    c.mode = mode > 5 ? mode & 3 : mode; // 6, 7 alias 2, 3
    c.rw = rw;
    c.bcd = (v & 1) !== 0;
    c.writeMsb = false;
    c.readMsb = false;
    c.latched = [];
    c.status = null;
    c.count = null;
    c.startNs = null;
    c.baseTicks = 0;
    c.triggered = false;
    c.nullCount = true;
    c.lastEdge = 0;
  }

  #readBack(v: number): void {
    const now = this.#clock.now();
    for (let i = 0; i < 3; i++) {
      if ((v & (2 << i)) === 0) continue;
      const c = this.#c[i];
      // Bits are active low: 0 latches. Already-latched values stay.
      if ((v & 0x10) === 0 && c.status === null) c.status = c.statusByte(now);
      if ((v & 0x20) === 0 && c.latched.length === 0) this.#latchCount(c, now);
    }
  }

  #latchCount(c: Counter, now: number): void {
    const v = this.#readable(c, now);
    switch (c.rw) {
      case RwMode.Lsb:
        c.latched = [v & 0xff];
        return;
      case RwMode.Msb:
        c.latched = [v >> 8];
        return;
      default:
        c.latched = c.readMsb ? [v >> 8, v & 0xff] : [v & 0xff, v >> 8];
    }
  }

  #load(n: number, value: number): void {
    const c = this.#c[n];
    const now = this.#clock.now();
    c.count = value & 0xffff;
    switch (c.mode) {
      case 1:
      case 5:
        // Hardware-triggered: the count waits for a gate rising edge.
        c.nullCount = true;
        c.startNs = null;
        c.baseTicks = 0;
        c.triggered = false;
        return;
      case 2:
      case 3:
      case 0:
      case 4:
        c.start(now);
        if (!c.gate) c.pause(now);
    }
  }

  // ---- snapshot ---------------------------------------------------------

  /** Plain-data copy of the state (times relative to the clock's now). */
  snapshot(): I8254State {
    const now = this.#clock.now();
    return {
      version: 1,
      portB: this.#portB,
      counters: this.#c.map((c) => ({
        mode: c.mode,
        rw: c.rw,
        bcd: c.bcd,
        count: c.count,
        baseTicks: c.baseTicks,
        elapsedNs: c.startNs === null ? null : now - c.startNs,
        triggered: c.triggered,
        gate: c.gate,
        writeMsb: c.writeMsb,
        writeLatch: c.writeLatch,
        readMsb: c.readMsb,
        latchedBytes: [...c.latched],
        latchedStatus: c.status,
        nullCount: c.nullCount,
        lastEdge: c.lastEdge,
      })),
    };
  }

  /**
   * Load a state from {@link snapshot}; counting continues from the saved
   * elapsed time against this instance's clock. A malformed state throws
   * TypeError and changes nothing.
   */
  restore(state: I8254State): void {
    validate(state);
    const now = this.#clock.now();
    this.#portB = state.portB;
    state.counters.forEach((s, i) => {
      const c = new Counter(s.gate);
      c.mode = s.mode;
      c.rw = s.rw;
      c.bcd = s.bcd;
      c.count = s.count;
      c.baseTicks = s.baseTicks;
      c.startNs = s.elapsedNs === null ? null : now - s.elapsedNs;
      c.triggered = s.triggered;
      c.writeMsb = s.writeMsb;
      c.writeLatch = s.writeLatch;
      c.readMsb = s.readMsb;
      c.latched = [...s.latchedBytes];
      c.status = s.latchedStatus;
      c.nullCount = s.nullCount;
      c.lastEdge = s.lastEdge;
      this.#c[i] = c;
    });
  }
}

function isInt(v: unknown, lo: number, hi: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi;
}

function validate(state: unknown): asserts state is I8254State {
  const s = state as Record<string, unknown>;
  if (typeof s !== "object" || s === null || s.version !== 1) {
    throw new TypeError("i8254 state: unknown version");
  }
  if (!isInt(s.portB, 0, 0x0f)) throw new TypeError("i8254 state: bad portB");
  const cs = s.counters;
  if (!Array.isArray(cs) || cs.length !== 3) {
    throw new TypeError("i8254 state: counters must be 3 entries");
  }
  cs.forEach((c: Record<string, unknown>, i) => {
    const bad = (what: string) =>
      new TypeError(`i8254 state: counter ${i}: bad ${what}`);
    if (typeof c !== "object" || c === null) throw bad("entry");
    if (!isInt(c.mode, 0, 5)) throw bad("mode");
    if (!isInt(c.rw, 1, 3)) throw bad("rw");
    if (c.count !== null && !isInt(c.count, 0, 0xffff)) throw bad("count");
    if (!isInt(c.baseTicks, 0, Number.MAX_SAFE_INTEGER)) throw bad("baseTicks");
    if (
      c.elapsedNs !== null && !isInt(c.elapsedNs, 0, Number.MAX_SAFE_INTEGER)
    ) throw bad("elapsedNs");
    if (!isInt(c.writeLatch, 0, 0xff)) throw bad("writeLatch");
    if (
      !Array.isArray(c.latchedBytes) || c.latchedBytes.length > 2 ||
      !c.latchedBytes.every((b) => isInt(b, 0, 0xff))
    ) throw bad("latchedBytes");
    if (c.latchedStatus !== null && !isInt(c.latchedStatus, 0, 0xff)) {
      throw bad("latchedStatus");
    }
    if (!isInt(c.lastEdge, 0, Number.MAX_SAFE_INTEGER)) throw bad("lastEdge");
    for (const k of ["bcd", "triggered", "gate", "writeMsb", "readMsb"]) {
      if (typeof c[k] !== "boolean") throw bad(k);
    }
    if (typeof c.nullCount !== "boolean") throw bad("nullCount");
  });
}
