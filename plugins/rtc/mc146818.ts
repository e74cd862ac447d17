/**
 * A Motorola MC146818 real-time clock with its 128 bytes of CMOS RAM, as a
 * pure state machine over the index/data ports and two clocks: a
 * monotonic one for timing (update cycles, periodic interrupts) and the
 * host's wall time, read once to set the date.
 *
 * Source: MC146818A datasheet ("Address Map", "Register A–D", "Update
 * Cycle", "Interrupts"); CMOS layout of the PC/AT BIOS (memory-size bytes
 * 0x15–0x18, 0x30/0x31, 0x34/0x35, 0x5B–0x5D and century 0x32 as QEMU
 * fills them). Registers C's flags are computed from the clock when the
 * guest looks (or at the deadline {@link Mc146818.service} returns), so no
 * host timer runs per periodic interrupt.
 *
 * @module
 */
import type { Clock } from "../../bus/types.ts";

/** Index port (bit 7: NMI disable). */
export const RTC_INDEX_PORT = 0x70;
/** Data port. */
export const RTC_DATA_PORT = 0x71;

/** Register numbers. */
export const RtcReg = {
  /** Seconds. */
  Seconds: 0x00,
  /** Seconds alarm. */
  SecondsAlarm: 0x01,
  /** Minutes. */
  Minutes: 0x02,
  /** Minutes alarm. */
  MinutesAlarm: 0x03,
  /** Hours (bit 7 = PM in 12-hour mode). */
  Hours: 0x04,
  /** Hours alarm. */
  HoursAlarm: 0x05,
  /** Day of week, 1 = Sunday. */
  DayOfWeek: 0x06,
  /** Day of month. */
  DayOfMonth: 0x07,
  /** Month. */
  Month: 0x08,
  /** Year within the century. */
  Year: 0x09,
  /** Register A: UIP (bit 7), divider (6:4), rate select (3:0). */
  A: 0x0a,
  /** Register B: SET, PIE, AIE, UIE, SQWE, DM (binary), 24/12, DSE. */
  B: 0x0b,
  /** Register C: IRQF, PF, AF, UF (read clears). */
  C: 0x0c,
  /** Register D: VRT. */
  D: 0x0d,
  /** Century (PC/AT CMOS; part of the clock here, as in QEMU). */
  Century: 0x32,
} as const;

const A_UIP = 0x80;
const B_SET = 0x80;
const B_PIE = 0x40;
const B_AIE = 0x20;
const B_UIE = 0x10;
const B_DM_BINARY = 0x04;
const B_24H = 0x02;
const C_IRQF = 0x80;
const C_PF = 0x40;
const C_AF = 0x20;
const C_UF = 0x10;
const D_VRT = 0x80;

const SEC = 1_000_000_000;
/** UIP rises 244 µs before the update, which lasts 1984 µs (datasheet). */
const UIP_WINDOW_NS = 244_000 + 1_984_000;

/**
 * Collaborators and machine facts of an {@link Mc146818}.
 *
 * @example
 * ```ts
 * import type { Mc146818Options } from "./mc146818.ts";
 * const o: Mc146818Options = {
 *   clock: { now: () => 0 },
 *   hostTimeMs: () => Date.UTC(2024, 0, 1),
 *   ramBelow4g: 16 << 20,
 * };
 * ```
 */
export interface Mc146818Options {
  /** Monotonic nanoseconds. */
  readonly clock: Clock;
  /** Host wall time in ms since the Unix epoch, UTC (default `Date.now`). */
  readonly hostTimeMs?: () => number;
  /** Guest RAM below 4 GiB in bytes (fills the memory-size bytes). */
  readonly ramBelow4g?: number;
  /** Guest RAM above 4 GiB in bytes. */
  readonly ramAbove4g?: number;
  /** IRQ8 output level changed. */
  readonly setIrq?: (level: boolean) => void;
}

/**
 * Plain-data state of an {@link Mc146818} (JSON-serializable).
 *
 * @example
 * ```ts
 * import { Mc146818 } from "./mc146818.ts";
 * const s = new Mc146818({ clock: { now: () => 0 }, hostTimeMs: () => 0 }).snapshot();
 * console.log(s.version, s.cmos.length); // 1 128
 * ```
 */
