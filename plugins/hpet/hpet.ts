/**
 * An HPET (IA-PC HPET specification 1.0a) with three comparators as a pure
 * state machine over register reads/writes and a clock. The main counter
 * (100 MHz, 10 ns period) is computed from the clock when read; each timer's
 * next match is a deadline the host services at its wake-up alarm, computed
 * from the counter's own start (no drift, no JavaScript timer).
 *
 * Modes: one-shot and periodic (timers 0–2), 64- or 32-bit comparators
 * (`Tn_32MODE_CNF`, a 32-bit one-shot fires again after each wrap), edge or
 * level (`GINTR_STA`, write 1 to clear), legacy replacement (timer 0 → the
 * IRQ0 line, timer 1 → IRQ8), IOAPIC routes from `Tn_INT_ROUTE_CNF`, and
 * FSB (MSI) delivery. Periodic comparators follow the "set accumulator"
 * rule: with `Tn_VAL_SET_CNF` a comparator write sets the comparator and
 * the period, without it only the period; the bit clears after the write.
 *
 * @module
 */
import { stateFields } from "../../bus/state.ts";
import type { Clock, DeviceState, MsiMessage } from "../../bus/types.ts";

/** Default MMIO base. */
export const HPET_BASE = 0xfed00000;
/** MMIO length. */
export const HPET_LENGTH = 0x400;
/** Main counter period in femtoseconds (10 ns: 100 MHz). */
export const HPET_PERIOD_FS = 10_000_000;
/** Nanoseconds per counter tick. */
const TICK_NS = 10;
/** Number of timers. */
export const HPET_TIMERS = 3;
/** PCI vendor ID in the capabilities (Intel, as on chipset HPETs). */
export const HPET_VENDOR = 0x8086;
/** IOAPIC pins a timer may be routed to (`Tn_INT_ROUTE_CAP`): 20–23. */
export const HPET_ROUTE_CAP = 0x00f00000;

/** Register offsets. */
export const HPET_REG = {
  CAP: 0x000,
  CONFIG: 0x010,
  STATUS: 0x020,
  COUNTER: 0x0f0,
  /** Timer n's registers at 0x100 + 0x20 n: config, comparator, FSB route. */
  TIMER: 0x100,
  TN_CONFIG: 0x00,
  TN_COMPARATOR: 0x08,
  TN_FSB: 0x10,
} as const;

/** General configuration bits. */
export const HPET_CFG = { ENABLE: 1n << 0n, LEGACY: 1n << 1n } as const;

/** Timer configuration bits. */
export const HPET_TN = {
  LEVEL: 1n << 1n,
  ENABLE: 1n << 2n,
  PERIODIC: 1n << 3n,
  PERIODIC_CAP: 1n << 4n,
  SIZE_CAP: 1n << 5n,
  VAL_SET: 1n << 6n,
  MODE32: 1n << 8n,
  ROUTE_SHIFT: 9n,
  ROUTE_MASK: 0x1fn << 9n,
  FSB_EN: 1n << 14n,
  FSB_CAP: 1n << 15n,
} as const;

const TN_WRITABLE = HPET_TN.LEVEL | HPET_TN.ENABLE | HPET_TN.PERIODIC |
  HPET_TN.VAL_SET |
  HPET_TN.MODE32 | HPET_TN.ROUTE_MASK | HPET_TN.FSB_EN;
const TN_RO = HPET_TN.PERIODIC_CAP | HPET_TN.SIZE_CAP | HPET_TN.FSB_CAP |
  (BigInt(HPET_ROUTE_CAP) << 32n);
const M64 = (1n << 64n) - 1n;
const M32 = (1n << 32n) - 1n;

/** Where the device's interrupts go. */
export interface HpetSink {
  /** Drive GSI `gsi` (edge devices: high then low). */
  setLine(gsi: number, level: boolean): void;
  /** Deliver an MSI (FSB). */
  msi(msg: MsiMessage): void;
}

