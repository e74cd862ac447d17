/**
 * Options, results and counters of a VM ({@link ./vm.ts}), and size parsing.
 *
 * @module
 */
import type { Clock, LogLevel, Plugin, Range } from "../bus/types.ts";
import type { HostQuirks } from "./quirks.ts";
import { parseSize as parseSizeStrict } from "./options.ts";
import type { CrashReport } from "./crash_report.ts";
import type { CpuOption } from "./cpu_spec.ts";

/** A log sink. */
export type Logger = (level: LogLevel, source: string, msg: string) => void;

/** Irqchip arrangement of a VM. */
export type IrqchipMode = "kernel" | "split";

/** Options of {@link createVm}. */
export interface VmOptions {
  /**
   * Guest RAM in bytes, or a size string like `"16M"` (default 16 MiB): a
   * multiple of 4 KiB from 2 MiB to 1 TiB. Past 2.75 GiB (the MMIO hole:
   * PCI ECAM, BARs, IOAPIC, LAPIC) RAM continues at 4 GiB; the memory map
   * the guest gets says so.
   */
  memory?: number | string;
  /** `kernel` (default): in-kernel PIC/IOAPIC/LAPIC; `split`: our IOAPIC. */
  irqchip?: IrqchipMode;
  /**
   * vCPUs, 1..64 (default 1). vCPU 0 boots and runs on the calling
   * thread; the others (APs) wait for INIT/SIPI from the guest and run on
   * core threads during `run()` (see README, "SMP").
   */
  vcpus?: number;
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
   * What host tick sources do with ticks the guest has not taken yet:
   * `catchup` (default) owes the guest every expiration and delivers the
   * next when the guest acknowledged (EOI) the previous one, up to a
   * backlog cap; `coalesce` merges late expirations into one tick and
   * counts the rest as missed (Hyperlight's behaviour). Catch-up needs an
   * EOI notification: GSI targets (see README, "Paravirtual timer"); a
   * direct-MSI target coalesces either way.
   */
  timerPolicy?: "coalesce" | "catchup";
  /**
   * Catch-up backlog cap in milliseconds worth of ticks (default 1000);
   * owed ticks beyond it are dropped and counted.
   */
  timerBacklogCapMs?: number;
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
  | "sleep"
  | "poweroff"
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
  /** ACPI sleep state for `sleep` (1–4) and `poweroff` (5). */
  readonly state?: number;
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

/**
 * Parse a memory size: a number of bytes or a string like `16M`, `512K`
 * (strict: see {@link parseSizeStrict} in `options.ts`).
 *
 * @example
 * ```ts
 * import { parseSize } from "./vm_types.ts";
 * console.log(parseSize("16M")); // 16777216
 * ```
 */
export function parseSize(size: number | string): number {
  return parseSizeStrict(size, { what: "memory size" });
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
