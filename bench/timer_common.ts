/**
 * Shared pieces of the timer benchmarks (`run_timer_bench.ts`,
 * `timer_bench.ts`): the five tick methods, one measured guest run, the
 * period statistics and process CPU clocks.
 *
 * Methods (all on the kernel irqchip):
 *
 * - `pv-msi`: the PV timer (port 107), host timerfd with absolute
 *   deadlines, ticks as MSI vector 0x20 through an irqfd (`timer` guest,
 *   arg3 = 0xFFFFFFFF), `coalesce` policy;
 * - `pv-gsi`: the same, ticks on GSI 0 → in-kernel IOAPIC pin 0 (`timer`
 *   guest, arg3 = 0: the guest programs pin 0 edge → vector 0x20),
 *   `coalesce` policy;
 * - `pv-catchup`: `pv-gsi` with the `catchup` policy: a resampling irqfd,
 *   every expiration owed, the next sent on the guest's EOI;
 * - `hyperlight-sleep`: the PV timer paced by a thread that sleeps one
 *   period between ticks (`timerPacing: "relative-sleep"`), MSI — the
 *   Hyperlight-style baseline;
 * - `lapic-tsc-deadline`: no host timer at all; the `lapic_timer` guest
 *   arms the in-kernel LAPIC in TSC-deadline mode, `deadline += period`.
 *
 * @module
 */
import type { TickCounters } from "../bus/types.ts";
import { createMachine, type MachineOptions } from "../vmm/machine.ts";
import { failures, guestPath, periodStats, readTicks } from "../tests/kvm.ts";

/** The compared tick methods, in table order. */
export const METHODS = [
  "pv-msi",
  "pv-gsi",
  "pv-catchup",
  "hyperlight-sleep",
  "hpet",
  "lapic-tsc-deadline",
] as const;
/** One tick method. */
export type Method = typeof METHODS[number];

/** What one method boots. */
interface MethodSpec {
  guest: "timer" | "lapic_timer" | "hpet_ticks";
  options: MachineOptions;
  /** `timer` guest arg3: IOAPIC pin or 0xFFFFFFFF for MSI. */
  pin?: number;
}

const SPECS: Record<Method, MethodSpec> = {
  "pv-msi": {
    guest: "timer",
    options: {
      timerDelivery: "msi",
      timerPacing: "absolute",
      timerPolicy: "coalesce",
    },
    pin: 0xffffffff,
  },
  "pv-gsi": {
    guest: "timer",
    options: {
      timerDelivery: "gsi",
      timerPacing: "absolute",
      timerPolicy: "coalesce",
    },
    pin: 0,
  },
  "pv-catchup": {
    guest: "timer",
    options: {
      timerDelivery: "gsi",
      timerPacing: "absolute",
      timerPolicy: "catchup",
    },
    pin: 0,
  },
  "hyperlight-sleep": {
    guest: "timer",
    options: {
      timerDelivery: "msi",
      timerPacing: "relative-sleep",
      timerPolicy: "coalesce",
    },
    pin: 0xffffffff,
  },
  // The HPET plugin's periodic timer 0 (FSB/MSI), serviced through the
  // core's wake alarm, late periods caught up.
  hpet: { guest: "hpet_ticks", options: {} },
  "lapic-tsc-deadline": { guest: "lapic_timer", options: {} },
};

const CLOCK_PROCESS_CPUTIME_ID = 2;
const CLOCK_THREAD_CPUTIME_ID = 3;

let libc:
  | Deno.DynamicLibrary<
    { clock_gettime: { parameters: ["i32", "buffer"]; result: "i32" } }
  >
  | null = null;
const tsBuf = new BigInt64Array(2);

/**
 * CPU time in ns of the whole process (`thread = false`: every thread,
 * including threads that have already exited, such as a disarmed timer
 * thread) or of the calling thread — `clock_gettime` through FFI.
 */
