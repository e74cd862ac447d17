/**
 * Whole-VM snapshots: capture (in memory or to a file, full or diff) and
 * restore (in place with dirty-page rollback, or from a file by
 * copy-on-write mapping or copying). `Vm.snapshot` / `Vm.restore` call
 * into this module through a {@link SnapshotHost}; `restore.ts` adds
 * `restoreVm`. Types are in `snapshot_types.ts`, reading files back in
 * `snapshot_load.ts`, the container format in `snapshot_format.ts`; this
 * module re-exports what callers use.
 *
 * What a snapshot holds: the core's machine state (every vCPU register,
 * MSRs incl. TSC and TSC-deadline, LAPIC, events, MP state, in-kernel
 * irqchip, KVM clock), each plugin's `snapshot()` state keyed by plugin
 * name with its state version, the period of every host tick source (so a
 * PV timer ticks on after restore, re-armed at the next run), the pending
 * work of every host level source, and RAM. Host configuration (ranges,
 * routes, irqfds, which level sources exist) is not state: the restoring
 * VM builds it by attaching the same plugins and creating the same level
 * sources.
 *
 * @module
 */
import { host, type HostFile } from "../ffi/host.ts";
import { restorePlugins } from "./plugin_state.ts";
import type { DeviceState, Plugin } from "../bus/types.ts";
import { hostCpu } from "./host_cpu.ts";
import {
  encodeContainer,
  FLAG_DIFF,
  PAGE,
  patchMemoryCrc,
  SnapshotError,
} from "./snapshot_format.ts";
import {
  checkCompatible,
  loadFileMemory,
  verifyMemory,
} from "./snapshot_load.ts";
import {
  cpuModel,
  type RestoreOptions,
  type SavedDevice,
  type SnapshotFile,
  type SnapshotHost,
  type SnapshotMeta,
  type SnapshotOptions,
  type VmSnapshot,
} from "./snapshot_types.ts";

export { SnapshotError } from "./snapshot_format.ts";
export { loadSnapshot, verifyMemory } from "./snapshot_load.ts";
export * from "./snapshot_types.ts";

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
      levels: h.levelGsis(),
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
    const f = host.open(tmp, {
      read: false,
      write: true,
      createNew: true,
      mode: 0o600,
    });
    try {
      host.chmod(tmp, 0o600); // mode is masked by the umask otherwise
      const saved = h.core.memorySave(tmp, head.length, pages);
      patchMemoryCrc(head, saved.crc, saved.pages);
      writeAll(f, head);
      if (options.durable) f.sync();
    } catch (e) {
      f.close();
      host.remove(tmp);
      throw e;
    }
    f.close();
    host.rename(tmp, path);
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

function writeAll(f: HostFile, b: Uint8Array): void {
  let o = 0;
  while (o < b.length) o += f.writeAt(b.subarray(o), o);
}