/** Options of {@link Hpet}. */
export interface HpetOptions {
  /** Clock (ns). */
  readonly clock: Clock;
  /** Interrupt outputs. */
  readonly sink: HpetSink;
  /** GSI of the legacy route of timer 0 (the machine's IRQ0 GSI). */
  readonly legacyIrq0Gsi: number;
  /** GSI of the legacy route of timer 1 (IRQ8). */
  readonly legacyIrq8Gsi: number;
  /**
   * What a periodic timer serviced late by whole periods does: `catchup`
   * (default) still raises every period's interrupt, spaced by a quarter
   * period, up to {@link HPET_CATCHUP_CAP} periods behind (more are
   * skipped and counted); `coalesce` raises one and counts the rest.
   */
  readonly lateTicks?: "catchup" | "coalesce";
}

/** Periods a periodic timer may owe before the rest are skipped (1 s at 1 ms). */
export const HPET_CATCHUP_CAP = 1000n;

/** Counters. */
export interface HpetStats {
  /** Interrupts raised (edges, level assertions and MSIs). */
  interrupts: number;
  /** Periods skipped because the host serviced a periodic timer late. */
  missedPeriods: number;
  /** Late periods whose interrupt was still raised (catch-up). */
  caughtUp: number;
  /** Accesses of an unsupported width or to an unknown register. */
  badAccesses: number;
}

/** One comparator in an {@link HpetState} (64-bit values as hex strings). */
export interface HpetTimerState {
  /** Tn_CONFIG. */
  config: string;
  /** Tn_COMPARATOR. */
  comparator: string;
  /** Periodic mode's accumulator step. */
  period: string;
  /** Tn_FSB_ROUTE. */
  fsb: string;
  /** Unwrapped counter value of the next match, or null. */
  fireAt: string | null;
  /** GSI whose level the timer drives high, or null. */
  line: number | null;
}

/** The HPET's state (`Hpet.snapshot`): plain data, format version 1. */
export interface HpetState extends DeviceState {
  /** Format version. */
  version: 1;
  /** General configuration. */
  config: string;
  /** General interrupt status. */
  status: string;
  /** Unwrapped main counter at the snapshot. */
  counter: string;
  /** The three comparators. */
  timers: HpetTimerState[];
}

const hex = (v: bigint) => `0x${v.toString(16)}`;
function big(v: unknown, what: string): bigint {
  if (typeof v !== "string" || !/^0x[0-9a-f]{1,16}$/.test(v)) {
    throw new TypeError(`hpet state: ${what} is not a 64-bit hex string`);
  }
  return BigInt(v);
}

interface Timer {
  config: bigint;
  comparator: bigint;
  period: bigint;
  fsb: bigint;
  /** Absolute (unwrapped) counter value of the next match, or null. */
  fireAt: bigint | null;
  /** Level currently driven on `line`. */
  line: number | null;
}

/**
 * The HPET block.
 *
 * @example
 * ```ts
 * import { Hpet, HPET_REG } from "./hpet.ts";
 * let t = 0;
 * const hpet = new Hpet({
 *   clock: { now: () => t }, legacyIrq0Gsi: 0, legacyIrq8Gsi: 8,
 *   sink: { setLine() {}, msi() {} },
 * });
 * hpet.write(HPET_REG.CONFIG, 8, 1n); // enable
 * t = 1000;
 * console.log(hpet.read(HPET_REG.COUNTER, 8)); // 100n
 * ```
 */
export class Hpet {
  readonly #clock: Clock;
  readonly #sink: HpetSink;
  readonly #legacy: [number, number];
  #config = 0n;
  #status = 0n;
  /** Counter value when last started or written. */
  #base = 0n;
  /** Clock time of `#base` while enabled. */
  #t0 = 0;
  readonly #timers: Timer[] = [];
  /** Clock time of the next match as last computed; valid unless dirty. */
  #nextNs: number | null = null;
  #dirty = false;
  /** Counters. */
  readonly stats: HpetStats = {
    interrupts: 0,
    missedPeriods: 0,
    caughtUp: 0,
    badAccesses: 0,
  };
  readonly #catchUp: boolean;

