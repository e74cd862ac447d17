/**
 * Run results of the exit reasons that end a run. Failures (internal
 * error, shutdown, failed entry, strict-mode unclaimed access) carry a
 * crash report of the vCPU: structured in `RunResult.crash`, summarised
 * in `detail`.
 *
 * @module
 */
import { ExitReason } from "../ffi/abi.ts";
import type { ExitRecordView } from "../ffi/exit_record.ts";
import {
  type CrashReport,
  decodeCrashReport,
  formatCrashCompact,
  type RawCrashReport,
} from "./crash_report.ts";
import type { RunResult } from "./vm_types.ts";

/** Where the crash report of a vCPU comes from (a `CoreVm`). */
export interface CrashSource {
  /** The raw report of vCPU `vcpu` (not while it runs). */
  crashReport(vcpu: number): RawCrashReport;
}

function crashOf(
  source: CrashSource | undefined,
  vcpu: number,
): CrashReport | undefined {
  if (!source) return undefined;
  try {
    return decodeCrashReport(source.crashReport(vcpu));
  } catch {
    return undefined; // the failure itself is reported either way
  }
}

function failure(
  reason: RunResult["reason"],
  what: string,
  crash: CrashReport | undefined,
): RunResult {
  if (!crash) return { reason, detail: what };
  return { reason, detail: `${what} ${formatCrashCompact(crash)}`, crash };
}

/** KVM exit reasons of a failed VM entry worth naming (SDM appendix C). */
const ENTRY_FAILURES: Record<number, string> = {
  33: "invalid guest state",
  34: "MSR loading",
  41: "machine-check event",
};

/**
 * The run result of a reason that ends the run; `source` supplies the
 * crash report of failures.
 */
export function endOfRun(
  r: number,
  rec: ExitRecordView,
  source?: CrashSource,
): RunResult {
  switch (r) {
    case ExitReason.Stopped:
      return { reason: "stopped" };
    case ExitReason.Timeout:
      return { reason: "timeout" };
    case ExitReason.Hlt:
      return { reason: "hlt" };
    case ExitReason.Shutdown:
      return failure(
        "shutdown",
        "guest triple fault or shutdown",
        crashOf(source, rec.vcpu),
      );
    case ExitReason.InternalError: {
      const crash = crashOf(source, rec.vcpu);
      const name = crash?.kvm ? ` (${crash.kvm.name})` : "";
      return failure(
        "internal-error",
        `KVM internal error, suberror ${rec.arg}${name}`,
        crash,
      );
    }
    case ExitReason.FailEntry: {
      const why = ENTRY_FAILURES[rec.arg & 0xffff];
      return failure(
        "fail-entry",
        `VM entry failed, hardware reason 0x${rec.arg.toString(16)}${
          why ? ` (${why})` : ""
        }`,
        crashOf(source, rec.vcpu),
      );
    }
    case ExitReason.SystemEvent:
      return { reason: "system-event", detail: `type ${rec.arg}` };
    case ExitReason.Unclaimed: {
      const what = `${rec.isWrite ? "write to" : "read of"} ${
        rec.space === 0 ? "port" : "MMIO"
      } 0x${rec.address.toString(16)} (${rec.size} bytes)`;
      return failure(
        "error",
        `strict mode: unclaimed ${what}`,
        crashOf(source, rec.vcpu),
      );
    }
    default:
      return { reason: "error", detail: `unexpected exit reason ${r}` };
  }
}
