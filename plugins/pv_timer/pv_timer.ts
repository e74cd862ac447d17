/**
 * Hyperlight-compatible paravirtual timer as a pure state machine.
 *
 * Port 107 (0x6B) takes the tick period in microseconds as a 4-byte
 * little-endian `out`; 0 stops the timer, any other value (re-)arms it with
 * the period clamped to `[minUs, maxUs]`. Port 108 (0x6C): any write stops
 * the timer and halts the guest. Ticks are generated in the host through a
 * {@link TickSource}; this class only arms and disarms it.
 *
 * Writes of 1 or 2 bytes to port 107 are counted no-ops (`stats.badWrites`),
 * not zero-extended: a partial period is almost certainly a guest bug.
 *
 * @module
 */
import type { LogLevel, TickCounters, TickSource } from "../../bus/types.ts";

/** Period port (Hyperlight `PvTimerConfig`). */
export const PV_TIMER_PERIOD_PORT = 107;
/** Halt port (Hyperlight `Halt`). */
export const PV_TIMER_HALT_PORT = 108;
/** Default minimum period, µs. */
export const PV_TIMER_DEFAULT_MIN_US = 50;
/** Default maximum period, µs (10 s). */
export const PV_TIMER_DEFAULT_MAX_US = 10_000_000;
/** Largest period the port can carry (u32). */
const MAX_U32 = 0xffffffff;

/**
 * Options of {@link PvTimer}.
 *
 * @example
 * ```ts
 * import type { PvTimerOptions } from "./pv_timer.ts";
 * import { FakeTickSource } from "../testing/fake_context.ts";
 * const o: PvTimerOptions = {
 *   source: new FakeTickSource({ kind: "gsi", gsi: 0 }),
 *   halt: () => {},
 *   minUs: 100,
 * };
 * ```
 */
export interface PvTimerOptions {
  /** Host tick source driven by this timer. */
  source: TickSource;
  /** Called on a write to the halt port. */
  halt: () => void;
  /** Log sink. */
  log?: (level: LogLevel, msg: string) => void;
  /** Minimum period in µs (integer ≥ 1); default 50. */
  minUs?: number;
  /** Maximum period in µs (integer ≥ minUs, ≤ 2^32-1); default 10 s. */
  maxUs?: number;
}

/**
 * Counters.
 *
 * @example
 * ```ts
 * import type { PvTimerStats } from "./pv_timer.ts";
 * const s: PvTimerStats = {
 *   writes: 0, clamps: 0, arms: 0, rearms: 0, stops: 0, ignored: 0,
 *   badWrites: 0, halts: 0,
 * };
 * ```
 */
export interface PvTimerStats {
  /** 4-byte writes to the period port. */
  writes: number;
  /** Periods clamped to the allowed range. */
  clamps: number;
  /** `arm` calls made on the tick source. */
  arms: number;
  /** `arm` calls that changed the period of an armed source. */
  rearms: number;
  /** Writes of 0 that stopped a running timer. */
  stops: number;
  /** Writes of the already-armed period (no re-arm) or 0 while stopped. */
  ignored: number;
  /** Writes of a size other than 4 bytes to the period port. */
  badWrites: number;
  /** Writes to the halt port. */
  halts: number;
}

/**
 * The PV timer.
 *
 * @example
 * ```ts
 * import { PvTimer } from "./pv_timer.ts";
 * import { FakeTickSource } from "../testing/fake_context.ts";
 * const source = new FakeTickSource({ kind: "msi", vector: 0x20, destination: 0 });
 * const timer = new PvTimer({ source, halt: () => {} });
 * timer.writePeriod(4, 1000);
 * console.log(source.arms); // [1000000]
 * ```
 */
export class PvTimer {
  readonly #source: TickSource;
  readonly #halt: () => void;
  readonly #log: (level: LogLevel, msg: string) => void;
  readonly #minUs: number;
  readonly #maxUs: number;
  #periodUs = 0;
  #loggedLow = false;
  #loggedHigh = false;

