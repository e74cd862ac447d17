/**
 * Options, results and counters of a VM ({@link ./vm.ts}), and size parsing.
 *
 * @module
 */
import type { Clock, LogLevel, Plugin, Range } from "../bus/types.ts";
import type { HostQuirks } from "./quirks.ts";
import { AbiConst } from "../ffi/abi.ts";

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
  K: 2 ** 10,
  M: 2 ** 20,
  G: 2 ** 30,
  T: 2 ** 40,
};

/**
 * Parse a memory size: a whole number of bytes or a string like `16M`,
 * `512K`, `4G`, `1TiB`. Throws a `RangeError` naming the value for
 * anything else (fractions, NaN, Infinity, negative, past 2^53).
 *
 * @example
 * ```ts
 * import { parseSize } from "./vm_types.ts";
 * console.log(parseSize("16M")); // 16777216
 * ```
 */
export function parseSize(size: number | string): number {
  let n: number;
  if (typeof size === "number") {
    n = size;
  } else if (typeof size === "string") {
    const m = /^(\d+)\s*([KMGT]?)(i?B)?$/i.exec(size.trim());
    if (!m) throw new RangeError(`bad size "${size}" (use e.g. 16M)`);
    n = Number(m[1]) * MEM_UNITS[m[2].toUpperCase()];
  } else {
    throw new TypeError(`bad size ${String(size)} (a number or e.g. "16M")`);
  }
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(
      `bad size ${fmt(size)}: not a whole number of bytes`,
    );
  }
  return n;
}

const fmt = (v: unknown) => typeof v === "string" ? `"${v}"` : String(v);

/**
 * Validate a guest RAM size (`VmOptions.memory`): a multiple of 4 KiB
 * from 2 MiB to 1 TiB. RAM past 2.75 GiB continues at 4 GiB, around the
 * MMIO hole.
 *
 * @example
 * ```ts
 * import { memorySize } from "./vm_types.ts";
 * console.log(memorySize("4G")); // 4294967296
 * ```
 */
export function memorySize(size: number | string): number {
  const n = parseSize(size);
  const { DV_MIN_MEM: min, DV_MAX_MEM: max } = AbiConst;
  if (n < min || n > max || n % 4096 !== 0) {
    throw new RangeError(
      `memory ${fmt(size)} must be a multiple of 4 KiB from ${
        min >> 20
      } MiB to ${max / 2 ** 40} TiB`,
    );
  }
  return n;
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
