/**
 * `createVm`: a KVM virtual machine driven from TypeScript. The vCPU runs
 * inside a synchronous `run()` that returns to TypeScript only for exits a
 * plugin owns; plugins see the VM only through their {@link DeviceContext}.
 *
 * Lifecycle: create → load → run (resumable: a run that ended by timeout
 * or stop continues the guest with its devices live) → close. Views the
 * VM hands out (`memory`, the exit record) are detached at `close()`, so
 * they throw instead of touching freed memory; a reachable view keeps the
 * VM's mapping alive (garbage collection never unmaps under it).
 *
 * @module
 */
import { Bus } from "../bus/bus.ts";
import type {
  Clock,
  DeviceState,
  GuestMemory,
  MsiMessage,
  Plugin,
  Region,
  TickTarget,
} from "../bus/types.ts";
import {
  type ExtIntSource,
  isIrqChipPlugin,
  type LineController,
} from "../bus/irqchip.ts";
import { AbiConst, ExitReason } from "../ffi/abi.ts";
import { CoreVm } from "../ffi/core_vm.ts";
import { ExitRecordView, RECORD_LEN } from "../ffi/exit_record.ts";
import { PluginContexts } from "./context.ts";
import { restorePlugins, snapshotPlugins } from "./plugin_state.ts";
import {
  CoreTickSource,
  createCoreLevelSource,
  DEFAULT_TIMER_BACKLOG_CAP_MS,
  type LevelSource,
} from "./core_sources.ts";
import { RamView } from "./guest_memory.ts";
import { readHostFile } from "./host_file.ts";
import { limitLogger } from "./log_limiter.ts";
import { type HostQuirks, resolveQuirks } from "./quirks.ts";
import { encodeMultibootExtras } from "./multiboot_extras.ts";
import { endOfRun } from "./run_result.ts";
import {
  type RestoreOptions,
  type SnapshotOptions,
  SnapshotTracker,
  type VmSnapshot,
} from "./snapshot.ts";
import { cpuSpecText } from "./cpu_spec.ts";
import { parseMemorySize } from "./options.ts";
import type {
  IrqchipMode,
  Logger,
  MultibootOptions,
  RunOptions,
  RunResult,
  VcpuCounters,
  VmOptions,
  VmStats,
} from "./vm_types.ts";

export type {
  IrqchipMode,
  Logger,
  MultibootModuleSpec,
  MultibootOptions,
  RunOptions,
  RunReason,
  RunResult,
  VcpuCounters,
  VmOptions,
  VmStats,
} from "./vm_types.ts";
export { parseSize } from "./vm_types.ts";

/** A guest argument as a u64: whole numbers only, never silently cut. */
function guestArg(v: number | bigint, i: number): bigint {
  if (typeof v === "number" && !Number.isSafeInteger(v)) {
    throw new RangeError(
      `guest argument ${i}: ${v} is not a whole number below 2^53 (pass a bigint)`,
    );
  }
  const b = BigInt(v);
  if (b < -(2n ** 63n) || b >= 2n ** 64n) {
    throw new RangeError(`guest argument ${i}: ${b} does not fit 64 bits`);
  }
  return BigInt.asUintN(64, b);
}
export { interruptVm, stopVm } from "./remote.ts";
export type { LevelSource, LevelSourceStats } from "./core_sources.ts";

/** LAPIC spurious-vector register: suppress EOI broadcast (SDM 11.8.5). */
const LAPIC_SVR_SUPPRESS_EOI_BROADCAST = 1 << 12;
/** LAPIC register offsets (SDM table 11-1). */
const LAPIC_SVR = 0xf0;
const LAPIC_ISR = 0x100;
/**
 * Exits handled per call of the run slice: `run()` calls the slice many
 * times, so V8 optimizes the slice (with its FFI fast call) through
 * ordinary invocation counting instead of leaving the hot loop in the
 * mid-tier code that on-stack replacement of one long loop ends up in.
 */
const SLICE_EXITS = 64;

