/**
 * Snapshots beyond `vm.snapshot()` / `vm.restore()` / `restoreVm()` (which
 * the root module exports): reading a snapshot file's facts without
 * restoring it, and the error a snapshot that cannot be used raises.
 *
 * ```ts ignore
 * import { loadSnapshot, SnapshotError } from "@denovmm/vmm/snapshot";
 * try {
 *   console.log(loadSnapshot("/var/lib/vm.snap").meta.memorySize);
 * } catch (e) {
 *   if (e instanceof SnapshotError) console.error(e.kind, e.message);
 * }
 * ```
 *
 * @module
 */
export { loadSnapshot, SnapshotError } from "./vmm/snapshot.ts";
export type {
  SavedDevice,
  SnapshotFile,
  SnapshotMeta,
} from "./vmm/snapshot.ts";
export type { SnapshotErrorKind } from "./vmm/snapshot_format.ts";
export type { HostCpu } from "./vmm/host_cpu.ts";
