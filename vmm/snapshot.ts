/**
 * Whole-VM snapshots: capture (in memory or to a file, full or diff) and
 * restore (in place with dirty-page rollback, or from a file by
 * copy-on-write mapping or copying). `Vm.snapshot` / `Vm.restore` call
 * into this module through a {@link SnapshotHost}; `restore.ts` adds
 * `restoreVm` and `loadSnapshot`.
 *
 * What a snapshot holds: the core's machine state (every vCPU register,
 * MSRs incl. TSC and TSC-deadline, LAPIC, events, MP state, in-kernel
 * irqchip, KVM clock), each plugin's `snapshot()` state keyed by plugin
 * name with its state version, the period of every host tick source (so a
 * PV timer ticks on after restore, re-armed at the next run), and RAM.
 * Host configuration (ranges, routes, irqfds, level sources) is not
 * state: the restoring VM builds it by attaching the same plugins.
 *
 * @module
 */
import { restorePlugins } from "./plugin_state.ts";
import type { DeviceState, Plugin } from "../bus/types.ts";
import type { CoreVm } from "../ffi/core_vm.ts";
import { memoryFileCrc } from "../ffi/core_vm.ts";
import type { CoreTickSource } from "./core_sources.ts";
import type { RamView } from "./guest_memory.ts";
import { type HostCpu, hostCpu, hostMismatch } from "./host_cpu.ts";
import {
  encodeContainer,
  FLAG_DIFF,
  PAGE,
  patchMemoryCrc,
  readContainer,
  SnapshotError,
} from "./snapshot_format.ts";

export { SnapshotError } from "./snapshot_format.ts";

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
  return CPU_MODEL_LEAVES.map(([leaf, sub]) => {
    const r = core.cpuid(0, leaf, sub) ?? [0, 0, 0, 0];
    // Leaf 1 EBX[31:24] is the APIC ID, a property of the vCPU, not the model.
    return leaf === 1 ? [r[0], r[1] & 0x00ffffff, r[2], r[3]] : [...r];
  });
}

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
  /** Forget run-local state (pending end, wake-up, window request). */
  resetRunState(): void;
}

type Snapshottable = Plugin & {
  snapshot?(): unknown;
  restore?(state: unknown): void;
};

function stateVersion(s: unknown): number {
  const v = (s as { version?: unknown } | null)?.version;
  return typeof v === "number" ? v : 0;
}

function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Per-VM snapshot bookkeeping: KVM dirty logging (on from the first
 * snapshot), one "pages changed since" bitmap per live in-memory snapshot
 * and one since the last file snapshot, and pages the host wrote.
 */
export class SnapshotTracker {
  readonly #host: SnapshotHost;
  readonly #words: number;
  #logging = false;
  /** Bitmaps of pages changed since each live in-memory snapshot. */
  readonly #since = new Map<string, BigUint64Array>();
  /** Pages changed since the last file snapshot (diff base). */
  #sinceFile: { id: string; bits: BigUint64Array; snap: VmSnapshot } | null =
    null;
  readonly #scratch: BigUint64Array;
  #hostAll = false;
  readonly #hostPages: BigUint64Array;
  /** `#hostPages` as u32 words: BigInt arithmetic costs ~100x more. */
  readonly #hostPages32: Uint32Array;

  /** Bookkeeping for the VM behind `host`. */
  constructor(host: SnapshotHost) {
    this.#host = host;
    this.#words = host.core.bitmapWords();
    this.#scratch = new BigUint64Array(this.#words);
    this.#hostPages = new BigUint64Array(this.#words);
    this.#hostPages32 = new Uint32Array(this.#hostPages.buffer);
    host.ram.trackWrites((index, length) => this.hostWrote(index, length));
  }

  /** The host wrote `[index, index + length)` of the RAM mapping. */
  hostWrote(index: number, length: number): void {
    if (length <= 0) return;
    const first = Math.floor(index / PAGE);
    const last = Math.floor((index + length - 1) / PAGE);
    const bits = this.#hostPages32;
    for (let p = first; p <= last; p++) bits[p >>> 5] |= 1 << (p & 31);
  }