export interface Mc146818State {
  /** Format version, currently 1. */
  readonly version: 1;
  /** CMOS bytes (time registers as last written; see `wallNs`). */
  readonly cmos: readonly number[];
  /** Index register (7 bits). */
  readonly index: number;
  /** NMI disabled (index port bit 7). */
  readonly nmiDisabled: boolean;
  /** RTC time at the snapshot, ns since the Unix epoch. */
  readonly wallNs: number;
  /** Time fields frozen by SET, or null. */
  readonly frozen: readonly number[] | null;
  /** Periodic-interrupt phase: ns since the last periodic boundary. */
  readonly periodicPhaseNs: number;
  /** IRQ8 output level. */
  readonly irq: boolean;
}

/** Counters of an {@link Mc146818}. */
export interface Mc146818Stats {
  /** IRQ8 assertions. */
  irqs: number;
  /** Writes to read-only registers and bad ports. */
  badAccesses: number;
}

/** Broken-down time: [sec, min, hour, dow(1-7), day, month, year(full)]. */
type Fields = [number, number, number, number, number, number, number];

function toFields(wallSec: number): Fields {
  const d = new Date(wallSec * 1000);
  return [
    d.getUTCSeconds(),
    d.getUTCMinutes(),
    d.getUTCHours(),
    d.getUTCDay() + 1,
    d.getUTCDate(),
    d.getUTCMonth() + 1,
    d.getUTCFullYear(),
  ];
}

function fromFields(f: Fields): number {
  // setUTCFullYear, not Date.UTC: the latter maps years 0-99 to 1900-1999.
  const d = new Date(0);
  d.setUTCFullYear(f[6], f[5] - 1, f[4]);
  d.setUTCHours(f[2], f[1], f[0], 0);
  return Math.floor(d.getTime() / 1000);
}

/** Time registers (not the alarm slots 1, 3, 5) → index into Fields. */
const TIME_FIELD = [0, -1, 1, -1, 2, -1, 3, 4, 5, 6];

function bcd(v: number): number {
  return (Math.floor(v / 10) % 10) << 4 | v % 10;
}

function unbcd(v: number): number {
  return (v >> 4) * 10 + (v & 0xf);
}

/**
 * The RTC. `readIndex`/`writeIndex` are port 0x70, `readData`/`writeData`
 * port 0x71.
 *
 * @example
 * ```ts
 * import { Mc146818 } from "./mc146818.ts";
 * const rtc = new Mc146818({
 *   clock: { now: () => 0 },
 *   hostTimeMs: () => Date.UTC(2024, 1, 29, 13, 45, 30),
 * });
 * rtc.writeIndex(0x04);
 * console.log(rtc.readData().toString(16)); // "13" (BCD hours)
 * ```
 */
export class Mc146818 {
  readonly #clock: Clock;
  readonly #setIrq: (level: boolean) => void;
  readonly #cmos = new Uint8Array(128);
  #index = 0;
  #nmiDisabled = false;
  /** RTC wall time = clock.now() + #offsetNs (ns since the epoch). */
  #offsetNs: number;
  #frozen: Fields | null = null;
  /** Monotonic time of a periodic boundary (phase anchor). */
  #periodicAnchor: number;
  /** Last periodic boundary index and update second already folded into C. */
  #lastPeriodic = 0;
  #lastSecond: number;
  #irq = false;
  /** Counters. */
  readonly stats: Mc146818Stats = { irqs: 0, badAccesses: 0 };

  /** Create the RTC set to the host's wall time, registers at power-on values. */
  constructor(options: Mc146818Options) {
    this.#clock = options.clock;
    this.#setIrq = options.setIrq ?? (() => {});
    const now = this.#clock.now();
    const host = (options.hostTimeMs ?? Date.now)();
    if (!Number.isFinite(host)) {
      throw new RangeError(`rtc: host time ${host} is not a number`);
    }
    this.#offsetNs = Math.round(host) * 1e6 - now;
    this.#periodicAnchor = now;
    this.#lastSecond = Math.floor((now + this.#offsetNs) / SEC);
    this.#cmos[RtcReg.A] = 0x26; // 32.768 kHz divider, 976.5625 µs rate
    this.#cmos[RtcReg.B] = B_24H;
    this.#cmos[RtcReg.D] = D_VRT;
    this.#fillMemorySize(options.ramBelow4g ?? 0, options.ramAbove4g ?? 0);
  }

