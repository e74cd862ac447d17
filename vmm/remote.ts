/**
 * Operations on a VM by handle from any thread (the main thread driving a
 * VM whose vCPU runs in a Worker).
 *
 * @module
 */
import { CoreVmRef } from "../ffi/core_vm.ts";

/**
 * Stop a VM from any thread by its handle (for example the main thread
 * stopping a VM that runs in a Worker): its current or next run returns
 * `stopped`.
 *
 * @example
 * ```ts ignore
 * import { stopVm } from "./remote.ts";
 * stopVm(handleFromWorker);
 * ```
 */
export function stopVm(handle: number, libraryPath?: string): void {
  new CoreVmRef(handle, libraryPath).stop();
}

/**
 * Inject `vector` at LAPIC `destination` of a VM by handle, from any
 * thread; built on KVM_SIGNAL_MSI. Returns false if KVM reported the
 * interrupt as blocked.
 *
 * @example
 * ```ts ignore
 * import { interruptVm } from "./remote.ts";
 * interruptVm(handleFromWorker, 0x20);
 * ```
 */
export function interruptVm(
  handle: number,
  vector: number,
  destination = 0,
  trigger: "edge" | "level" = "edge",
  libraryPath?: string,
): boolean {
  return new CoreVmRef(handle, libraryPath).requestInterrupt(
    vector,
    destination,
    trigger === "level",
  ) > 0;
}