  /** The core rewrote RAM wholesale (load, reset): every page changed. */
  hostWroteAll(): void {
    this.#hostAll = true;
  }

  /** Fold KVM's log and host writes into every tracked bitmap. */
  #sync(): void {
    if (!this.#logging) return;
    const s = this.#scratch;
    s.fill(0n);
    this.#host.core.dirtyBitmap(s);
    if (this.#hostAll) s.fill(~0n);
    or(s, this.#hostPages);
    this.#hostPages.fill(0n);
    this.#hostAll = false;
    for (const b of this.#since.values()) or(b, s);
    if (this.#sinceFile) or(this.#sinceFile.bits, s);
  }

  #startLogging(): void {
    if (this.#logging) return;
    this.#host.core.dirtyLog(true);
    this.#logging = true;
  }

  /** Capture a snapshot (see `Vm.snapshot`). */
  capture(path?: string, options: SnapshotOptions = {}): VmSnapshot {
    const h = this.#host;
    this.#startLogging();
    this.#sync();
    const machine = h.core.stateSave();
    const devices: Record<string, SavedDevice> = {};
    for (const p of h.plugins as Snapshottable[]) {
      if (typeof p.snapshot !== "function") continue;
      const state = p.snapshot();
      // Keep exactly what a file would keep.
      const json = JSON.parse(JSON.stringify(state ?? null));
      devices[p.name] = { version: stateVersion(state), state: json };
    }
    const size = h.ram.size;
    const meta: SnapshotMeta = {
      id: randomId(),
      parent: null,
      created: Date.now(),
      host: hostCpu(),
      irqchip: h.irqchip,
      vcpus: h.vcpus,
      memorySize: size,
      layout: h.ram.split,
      stateVersion: new DataView(machine.buffer).getUint32(4, true),
      plugins: h.plugins.map((p) => p.name),
      timers: h.tickSources.map((t) => t.periodNs),
      cpu: cpuModel(h.core),
    };
    if (path === undefined) {
      if (options.diff) throw new TypeError("a diff snapshot needs a path");
      const image = new Uint8Array(size);
      h.core.memoryCopy(image, null, false);
      this.#since.set(meta.id, new BigUint64Array(this.#words));
      return { meta, machine, devices, image, file: null, base: null };
    }
    const diffOf = options.diff ? this.#sinceFile : null;
    if (options.diff && !diffOf) {
      throw new TypeError(
        "a diff snapshot needs an earlier file snapshot of this VM as its base",
      );
    }
    meta.parent = diffOf?.id ?? null;
    const pages = diffOf ? diffOf.bits.slice() : null;
    const sections = new Map<string, Uint8Array>([
      ["META", new TextEncoder().encode(JSON.stringify(meta))],
      ["CPUS", machine],
      ["DEVS", new TextEncoder().encode(JSON.stringify(devices))],
    ]);
    if (pages) sections.set("DIRT", new Uint8Array(pages.buffer));
    const head = encodeContainer({
      flags: pages ? FLAG_DIFF : 0,
      memorySize: size,
      memoryCrc: 0,
      memoryPages: 0,
    }, sections);
    // Written beside the target and renamed over it: a reader never sees
    // a half-written snapshot, and no truncation of an old file (which
    // ext4 answers with a synchronous flush) is involved.
    const tmp = `${path}.tmp-${meta.id.slice(0, 8)}`;
    const f = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o600 });
    try {
      Deno.chmodSync(tmp, 0o600); // mode is masked by the umask otherwise
      const saved = h.core.memorySave(tmp, head.length, pages);
      patchMemoryCrc(head, saved.crc, saved.pages);
      writeAll(f, head);
      if (options.durable) f.syncSync();
    } catch (e) {
      f.close();
      Deno.removeSync(tmp);
      throw e;
    }
    f.close();
    Deno.renameSync(tmp, path);
    const file: SnapshotFile = {
      path,
      memoryOffset: head.length,
      memoryCrc: new DataView(head.buffer).getUint32(40, true),
      pages,
    };
    const snap: VmSnapshot = {
      meta,
      machine,
      devices,
      image: null,
      file,
      base: diffOf?.snap ?? null,
    };
    this.#sinceFile = {
      id: meta.id,
      bits: new BigUint64Array(this.#words),
      snap,
    };
    return snap;
  }

  /** Stop tracking an in-memory snapshot (`Vm.forget`). */
  forget(snap: VmSnapshot): void {
    this.#since.delete(snap.meta.id);
  }

  /** Restore `snap` into this VM (see `Vm.restore`). */
  restore(snap: VmSnapshot, options: RestoreOptions = {}): void {
    const h = this.#host;
    checkCompatible(snap, h);
    // Validate device states against the plugins before changing anything.
    const plugins = h.plugins as Snapshottable[];
    for (const [name, d] of Object.entries(snap.devices)) {
      const p = plugins.find((q) => q.name === name)!;
      if (typeof p.restore !== "function") {
        throw new SnapshotError(
          "mismatch",
          `plugin "${name}" has saved state but no restore()`,
        );
      }
      const mine = typeof p.snapshot === "function"
        ? stateVersion(p.snapshot())
        : d.version;
      if (mine !== d.version) {
        throw new SnapshotError(
          "mismatch",
          `plugin "${name}": saved state version ${d.version}, this plugin's is ${mine}`,
        );
      }
    }
    if (options.verifyMemory) verifyMemory(snap);
    // Devices first, all-or-nothing: a state a plugin refuses leaves the
    // whole VM as it was.
    try {
      restorePlugins(
        h.plugins,
        Object.fromEntries(
          Object.entries(snap.devices).map((
            [name, d],
          ) => [name, structuredClone(d.state) as DeviceState]),
        ),
      );
    } catch (e) {
      throw new SnapshotError("mismatch", (e as Error).message);
    }
    // A plugin's restore may have armed its tick source: keep it still
    // until the next run, so no tick lands while the machine is replaced.
    h.tickSources.forEach((t, i) => t.restorePeriod(snap.meta.timers[i]));
    // Dirty logging serves the snapshots this VM tracks; a fresh clone
    // tracks none, and turning logging on would cost it a memslot update.
    if (this.#since.size > 0 || this.#sinceFile) {
      this.#startLogging();
      this.#sync();
    }
    const tracked = this.#since.get(snap.meta.id);
    let changed: BigUint64Array | null = null; // pages rewritten, null = all
    if (snap.image && tracked) {
      h.core.memoryCopy(snap.image, tracked, true);
      changed = tracked.slice();
      tracked.fill(0n);
    } else if (snap.image) {
      h.core.memoryCopy(snap.image, null, true);
    } else {
      loadFileMemory(h.core, snap, options.memory ?? "map");
    }
    // The copy itself wrote RAM from the host: KVM did not see it.
    for (const [id, b] of this.#since) {
      if (id === snap.meta.id) continue;
      if (changed) or(b, changed);
      else b.fill(~0n);
    }
    if (this.#sinceFile) {
      if (changed) or(this.#sinceFile.bits, changed);
      else this.#sinceFile.bits.fill(~0n);
    }
    h.core.stateLoad(snap.machine);
    h.resetRunState();
  }
}

function or(dst: BigUint64Array, src: BigUint64Array): void {
  const d = new Uint32Array(dst.buffer, dst.byteOffset, dst.length * 2);
  const s = new Uint32Array(src.buffer, src.byteOffset, src.length * 2);
  for (let i = 0; i < d.length; i++) d[i] |= s[i];
}

function writeAll(f: Deno.FsFile, b: Uint8Array): void {
  f.seekSync(0, Deno.SeekMode.Start);
  let o = 0;
  while (o < b.length) o += f.writeSync(b.subarray(o));
}

/** Throw a `mismatch` SnapshotError unless `snap` fits the VM of `h`. */
function checkCompatible(snap: VmSnapshot, h: SnapshotHost): void {
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

function loadFileMemory(
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
    !Array.isArray(meta.timers) || meta.memorySize !== c.header.memorySize
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