const defaultLogger: Logger = (level, source, msg) => {
  if (level === "warn" || level === "error") {
    console.error(`[denovmm ${source}] ${level}: ${msg}`);
  }
};

const realClock: Clock = { now: () => Math.round(performance.now() * 1e6) };

/** What the finalizer needs to release a VM nobody closed. */
interface Holder {
  core: CoreVm;
  /** Buffers (RAM, exit record) still reachable. */
  remaining: number;
  /** Where the VM was created. */
  created: string;
}

let leakWarned = false;
const finalizer = new FinalizationRegistry<Holder>((h) => {
  if (--h.remaining > 0) return;
  if (!leakWarned) {
    leakWarned = true;
    console.error(
      `[denovmm vm] warn: a VM was garbage-collected without close(); ` +
        `close it (or use \`using\`) to release its fds and memory at once. ` +
        `It was created:\n${h.created}`,
    );
  }
  try {
    h.core.destroy();
  } catch {
    // already gone
  }
});

function buffer(address: bigint, length: number): ArrayBuffer {
  const ptr = Deno.UnsafePointer.create(address);
  if (ptr === null) throw new Error("core returned a null pointer");
  return Deno.UnsafePointerView.getArrayBuffer(ptr, length);
}

/**
 * A virtual machine with one vCPU. Create with {@link createVm}.
 *
 * @example
 * ```ts ignore
 * import { createVm } from "./vm.ts";
 * using vm = createVm({ memory: "16M" });
 * vm.load("guests/build/hello.elf");
 * console.log(vm.run({ timeoutMs: 5000 }));
 * ```
 */
export class Vm implements Disposable {
  readonly #core: CoreVm;
  readonly #rec: ExitRecordView;
  readonly #bus: Bus;
  readonly #ram: RamView;
  readonly #buffers: ArrayBuffer[];
  readonly #holder: Holder;
  readonly #plugins: Plugin[] = [];
  readonly #eoiListeners: ((vector: number) => void)[] = [];
  readonly #contexts: PluginContexts;
  readonly #servicePlugins: Plugin[] = [];
  readonly #tickSources: CoreTickSource[] = [];
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #pacing: "absolute" | "relative-sleep";
  readonly #timerPolicy: "coalesce" | "catchup";
  readonly #timerCapMs: number;
  readonly #lineControllers: LineController[] = [];
  #extint: ExtIntSource | undefined;
  #windowRequested = false;
  #end: RunResult | undefined;
  #closed = false;
  #wakeAt: number | null = null;
  #snap: SnapshotTracker | undefined;
  /** Irqchip arrangement. */
  readonly irqchip: IrqchipMode;
  /** Host-quirk workarounds in effect. */
  readonly quirks: HostQuirks;
  /** Status of the last `exit` result, or null. */
  exitStatus: number | null = null;
  /** Run-loop counters. */
  readonly stats: VmStats = {
    suppressedEoiBroadcasts: 0,
    extintInjected: 0,
    droppedInterrupts: 0,
  };