export function cpuNs(thread = false): number {
  libc ??= Deno.dlopen("libc.so.6", {
    clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  });
  const rc = libc.symbols.clock_gettime(
    thread ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID,
    tsBuf,
  );
  if (rc !== 0) throw new Error("clock_gettime failed");
  return Number(tsBuf[0]) * 1e9 + Number(tsBuf[1]);
}

/** One guest run of one method. */
export interface RunSample {
  method: Method;
  periodUs: number;
  /** Ticks requested. */
  n: number;
  /** TSC stamps the guest recorded. */
  tsc: number[];
  tscKhz: number;
  /** Wall time of `vm.run()` (ns). */
  wallNs: number;
  /** Process CPU time during `vm.run()` (ns, all threads). */
  cpuNs: number;
  /** CPU time of the calling thread (= the vCPU thread) during `run()`. */
  vcpuCpuNs: number;
  /** Host-coalesced ticks reported by the PV timer (null: no host timer). */
  missedTicks: number | null;
  /** The PV timer's tick counters at the end (null: no host timer). */
  counters: TickCounters | null;
}

/** A booted, loaded machine ready for one measured run. */
export interface PreparedRun extends Disposable {
  /** Run the guest to its clean halt and collect the sample (once). */
  run(): RunSample;
  /** Free the machine. */
  close(): void;
}

/**
 * Create a kernel-irqchip machine for `method` and load its guest for `n`
 * ticks of `periodUs`; `run()` times `vm.run()` (wall and CPU) and returns
 * the recorded stamps, throwing when the guest did not end cleanly.
 */
export function prepareMethod(
  method: Method,
  periodUs: number,
  n: number,
): PreparedRun {
  const spec = SPECS[method];
  let out = "";
  const machine = createMachine({
    ...spec.options,
    irqchip: "kernel",
    serialOutput: (b) => out += String.fromCharCode(b),
  });
  let tscKhz: number;
  try {
    tscKhz = machine.vm.tscKhz();
    const args = spec.guest === "timer"
      ? [periodUs, n, 0x20, spec.pin!]
      : spec.guest === "hpet_ticks"
      ? [periodUs, n, 0x20, 0]
      : [Math.round(tscKhz * periodUs / 1000), n];
    machine.vm.load(guestPath(spec.guest), args);
  } catch (e) {
    machine.vm.close();
    throw e;
  }
  const close = () => machine.vm.close();
  return {
    run(): RunSample {
      const timeoutMs = Math.max(20_000, n * periodUs / 1000 * 20);
      const c0 = cpuNs(), t0 = cpuNs(true), w0 = performance.now();
      const result = machine.vm.run({ timeoutMs });
      const w1 = performance.now(), t1 = cpuNs(true), c1 = cpuNs();
      const fails = failures(out);
      if (result.reason !== "halt" || fails.length > 0) {
        throw new Error(
          `${method} @ ${periodUs} µs: run ended with ` +
            JSON.stringify(result) +
            (fails.length ? `, FAIL ${fails.join(", ")}` : "") +
            `; serial: ${out.trim()}`,
        );
      }
      const tsc = readTicks(machine);
      if (tsc.length < 3) {
        throw new Error(`${method} @ ${periodUs} µs: only ${tsc.length} ticks`);
      }
      return {
        method,
        periodUs,
        n,
        tsc,
        tscKhz,
        wallNs: (w1 - w0) * 1e6,
        cpuNs: c1 - c0,
        vcpuCpuNs: t1 - t0,
        missedTicks: spec.guest === "timer"
          ? machine.pvTimer.timer?.missedTicks ?? null
          : null,
        counters: spec.guest === "timer"
          ? machine.pvTimer.tickCounters()
          : null,
      };
    },
    close,
    [Symbol.dispose]: close,
  };
}

/** {@link prepareMethod} + `run()` + `close()`. */
export function runMethod(
  method: Method,
  periodUs: number,
  n: number,
): RunSample {
  using p = prepareMethod(method, periodUs, n);
  return p.run();
}

