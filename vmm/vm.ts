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
  DeviceState,
  GuestMemory,
  MsiMessage,
  Plugin,
} from "../bus/types.ts";
import { CoreVm } from "../ffi/core_vm.ts";
import { CoreViews } from "./vm_views.ts";
import { lapicInService } from "./extint.ts";
import { RunLoop } from "./run_loop.ts";
import { type AsyncRunOptions, runAsync } from "./run_async.ts";
import { InterruptDelivery } from "./interrupt_delivery.ts";
import { loadElf, loadMultibootKernel } from "./guest_load.ts";
import { PluginContexts } from "./context.ts";
import { attachPlugin, contextHost, vmSettings } from "./vm_host.ts";
import { restorePlugins, snapshotPlugins } from "./plugin_state.ts";
import {
  type CoreTickSource,
  createCoreLevelSource,
  type LevelSource,
} from "./core_sources.ts";
import type { RamView } from "./guest_memory.ts";
import { type HostQuirks, resolveQuirks } from "./quirks.ts";
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

export { interruptVm, stopVm } from "./remote.ts";
export type { LevelSource, LevelSourceStats } from "./core_sources.ts";

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
export class Vm implements Disposable, AsyncDisposable {
  readonly #core: CoreVm;
  readonly #bus: Bus;
  readonly #ram: RamView;
  readonly #views: CoreViews;
  readonly #loop: RunLoop;
  readonly #irq: InterruptDelivery;
  readonly #plugins: Plugin[] = [];
  readonly #contexts: PluginContexts;
  readonly #tickSources: CoreTickSource[] = [];
  /** Open level sources: core id → GSI. */
  readonly #levels = new Map<number, number>();
  readonly #log: Logger;
  #closed = false;
  #snap: SnapshotTracker | undefined;
  /** Irqchip arrangement. */
  readonly irqchip: IrqchipMode;
  /** vCPUs (1..64). */
  readonly vcpus: number;
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
    const settings = vmSettings(options);
    this.irqchip = settings.irqchip;
    this.vcpus = settings.vcpus;
    this.#log = settings.log;
    const strict = options.strict ?? false;
    this.quirks = resolveQuirks(options.quirks);
    this.#core = CoreVm.create({
      memSize: parseMemorySize(options.memory ?? 16 << 20),
      irqchip: this.irqchip,
      strict,
      quirkLevelResignal: this.quirks.levelResignal,
      libraryPath: options.libraryPath,
      vcpus: this.vcpus,
    });
    this.#views = new CoreViews(
      this.#core,
      new Error().stack?.split("\n").slice(2).join("\n") ?? "",
      this.vcpus,
    );
    this.#ram = this.#views.ram;
    this.#irq = new InterruptDelivery(
      this.#core,
      this.irqchip,
      this.stats,
      this.#log,
      () => this.#closed,
    );
    const core = this.#core;
    this.#bus = new Bus({
      strict,
      listener: {
        added: (r, tag) => core.forwardRange(r.space, r.base, r.length, tag),
        removed: (r) => core.removeRange(r.space, r.base),
      },
    });
    this.#loop = new RunLoop({
      core,
      record: this.#views.record,
      records: this.#views.records,
      bus: this.#bus,
      clock: settings.clock,
      stats: this.stats,
      log: this.#log,
      tickSources: this.#tickSources,
      closed: () => this.#closed,
    });
    this.#contexts = new PluginContexts(contextHost({
      vm: this,
      core,
      ram: this.#ram,
      settings,
      bus: this.#bus,
      irq: this.#irq,
      loop: this.#loop,
      tickSources: this.#tickSources,
      closed: () => this.#closed,
    }));
    try {
      if (options.cpu !== undefined) {
        const spec = cpuSpecText(options.cpu);
        for (let i = 0; i < this.vcpus; i++) core.setCpu(i, spec);
      }
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
    attachPlugin(plugin, {
      contexts: this.#contexts,
      bus: this.#bus,
      loop: this.#loop,
      plugins: this.#plugins,
    });
    return this;
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
    this.#irq.setLine(gsi, level);
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
    loadElf(this.#core, image, args);
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
    loadMultibootKernel(this.#core, image, options);
    this.#snap?.hostWroteAll();
  }

  /**
   * The CPUID answer (EAX, EBX, ECX, EDX) vCPU `vcpu` (default 0) gives
   * for `leaf` / `subleaf`, or null when its table has no such entry (see
   * `cpu`).
   */
  cpuid(
    leaf: number,
    subleaf = 0,
    vcpu = 0,
  ): [number, number, number, number] | null {
    this.#alive();
    return this.#core.cpuid(vcpu, leaf, subleaf);
  }

  /**
   * vCPU `vcpu`'s KVM MP state while the VM does not run: 0 runnable, 1
   * uninitialized (an AP waiting for INIT/SIPI), 2 INIT received, 3
   * halted, 4 SIPI received.
   */
  mpState(vcpu: number): number {
    this.#alive();
    return this.#core.mpState(vcpu);
  }

  /**
   * Run vCPU 0 until the guest exits, halts, fails, is stopped or times
   * out. Synchronous: call it in a Worker to keep a thread free. A later
   * `run()` resumes the guest where it stopped, timers re-armed.
   */
  run(options: RunOptions = {}): RunResult {
    this.#alive();
    this.exitStatus = null;
    return this.#loop.run(options);
  }

  /**
   * {@link Vm.run} that keeps the event loop going: synchronous run
   * slices (20 ms by default) with a turn of the event loop between them,
   * so timers, stdin and other promises run while the guest does;
   * `signal` ends it with `stopped` at the next slice boundary. Exits
   * inside a slice cost what they cost in `run()`.
   */
  runAsync(options: AsyncRunOptions = {}): Promise<RunResult> {
    this.#alive();
    // The AP threads keep running between slices (their plugin exits wait
    // for the next slice); anything that needs them still stops them, and
    // so does the end of the async run.
    const slices = {
      run: (o: RunOptions): RunResult => {
        this.#alive();
        this.exitStatus = null;
        return this.#loop.run(o, true);
      },
    };
    return runAsync(slices, options).finally(() => {
      if (!this.#closed) this.#core.stopAps();
    });
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
    this.exitStatus = null;
    this.#loop.reset();
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
      vcpus: this.vcpus,
      plugins: this.#plugins,
      tickSources: this.#tickSources,
      levelGsis: () =>
        [...this.#levels].sort((a, b) => a[0] - b[0]).map(([, gsi]) => gsi),
      resetRunState: () => {
        this.exitStatus = null;
        this.#loop.reset();
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
    return createCoreLevelSource(
      this.#core,
      gsi,
      () => this.#closed,
      this.#levels,
    );
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

  /** True when `vector` is in service in vCPU 0's in-kernel LAPIC. */
  lapicInService(vector: number): boolean {
    this.#alive();
    return lapicInService(this.#core, vector);
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

  /** AP threads running now (0 outside `run()`, and always with one vCPU). */
  apThreads(): number {
    this.#alive();
    return this.#core.info().ap_threads;
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
    this.#views.detach();
    this.#core.destroy();
  }

  /** Same as {@link Vm.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Same as {@link Vm.close} (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
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