  /** @internal Use {@link createVm}. */
  constructor(options: VmOptions = {}) {
    this.irqchip = options.irqchip ?? "kernel";
    if (this.irqchip !== "kernel" && this.irqchip !== "split") {
      throw new RangeError(`unknown irqchip mode "${this.irqchip}"`);
    }
    this.#log = limitLogger(options.log ?? defaultLogger);
    this.#clock = options.clock ?? realClock;
    this.#pacing = options.timerPacing ?? "absolute";
    this.#timerPolicy = options.timerPolicy ?? "catchup";
    if (this.#timerPolicy !== "catchup" && this.#timerPolicy !== "coalesce") {
      throw new RangeError(
        `unknown timerPolicy "${this.#timerPolicy}" (catchup or coalesce)`,
      );
    }
    this.#timerCapMs = options.timerBacklogCapMs ??
      DEFAULT_TIMER_BACKLOG_CAP_MS;
    if (!(this.#timerCapMs > 0) || !Number.isFinite(this.#timerCapMs)) {
      throw new RangeError(
        `timerBacklogCapMs must be a positive number, not ${this.#timerCapMs}`,
      );
    }
    const strict = options.strict ?? false;
    this.quirks = resolveQuirks(options.quirks);
    this.#core = CoreVm.create({
      memSize: parseMemorySize(options.memory ?? 16 << 20),
      irqchip: this.irqchip,
      strict,
      quirkLevelResignal: this.quirks.levelResignal,
      libraryPath: options.libraryPath,
    });
    const recBuf = buffer(this.#core.recordAddress(0), RECORD_LEN);
    const mem = this.#core.memory();
    const ramBuf = buffer(mem.address, mem.size);
    this.#buffers = [recBuf, ramBuf];
    this.#rec = new ExitRecordView(recBuf);
    this.#ram = new RamView(new Uint8Array(ramBuf), {
      lowSize: Math.min(mem.size, AbiConst.DV_RAM_HOLE_START),
      highBase: AbiConst.DV_RAM_HIGH_BASE,
    });
    this.#holder = {
      core: this.#core,
      remaining: 2,
      created: new Error().stack?.split("\n").slice(2).join("\n") ?? "",
    };
    for (const b of this.#buffers) {
      finalizer.register(b, this.#holder, this.#holder);
    }
    const core = this.#core;
    this.#contexts = new PluginContexts(this.#host);
    this.#bus = new Bus({
      strict,
      listener: {
        added: (r, tag) => core.forwardRange(r.space, r.base, r.length, tag),
        removed: (r) => core.removeRange(r.space, r.base),
      },
    });
    try {
      if (options.cpu !== undefined) core.setCpu(0, cpuSpecText(options.cpu));
      for (const r of options.ignoredPorts ?? []) {
        core.ignoreRange(r.space, r.base, r.length, 0xffffffffn);
      }
      for (const p of options.plugins ?? []) this.add(p);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  #alive(): void {
    if (this.#closed) throw new Error("VM is closed");
  }

  /** Handle of the VM in the core (usable from other threads). */
  get handle(): number {
    return this.#core.handle;
  }

  /** The bus (ranges and counters). */
  get bus(): Bus {
    return this.#bus;
  }

  /** Guest RAM (bounds-checked; throws after `close()`). */
  get memory(): GuestMemory {
    return this.#ram;
  }

  /** Attached plugins. */
  get plugins(): readonly Plugin[] {
    return this.#plugins;
  }

  /** Attach a plugin: calls its `setup` and claims its regions. */
  add(plugin: Plugin): this {
    this.#alive();
    if (this.#plugins.some((p) => p.name === plugin.name)) {
      throw new Error(`a plugin named "${plugin.name}" is already attached`);
    }
    const regions = plugin.setup(
      isIrqChipPlugin(plugin)
        ? this.#contexts.irqchip(plugin.name)
        : this.#contexts.device(plugin.name),
    );
    const added: Region[] = [];
    try {
      for (const r of regions) {
        this.#bus.add(r, plugin.name);
        added.push(r);
      }
    } catch (e) {
      for (const r of added) this.#bus.remove(r);
      throw e;
    }
    this.#plugins.push(plugin);
    if (plugin.service) this.#servicePlugins.push(plugin);
    return this;
  }

  get #host() {
    return {
      core: this.#core,
      irqchip: this.irqchip,
      memory: this.#ram,
      clock: this.#clock,
      closed: () => this.#closed,
      log: this.#log,
      addRegion: (r: Region, owner: string) => this.#bus.add(r, owner),
      removeRegion: (r: Region) => void this.#bus.remove(r),
      setLine: (gsi: number, level: boolean) => this.#setLine(gsi, level),
      signalMsi: (msg: MsiMessage) => this.#deliver(msg),
      routeMsi: (gsi: number, msg: MsiMessage | null) => {
        try {
          if (msg === null) this.#core.routeClear(gsi);
          else this.#core.routeSetMsi(gsi, msg.address, msg.data);
        } catch (e) {
          this.#drop(`route of GSI ${gsi}`, e);
        }
      },
      exit: (status: number) => {
        this.exitStatus = status;
        this.#end = { reason: "exit", status };
      },
      halt: () => {
        this.#end ??= { reason: "halt" };
      },
      sleep: (state: number) => {
        this.#end ??= { reason: state === 5 ? "poweroff" : "sleep", state };
      },
      createTickSource: (target: TickTarget) => {
        const t = new CoreTickSource(
          this.#core,
          target,
          this.#pacing,
          this.#timerPolicy,
          this.#timerCapMs,
        );
        this.#tickSources.push(t);
        return t;
      },
      addEoiListener: (fn: (vector: number) => void) =>
        void this.#eoiListeners.push(fn),
      addLineController: (c: LineController) =>
        void this.#lineControllers.push(c),
      setExtint: (src: ExtIntSource) => {
        if (this.#extint) {
          throw new Error("the VM already has an ExtINT source");
        }
        this.#extint = src;
      },
    };
  }

  #setLine(gsi: number, level: boolean): void {
    if (this.irqchip === "kernel") {
      this.#core.irqLine(gsi, level);
    } else if (this.#lineControllers.length > 0) {
      for (const c of this.#lineControllers) c.setLevel(gsi, level);
    } else {
      this.#log(
        "warn",
        "vm",
        `GSI ${gsi} raised but no IOAPIC plugin is attached`,
      );
    }
  }

  /**
   * A device's MSI: the message comes from guest-programmed state (an
   * IOAPIC entry, an MSI-X table), so a message KVM refuses (for example
   * lowest-priority delivery to physical destination 0xFF) is a counted,
   * rate-limited drop, never a failed run.
   */
  #deliver(msg: MsiMessage): boolean {
    if (this.#closed) return false;
    const rc = this.#core.signalMsi(msg.address, msg.data);
    if (rc >= 0) return rc > 0;
    try {
      this.#core.check(rc, "signal MSI");
    } catch (e) {
      this.#drop(
        `MSI 0x${msg.address.toString(16)}/0x${msg.data.toString(16)}`,
        e,
      );
    }
    return false;
  }

  #drop(what: string, e: unknown): void {
    this.stats.droppedInterrupts++;
    this.#log("warn", "vm", `${what} dropped: ${(e as Error).message}`);
  }

  /**
   * Deliver an MSI now (KVM_SIGNAL_MSI). Returns false if KVM blocked it;
   * throws for a message KVM refuses (an address outside the LAPIC window).
   */
  signalMsi(msg: MsiMessage): boolean {
    this.#alive();
    const rc = this.#core.signalMsi(msg.address, msg.data);
    return this.#core.check(rc, "signal MSI") > 0;
  }

  /**
   * Inject `vector` at LAPIC `destination` (built on KVM_SIGNAL_MSI).
   * Returns false if KVM reported the interrupt as blocked.
   */
  requestVirtualInterrupt(
    vector: number,
    destination = 0,
    trigger: "edge" | "level" = "edge",
  ): boolean {
    this.#alive();
    return this.#core.requestInterrupt(
      vector,
      destination,
      trigger === "level",
      false,
    ) > 0;
  }

  /** Drive a GSI line from the host (KVM_IRQ_LINE or our IOAPIC). */
  setIrqLine(gsi: number, level: boolean): void {
    this.#alive();
    this.#setLine(gsi, level);
  }

  /**
   * Load an ELF64 image (bytes or a file path) and set the long-mode entry
   * state with up to four 64-bit arguments in RDI, RSI, RDX, RCX.
   */
  load(
    image: Uint8Array | string,
    args: readonly (number | bigint)[] = [],
  ): void {
    this.#alive();
    const bytes = typeof image === "string"
      ? readHostFile(image, { what: "guest image" })
      : image;
    if (args.length > 4) throw new RangeError("at most 4 guest arguments");
    const a = new BigUint64Array(4);
    args.forEach((v, i) => a[i] = guestArg(v, i));
    this.#core.loadElf(bytes, a);
    this.#snap?.hostWroteAll();
  }

  /**
   * Load a Multiboot v1 kernel (ELF32, ELF64 or a.out-kludge image; bytes
   * or a path) with a command line and modules, and set the protected-mode
   * entry state the Multiboot spec defines (EAX = 0x2BADB002, EBX = info).
   * The kernel must switch to long mode itself (this host's KVM cannot run
   * 32-bit `iret` or `int n`).
   */
  loadMultiboot(
    image: Uint8Array | string,
    options: MultibootOptions = {},
  ): void {
    this.#alive();
    const bytes = typeof image === "string"
      ? readHostFile(image, { what: "multiboot kernel" })
      : image;
    this.#core.loadMultiboot(
      bytes,
      encodeMultibootExtras(options, typeof image === "string" ? image : ""),
    );
    this.#snap?.hostWroteAll();
  }

  /**
   * The CPUID answer (EAX, EBX, ECX, EDX) vCPU 0 gives for `leaf` /
   * `subleaf`, or null when its table has no such entry (see `cpu`).
   */
  cpuid(leaf: number, subleaf = 0): [number, number, number, number] | null {
    this.#alive();
    return this.#core.cpuid(0, leaf, subleaf);
  }

  /**
   * Run vCPU 0 until the guest exits, halts, fails, is stopped or times
   * out. Synchronous: call it in a Worker to keep a thread free. A later
   * `run()` resumes the guest where it stopped, timers re-armed.
   */
  run(options: RunOptions = {}): RunResult {
    this.#alive();
    this.#end = undefined;
    this.exitStatus = null;
    const core = this.#core;
    const timed = options.timeoutMs !== undefined;
    if (timed) {
      const ms = options.timeoutMs!;
      if (!(ms > 0) || !Number.isFinite(ms)) {
        throw new RangeError(`timeoutMs must be a positive number, not ${ms}`);
      }
      core.setTimeout(Math.max(1, Math.round(ms * 1e6)));
    }
    try {
      for (const t of this.#tickSources) t.resume();
      for (;;) {
        const end = this.#slice();
        if (end !== undefined) return end;
      }
    } catch (e) {
      return { reason: "error", detail: (e as Error).message };
    } finally {
      if (!this.#closed) {
        if (timed) core.setTimeout(0);
        for (const t of this.#tickSources) t.suspend();
      }
    }
  }

  /** Up to {@link SLICE_EXITS} exits; the run's result when it ends. */
  #slice(): RunResult | undefined {
    const core = this.#core;
    const rec = this.#rec;
    for (let i = 0; i < SLICE_EXITS; i++) {
      const r = core.run(0);
      if (r === ExitReason.Io || r === ExitReason.Mmio) {
        this.#dispatch(r === ExitReason.Io ? "pio" : "mmio", rec);
      } else if (r < 0) {
        core.check(r, "run");
      } else {
        const end = this.#other(r, rec);
        if (end !== undefined) return end;
      }
      if (this.#servicePlugins.length > 0) this.#service();
      if (this.#extint !== undefined) {
        this.#pollExtint(r === ExitReason.IrqWindow);
      }
      if (this.#end !== undefined) return this.#end;
    }
    return undefined;
  }

  #dispatch(space: "pio" | "mmio", rec: ExitRecordView): void {
    const size = rec.size;
    const count = rec.count;
    const address = rec.address;
    const isWrite = rec.isWrite;
    const vcpu = rec.vcpu;
    const tag = rec.region;
    for (let i = 0; i < count; i++) {
      this.#bus.dispatchTagged(
        tag,
        space,
        address,
        size,
        isWrite,
        rec.data(size, i),
        vcpu,
      );
    }
  }

  #other(r: number, rec: ExitRecordView): RunResult | undefined {
    switch (r) {
      case ExitReason.IoapicEoi:
        // SDM 11.8.5: with "suppress EOI broadcast" (SVR bit 12, offered by
        // KVM's LAPIC in split mode) a LAPIC EOI is not broadcast to the
        // IOAPICs; the guest EOIs through the IOAPIC's EOI register. KVM
        // still reports the exit, so the filter is ours.
        if (this.#eoiBroadcastSuppressed()) {
          this.stats.suppressedEoiBroadcasts++;
          return undefined;
        }
        for (const fn of this.#eoiListeners) fn(rec.arg);
        return undefined;
      case ExitReason.Wake:
        this.#wakeAt = null;
        return undefined;
      case ExitReason.IrqWindow:
        return undefined;
      default:
        return endOfRun(r, rec, this.#core);
    }
  }

  /**
   * Split irqchip ExtINT (SDM 10.5.1, KVM api.rst KVM_INTERRUPT): while the
   * PIC's INT output is high, inject at once if KVM said at this exit that
   * the vCPU can take it (run INTA, KVM_INTERRUPT), else keep an interrupt
   * window requested and inject at the window exit.
   */
  #pollExtint(windowOpen: boolean): void {
    const src = this.#extint!;
    const core = this.#core;
    if (
      src.interruptPending && (windowOpen || core.readyForInjection(0))
    ) {
      const vector = src.acknowledge() & 0xff;
      if (core.injectExtint(0, vector)) {
        this.stats.extintInjected++;
      } else {
        this.#log(
          "warn",
          "vm",
          `ExtINT vector ${vector} could not be injected at the window`,
        );
      }
    }
    const want = src.interruptPending;
    if (want !== this.#windowRequested) {
      core.setIrqWindow(0, want);
      this.#windowRequested = want;
    }
  }

  #service(): void {
    const now = this.#clock.now();
    let next: number | null = null;
    for (const p of this.#servicePlugins) {
      const d = p.service!(now);
      if (d !== null && (next === null || d < next)) next = d;
    }
    if (next !== null && next !== this.#wakeAt) {
      this.#wakeAt = next;
      this.#core.setWake(Math.max(1, Math.round(next - now)));
    }
  }

  /**
   * Return the VM to power-on state, as a fresh `createVm` would be: the
   * vCPU, the in-kernel irqchip and every plugin (`Plugin.reset`), no
   * timer armed, and (unless `memory: false`) guest RAM zeroed. Then
   * `load()` + `run()` boot again. Plugins, ranges and host-side sources
   * stay attached. Not while running.
   */
  reset(options: { memory?: boolean } = {}): void {
    this.#alive();
    this.#core.reset(options.memory ?? true);
    this.#snap?.hostWroteAll();
    for (const t of this.#tickSources) t.forget();
    this.#contexts.reset();
    for (const p of this.#plugins) p.reset?.();
    this.#end = undefined;
    this.exitStatus = null;
    this.#wakeAt = null;
    this.#windowRequested = false;
  }

  /**
   * The state of every plugin that has one (`Plugin.snapshot`), by plugin
   * name: versioned plain data, JSON-serialisable. Not while running.
   */
  snapshotDevices(): Record<string, DeviceState> {
    this.#alive();
    return snapshotPlugins(this.#plugins);
  }

  /**
   * Restore plugin states from {@link Vm.snapshotDevices} (of a VM with
   * the same plugins). Every state is checked first: an unknown plugin
   * name, a missing state or a state a plugin refuses throws and changes
   * nothing.
   */
  restoreDevices(states: Record<string, DeviceState>): void {
    this.#alive();
    restorePlugins(this.#plugins, states);
  }

  /**
   * Snapshot the stopped VM (see `vmm/snapshot.ts` and the README's
   * "Snapshots"): without `path` an in-memory snapshot (RAM copied,
   * zero pages skipped) that {@link Vm.restore} rolls back to by copying
   * only the pages changed since; with `path` a file (mode 0600; with
   * `diff: true` only the pages changed since the last file snapshot).
   * Not while running.
   */
  snapshot(path?: string, options?: SnapshotOptions): VmSnapshot {
    this.#alive();
    return this.#tracker().capture(path, options);
  }

  /**
   * Put the VM back to `snap`: machine state, devices, tick sources
   * (re-armed at the next run) and RAM (only changed pages for an
   * in-memory snapshot of this VM; a copy-on-write mapping or a copy for
   * a file). The VM must have the snapshot's plugins, RAM size and
   * irqchip. Not while running.
   */
  restore(snap: VmSnapshot, options?: RestoreOptions): void {
    this.#alive();
    this.#tracker().restore(snap, options);
  }

  /** Stop tracking changes for an in-memory snapshot no longer needed. */
  forgetSnapshot(snap: VmSnapshot): void {
    this.#snap?.forget(snap);
  }

  #tracker(): SnapshotTracker {
    return this.#snap ??= new SnapshotTracker({
      core: this.#core,
      ram: this.#ram,
      irqchip: this.irqchip,
      plugins: this.#plugins,
      tickSources: this.#tickSources,
      resetRunState: () => {
        this.#end = undefined;
        this.exitStatus = null;
        this.#wakeAt = null;
        this.#windowRequested = false;
      },
    });
  }

  /**
   * Stop a running vCPU (from any thread via {@link stopVm}): the current
   * run returns `stopped`, or the next one if none runs. A no-op after
   * close.
   */
  stop(): void {
    if (this.#closed) return;
    this.#core.stop();
  }

  /**
   * Start a host-side level-triggered interrupt source on `gsi`: the VM's
   * event thread asserts the line through an irqfd while it has work,
   * learns of each EOI through the resample eventfd (KVM's, or our
   * IOAPIC's in split mode), retires one work item per EOI and re-asserts
   * while work remains. It is the device model of an INTx line without
   * TypeScript in the loop; tests and benchmarks use it.
   */
  createLevelSource(gsi: number): LevelSource {
    this.#alive();
    return createCoreLevelSource(this.#core, gsi, () => this.#closed);
  }

  /** Run-loop counters (not while running). */
  counters(): VcpuCounters {
    this.#alive();
    const c = this.#core.counters(0);
    return {
      exits: c.exits,
      fastPath: c.fast_path,
      forwarded: c.forwarded,
      unclaimedReads: c.unclaimed_reads,
      unclaimedWrites: c.unclaimed_writes,
    };
  }

  #eoiBroadcastSuppressed(): boolean {
    const [svr] = this.#core.lapicRead(0, [LAPIC_SVR]);
    return (svr & LAPIC_SVR_SUPPRESS_EOI_BROADCAST) !== 0;
  }

  /** True when `vector` is in service in vCPU 0's in-kernel LAPIC. */
  lapicInService(vector: number): boolean {
    this.#alive();
    const [w] = this.#core.lapicRead(0, [LAPIC_ISR + 0x10 * (vector >> 5)]);
    return ((w >>> (vector & 31)) & 1) === 1;
  }

  /** TSC frequency of vCPU 0 in kHz. */
  tscKhz(): number {
    this.#alive();
    return this.#core.tscKhz(0);
  }

  /** Number of armed host timers of this VM. */
  armedTimers(): number {
    this.#alive();
    return this.#core.info().timers_armed;
  }

  /** Whether the VM's core event thread exists (timers, alarms, level sources). */
  hasEventThread(): boolean {
    this.#alive();
    return this.#core.info().event_thread === 1;
  }

  /**
   * Close plugins and free the VM (idempotent). Every view of its memory
   * and exit record is detached first, so later reads throw.
   */
  close(): void {
    if (this.#closed) return;
    for (const p of this.#plugins) {
      try {
        p.close?.();
      } catch (e) {
        this.#log("warn", p.name, `close failed: ${(e as Error).message}`);
      }
    }
    this.#closed = true;
    finalizer.unregister(this.#holder);
    for (const b of this.#buffers) b.transfer(0);
    this.#core.destroy();
  }

  /** Same as {@link Vm.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Create a VM.
 *
 * @example
 * ```ts ignore
 * import { createVm } from "./vm.ts";
 * using vm = createVm({ memory: "16M", irqchip: "kernel" });
 * ```
 */
export function createVm(options: VmOptions = {}): Vm {
  return new Vm(options);
}
