/**
 * The guest CPU model (`VmOptions.cpu`, the CLI's `--cpu`) and the crash
 * report a failed run carries (`RunResult.crash`): their types and the
 * formatters the CLI uses.
 *
 * ```ts ignore
 * import { createMachine } from "@denovmm/vmm";
 * import { formatCrashReport } from "@denovmm/vmm/cpu";
 * using m = createMachine({ cpu: "host,-x2apic" });
 * m.vm.load("guest.elf");
 * const r = m.vm.run();
 * if (r.crash) console.error(formatCrashReport(r.crash));
 * ```
 *
 * @module
 */
export { type CpuOption, type CpuSpec } from "./vmm/cpu_spec.ts";
export {
  type CpuMode,
  type CrashInstruction,
  type CrashReport,
  formatCrashCompact,
  formatCrashReport,
  type GeneralRegisters,
  type KvmInternalError,
} from "./vmm/crash_report.ts";
