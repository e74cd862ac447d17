/**
 * The shapes of whole-VM snapshots: what one holds ({@link VmSnapshot},
 * {@link SnapshotMeta}), the options of capture and restore, what a `Vm`
 * lends the snapshot code ({@link SnapshotHost}), and the CPU model a
 * snapshot records.
 *
 * @module
 */
import type { Plugin } from "../bus/types.ts";
import type { CoreVm } from "../ffi/core_vm.ts";
import type { CoreTickSource } from "./core_sources.ts";
import type { RamView } from "./guest_memory.ts";
import type { HostCpu } from "./host_cpu.ts";

/** One plugin's saved state. */
export interface SavedDevice {
  /** `state.version` when the state has a numeric one, else 0. */
  version: number;
  /** The JSON-serialisable value of `plugin.snapshot()`. */
  state: unknown;
}

/** Facts about a snapshot (the file's META section). */
export interface SnapshotMeta {
  /** Random id of this snapshot. */
  id: string;
  /** Diff snapshots: id of the snapshot they apply over. */
  parent: string | null;
  /** Creation time (ms since the epoch). */
  created: number;
  /** Host CPU vendor and the feature flags that matter for restore. */
  host: HostCpu;
  /** Irqchip arrangement. */
  irqchip: "kernel" | "split";
  /** vCPUs (absent in snapshots made before SMP: 1). */
  vcpus?: number;
  /** RAM bytes. */
  memorySize: number;
  /** RAM layout: bytes at GPA 0, and where the rest continues. */
  layout: { lowSize: number; highBase: number };
  /** Version of the core's machine-state blob. */
  stateVersion: number;
  /** Names of every plugin attached, in order. */
  plugins: string[];
  /** Period (ns, 0 = disarmed) of every host tick source, in creation order. */
  timers: number[];
  /**
   * Lines of the host level sources (`Vm.createLevelSource`) in the core's
   * order; their pending work is in the machine state. Absent in snapshots
   * made before it was kept.
   */
  levels?: number[];
  /**
   * The guest's CPU model: vCPU 0's CPUID answers (EAX, EBX, ECX, EDX) for
   * {@link CPU_MODEL_LEAVES}; absent in snapshots made before it was kept.
   */
  cpu?: number[][];
}

/**
 * CPUID leaves that define the CPU model a snapshot records (vendor and
 * signature, feature words, extended features, XSAVE, address sizes): a
 * guest restored on another model could take a feature that is gone.
 */
export const CPU_MODEL_LEAVES: readonly (readonly [number, number])[] = [
  [0, 0],
  [1, 0],
  [7, 0],
  [0xd, 0],
  [0x80000000, 0],
  [0x80000001, 0],
  [0x80000008, 0],
];

/** The CPU model of `core`'s vCPU 0 (see {@link SnapshotMeta.cpu}). */
export function cpuModel(core: CoreVm): number[][] {
  // A VM's CPUID is set once, at creation: read it once (a rollback checks
  // it every time, and 8 calls are a tenth of a 1% rollback's budget).
  let model = models.get(core);
  if (model) return model;
  model = CPU_MODEL_LEAVES.map(([leaf, sub]) => {
    const r = core.cpuid(0, leaf, sub) ?? [0, 0, 0, 0];
    // Leaf 1 EBX[31:24] is the APIC ID, a property of the vCPU, not the model.
    return leaf === 1 ? [r[0], r[1] & 0x00ffffff, r[2], r[3]] : [...r];
  });
  models.set(core, model);
  return model;
}
const models = new WeakMap<CoreVm, number[][]>();

/**
 * A VM snapshot: in memory (with a RAM image, made by `vm.snapshot()`) or
 * described by a file (`vm.snapshot(path)`, `loadSnapshot(path)`).
 */
export interface VmSnapshot {
  /** Facts about the snapshot. */
  readonly meta: SnapshotMeta;
  /** The core's machine-state blob. */
  readonly machine: Uint8Array;
  /** Plugin states by plugin name. */
  readonly devices: Readonly<Record<string, SavedDevice>>;
  /** In-memory snapshots: the RAM image (zero pages stay unmaterialised). */
  readonly image: Uint8Array | null;
  /** File snapshots: where the memory image lies. */
  readonly file: SnapshotFile | null;
  /** Diff snapshots: the snapshot this one applies over. */
  readonly base: VmSnapshot | null;
}

/** Where a file snapshot's memory image lies. */
export interface SnapshotFile {
  /** Path of the snapshot file. */
  readonly path: string;
  /** Offset of the memory image in the file. */
  readonly memoryOffset: number;
  /** CRC32 of the image's counted pages. */
  readonly memoryCrc: number;
  /** Diff snapshots: the pages present (u64 bitmap); full: null. */
  readonly pages: BigUint64Array | null;
}

/** Options of `Vm.snapshot`. */
export interface SnapshotOptions {
  /**
   * Write only the pages dirtied since this VM's last file snapshot (a
   * Firecracker-style diff; restore it with its base). Needs a path.
   */
  diff?: boolean;
  /** fsync the file before returning (default false). */
  durable?: boolean;
}

/** Options of `Vm.restore` and `restoreVm`. */
export interface RestoreOptions {
  /**
   * File snapshots: `"map"` (default) makes RAM a private copy-on-write
   * mapping of the file (flat cost; clones share the page cache), `"copy"`
   * reads it into anonymous RAM.
   */
  memory?: "map" | "copy";
  /** Check the memory image's CRC first (reads the whole image). */
  verifyMemory?: boolean;
}

/** What `Vm` lends this module. */
export interface SnapshotHost {
  /** The core VM. */
  readonly core: CoreVm;
  /** Guest RAM view. */
  readonly ram: RamView;
  /** Irqchip arrangement. */
  readonly irqchip: "kernel" | "split";
  /** vCPUs. */
  readonly vcpus: number;
  /** Attached plugins. */
  readonly plugins: readonly Plugin[];
  /** Host tick sources in creation order. */
  readonly tickSources: readonly CoreTickSource[];
  /** Lines of the open level sources (`Vm.createLevelSource`), in the
   * core's order. */
  levelGsis(): number[];
  /** Forget run-local state (pending end, wake-up, window request). */
  resetRunState(): void;
}