/** Statistics of one run. */
export interface RunStats {
  /** Ticks recorded. */
  n: number;
  /** Plain mean period: (t_last − t_first) / (n − 1), µs. */
  meanUs: number;
  /** Plain mean period error, %. */
  errorPct: number;
  /**
   * Loss-corrected mean: (t_last − t_first) / Σ max(1, round(gap / P)),
   * µs — a gap of about k periods counts as k ticks, so ticks lost to host
   * stalls (or coalesced in the LAPIC) do not count as drift.
   */
  lcMeanUs: number;
  /** Loss-corrected mean period error, %. */
  lcErrorPct: number;
  /** Ticks missing by the gap count: Σ max(1, round(gap / P)) − (n − 1). */
  gapLost: number;
  /** Median / 99th percentile / largest |gap − P|, µs. */
  p50DevUs: number;
  p99DevUs: number;
  maxDevUs: number;
  /** Every |gap − P| in µs (unsorted, run order). */
  devs: number[];
  /** Host-coalesced ticks reported by the PV timer (null: no host timer). */
  missedTicks: number | null;
  /**
   * Tick counters of the PV timer (null: no host timer): `owed`,
   * `delivered`, `droppedOverCap`, `backlog`, ... (`backlog` at the end is
   * 0: the guest's stop clears it, into `cleared`).
   */
  counters: TickCounters | null;
  /**
   * Ticks lost, from the host's counters: owed at the stop less the
   * guest's ticks, less the ticks still owed (backlog cleared by the
   * stop, one in flight). `coalesce`: coalesced in the timer thread or
   * the LAPIC; `catchup`: dropped over the cap. Null without a host timer.
   */
  lost: number | null;
  /** Process CPU / wall of the run, % of one core. */
  cpuPct: number;
  /** vCPU-thread CPU / wall, % of one core. */
  vcpuCpuPct: number;
  /** Wall time of the run, ms. */
  wallMs: number;
}

/** Quantile as in `periodStats`: element floor(f·n) of the sorted list. */
export function quantile(sorted: readonly number[], f: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))];
}

/** {@link RunStats} of a sample (plain stats from `tests/kvm.ts`). */
export function analyze(s: RunSample): RunStats {
  const p = periodStats(s.tsc, s.tscKhz, s.periodUs);
  const spanUs = (s.tsc[s.tsc.length - 1] - s.tsc[0]) / s.tscKhz * 1000;
  let slots = 0;
  for (const gap of p.periods) {
    slots += Math.max(1, Math.round(gap / s.periodUs));
  }
  const lcMeanUs = spanUs / slots;
  return {
    n: p.n,
    meanUs: p.meanUs,
    errorPct: p.errorPct,
    lcMeanUs,
    lcErrorPct: (lcMeanUs - s.periodUs) / s.periodUs * 100,
    gapLost: slots - p.periods.length,
    p50DevUs: p.p50DevUs,
    p99DevUs: p.p99DevUs,
    maxDevUs: p.maxDevUs,
    devs: p.periods.map((g) => Math.abs(g - s.periodUs)),
    missedTicks: s.missedTicks,
    counters: s.counters,
    lost: lostTicks(s),
    cpuPct: s.cpuNs / s.wallNs * 100,
    vcpuCpuPct: s.vcpuCpuNs / s.wallNs * 100,
    wallMs: s.wallNs / 1e6,
  };
}

/**
 * Ticks the guest never saw although they were due before its stop
 * (see {@link RunStats.lost}): under `catchup`, the ticks still owed at
 * the stop (backlog cleared, one in flight) were not lost, only not yet
 * delivered, so only the drops over the cap count; under `coalesce`,
 * every expiration is due at once, so owed − guest ticks is the loss
 * (the last expiration may race the stop: less one).
 */
export function lostTicks(s: RunSample): number | null {
  const c = s.counters;
  if (c === null) return null;
  if (c.policy === "catchup") return c.droppedOverCap;
  return Math.max(0, c.owed - s.tsc.length - 1);
}
