/**
 * Bus adapter for {@link PvTimer}: ports 107 (period) and 108 (halt).
 *
 * @module
 */
import type {
  Access,
  Plugin,
  PluginContext,
  Region,
  TickCounters,
  TickTarget,
} from "../../bus/types.ts";
import {
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
    setup(ctx: PluginContext): readonly Region[] {
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
            let v = t.readPeriod();
            for (let i = 0; i < data.length; i++) {
              data[i] = v & 0xff;
              v = Math.floor(v / 256);
            }
          },
          write(a: Access, data: Uint8Array): void {
            let v = 0;
            for (let i = data.length - 1; i >= 0; i--) v = v * 256 + data[i];
            t.writePeriod(a.size, v);
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
  };
}
