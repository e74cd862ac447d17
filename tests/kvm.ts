/**
 * Helpers for the end-to-end tests that boot guests on /dev/kvm.
 *
 * KVM tests run whenever /dev/kvm exists; only when it is absent are they
 * skipped, with a loud message on stderr.
 *
 * @module
 */
import {
  createMachine,
  type Machine,
  type MachineOptions,
} from "../vmm/machine.ts";
import type { RunResult } from "../vmm/vm.ts";

/** True when /dev/kvm exists (tests are ignored, loudly, when it does not). */
export const HAVE_KVM: boolean = (() => {
  try {
    Deno.statSync("/dev/kvm");
    return true;
  } catch {
    console.error(
      "\n*** /dev/kvm is absent: the KVM end-to-end tests are SKIPPED ***\n",
    );
    return false;
  }
})();

/** Absolute path of a built guest. */
export function guestPath(name: string): string {
  return decodeURIComponent(
    new URL(`../guests/build/${name}.elf`, import.meta.url).pathname,
  );
}

/** Result of {@link bootGuest}. */
export interface Booted {
  /** How the run ended. */
  result: RunResult;
  /** Serial output. */
  out: string;
  /** The machine (closed by the caller via `using`). */
  machine: Machine;
}

/**
 * Create a machine, load `name` with `args`, run it; the caller disposes
 * the returned machine.
 */
export function bootGuest(
  name: string,
  args: (number | bigint)[] = [],
  options: MachineOptions & { timeoutMs?: number } = {},
  beforeRun?: (vm: Machine["vm"]) => void,
): Booted {
  let out = "";
  const machine = createMachine({
    ...options,
    serialOutput: (b) => out += String.fromCharCode(b),
  });
  try {
    machine.vm.load(guestPath(name), args);
    beforeRun?.(machine.vm);
    const result = machine.vm.run({ timeoutMs: options.timeoutMs ?? 20_000 });
    return { result, out, machine };
  } catch (e) {
    machine.vm.close();
    throw e;
  }
}

/** The `FAIL name` lines of a guest's serial output. */
export function failures(out: string): string[] {
  return out.split("\n").filter((l) => l.startsWith("FAIL ")).map((l) =>
    l.slice(5).trim()
  );
}

/** The `PASS name` lines of a guest's serial output. */
export function passes(out: string): string[] {
  return out.split("\n").filter((l) => l.startsWith("PASS ")).map((l) =>
    l.slice(5).trim()
  );
}

/** Names of the threads of this process (from /proc/self/task). */
export function threadNames(): string[] {
  const names: string[] = [];
  for (const e of Deno.readDirSync("/proc/self/task")) {
    try {
      names.push(
        Deno.readTextFileSync(`/proc/self/task/${e.name}/comm`).trim(),
      );
    } catch {
      // the thread ended while we listed
    }
  }
  return names;
}

/** Magic at the start of a timer guest's results buffer ("DNVMTICK"). */
export const TICK_MAGIC = 0x4b4349544d564e44n;
/** Guest-physical address of the results buffer. */
export const RESULTS_GPA = 0x200000;

/** Tick timestamps (TSC) recorded by the timer guests. */
export function readTicks(m: Machine): number[] {
  const head = new DataView(m.vm.memory.view(RESULTS_GPA, 16).slice().buffer);
  if (head.getBigUint64(0, true) !== TICK_MAGIC) {
    throw new Error("timer guest results buffer has no magic");
  }
  const n = Number(head.getBigUint64(8, true));
  if (n > 4000) throw new Error(`bad tick count ${n}`);
  const dv = new DataView(
    m.vm.memory.view(RESULTS_GPA + 16, 8 * n).slice().buffer,
  );
  return Array.from(
    { length: n },
    (_, i) => Number(dv.getBigUint64(8 * i, true)),
  );
}

/** Period statistics of tick timestamps, in microseconds. */
export interface PeriodStats {
  /** Ticks. */
  n: number;
  /** Mean period: (last - first) / (n - 1). */
  meanUs: number;
  /** Mean period error relative to `requestedUs`, in percent. */
  errorPct: number;
  /** Median period (robust to a few lost ticks). */
  medianUs: number;
  /** Median absolute deviation of each period from the request. */
  p50DevUs: number;
  /** 99th percentile absolute deviation. */
  p99DevUs: number;
  /** Largest absolute deviation. */
  maxDevUs: number;
  /** Every period (µs). */
  periods: number[];
  /**
   * Ticks lost between recorded ones: Σ (round(gap / period) − 1). Host
   * stalls (another process on the core) make the irqfd fire while the
   * previous tick is still pending, and the LAPIC coalesces them.
   */
  lost: number;
  /**
   * Loss-corrected mean period: (last − first) / Σ max(1, round(gap /
   * period)). Separates drift (every gap longer) from lost ticks.
   */
  correctedMeanUs: number;
}

/** Compute {@link PeriodStats} from TSC stamps at `tscKhz`. */
export function periodStats(
  tsc: number[],
  tscKhz: number,
  requestedUs: number,
): PeriodStats {
  const us = (d: number) => d / tscKhz * 1000;
  const periods = tsc.slice(1).map((t, i) => us(t - tsc[i]));
  const meanUs = us(tsc[tsc.length - 1] - tsc[0]) / (tsc.length - 1);
  const dev = periods.map((p) => Math.abs(p - requestedUs)).sort((a, b) =>
    a - b
  );
  const q = (f: number) =>
    dev[Math.min(dev.length - 1, Math.floor(f * dev.length))];
  const sorted = [...periods].sort((a, b) => a - b);
  const slots = periods.reduce(
    (a, p) => a + Math.max(1, Math.round(p / requestedUs)),
    0,
  );
  return {
    n: tsc.length,
    lost: slots - periods.length,
    correctedMeanUs: us(tsc[tsc.length - 1] - tsc[0]) / slots,
    medianUs: sorted[sorted.length >> 1],
    meanUs,
    errorPct: (meanUs - requestedUs) / requestedUs * 100,
    p50DevUs: q(0.5),
    p99DevUs: q(0.99),
    maxDevUs: dev[dev.length - 1],
    periods,
  };
}
