/**
 * Reading snapshots back: {@link loadSnapshot} parses and checks a file
 * (and its diff base), {@link checkCompatible} refuses a snapshot that
 * does not fit a VM, {@link loadFileMemory} puts a file's memory image
 * into RAM, and {@link verifyMemory} checks its CRC.
 *
 * @module
 */
import { type CoreVm, memoryFileCrc } from "../ffi/core_vm.ts";
import { hostCpu, hostMismatch } from "./host_cpu.ts";
import { FLAG_DIFF, readContainer, SnapshotError } from "./snapshot_format.ts";
import {
  CPU_MODEL_LEAVES,
  cpuModel,
  type SavedDevice,
  type SnapshotHost,
  type SnapshotMeta,
  type VmSnapshot,
} from "./snapshot_types.ts";

/** Throw a `mismatch` SnapshotError unless `snap` fits the VM of `h`. */
export function checkCompatible(snap: VmSnapshot, h: SnapshotHost): void {
  const m = snap.meta;
  const bad = (msg: string): never => {
    throw new SnapshotError("mismatch", msg);
  };
  if (m.irqchip !== h.irqchip) {
    bad(`snapshot has the ${m.irqchip} irqchip, this VM the ${h.irqchip}`);
  }
  if ((m.vcpus ?? 1) !== h.vcpus) {
    bad(`snapshot has ${m.vcpus ?? 1} vCPUs, this VM ${h.vcpus}`);
  }
  if (m.memorySize !== h.ram.size) {
    bad(`snapshot has ${m.memorySize} bytes of RAM, this VM ${h.ram.size}`);
  }
  const host = hostMismatch(m.host, hostCpu());
  if (host) bad(host);
  const have = h.plugins.map((p) => p.name);
  const missing = m.plugins.filter((n) => !have.includes(n));
  const extra = have.filter((n) => !m.plugins.includes(n));
  if (missing.length || extra.length) {
    bad(
      `plugins differ: snapshot has [${m.plugins.join(", ")}], this VM [${
        have.join(", ")
      }]` +
        (missing.length ? `; missing ${missing.join(", ")}` : "") +
        (extra.length ? `; extra ${extra.join(", ")}` : ""),
    );
  }
  if (m.timers.length !== h.tickSources.length) {
    bad(
      `snapshot has ${m.timers.length} tick sources, this VM ${h.tickSources.length}`,
    );
  }
  const levels = h.levelGsis();
  if (m.levels && m.levels.join() !== levels.join()) {
    bad(
      `snapshot has level sources on GSI [${m.levels.join(", ")}], this VM ` +
        `on [${levels.join(", ")}] (create the same sources with ` +
        "Vm.createLevelSource, then vm.restore(snapshot))",
    );
  }
  if (m.cpu) {
    const mine = cpuModel(h.core);
    const i = m.cpu.findIndex((r, k) => r.join() !== mine[k]?.join());
    if (i >= 0) {
      const hex = (v: number) => `0x${(v >>> 0).toString(16)}`;
      const [leaf] = CPU_MODEL_LEAVES[i];
      bad(
        `CPU model differs at CPUID leaf ${hex(leaf)}: snapshot [${
          m.cpu[i].map(hex).join(" ")
        }], this VM [${mine[i].map(hex).join(" ")}] (create it with the ` +
          "snapshot's `cpu` option)",
      );
    }
  }
}

/**
 * Put the memory image of file snapshot `snap` (over its base, for a
 * diff) into `core`'s RAM: mapped copy-on-write or copied.
 */
export function loadFileMemory(
  core: CoreVm,
  snap: VmSnapshot,
  mode: "map" | "copy",
): void {
  const f = snap.file!;
  if (f.pages) {
    if (!snap.base) {
      throw new SnapshotError(
        "mismatch",
        `${f.path} is a diff snapshot: restore it with its base`,
      );
    }
    loadFileMemory(core, snap.base, mode);
    core.memoryLoad(f.path, f.memoryOffset, false, f.pages);
    return;
  }
  core.memoryLoad(f.path, f.memoryOffset, mode === "map", null);
}

/** Check the memory image CRC of a file snapshot (and its bases). */
export function verifyMemory(snap: VmSnapshot): void {
  for (let s: VmSnapshot | null = snap; s; s = s.base) {
    const f = s.file;
    if (!f) continue;
    const got = memoryFileCrc(
      f.path,
      f.memoryOffset,
      s.meta.memorySize,
      f.pages,
    );
    if (got.crc !== f.memoryCrc) {
      throw new SnapshotError(
        "corrupt",
        `${f.path}: memory image checksum mismatch (${
          got.crc.toString(16)
        }, header says ${f.memoryCrc.toString(16)})`,
      );
    }
  }
}

/**
 * Read a snapshot file's header and state (not its memory). A diff
 * snapshot needs `base` (its parent, checked by id).
 *
 * @example
 * ```ts ignore
 * import { loadSnapshot } from "./snapshot.ts";
 * const snap = loadSnapshot("/tmp/guest.snap");
 * console.log(snap.meta.memorySize, Object.keys(snap.devices));
 * ```
 */
export function loadSnapshot(path: string, base?: VmSnapshot): VmSnapshot {
  const c = readContainer(path);
  const need = (tag: string): Uint8Array => {
    const s = c.sections.get(tag);
    if (!s) throw new SnapshotError("corrupt", `${path}: no ${tag} section`);
    return s;
  };
  const json = (tag: string): unknown => {
    try {
      return JSON.parse(new TextDecoder().decode(need(tag)));
    } catch (e) {
      if (e instanceof SnapshotError) throw e;
      throw new SnapshotError("corrupt", `${path}: ${tag} is not JSON`);
    }
  };
  const meta = json("META") as SnapshotMeta;
  if (
    typeof meta?.id !== "string" || !Array.isArray(meta.plugins) ||
    !Array.isArray(meta.timers) || meta.memorySize !== c.header.memorySize ||
    (meta.levels !== undefined && !Array.isArray(meta.levels))
  ) {
    throw new SnapshotError("corrupt", `${path}: META section is malformed`);
  }
  const diff = (c.header.flags & FLAG_DIFF) !== 0;
  let pages: BigUint64Array | null = null;
  if (diff) {
    const d = need("DIRT");
    pages = new BigUint64Array(d.slice().buffer, 0, d.length >>> 3);
    if (!base) {
      throw new SnapshotError(
        "mismatch",
        `${path} is a diff snapshot over ${meta.parent}: pass its base`,
      );
    }
    if (base.meta.id !== meta.parent) {
      throw new SnapshotError(
        "mismatch",
        `${path} is a diff over snapshot ${meta.parent}, not ${base.meta.id}`,
      );
    }
  }
  return {
    meta,
    machine: need("CPUS").slice(),
    devices: json("DEVS") as Record<string, SavedDevice>,
    image: null,
    file: {
      path,
      memoryOffset: c.header.memoryOffset,
      memoryCrc: c.header.memoryCrc,
      pages,
    },
    base: diff ? base! : null,
  };
}