  #fillMemorySize(below: number, above: number): void {
    for (const [v, what] of [[below, "ramBelow4g"], [above, "ramAbove4g"]]) {
      if (!Number.isSafeInteger(v) || (v as number) < 0) {
        throw new RangeError(`rtc: ${what} ${v} is not a byte count`);
      }
    }
    const put16 = (reg: number, v: number) => {
      const c = Math.min(0xffff, Math.max(0, Math.floor(v)));
      this.#cmos[reg] = c & 0xff;
      this.#cmos[reg + 1] = c >> 8;
    };
    put16(0x15, 640); // base memory in KiB
    const extKiB = below / 1024 - 1024; // above 1 MiB, in KiB
    put16(0x17, extKiB);
    put16(0x30, extKiB);
    put16(0x34, (below - (16 << 20)) / 65536); // above 16 MiB, 64 KiB units
    const hi = Math.floor(above / 65536);
    this.#cmos[0x5b] = hi & 0xff;
    this.#cmos[0x5c] = (hi >> 8) & 0xff;
    this.#cmos[0x5d] = Math.floor(hi / 65536) & 0xff;
  }

  /** NMI disabled through the index port's bit 7. */
  get nmiDisabled(): boolean {
    return this.#nmiDisabled;
  }

  /** IRQ8 output level. */
  get irq(): boolean {
    return this.#irq;
  }

  /** Port 0x70 read: the index port is write-only on a PC (reads 0xFF). */
  readIndex(): number {
    return 0xff;
  }

  /** Port 0x70 write: register index (6:0) and NMI disable (7). */
  writeIndex(value: number): void {
    this.#index = value & 0x7f;
    this.#nmiDisabled = (value & 0x80) !== 0;
  }

  /** Port 0x71 read of the selected register. */
  readData(): number {
    const now = this.#clock.now();
    const r = this.#index;
    if (r === RtcReg.Century) {
      return this.#enc(Math.floor(this.#fields(now)[6] / 100) % 100);
    }
    if (r <= RtcReg.Year && TIME_FIELD[r] >= 0) {
      return this.#encodeTime(this.#fields(now))[r];
    }
    switch (r) {
      case RtcReg.A: {
        const uip = this.#uip(now) ? A_UIP : 0;
        return (this.#cmos[RtcReg.A] & 0x7f) | uip;
      }
      case RtcReg.C: {
        this.#advance(now);
        const v = this.#cmos[RtcReg.C];
        this.#cmos[RtcReg.C] = 0;
        this.#updateIrq();
        return v;
      }
      default:
        return this.#cmos[r];
    }
  }

  /** Port 0x71 write to the selected register. */
  writeData(value: number): void {
    const v = value & 0xff;
    const now = this.#clock.now();
    const r = this.#index;
    switch (r) {
      case RtcReg.A:
        this.#advance(now);
        this.#cmos[RtcReg.A] = v & 0x7f;
        this.#lastPeriodic = this.#periodIndex(now);
        return;
      case RtcReg.B: {
        this.#advance(now);
        const was = this.#cmos[RtcReg.B];
        let b = v;
        if (b & B_SET) {
          b &= ~B_UIE; // datasheet: SET clears UIE
          if (!(was & B_SET)) this.#frozen = this.#fields(now);
        } else if (was & B_SET && this.#frozen) {
          this.#commit(this.#frozen, now);
          this.#frozen = null;
        }
        this.#cmos[RtcReg.B] = b;
        this.#updateIrq();
        return;
      }
      case RtcReg.C:
      case RtcReg.D:
        this.stats.badAccesses++;
        return;
    }
    if (r === RtcReg.Century || (r <= RtcReg.Year && TIME_FIELD[r] >= 0)) {
      this.#advance(now);
      const f = this.#fields(now);
      f[r === RtcReg.Century ? 6 : TIME_FIELD[r]] = this.#decodeField(
        r,
        v,
        f[6],
      );
      if (this.#frozen) this.#frozen = f;
      else this.#commit(f, now);
      return;
    }
    this.#cmos[r] = v;
  }

  /**
   * Fold elapsed update cycles and periodic boundaries into register C and
   * drive IRQ8; returns the next time (ns) something enabled is due, or null.
   */
  service(now: number): number | null {
    this.#advance(now);
    if (this.#irq) return null; // level stays up until register C is read
    const b = this.#cmos[RtcReg.B];
    let next: number | null = null;
    const period = this.#periodNs();
    if (b & B_PIE && period !== null) {
      next = this.#periodicAnchor + (this.#lastPeriodic + 1) * period;
    }
    if (b & (B_AIE | B_UIE) && !(b & B_SET)) {
      const t = (this.#lastSecond + 1) * SEC - this.#offsetNs;
      if (next === null || t < next) next = t;
    }
    return next;
  }

  /** Power-on reset: interrupt enables and flags cleared (time and RAM kept). */
  reset(): void {
    this.#cmos[RtcReg.B] &= ~(B_PIE | B_AIE | B_UIE | 0x08);
    this.#cmos[RtcReg.C] = 0;
    this.#updateIrq();
  }

  #periodNs(): number | null {
    let rs = this.#cmos[RtcReg.A] & 0x0f;
    if (rs === 0) return null;
    if (rs <= 2) rs += 7; // rates 1, 2 repeat 8, 9 at 32.768 kHz (QEMU)
    return (1 << (rs - 1)) * SEC / 32768;
  }

  #periodIndex(now: number): number {
    const p = this.#periodNs();
    return p === null ? 0 : Math.floor((now - this.#periodicAnchor) / p);
  }

  #uip(now: number): boolean {
    if (this.#cmos[RtcReg.B] & B_SET) return false;
    const wall = now + this.#offsetNs;
    const intoSecond = wall - Math.floor(wall / SEC) * SEC;
    return intoSecond >= SEC - UIP_WINDOW_NS;
  }

  #fields(now: number): Fields {
    if (this.#frozen) return [...this.#frozen];
    return toFields(Math.floor((now + this.#offsetNs) / SEC));
  }

  #commit(f: Fields, now: number): void {
    const sec = fromFields(f);
    this.#offsetNs = sec * SEC - now;
    this.#lastSecond = sec;
  }

  #binary(): boolean {
    return (this.#cmos[RtcReg.B] & B_DM_BINARY) !== 0;
  }

  #enc(v: number): number {
    return this.#binary() ? v : bcd(v);
  }

  #encodeHour(h: number): number {
    if (this.#cmos[RtcReg.B] & B_24H) return this.#enc(h);
    const pm = h >= 12 ? 0x80 : 0;
    return this.#enc(h % 12 === 0 ? 12 : h % 12) | pm;
  }

  /** Time registers 0x00..0x09 as the guest reads them (alarm slots unused). */
  #encodeTime(f: Fields): number[] {
    const e = (v: number) => this.#enc(v);
    return [
      e(f[0]),
      this.#cmos[1],
      e(f[1]),
      this.#cmos[3],
      this.#encodeHour(f[2]),
      this.#cmos[5],
      e(f[3]),
      e(f[4]),
      e(f[5]),
      e(f[6] % 100),
    ];
  }

  #decodeField(r: number, v: number, year: number): number {
    const dec = (x: number) => this.#binary() ? x : unbcd(x);
    if (r === RtcReg.Hours) {
      if (this.#cmos[RtcReg.B] & B_24H) return dec(v) % 24;
      const h = dec(v & 0x7f) % 12;
      return v & 0x80 ? h + 12 : h;
    }
    if (r === RtcReg.Year) return Math.floor(year / 100) * 100 + dec(v) % 100;
    if (r === RtcReg.Century) return dec(v) % 100 * 100 + year % 100;
    return dec(v);
  }

  /** Fold everything due by `now` into register C. */
  #advance(now: number): void {
    let flags = 0;
    const p = this.#periodicIndexIfAny(now);
    if (p !== null && p > this.#lastPeriodic) {
      flags |= C_PF;
      this.#lastPeriodic = p;
    }
    const b = this.#cmos[RtcReg.B];
    const sec = Math.floor((now + this.#offsetNs) / SEC);
    if (sec > this.#lastSecond) {
      if (!(b & B_SET)) {
        flags |= C_UF;
        // Check the alarm against each second crossed (at most a day's worth:
        // every alarm pattern repeats within one).
        const from = Math.max(this.#lastSecond + 1, sec - 86_399);
        for (let s = from; s <= sec; s++) {
          if (this.#alarmMatches(toFields(s))) {
            flags |= C_AF;
            break;
          }
        }
      }
      this.#lastSecond = sec;
    }
    if (flags) {
      this.#cmos[RtcReg.C] |= flags;
      this.#updateIrq();
    }
  }

  #periodicIndexIfAny(now: number): number | null {
    return this.#periodNs() === null ? null : this.#periodIndex(now);
  }

  #alarmMatches(f: Fields): boolean {
    const t = this.#encodeTime(f);
    const m = (alarm: number, value: number) =>
      (alarm & 0xc0) === 0xc0 || alarm === value;
    return m(this.#cmos[1], t[0]) && m(this.#cmos[3], t[2]) &&
      m(this.#cmos[5], t[4]);
  }

  #updateIrq(): void {
    const b = this.#cmos[RtcReg.B];
    let c = this.#cmos[RtcReg.C] & (C_PF | C_AF | C_UF);
    const pending = (c & C_PF && b & B_PIE) || (c & C_AF && b & B_AIE) ||
      (c & C_UF && b & B_UIE);
    if (pending) c |= C_IRQF;
    this.#cmos[RtcReg.C] = c;
    const level = !!pending;
    if (level !== this.#irq) {
      this.#irq = level;
      if (level) this.stats.irqs++;
      this.#setIrq(level);
    }
  }

  // ---- snapshot ---------------------------------------------------------

  /** Plain-data copy of the state (pending flags folded in first). */
  snapshot(): Mc146818State {
    const now = this.#clock.now();
    this.#advance(now);
    const p = this.#periodNs();
    return {
      version: 1,
      cmos: [...this.#cmos],
      index: this.#index,
      nmiDisabled: this.#nmiDisabled,
      wallNs: now + this.#offsetNs,
      frozen: this.#frozen ? [...this.#frozen] : null,
      periodicPhaseNs: p === null ? 0 : (now - this.#periodicAnchor) % p,
      irq: this.#irq,
    };
  }

  /**
   * Load a state from {@link snapshot}: the RTC keeps running from the
   * saved time against this instance's clock. A malformed state throws
   * TypeError and changes nothing.
   */
  restore(state: Mc146818State): void {
    const s = state as unknown as Record<string, unknown>;
    const bad = (what: string) => new TypeError(`rtc state: bad ${what}`);
    if (typeof s !== "object" || s === null || s.version !== 1) {
      throw new TypeError("rtc state: unknown version");
    }
    const byte = (x: unknown) =>
      typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= 0xff;
    if (
      !Array.isArray(s.cmos) || s.cmos.length !== 128 || !s.cmos.every(byte)
    ) {
      throw bad("cmos");
    }
    if (!byte(s.index) || (s.index as number) > 0x7f) throw bad("index");
    if (typeof s.nmiDisabled !== "boolean") throw bad("nmiDisabled");
    if (typeof s.irq !== "boolean") throw bad("irq");
    if (typeof s.wallNs !== "number" || !Number.isFinite(s.wallNs)) {
      throw bad("wallNs");
    }
    if (
      typeof s.periodicPhaseNs !== "number" || !(s.periodicPhaseNs >= 0)
    ) throw bad("periodicPhaseNs");
    const fr = s.frozen;
    if (
      fr !== null &&
      !(Array.isArray(fr) && fr.length === 7 &&
        fr.every((x) => Number.isInteger(x)))
    ) throw bad("frozen");
    const now = this.#clock.now();
    this.#cmos.set(s.cmos as number[]);
    this.#index = s.index as number;
    this.#nmiDisabled = s.nmiDisabled;
    this.#offsetNs = s.wallNs - now;
    this.#frozen = fr === null ? null : [...fr as number[]] as Fields;
    this.#periodicAnchor = now - s.periodicPhaseNs;
    this.#lastPeriodic = 0;
    this.#lastSecond = Math.floor(s.wallNs / SEC);
    if (s.irq !== this.#irq) {
      this.#irq = s.irq;
      this.#setIrq(s.irq);
    }
  }
}
