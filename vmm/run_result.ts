/**
 * Run results of the exit reasons that end a run.
 *
 * @module
 */
import { ExitReason } from "../ffi/abi.ts";
import type { ExitRecordView } from "../ffi/exit_record.ts";
import type { RunResult } from "./vm_types.ts";

/** The run result of a reason that ends the run. */
export function endOfRun(r: number, rec: ExitRecordView): RunResult {
  switch (r) {
    case ExitReason.Stopped:
      return { reason: "stopped" };
    case ExitReason.Timeout:
      return { reason: "timeout" };
    case ExitReason.Hlt:
      return { reason: "hlt" };
    case ExitReason.Shutdown:
      return { reason: "shutdown", detail: "guest triple fault or shutdown" };
    case ExitReason.InternalError:
      return {
        reason: "internal-error",
        detail: `KVM internal error, suberror ${rec.arg}`,
      };
    case ExitReason.FailEntry:
      return {
        reason: "fail-entry",
        detail: `VM entry failed, hardware reason 0x${rec.arg.toString(16)}`,
      };
    case ExitReason.SystemEvent:
      return { reason: "system-event", detail: `type ${rec.arg}` };
    case ExitReason.Unclaimed: {
      const what = `${rec.isWrite ? "write to" : "read of"} ${
        rec.space === 0 ? "port" : "MMIO"
      } 0x${rec.address.toString(16)} (${rec.size} bytes)`;
      return { reason: "error", detail: `strict mode: unclaimed ${what}` };
    }
    default:
      return { reason: "error", detail: `unexpected exit reason ${r}` };
  }
}
