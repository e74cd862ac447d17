/**
 * The CLI's exit codes. A guest's isa-debug-exit status is `(v << 1) | 1`,
 * always odd; the VMM's own codes are all even, so they never collide
 * with a guest's. The guest's success (`v = 0`, status 1), a PV halt and
 * an ACPI power-off (or sleep, which this VMM does not resume from) map
 * to 0.
 *
 * | code          | meaning                                                   |
 * | ------------- | --------------------------------------------------------- |
 * | 0             | guest success: debug-exit v = 0, PV halt, ACPI S5/sleep   |
 * | odd 1–255     | guest debug-exit status `((v << 1) \| 1) & 0xff`, v ≠ 0    |
 * | 2             | usage error (bad option, bad `--config` content)          |
 * | 66            | host file error (missing, permission, directory, too big, not a bootable image) |
 * | 70            | VMM failure (/dev/kvm, a device or the VMM failed)        |
 * | 72            | guest crashed (triple fault, KVM internal error, ...)     |
 * | 124           | `--timeout` expired                                       |
 * | 130           | interrupted (SIGINT, or Ctrl-A x on a terminal)           |
 *
 * @module
 */
import type { RunResult } from "./vm_types.ts";

/** Named exit codes (see the module table). */
export const ExitCode = {
  /** Guest success (debug-exit v = 0, PV halt, ACPI power-off or sleep). */
  Ok: 0,
  /** Bad command line or configuration. */
  Usage: 2,
  /** A host file could not be used. */
  HostFile: 66,
  /** The VMM failed (KVM unavailable, device error, internal error). */
  Vmm: 70,
  /** The guest crashed (shutdown, internal error, failed entry). */
  GuestCrash: 72,
  /** The run timed out. */
  Timeout: 124,
  /** Interrupted by SIGINT or the console escape. */
  Interrupted: 130,
} as const;

/**
 * Process exit code of a finished run: debug-exit v = 0 and halts give 0,
 * other debug-exit statuses pass through (odd, truncated to 8 bits), the
 * rest map to the fixed even codes of {@link ExitCode}.
 *
 * @example
 * ```ts
 * import { exitCodeOf } from "./exit_codes.ts";
 * console.log(exitCodeOf({ reason: "exit", status: 1 })); // 0
 * console.log(exitCodeOf({ reason: "exit", status: 11 })); // 11
 * console.log(exitCodeOf({ reason: "timeout" })); // 124
 * ```
 */
export function exitCodeOf(result: RunResult): number {
  switch (result.reason) {
    case "exit": {
      const s = result.status ?? 1;
      if (s === 1) return ExitCode.Ok;
      // (v << 1) | 1 is odd; keep it odd (and non-zero) after truncation.
      return (s & 0xff) | 1;
    }
    case "halt":
    case "poweroff":
    case "sleep":
      return ExitCode.Ok;
    case "timeout":
      return ExitCode.Timeout;
    case "stopped":
      return ExitCode.Interrupted;
    case "shutdown":
    case "internal-error":
    case "fail-entry":
    case "hlt":
    case "system-event":
      return ExitCode.GuestCrash;
    default:
      return ExitCode.Vmm;
  }
}
