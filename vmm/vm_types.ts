/**
 * Options, results and counters of a VM ({@link ./vm.ts}), and size parsing.
 *
 * @module
 */
import type { Clock, LogLevel, Plugin, Range } from "../bus/types.ts";
import type { HostQuirks } from "./quirks.ts";
import type { CrashReport } from "./crash_report.ts";
import type { CpuOption } from "./cpu_spec.ts";

/** A log sink. */
export type Logger = (level: LogLevel, source: string, msg: string) => void;

/** Irqchip arrangement of a VM. */
export type IrqchipMode = "kernel" | "split";

/** Options of {@link createVm}. */
export interface VmOptions {
  /** Guest RAM in bytes, or a size string like `"16M"` (default 16 MiB). */
  memory?: number | string;
  /** `kernel` (default): in-kernel PIC/IOAPIC/LAPIC; `split`: our IOAPIC. */
  irqchip?: IrqchipMode;
  /** Fail the run on an access no plugin claimed (default: read all-ones). */
  strict?: boolean;
  /** Plugins to attach, in order. */
  plugins?: readonly Plugin[];
  /** Ports answered in the Rust fast path (writes ignored, reads 0xFF). */
  ignoredPorts?: readonly Range[];
  /** Log sink (default: warnings and errors to stderr). */
  log?: Logger;
  /** Clock handed to plugins (default: `performance.now()` in ns). */
  clock?: Clock;
  /** Path of the core library (default: `$DENOVMM_LIB` or the build). */
  libraryPath?: string;
  /**
   * How host tick sources pace their ticks: `absolute` (default; timerfd
   * with absolute deadlines, drift-free) or `relative-sleep` (a thread that
   * sleeps one period between ticks, as Hyperlight does; it drifts, and
   * exists only as the baseline of `bench/run_timer_bench.ts`).
   */
  timerPacing?: "absolute" | "relative-sleep";
  /**
   * Host-quirk workarounds (see `HostQuirks`): `"auto"` (default) detects
   * what this host needs once per process; an object overrides.
   */
  quirks?: Partial<HostQuirks> | "auto";
  /**
   * CPU model (CPUID): a spec string like `"host,-x2apic"` or
   * `"baseline"`, or a {@link CpuOption} object (default `host`). See the
   * README's "CPU model" section.
   */
  cpu?: CpuOption;
}

/** How a run ended. */
export type RunReason =
  | "exit"
  | "halt"
  | "stopped"
  | "timeout"
  | "shutdown"
  | "hlt"
  | "internal-error"
  | "fail-entry"
  | "system-event"
  | "error";

/** Result of {@link Vm.run}. */
export interface RunResult {
  /** Why the run ended. */
  readonly reason: RunReason;
  /** Guest exit status for `exit` (isa-debug-exit: `(v << 1) | 1`). */
  readonly status?: number;
  /** Human-readable detail for failures. */
  readonly detail?: string;
  /**
   * The vCPU's state when the run failed (internal error, shutdown, failed
   * entry, strict-mode unclaimed access): registers, mode, the
   * instruction at RIP, KVM's error data. See `formatCrashReport`.
   */
  readonly crash?: CrashReport;
}

/** A Multiboot module. */
export interface MultibootModuleSpec {
  /** Contents, or a file path. */
  bytes: Uint8Array | string;
  /** Module command line. */
  cmdline?: string;
}

/** Options of {@link Vm.loadMultiboot}. */
export interface MultibootOptions {
  /** Kernel command line (serve the same one through fw_cfg). */
  cmdline?: string;
  /**
   * First word of the Multiboot command line, as GRUB and QEMU put the
   * kernel's name there: default the image path given to
   * `loadMultiboot`, or `kernel` for bytes; `false` passes `cmdline` alone.
   */
  imageName?: string | false;
  /** Boot modules, placed page-aligned after the kernel. */
  modules?: MultibootModuleSpec[];
}

/** Options of {@link Vm.run}. */
export interface RunOptions {
  /** End the run with reason `timeout` after this many milliseconds. */
  timeoutMs?: number;
}

/** Run-loop counters of vCPU 0. */
export interface VcpuCounters {
  /** All KVM exits. */
  exits: number;
  /** Exits handled in the Rust fast path. */
  fastPath: number;
  /** Exits returned to TypeScript. */
  forwarded: number;
  /** Unclaimed reads answered with all-ones in the core. */
  unclaimedReads: number;
  /** Unclaimed writes ignored in the core. */
  unclaimedWrites: number;
}

const MEM_UNITS: Record<string, number> = {
  "": 1,
  K: 1 << 10,
  M: 1 << 20,
  G: 1 << 30,
};

/**
 * Parse a memory size: a number of bytes or a string like `16M`, `512K`.
 *
 * @example
 * ```ts
 * import { parseSize } from "./vm_types.ts";
 * console.log(parseSize("16M")); // 16777216
 * ```
 */
export function parseSize(size: number | string): number {
  if (typeof size === "number") return size;
  const m = /^(\d+)\s*([KMG]?)(i?B)?$/i.exec(size.trim());
  if (!m) throw new RangeError(`bad size "${size}" (use e.g. 16M)`);
  return Number(m[1]) * MEM_UNITS[m[2].toUpperCase()];
}

/** Counters of a VM's TypeScript run loop. */
export interface VmStats {
  /** KVM_EXIT_IOAPIC_EOI exits ignored because the guest enabled directed EOI. */
  suppressedEoiBroadcasts: number;
  /** ExtINT vectors injected for a userspace PIC (split irqchip). */
  extintInjected: number;
  /**
   * Device interrupts (MSIs, routes) KVM refused because of how the guest
   * programmed them; counted and logged (rate-limited), never fatal.
   */
  droppedInterrupts: number;
}
