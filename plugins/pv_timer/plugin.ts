/**
 * Bus adapter for {@link PvTimer}: ports 107 (period) and 108 (halt).
 *
 * With several vCPUs each vCPU has its own timer: a write to port 107
 * arms (or reads back) the timer of the vCPU that made it, whose ticks go
 * to that vCPU's LAPIC (an MSI target's destination becomes the vCPU's
 * APIC ID, which is its index). vCPU 0 uses the configured target as is; a
 * GSI target is one line, so every vCPU shares vCPU 0's timer.
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
  /** vCPU 0's effective period in µs; 0 when stopped. */
  readonly periodUs: number;
  /**
   * Periods of every vCPU's timer by vCPU index (index 0 = `periodUs`);
   * absent when only vCPU 0 has one.
   */
  readonly vcpuPeriodsUs?: readonly number[];
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
  /** vCPU 0's device, once set up. */
  readonly timer: PvTimer | null;
  /** vCPU `vcpu`'s device, once that vCPU armed it (vCPU 0: {@link timer}). */
  timerOf(vcpu: number): PvTimer | null;
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
  const min = options.minUs ?? PV_TIMER_DEFAULT_MIN_US;
  const max = options.maxUs ?? PV_TIMER_DEFAULT_MAX_US;
  /** Timers by vCPU index; [0] from setup on, the others on first use. */
  const timers: (PvTimer | undefined)[] = [];
  let ctx: DeviceContext | null = null;
  const make = (t: TickTarget): PvTimer => {
    const c = ctx!;
    return new PvTimer({
      source: c.createTickSource(t),
      halt: () => c.halt(),
      log: (level, msg) => c.log(level, msg),
      minUs: options.minUs,
      maxUs: options.maxUs,
    });
  };
  /** The timer a vCPU's port access reaches. */
  const timerFor = (vcpu: number): PvTimer => {
    if (vcpu === 0 || target.kind !== "msi") return timers[0]!;
    return timers[vcpu] ??= make({ ...target, destination: vcpu });
  };
  const all = () => timers.filter((t): t is PvTimer => t !== undefined);
  return {
    name: "pv-timer",
    get active() {
      return all().some((t) => t.active);
    },
    get timer() {
      return timers[0] ?? null;
    },
    timerOf(vcpu: number) {
      return timers[vcpu] ?? null;
    },
    get stats() {
      return timers[0]?.stats ?? null;
    },
    tickCounters() {
      return timers[0]?.tickCounters() ?? null;
    },
    setup(context: DeviceContext): readonly Region[] {
      ctx = context;
      timers.length = 0;
      timers[0] = make(target);
      return [
        {
          range: { space: "pio", base: PV_TIMER_PERIOD_PORT, length: 1 },
          read(a: Access, data: Uint8Array): void {
            writeLe(data, timerFor(a.vcpu).readPeriod());
          },
          write(a: Access, data: Uint8Array): void {
            timerFor(a.vcpu).writePeriod(a.size, readLe(data));
          },
        },
        {
          range: { space: "pio", base: PV_TIMER_HALT_PORT, length: 1 },
          read(_a: Access, data: Uint8Array): void {
            data.fill(0);
          },
          write(a: Access): void {
            timerFor(a.vcpu).writeHalt();
          },
        },
      ];
    },
    reset(): void {
      for (const t of all()) t.reset();
    },
    close(): void {
      for (const t of all()) t.close();
    },
    snapshot(): PvTimerState {
      const periodUs = timers[0]?.periodUs ?? 0;
      if (timers.length <= 1) return { version: 1, periodUs };
      return {
        version: 1,
        periodUs,
        vcpuPeriodsUs: Array.from(timers, (t) => t?.periodUs ?? 0),
      };
    },
    restore(state: PvTimerState): void {
      const f = stateFields(state, 1, "pv_timer");
      const check = (us: unknown, what: string): number => {
        if (
          typeof us !== "number" || !Number.isInteger(us) || us < 0 ||
          us > max || (us !== 0 && us < min)
        ) {
          throw new TypeError(
            `pv_timer state: ${what} must be 0 or an integer in ${min}..${max}`,
          );
        }
        return us;
      };
      const periodUs = check(f.int("periodUs", 0, max), "periodUs");
      const raw = (state as { vcpuPeriodsUs?: unknown }).vcpuPeriodsUs;
      let periods = [periodUs];
      if (raw !== undefined) {
        if (!Array.isArray(raw) || raw.length > 64) {
          throw new TypeError(
            "pv_timer state: vcpuPeriodsUs must be an array of at most 64 periods",
          );
        }
        periods = raw.map((us, i) => check(us, `vcpuPeriodsUs[${i}]`));
        periods[0] = periodUs;
      }
      if (!timers[0]) throw new Error("pv_timer: not set up");
      for (let i = 0; i < Math.max(periods.length, timers.length); i++) {
        const us = periods[i] ?? 0;
        if (us === 0 && timers[i] === undefined) continue;
        if (i > 0 && target.kind !== "msi") continue;
        const t = timerFor(i);
        if (us === 0) t.reset();
        else if (us !== t.periodUs) t.writePeriod(4, us);
      }
    },
  };
}
