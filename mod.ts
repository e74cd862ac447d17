/**
 * denovmm: a Deno-native, plugin-driven x86-64 KVM virtual machine monitor
 * with a Rust core.
 *
 * The root module is the deliberate public surface: the machine and the
 * VM, the device-plugin contract, the little-endian helpers and the
 * built-in plugin factories. Device classes, their register constants and
 * states live in `@denovmm/vmm/plugins`; the unit-test kit for device
 * authors in `@denovmm/vmm/testing`; the command line in
 * `@denovmm/vmm/cli`.
 *
 * ```ts ignore
 * import { createMachine } from "@denovmm/vmm";
 * let text = "";
 * using m = createMachine({ serialOutput: (b) => text += String.fromCharCode(b) });
 * m.vm.load("guests/build/hello.elf", [3]);
 * console.log(m.vm.run({ timeoutMs: 5000 }), text); // { reason: "exit", status: 7 }
 * ```
 *
 * @module
 */

// The plugin contract.
export type {
  Access,
  Clock,
  DeviceContext,
  DeviceState,
  GuestMemory,
  InterruptLine,
  LogLevel,
  Mapping,
  MsiInterrupt,
  MsiMessage,
  Plugin,
  Range,
  Region,
  Space,
  TickCounters,
  TickSource,
  TickTarget,
  TriggerMode,
} from "./bus/types.ts";
export { readLe, writeLe } from "./bus/le.ts";

// The VM.
export {
  createVm,
  interruptVm,
  type IrqchipMode,
  type LevelSource,
  type LevelSourceStats,
  type Logger,
  type MultibootModuleSpec,
  type MultibootOptions,
  type RunOptions,
  type RunReason,
  type RunResult,
  stopVm,
  type VcpuCounters,
  type Vm,
  type VmOptions,
  type VmStats,
} from "./vmm/vm.ts";
export type { HostQuirks } from "./vmm/quirks.ts";
export { type AsyncRunOptions, runAsync } from "./vmm/run_async.ts";
export type {
  RestoreOptions,
  SnapshotOptions,
  VmSnapshot,
} from "./vmm/snapshot.ts";
export { restoreVm, type RestoreVmOptions } from "./vmm/restore.ts";
export type { Bus, BusStats } from "./bus/bus.ts";
export { CoreError } from "./ffi/library.ts";
export { CoreCode as ErrorCode } from "./ffi/abi.ts";

// The standard machine and running a VM in a worker.
export {
  createMachine,
  type Machine,
  type MachineOptions,
  type TimerDelivery,
} from "./vmm/machine.ts";
export {
  type RemoteVm,
  spawnVm,
  type WorkerOutcome,
  type WorkerSetup,
} from "./vmm/worker_host.ts";

// The standard machine's plugins (every factory, device class, option and
// register constant: `@denovmm/vmm/plugins`).
export type { SerialPlugin } from "./plugins/serial/plugin.ts";
export type { PvTimerPlugin } from "./plugins/pv_timer/plugin.ts";
export type { PicPlugin } from "./plugins/pic/plugin.ts";
export type { IoapicPlugin } from "./plugins/ioapic/plugin.ts";
