/**
 * Bus adapter for {@link PvTimer}: ports 107 (period) and 108 (halt).
 *
 * @module
 */
import type {
  Access,
  DeviceContext,
  Plugin,
  Region,
  TickCounters,
  TickTarget,
} from "../../bus/types.ts";
import { readLe, writeLe } from "../../bus/le.ts";
import { stateFields } from "../../bus/state.ts";
import {
  PV_TIMER_DEFAULT_MAX_US,
  PV_TIMER_DEFAULT_MIN_US,
  PV_TIMER_HALT_PORT,
  PV_TIMER_PERIOD_PORT,
  PvTimer,
  type PvTimerStats,
} from "./pv_timer.ts";

/** Default tick target: MSI vector 0x20 to LAPIC 0. */
export const PV_TIMER_DEFAULT_TARGET: TickTarget = {
  kind: "msi",
  vector: 0x20,
  destination: 0,
};

/**
 * Options of {@link pvTimerPlugin}.
 *
 * @example
 * ```ts
 * import type { PvTimerPluginOptions } from "./plugin.ts";
 * const o: PvTimerPluginOptions = { target: { kind: "gsi", gsi: 0 } };
 * ```
 */
export interface PvTimerPluginOptions {
  /** Where ticks go; default MSI vector 0x20, destination 0. */
  readonly target?: TickTarget;
  /** Minimum period in µs; default 50. */
  readonly minUs?: number;
  /** Maximum period in µs; default 10 s. */
  readonly maxUs?: number;
}

/**
 * Plain-data state of the PV timer plugin: the armed period (0 = stopped).
 *
 * @example
 * ```ts
 * import type { PvTimerState } from "./plugin.ts";
 * const s: PvTimerState = { version: 1, periodUs: 1000 };
 * ```
 */
export interface PvTimerState {
  /** Format version, currently 1. */
  readonly version: 1;
  /** Effective period in µs; 0 when stopped. */
  readonly periodUs: number;
}

/**
 * The PV timer plugin. `active` can be passed (as `() => p.active`) to the
 * legacy plugin's `timerActive`.
 *
 * @example
 * ```ts
 * import { pvTimerPlugin } from "./plugin.ts";
 * const p = pvTimerPlugin({});
 * console.log(p.active); // false
 * ```
 */
export interface PvTimerPlugin extends Plugin {
  /** The armed period. */
  snapshot(): PvTimerState;
  /**
   * Re-arm (or stop) at the saved period; a period outside this plugin's
   * range throws TypeError and changes nothing.
   */
  restore(state: PvTimerState): void;
  /** True while the timer ticks. */
  readonly active: boolean;
  /** The device, once set up. */
  readonly timer: PvTimer | null;
  /** Counters (null before setup). */
  readonly stats: PvTimerStats | null;
  /**
   * The host tick source's counters: policy in effect, owed, delivered,
   * backlog, coalesced and dropped ticks (null before setup).
   */
  tickCounters(): TickCounters | null;
}

/**
 * Create the PV timer plugin. The tick source is created once, in
 * `setup`; `close()` disarms it.
 *
 * @example
 * ```ts
 * import { pvTimerPlugin } from "./plugin.ts";
 * const p = pvTimerPlugin({ minUs: 100, maxUs: 1_000_000 });
 * console.log(p.name); // "pv-timer"
 * ```
 */
export function pvTimerPlugin(
  options: PvTimerPluginOptions = {},
): PvTimerPlugin {
  const target = options.target ?? PV_TIMER_DEFAULT_TARGET;
  let timer: PvTimer | null = null;
  return {
    name: "pv-timer",
    get active() {
      return timer?.active ?? false;
    },
    get timer() {
      return timer;
    },
    get stats() {
      return timer?.stats ?? null;
    },
    tickCounters() {
      return timer?.tickCounters() ?? null;
    },
    setup(ctx: DeviceContext): readonly Region[] {
      const t = new PvTimer({
        source: ctx.createTickSource(target),
        halt: () => ctx.halt(),
        log: (level, msg) => ctx.log(level, msg),
        minUs: options.minUs,
        maxUs: options.maxUs,
      });
      timer = t;
      return [
        {
          range: { space: "pio", base: PV_TIMER_PERIOD_PORT, length: 1 },
          read(_a: Access, data: Uint8Array): void {
            writeLe(data, t.readPeriod());
          },
          write(a: Access, data: Uint8Array): void {
            t.writePeriod(a.size, readLe(data));
          },
        },
        {
          range: { space: "pio", base: PV_TIMER_HALT_PORT, length: 1 },
          read(_a: Access, data: Uint8Array): void {
            data.fill(0);
          },
          write(): void {
            t.writeHalt();
          },
        },
      ];
    },
    reset(): void {
      timer?.reset();
    },
    close(): void {
      timer?.close();
    },
    snapshot(): PvTimerState {
      return { version: 1, periodUs: timer?.periodUs ?? 0 };
    },
    restore(state: PvTimerState): void {
      const f = stateFields(state, 1, "pv_timer");
      const min = options.minUs ?? PV_TIMER_DEFAULT_MIN_US;
      const max = options.maxUs ?? PV_TIMER_DEFAULT_MAX_US;
      const periodUs = f.int("periodUs", 0, max);
      if (periodUs !== 0 && periodUs < min) {
        throw new TypeError(`pv_timer state: periodUs below ${min}`);
      }
      if (!timer) throw new Error("pv_timer: not set up");
      if (periodUs === 0) timer.reset();
      else if (periodUs !== timer.periodUs) timer.writePeriod(4, periodUs);
    },
  };
}