  /** Counters. */
  readonly stats: PvTimerStats = {
    writes: 0,
    clamps: 0,
    arms: 0,
    rearms: 0,
    stops: 0,
    ignored: 0,
    badWrites: 0,
    halts: 0,
  };

  /** Create a stopped timer; throws RangeError on a bad min/max. */
  constructor(options: PvTimerOptions) {
    const min = options.minUs ?? PV_TIMER_DEFAULT_MIN_US;
    const max = options.maxUs ?? PV_TIMER_DEFAULT_MAX_US;
    if (
      !Number.isInteger(min) || !Number.isInteger(max) || min < 1 ||
      max < min || max > MAX_U32
    ) {
      throw new RangeError(`pv_timer: bad period range [${min}, ${max}] µs`);
    }
    this.#source = options.source;
    this.#halt = options.halt;
    this.#log = options.log ?? (() => {});
    this.#minUs = min;
    this.#maxUs = max;
  }

  /** True while ticks are being generated. */
  get active(): boolean {
    return this.#periodUs !== 0;
  }

  /** Same as {@link active}: the tick source is armed. */
  get armed(): boolean {
    return this.#periodUs !== 0;
  }

  /** Effective (clamped) period in µs, 0 when stopped. */
  get periodUs(): number {
    return this.#periodUs;
  }

  /**
   * Ticks the guest will never see: coalesced because the host fell behind
   * (`coalesce` policy), or dropped over the backlog cap (`catchup`).
   */
  get missedTicks(): number {
    return this.#source.missedTicks;
  }

  /**
   * The tick source's counters (policy in effect, owed, delivered,
   * backlog, drops), or null when the source keeps none.
   */
  tickCounters(): TickCounters | null {
    return this.#source.counters?.() ?? null;
  }

  /** Guest read of the period port: the effective period (u32). */
  readPeriod(): number {
    return this.#periodUs;
  }

  /** Guest write of `size` bytes (`value` unsigned) to the period port. */
  writePeriod(size: number, value: number): void {
    if (size !== 4) {
      this.stats.badWrites++;
      return;
    }
    this.stats.writes++;
    const requested = value >>> 0;
    if (requested === 0) {
      if (this.#periodUs === 0) {
        this.stats.ignored++;
        return;
      }
      this.stats.stops++;
      this.#stop();
      return;
    }
    const period = this.#clamp(requested);
    if (period === this.#periodUs) {
      this.stats.ignored++; // rapid re-write of the same period: no re-arm
      return;
    }
    if (this.#periodUs !== 0) this.stats.rearms++;
    this.stats.arms++;
    this.#periodUs = period;
    this.#source.arm(period * 1000);
  }

  #clamp(us: number): number {
    if (us < this.#minUs) {
      this.stats.clamps++;
      if (!this.#loggedLow) {
        this.#loggedLow = true;
        this.#log(
          "warn",
          `pv_timer: period ${us} µs raised to the minimum ${this.#minUs} µs`,
        );
      }
      return this.#minUs;
    }
    if (us > this.#maxUs) {
      this.stats.clamps++;
      if (!this.#loggedHigh) {
        this.#loggedHigh = true;
        this.#log(
          "warn",
          `pv_timer: period ${us} µs lowered to the maximum ${this.#maxUs} µs`,
        );
      }
      return this.#maxUs;
    }
    return us;
  }

  #stop(): void {
    this.#periodUs = 0;
    this.#source.disarm();
  }

  /** Guest write to the halt port: stop the timer, then halt. */
  writeHalt(): void {
    this.stats.halts++;
    if (this.#periodUs !== 0) this.#stop();
    this.#halt();
  }

  /** Stop the timer (power-on state); counters are kept. */
  reset(): void {
    this.#stop();
  }

  /** Release the tick source (disarm). Idempotent. */
  close(): void {
    this.#stop();
  }
}