  /** Create the block at power-on state. */
  constructor(options: HpetOptions) {
    this.#clock = options.clock;
    this.#sink = options.sink;
    this.#legacy = [options.legacyIrq0Gsi, options.legacyIrq8Gsi];
    this.#catchUp = (options.lateTicks ?? "catchup") === "catchup";
    for (let i = 0; i < HPET_TIMERS; i++) {
      this.#timers.push({
        config: 0n,
        comparator: M64,
        period: 0n,
        fsb: 0n,
        fireAt: null,
        line: null,
      });
    }
  }

  /** Power-on state: halted, counter 0, every timer off (lines dropped). */
  reset(): void {
    for (const t of this.#timers) {
      this.#dropLine(t);
      Object.assign(t, {
        config: 0n,
        comparator: M64,
        period: 0n,
        fsb: 0n,
        fireAt: null,
      });
    }
    this.#config = 0n;
    this.#status = 0n;
    this.#base = 0n;
    this.#nextNs = null;
    this.#dirty = false;
  }

  get #enabled(): boolean {
    return (this.#config & HPET_CFG.ENABLE) !== 0n;
  }

  /** The unwrapped main counter at clock time `now`. */
  #counterAt(now: number): bigint {
    if (!this.#enabled) return this.#base;
    return this.#base +
      BigInt(Math.floor(Math.max(0, now - this.#t0) / TICK_NS));
  }

  /** The device state (the counter as it stands now). */
  snapshot(): HpetState {
    return {
      version: 1,
      config: hex(this.#config),
      status: hex(this.#status),
      counter: hex(this.#counterAt(this.#clock.now())),
      timers: this.#timers.map((t) => ({
        config: hex(t.config),
        comparator: hex(t.comparator),
        period: hex(t.period),
        fsb: hex(t.fsb),
        fireAt: t.fireAt === null ? null : hex(t.fireAt),
        line: t.line,
      })),
    };
  }

  /**
   * Load a state from {@link Hpet.snapshot}: the counter continues from
   * the saved value, lines the timers drove are driven again. A malformed
   * state or another version throws `TypeError` and changes nothing.
   */
  restore(state: HpetState): void {
    const f = stateFields(state, 1, "hpet");
    const timers = (state as unknown as { timers?: unknown }).timers;
    if (!Array.isArray(timers) || timers.length !== HPET_TIMERS) {
      throw new TypeError(`hpet state: timers must be ${HPET_TIMERS} entries`);
    }
    const parsed = timers.map((x, i) => {
      const t = x as Record<string, unknown>;
      const line = t.line;
      if (
        line !== null &&
        !(Number.isInteger(line) && (line as number) >= 0 &&
          (line as number) < 1024)
      ) {
        throw new TypeError(`hpet state: timer ${i} line is not a GSI`);
      }
      return {
        config: big(t.config, `timer ${i} config`),
        comparator: big(t.comparator, `timer ${i} comparator`),
        period: big(t.period, `timer ${i} period`),
        fsb: big(t.fsb, `timer ${i} fsb`),
        fireAt: t.fireAt === null ? null : big(t.fireAt, `timer ${i} fireAt`),
        line: line as number | null,
      };
    });
    const config = big(f.string("config"), "config");
    const status = big(f.string("status"), "status");
    const counter = big(f.string("counter"), "counter");
    for (const t of this.#timers) this.#dropLine(t);
    this.#config = config;
    this.#status = status;
    this.#base = counter;
    this.#t0 = this.#clock.now();
    this.#timers.forEach((t, i) => {
      Object.assign(t, parsed[i], { line: null });
      if (parsed[i].line !== null) {
        this.#sink.setLine(parsed[i].line!, true);
        t.line = parsed[i].line;
      }
    });
    this.#nextNs = null;
    this.#dirty = true;
  }

  /** Capabilities: rev 1, 3 timers, 64-bit, legacy capable, period. */
  static get capabilities(): bigint {
    return (BigInt(HPET_PERIOD_FS) << 32n) | (BigInt(HPET_VENDOR) << 16n) |
      (1n << 15n) | (1n << 13n) | (BigInt(HPET_TIMERS - 1) << 8n) | 1n;
  }

  /**
   * Read `size` (4 or 8) bytes at `offset`; other sizes and offsets read 0
   * and are counted.
   */
  read(offset: number, size: number): bigint {
    const base = offset & ~7;
    const shift = BigInt((offset & 7) * 8);
    if ((size !== 4 && size !== 8) || (size === 8 && shift !== 0n)) {
      this.stats.badAccesses++;
      return 0n;
    }
    const v = this.#read64(base) >> shift;
    return size === 4 ? v & M32 : v;
  }

  #read64(reg: number): bigint {
    switch (reg) {
      case HPET_REG.CAP:
        return Hpet.capabilities;
      case HPET_REG.CONFIG:
        return this.#config;
      case HPET_REG.STATUS:
        return this.#status;
      case HPET_REG.COUNTER:
        return this.#counterAt(this.#clock.now()) & M64;
    }
    const t = this.#timerOf(reg);
    if (!t) return 0n;
    this.service(this.#clock.now());
    switch ((reg - HPET_REG.TIMER) & 0x1f) {
      case HPET_REG.TN_CONFIG:
        return t.config | TN_RO;
      case HPET_REG.TN_COMPARATOR:
        return (t.config & HPET_TN.MODE32) ? t.comparator & M32 : t.comparator;
      case HPET_REG.TN_FSB:
        return t.fsb;
    }
    return 0n;
  }

  #timerOf(reg: number): Timer | null {
    if (reg < HPET_REG.TIMER) return null;
    const n = (reg - HPET_REG.TIMER) >> 5;
    return n < HPET_TIMERS ? this.#timers[n] : null;
  }

  /** Write `size` (4 or 8) bytes of `value` at `offset`. */
  write(offset: number, size: number, value: bigint): void {
    const base = offset & ~7;
    const shift = BigInt((offset & 7) * 8);
    if ((size !== 4 && size !== 8) || (size === 8 && shift !== 0n)) {
      this.stats.badAccesses++;
      return;
    }
    const mask = (size === 4 ? M32 : M64) << shift;
    const v = (value << shift) & mask;
    const now = this.#clock.now();
    this.service(now);
    const merge = (old: bigint) => (old & ~mask) | v;
    switch (base) {
      case HPET_REG.CAP:
        return;
      case HPET_REG.CONFIG:
        return this.#writeConfig(merge(this.#config) & 3n, now);
      case HPET_REG.STATUS: {
        // Write 1 to clear a level timer's status (and drop its line).
        for (let i = 0; i < HPET_TIMERS; i++) {
          const bit = 1n << BigInt(i);
          if ((v & bit) && (this.#status & bit)) {
            this.#status &= ~bit;
            this.#dropLine(this.#timers[i]);
          }
        }
        return;
      }
      case HPET_REG.COUNTER:
        this.#base = merge(this.#counterAt(now) & M64);
        this.#t0 = now;
        for (const t of this.#timers) this.#arm(t, now);
        return;
    }
    const t = this.#timerOf(base);
    if (!t) {
      this.stats.badAccesses++;
      return;
    }
    switch ((base - HPET_REG.TIMER) & 0x1f) {
      case HPET_REG.TN_CONFIG: {
        const old = t.config;
        t.config = merge(t.config | TN_RO) & TN_WRITABLE;
        if ((old & HPET_TN.LEVEL) && !(t.config & HPET_TN.LEVEL)) {
          this.#clearStatus(t);
        }
        if (!(t.config & HPET_TN.ENABLE)) this.#dropLine(t);
        if ((t.config & HPET_TN.MODE32) && !(old & HPET_TN.MODE32)) {
          t.comparator &= M32;
          t.period &= M32;
        }
        this.#arm(t, now);
        return;
      }
      case HPET_REG.TN_COMPARATOR: {
        const width = (t.config & HPET_TN.MODE32) ? M32 : M64;
        if (!(t.config & HPET_TN.PERIODIC) || (t.config & HPET_TN.VAL_SET)) {
          t.comparator = merge(t.comparator) & width;
        }
        if (t.config & HPET_TN.PERIODIC) t.period = merge(t.period) & width;
        t.config &= ~HPET_TN.VAL_SET;
        this.#arm(t, now);
        return;
      }
      case HPET_REG.TN_FSB:
        t.fsb = merge(t.fsb);
        return;
    }
    this.stats.badAccesses++;
  }

  #writeConfig(v: bigint, now: number): void {
    const was = this.#config;
    if ((v & HPET_CFG.ENABLE) && !(was & HPET_CFG.ENABLE)) {
      this.#t0 = now;
    } else if (!(v & HPET_CFG.ENABLE) && (was & HPET_CFG.ENABLE)) {
      this.#base = this.#counterAt(now);
    }
    if ((v ^ was) & HPET_CFG.LEGACY) {
      for (const t of this.#timers) this.#dropLine(t);
    }
    this.#config = v;
    for (const t of this.#timers) this.#arm(t, now);
  }

  /** Compute a timer's next match from the comparator and counter now. */
  #arm(t: Timer, now: number): void {
    this.#dirty = true;
    if (!this.#enabled || !(t.config & HPET_TN.ENABLE)) {
      t.fireAt = null;
      return;
    }
    const cur = this.#counterAt(now);
    if (t.config & HPET_TN.MODE32) {
      const diff = (t.comparator - cur) & M32;
      t.fireAt = cur + diff;
    } else {
      const lowCur = cur & M64;
      t.fireAt = t.comparator >= lowCur ? cur + (t.comparator - lowCur) : null;
    }
  }

  /** The GSI a timer's interrupt goes to, or null for FSB. */
  #gsiOf(i: number): number | null {
    const t = this.#timers[i];
    if ((this.#config & HPET_CFG.LEGACY) && i < 2) return this.#legacy[i];
    if (t.config & HPET_TN.FSB_EN) return null;
    return Number((t.config & HPET_TN.ROUTE_MASK) >> HPET_TN.ROUTE_SHIFT);
  }

  #fire(i: number): void {
    const t = this.#timers[i];
    this.stats.interrupts++;
    const gsi = this.#gsiOf(i);
    if (gsi === null) {
      this.#sink.msi({
        address: Number(t.fsb >> 32n),
        data: Number(t.fsb & M32),
      });
      return;
    }
    if (t.config & HPET_TN.LEVEL) {
      this.#status |= 1n << BigInt(i);
      if (t.line !== gsi) {
        this.#dropLine(t);
        t.line = gsi;
        this.#sink.setLine(gsi, true);
      }
    } else {
      this.#sink.setLine(gsi, true);
      this.#sink.setLine(gsi, false);
    }
  }

  #clearStatus(t: Timer): void {
    this.#status &= ~(1n << BigInt(this.#timers.indexOf(t)));
    this.#dropLine(t);
  }

  #dropLine(t: Timer): void {
    if (t.line !== null) {
      this.#sink.setLine(t.line, false);
      t.line = null;
    }
  }

  /**
   * Raise every match due at `now` (a periodic timer late by several
   * periods fires once and counts the rest in `missedPeriods`); returns the
   * clock time of the next match, or null.
   */
  service(now: number): number | null {
    // Fast path (the VM calls this after every exit): nothing due yet.
    if (!this.#dirty && (this.#nextNs === null || now < this.#nextNs)) {
      return this.#nextNs;
    }
    this.#dirty = false;
    this.#nextNs = this.#compute(now);
    return this.#nextNs;
  }

  #compute(now: number): number | null {
    if (!this.#enabled) return null;
    const cur = this.#counterAt(now);
    let next: bigint | null = null;
    let owedAt: number | null = null; // a catch-up tick is due: when to raise it
    for (let i = 0; i < HPET_TIMERS; i++) {
      const t = this.#timers[i];
      if (t.fireAt !== null && t.fireAt <= cur) {
        this.#fire(i);
        const width = (t.config & HPET_TN.MODE32) ? M32 : M64;
        if ((t.config & HPET_TN.PERIODIC) && t.period > 0n) {
          const late = (cur - t.fireAt) / t.period;
          let steps = late + 1n;
          if (this.#catchUp && late > 0n && late <= HPET_CATCHUP_CAP) {
            // Owe the late periods: one now, the next a quarter period on.
            steps = 1n;
            this.stats.caughtUp++;
            const at = now + Number(t.period) * TICK_NS / 4;
            owedAt = owedAt === null ? at : Math.min(owedAt, at);
          } else {
            this.stats.missedPeriods += Number(late);
          }
          t.fireAt += steps * t.period;
          t.comparator = (t.comparator + steps * t.period) & width;
        } else if (t.config & HPET_TN.MODE32) {
          t.fireAt += 1n << 32n; // the comparator matches again after a wrap
        } else {
          t.fireAt = null;
        }
      }
      if (t.fireAt !== null && (next === null || t.fireAt < next)) {
        next = t.fireAt;
      }
    }
    if (next === null) return owedAt;
    const due = this.#t0 + Number(next - this.#base) * TICK_NS;
    return owedAt !== null && due <= now ? owedAt : due;
  }

  /** Level timers' interrupt status (`GINTR_STA`). */
  get status(): number {
    return Number(this.#status);
  }
}
