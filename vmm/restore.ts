/**
 * `restoreVm`: a fresh VM from a snapshot (a file path or a
 * {@link VmSnapshot}), in this process or another. With the default
 * `memory: "map"` RAM is a private copy-on-write mapping of the file, so N
 * clones of one file share its page cache and restoring costs about as
 * much as creating an empty VM, whatever the memory size.
 *
 * @module
 */
import type { RestoreOptions, VmSnapshot } from "./snapshot.ts";
import { loadSnapshot } from "./snapshot.ts";
import { createVm, type Vm } from "./vm.ts";
import type { VmOptions } from "./vm_types.ts";

/** Options of {@link restoreVm}. */
export interface RestoreVmOptions extends RestoreOptions {
  /**
   * Options of the new VM: the same plugins (fresh instances, by name) the
   * snapshot's VM had. RAM size, irqchip and vCPU count come from the snapshot; when
   * given they must match it.
   */
  vm?: VmOptions;
  /** Diff snapshot files: the base snapshot (a path or a snapshot). */
  base?: string | VmSnapshot;
}

/**
 * Create a VM and restore `source` into it.
 *
 * @example
 * ```ts ignore
 * import { restoreVm } from "./restore.ts";
 * using vm = restoreVm("/tmp/guest.snap", { vm: { plugins: [] } });
 * vm.run({ timeoutMs: 1000 });
 * ```
 */
export function restoreVm(
  source: string | VmSnapshot,
  options: RestoreVmOptions = {},
): Vm {
  const base = typeof options.base === "string"
    ? loadSnapshot(options.base)
    : options.base;
  const snap = typeof source === "string" ? loadSnapshot(source, base) : source;
  const o = options.vm ?? {};
  const vm = createVm({
    ...o,
    memory: o.memory ?? snap.meta.memorySize,
    irqchip: o.irqchip ?? snap.meta.irqchip,
    vcpus: o.vcpus ?? snap.meta.vcpus ?? 1,
  });
  try {
    vm.restore(snap, options);
  } catch (e) {
    vm.close();
    throw e;
  }
  return vm;
}
