/**
 * `createVm`: a KVM virtual machine driven from TypeScript. The vCPU runs
 * inside a synchronous `run()` that returns to TypeScript only for exits a
 * plugin owns; plugins see the VM only through their {@link PluginContext}.
 *
 * @module
 */
import { Bus, formatRange } from "../bus/bus.ts";
import type {
  Clock,
  ExtIntSource,
  IrqLine,
  LineController,
  LogLevel,
  Mapping,
  MsiIrqfd,
  MsiMessage,
  Plugin,
  PluginContext,
  Range,
  Region,
  TickSource,
  TickTarget,
} from "../bus/types.ts";
import { ExitReason, ExitRecordView, RECORD_LEN } from "../ffi/exit_record.ts";
import {
  type CoreLibrary,
  type CoreSymbols,
  openLibrary,
} from "../ffi/library.ts";
import { RamView } from "./guest_memory.ts";

/** Irqchip arrangement of a VM. */
export type IrqchipMode = "kernel" | "split";

/** A log sink. */
export type Logger = (level: LogLevel, source: string, msg: string) => void;

/** Options of {@link createVm}. */
export interface VmOptions {
  /** Guest RAM in bytes, or a size string like `"16M"` (default 16 MiB). */
  memory?: number | string;
  /** `kernel` (default): in-kernel PIC/IOAPIC/LAPIC; `split`: our IOAPIC. */
  irqchip?: IrqchipMode;
  /** Fail the run on an access no plugin claimed (default: read all-ones). */
  strict?: boolean;
  /** Plugins to attach, in order. */
  plugins?: readonly Plugin[];
  /** Ports answered in the Rust fast path (writes ignored, reads 0xFF). */
  ignoredPorts?: readonly Range[];
  /** Log sink (default: warnings and errors to stderr). */
  log?: Logger;
  /** Clock handed to plugins (default: `performance.now()` in ns). */
  clock?: Clock;
  /** Path of the core library (default: `$DENOVMM_LIB` or the build). */
  libraryPath?: string;
  /**
   * How host tick sources pace their ticks: `absolute` (default; timerfd
   * with absolute deadlines, drift-free) or `relative-sleep` (a thread that
   * sleeps one period between ticks, as Hyperlight does; it drifts, and
   * exists only as the baseline of `bench/run_timer_bench.ts`).
   */
  timerPacing?: "absolute" | "relative-sleep";
}

/** How a run ended. */
export type RunReason =
  | "exit"
  | "halt"
  | "stopped"
  | "timeout"
  | "shutdown"
  | "hlt"
  | "internal-error"
  | "fail-entry"
  | "system-event"
  | "error";

/** Result of {@link Vm.run}. */
export interface RunResult {
  /** Why the run ended. */
  readonly reason: RunReason;
  /** Guest exit status for `exit` (isa-debug-exit: `(v << 1) | 1`). */
  readonly status?: number;
  /** Human-readable detail for failures. */
  readonly detail?: string;
}

/** A Multiboot module. */
export interface MultibootModuleSpec {
  /** Contents, or a file path. */
  bytes: Uint8Array | string;
  /** Module command line. */
  cmdline?: string;
}

/** Options of {@link Vm.loadMultiboot}. */
export interface MultibootOptions {
  /** Kernel command line (serve the same one through fw_cfg). */
  cmdline?: string;
  /** Boot modules, placed page-aligned after the kernel. */
  modules?: MultibootModuleSpec[];
}

/** Options of {@link Vm.run}. */
export interface RunOptions {
  /** End the run with reason `timeout` after this many milliseconds. */
  timeoutMs?: number;
}

/** Run-loop counters of vCPU 0. */
export interface VcpuCounters {
  /** All KVM exits. */
  exits: number;
  /** Exits handled in the Rust fast path. */
  fastPath: number;
  /** Exits returned to TypeScript. */
  forwarded: number;
  /** Unclaimed reads answered with all-ones in the core. */
  unclaimedReads: number;
  /** Unclaimed writes ignored in the core. */
  unclaimedWrites: number;
}

const MEM_UNITS: Record<string, number> = {
  "": 1,
  K: 1 << 10,
  M: 1 << 20,
  G: 1 << 30,
};

/**
 * Parse a memory size: a number of bytes or a string like `16M`, `512K`.
 *
 * @example
 * ```ts
 * import { parseSize } from "./vm.ts";
 * console.log(parseSize("16M")); // 16777216
 * ```
 */
export function parseSize(size: number | string): number {
  if (typeof size === "number") return size;
  const m = /^(\d+)\s*([KMG]?)(i?B)?$/i.exec(size.trim());
  if (!m) throw new RangeError(`bad size "${size}" (use e.g. 16M)`);
  return Number(m[1]) * MEM_UNITS[m[2].toUpperCase()];
}

const SPACE_CODE = { pio: 0, mmio: 1 } as const;

/** LAPIC spurious-vector register: suppress EOI broadcast (SDM 11.8.5). */
const LAPIC_SVR_SUPPRESS_EOI_BROADCAST = 1 << 12;

/** Counters of a {@link LevelSource}. */
export interface LevelSourceStats {
  /** Line assertions. */
  asserts: number;
  /** EOIs seen (one work item retired each). */
  eois: number;
  /** Work items left. */
  pending: number;
  /** Mean assert → EOI round trip (ns). */
  meanRttNs: number;
  /** Shortest round trip (ns). */
  minRttNs: number;
  /** Longest round trip (ns). */
  maxRttNs: number;
  /**
   * Split irqchip: assertions the vCPU re-signalled with KVM_SIGNAL_MSI
   * because the irqfd's message never reached the LAPIC (a nested-KVM
   * quirk on this project's machines; 0 on healthy hosts).
   */
  reinjected: number;
}

/** A host-thread level interrupt source (see {@link Vm.createLevelSource}). */
export interface LevelSource {
  /** The line. */
  readonly gsi: number;
  /** Add `n` work items; each raises the line until its EOI. */
  add(n: number): void;
  /** Counters. */
  stats(): LevelSourceStats;
  /** Stop the thread and unregister the irqfd. */
  close(): void;
}

/** Counters of a VM's TypeScript run loop. */
export interface VmStats {
  /** KVM_EXIT_IOAPIC_EOI exits ignored because the guest enabled directed EOI. */
  suppressedEoiBroadcasts: number;
  /** ExtINT vectors injected for a userspace PIC (split irqchip). */
  extintInjected: number;
}

const defaultLogger: Logger = (level, source, msg) => {
  if (level === "warn" || level === "error") {
    console.error(`[denovmm ${source}] ${level}: ${msg}`);
  }
};

const realClock: Clock = { now: () => Math.round(performance.now() * 1e6) };

const finalizer = new FinalizationRegistry<
  { symbols: CoreSymbols; handle: bigint }
>(({ symbols, handle }) => {
  symbols.dv_vm_destroy(handle);
});

/**
 * Stop a VM from any thread by its handle (for example the main thread
 * stopping a VM that runs in a Worker). Idempotent.
 *
 * @example
 * ```ts ignore
 * import { stopVm } from "./vm.ts";
 * stopVm(handleFromWorker);
 * ```
 */
export function stopVm(handle: bigint, libraryPath?: string): void {
  const lib = openLibrary(libraryPath);
  lib.check(lib.symbols.dv_vm_control(handle, 0, 0n), "stop");
}

/**
 * Inject `vector` at LAPIC `destination` of a VM by handle, from any thread
 * (for example the main thread while the vCPU runs in a Worker); built on
 * KVM_SIGNAL_MSI. Returns false if KVM reported the interrupt as blocked.
 *
 * @example
 * ```ts ignore
 * import { interruptVm } from "./vm.ts";
 * interruptVm(handleFromWorker, 0x20);
 * ```
 */
export function interruptVm(
  handle: bigint,
  vector: number,
  destination = 0,
  trigger: "edge" | "level" = "edge",
  libraryPath?: string,
): boolean {
  const lib = openLibrary(libraryPath);
  const flags = trigger === "level" ? 1n : 0n;
  return lib.check(
    lib.symbols.dv_irq(handle, 2, vector, destination, flags),
    "request virtual interrupt",
  ) > 0;
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
  readonly #lib: CoreLibrary;
  readonly #sym: CoreSymbols;
  readonly #handle: bigint;
  readonly #rec: ExitRecordView;
  readonly #bus: Bus;
  readonly #ram: RamView;
  readonly #plugins: Plugin[] = [];
  readonly #eoiPlugins: Plugin[] = [];
  readonly #servicePlugins: Plugin[] = [];
  readonly #tickSources: CoreTickSource[] = [];
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #pacing: 0 | 1;
  readonly #out = new BigUint64Array(8);
  readonly #lineControllers: LineController[] = [];
  #extint: ExtIntSource | undefined;
  #windowRequested = false;
  #end: RunResult | undefined;
  #closed = false;
  #wakeAt: number | null = null;
  /** Irqchip arrangement. */
  readonly irqchip: IrqchipMode;
  /** Status of the last `exit` result, or null. */
  exitStatus: number | null = null;
  /** Run-loop counters. */
  readonly stats: VmStats = { suppressedEoiBroadcasts: 0, extintInjected: 0 };

  /** @internal Use {@link createVm}. */
  constructor(options: VmOptions = {}) {
    this.#lib = openLibrary(options.libraryPath);
    this.#sym = this.#lib.symbols;
    this.irqchip = options.irqchip ?? "kernel";
    if (this.irqchip !== "kernel" && this.irqchip !== "split") {
      throw new RangeError(`unknown irqchip mode "${this.irqchip}"`);
    }
    this.#log = options.log ?? defaultLogger;
    this.#clock = options.clock ?? realClock;
    this.#pacing = options.timerPacing === "relative-sleep" ? 1 : 0;
    const mem = parseSize(options.memory ?? 16 << 20);
    const strict = options.strict ?? false;
    this.#lib.check(
      this.#sym.dv_vm_create(
        BigInt(mem),
        this.irqchip === "kernel" ? 0 : 1,
        strict ? 1 : 0,
        this.#out,
      ),
      "create VM",
    );
    this.#handle = this.#out[0];
    finalizer.register(
      this,
      { symbols: this.#sym, handle: this.#handle },
      this,
    );
    this.#query(1, 0, 1);
    this.#rec = new ExitRecordView(this.#buffer(this.#out[0], RECORD_LEN));
    this.#query(0, 0, 2);
    this.#ram = new RamView(
      new Uint8Array(this.#buffer(this.#out[0], Number(this.#out[1]))),
    );
    const core = this.#sym;
    const handle = this.#handle;
    const lib = this.#lib;
    /** dv_vm_range: `op` 0 add / 1 remove; `action` 0 forward / 1 ignore. */
    const range = (op: 0 | 1, r: Range, action: 0 | 1, what: string) =>
      lib.check(
        core.dv_vm_range(
          handle,
          op,
          SPACE_CODE[r.space],
          BigInt(r.base),
          BigInt(op === 0 ? r.length : 0),
          action,
          action === 1 ? 0xffffffffn : 0n,
        ),
        `${what} ${formatRange(r)}`,
      );
    this.#bus = new Bus({
      strict,
      listener: {
        added: (r) => range(0, r, 0, "claim"),
        removed: (r) => range(1, r, 0, "release"),
      },
    });
    for (const r of options.ignoredPorts ?? []) range(0, r, 1, "fast-path");
    try {
      for (const p of options.plugins ?? []) this.add(p);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  #buffer(address: bigint, length: number): ArrayBuffer {
    const ptr = Deno.UnsafePointer.create(address);
    if (ptr === null) throw new Error("core returned a null pointer");
    return Deno.UnsafePointerView.getArrayBuffer(ptr, length);
  }

  #query(what: number, arg: number, n: number): BigUint64Array {
    this.#alive();
    this.#lib.check(
      this.#sym.dv_vm_query(
        this.#handle,
        what,
        arg,
        this.#out,
        BigInt(this.#out.length),
      ),
      "query",
    );
    return this.#out.subarray(0, n);
  }

  #alive(): void {
    if (this.#closed) throw new Error("VM is closed");
  }

  /** Opaque handle of the VM in the core (usable from other threads). */
  get handle(): bigint {
    return this.#handle;
  }

  /** The bus (ranges and counters). */
  get bus(): Bus {
    return this.#bus;
  }

  /** Guest RAM (bounds-checked). */
  get memory(): RamView {
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
    if (plugin.lineController || plugin.extint) {
      if (this.irqchip !== "split") {
        throw new Error(
          `${plugin.name}: a userspace interrupt controller needs irqchip "split"`,
        );
      }
      if (plugin.extint && this.#extint) {
        throw new Error(`${plugin.name}: the VM already has an ExtINT source`);
      }
    }
    const regions = plugin.setup(this.#context(plugin.name));
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
    if (plugin.eoi) this.#eoiPlugins.push(plugin);
    if (plugin.service) this.#servicePlugins.push(plugin);
    if (plugin.lineController) {
      this.#lineControllers.push(plugin.lineController);
    }
    if (plugin.extint) this.#extint = plugin.extint;
    return this;
  }

  #context(source: string): PluginContext {
    // deno-lint-ignore no-this-alias
    const vm = this;
    const sym = this.#sym;
    const lib = this.#lib;
    const h = this.#handle;
    const lines = new Map<number, IrqLine>();
    return {
      irqLine(gsi: number): IrqLine {
        if (!Number.isInteger(gsi) || gsi < 0 || gsi > 1023) {
          throw new RangeError(`${source}: bad GSI ${gsi}`);
        }
        let line = lines.get(gsi);
        if (!line) {
          const set = (level: boolean) => vm.#setLine(gsi, level);
          line = {
            gsi,
            set,
            pulse() {
              set(true);
              set(false);
            },
          };
          lines.set(gsi, line);
        }
        return line;
      },
      signalMsi(msg: MsiMessage): void {
        vm.signalMsi(msg);
      },
      memory: this.#ram,
      clock: this.#clock,
      log: (level, msg) => this.#log(level, source, msg),
      map: (region: Region): Mapping => {
        this.#bus.add(region, source);
        let mapped = true;
        return {
          range: region.range,
          unmap: () => {
            if (mapped && !this.#closed) this.#bus.remove(region);
            mapped = false;
          },
        };
      },
      exit: (status: number) => {
        this.exitStatus = status;
        this.#end = { reason: "exit", status };
      },
      halt: () => {
        this.#end ??= { reason: "halt" };
      },
      createTickSource: (target: TickTarget): TickSource => {
        const t = new CoreTickSource(lib, sym, h, target, this.#pacing);
        this.#tickSources.push(t);
        return t;
      },
      lapicEoi: () => {
        lib.check(sym.dv_irq(h, 3, 0, 0, 0n), "LAPIC EOI");
      },
      msiIrqfd: (): MsiIrqfd => {
        const gsi = lib.check(sym.dv_irq(h, 6, 0, 0, 0n), "allocate GSI");
        const id = lib.check(
          sym.dv_event(h, 0, gsi, 0, 0n),
          `irqfd on GSI ${gsi}`,
        );
        let closed = false;
        return {
          gsi,
          route: (msg: MsiMessage | null) => this.#routeMsi(gsi, msg),
          fire() {
            lib.check(sym.dv_event(h, 1, id, 0, 0n), "fire irqfd");
          },
          mask() {
            lib.check(sym.dv_event(h, 6, id, 0, 0n), "detach irqfd");
          },
          unmask() {
            lib.check(sym.dv_event(h, 6, id, 1, 0n), "attach irqfd");
            return lib.check(sym.dv_event(h, 7, id, 0, 0n), "irqfd pending") ===
              1;
          },
          close: () => {
            if (closed || this.#closed) return;
            closed = true;
            lib.check(sym.dv_event(h, 2, id, 0, 0n), "close irqfd");
            this.#routeMsi(gsi, null);
          },
        };
      },
      resample: (gsi: number) => {
        if (this.irqchip === "split") {
          lib.check(sym.dv_event(h, 5, gsi, 0, 0n), `resample GSI ${gsi}`);
        }
      },
      routeMsi: (gsi: number, msg: MsiMessage | null) =>
        this.#routeMsi(gsi, msg),
    };
  }

  /** Set (or clear: no-op when none) the MSI route of `gsi` in the core. */
  #routeMsi(gsi: number, msg: MsiMessage | null): void {
    const h = this.#handle;
    if (msg === null) {
      this.#lib.check(
        this.#sym.dv_irq(h, 5, gsi, 0, 0n),
        `clear route of GSI ${gsi}`,
      );
    } else {
      this.#lib.check(
        this.#sym.dv_irq(h, 4, gsi, msg.data >>> 0, BigInt(msg.address)),
        `route GSI ${gsi}`,
      );
    }
  }

  #setLine(gsi: number, level: boolean): void {
    if (this.irqchip === "kernel") {
      this.#lib.check(
        this.#sym.dv_irq(this.#handle, 0, gsi, level ? 1 : 0, 0n),
        `IRQ line ${gsi}`,
      );
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

  /** Deliver an MSI now (KVM_SIGNAL_MSI). Returns false if KVM blocked it. */
  signalMsi(msg: MsiMessage): boolean {
    this.#alive();
    const rc = this.#lib.check(
      this.#sym.dv_irq(this.#handle, 1, 0, msg.data >>> 0, BigInt(msg.address)),
      "signal MSI",
    );
    return rc > 0;
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
    const flags = trigger === "level" ? 1 : 0;
    return this.#lib.check(
      this.#sym.dv_irq(this.#handle, 2, vector, destination, BigInt(flags)),
      "request virtual interrupt",
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
    const bytes = typeof image === "string" ? Deno.readFileSync(image) : image;
    if (args.length > 4) throw new RangeError("at most 4 guest arguments");
    const a = new BigUint64Array(4);
    args.forEach((v, i) => a[i] = BigInt.asUintN(64, BigInt(v)));
    this.#lib.check(
      this.#sym.dv_vm_load_elf(this.#handle, bytes, BigInt(bytes.length), a),
      typeof image === "string" ? `load ${image}` : "load image",
    );
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
    const bytes = typeof image === "string" ? Deno.readFileSync(image) : image;
    const enc = new TextEncoder();
    const parts: Uint8Array[] = [];
    const u32 = (n: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, n, true);
      parts.push(b);
    };
    const str = (s: string) => {
      const b = enc.encode(s);
      u32(b.length);
      parts.push(b);
    };
    str(options.cmdline ?? "");
    const modules = options.modules ?? [];
    u32(modules.length);
    for (const m of modules) {
      const b = typeof m.bytes === "string"
        ? Deno.readFileSync(m.bytes)
        : m.bytes;
      u32(b.length);
      parts.push(b);
      str(m.cmdline ?? "");
    }
    const extras = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let off = 0;
    for (const p of parts) {
      extras.set(p, off);
      off += p.length;
    }
    this.#lib.check(
      this.#sym.dv_vm_load_multiboot(
        this.#handle,
        bytes,
        BigInt(bytes.length),
        extras,
        BigInt(extras.length),
      ),
      typeof image === "string"
        ? `load multiboot ${image}`
        : "load multiboot image",
    );
  }

  /**
   * Run vCPU 0 until the guest exits, halts, fails, is stopped or times
   * out. Synchronous: call it in a Worker to keep a thread free.
   */
  run(options: RunOptions = {}): RunResult {
    this.#alive();
    const sym = this.#sym;
    const h = this.#handle;
    const rec = this.#rec;
    this.#end = undefined;
    this.exitStatus = null;
    sym.dv_vm_control(h, 1, 0n);
    if (options.timeoutMs !== undefined) {
      const ns = Math.max(1, Math.round(options.timeoutMs * 1e6));
      this.#lib.check(sym.dv_vm_control(h, 3, BigInt(ns)), "set timeout");
    }
    try {
      for (;;) {
        const r = sym.dv_vcpu_run(h, 0);
        if (r === ExitReason.Io || r === ExitReason.Mmio) {
          this.#dispatch(r === ExitReason.Io ? "pio" : "mmio", rec);
        } else if (r < 0) {
          this.#lib.check(r, "run");
        } else {
          const end = this.#other(r, rec);
          if (end) return end;
        }
        if (this.#servicePlugins.length > 0) this.#service();
        if (this.#extint) this.#pollExtint(r === ExitReason.IrqWindow);
        if (this.#end) return this.#end;
      }
    } catch (e) {
      return { reason: "error", detail: (e as Error).message };
    } finally {
      sym.dv_vm_control(h, 3, 0n);
      for (const t of this.#tickSources) t.disarm();
    }
  }

  #dispatch(space: "pio" | "mmio", rec: ExitRecordView): void {
    const size = rec.size;
    const count = rec.count;
    const address = rec.address;
    const isWrite = rec.isWrite;
    const vcpu = rec.vcpu;
    for (let i = 0; i < count; i++) {
      this.#bus.dispatch(
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
        for (const p of this.#eoiPlugins) p.eoi!(rec.arg);
        return undefined;
      case ExitReason.Wake:
        this.#wakeAt = null;
        return undefined;
      case ExitReason.IrqWindow:
        return undefined;
      case ExitReason.Stopped:
        return { reason: "stopped" };
      case ExitReason.Timeout:
        return { reason: "timeout" };
      case ExitReason.Hlt:
        return { reason: "hlt" };
      case ExitReason.Shutdown:
        return { reason: "shutdown", detail: "guest triple fault or shutdown" };
      case ExitReason.InternalError:
        return {
          reason: "internal-error",
          detail: `KVM internal error, suberror ${rec.arg}`,
        };
      case ExitReason.FailEntry:
        return {
          reason: "fail-entry",
          detail: `VM entry failed, hardware reason 0x${rec.arg.toString(16)}`,
        };
      case ExitReason.SystemEvent:
        return { reason: "system-event", detail: `type ${rec.arg}` };
      case ExitReason.Unclaimed: {
        const what = `${rec.isWrite ? "write to" : "read of"} ${
          rec.space === 0 ? "port" : "MMIO"
        } 0x${rec.address.toString(16)} (${rec.size} bytes)`;
        return { reason: "error", detail: `strict mode: unclaimed ${what}` };
      }
      default:
        return { reason: "error", detail: `unexpected exit reason ${r}` };
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
    if (
      src.interruptPending &&
      (windowOpen ||
        this.#lib.check(
            this.#sym.dv_irq(this.#handle, 8, 0, 0, 0n),
            "ready",
          ) === 1)
    ) {
      const vector = src.acknowledge() & 0xff;
      const injected = this.#lib.check(
        this.#sym.dv_irq(this.#handle, 7, 0, vector, 0n),
        "inject ExtINT",
      );
      if (injected === 0) {
        this.#log(
          "warn",
          "vm",
          `ExtINT vector ${vector} could not be injected at the window`,
        );
      } else {
        this.stats.extintInjected++;
      }
    }
    const want = src.interruptPending;
    if (want !== this.#windowRequested) {
      this.#lib.check(
        this.#sym.dv_vm_control(this.#handle, 5, want ? 1n : 0n),
        "interrupt window",
      );
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
      const ns = Math.max(1, Math.round(next - now));
      this.#lib.check(
        this.#sym.dv_vm_control(this.#handle, 4, BigInt(ns)),
        "wake alarm",
      );
    }
  }

  /** Stop a running vCPU (from any thread via {@link stopVm}); sticky. */
  stop(): void {
    if (this.#closed) return;
    this.#lib.check(this.#sym.dv_vm_control(this.#handle, 0, 0n), "stop");
  }

  /**
   * Start a host-thread level-triggered interrupt source on `gsi`: a Rust
   * thread that asserts the line through an irqfd while it has work, learns
   * of each EOI through the resample eventfd (KVM's, or our IOAPIC's in
   * split mode), retires one work item per EOI and re-asserts while work
   * remains. It is the device model of an INTx line without TypeScript in
   * the loop; tests and benchmarks use it.
   */
  createLevelSource(gsi: number): LevelSource {
    this.#alive();
    const lib = this.#lib;
    const sym = this.#sym;
    const h = this.#handle;
    const id = lib.check(
      sym.dv_event(h, 20, gsi, 0, 0n),
      `level source on GSI ${gsi}`,
    );
    const out = new BigUint64Array(7);
    let closed = false;
    const vmClosed = () => this.#closed;
    return {
      gsi,
      add(n: number) {
        lib.check(sym.dv_event(h, 21, id, 0, BigInt(n)), "level source work");
      },
      stats() {
        lib.check(sym.dv_vm_query(h, 8, id, out, 7n), "level source stats");
        const [asserts, eois, pending, total, min, max, reinjected] = Array
          .from(
            out,
            Number,
          );
        return {
          asserts,
          eois,
          pending,
          meanRttNs: eois ? total / eois : 0,
          minRttNs: min,
          maxRttNs: max,
          reinjected,
        };
      },
      close() {
        if (closed || vmClosed()) return;
        closed = true;
        lib.check(sym.dv_event(h, 22, id, 0, 0n), "close level source");
      },
    };
  }

  /** Run-loop counters (not while running). */
  counters(): VcpuCounters {
    const c = this.#query(2, 0, 5);
    return {
      exits: Number(c[0]),
      fastPath: Number(c[1]),
      forwarded: Number(c[2]),
      unclaimedReads: Number(c[3]),
      unclaimedWrites: Number(c[4]),
    };
  }

  #eoiBroadcastSuppressed(): boolean {
    const [, svr] = this.#query(7, 0, 2);
    return (Number(svr) & LAPIC_SVR_SUPPRESS_EOI_BROADCAST) !== 0;
  }

  /** True when `vector` is in service in vCPU 0's in-kernel LAPIC. */
  lapicInService(vector: number): boolean {
    const isr = this.#query(6, 0, 8);
    return ((Number(isr[vector >> 5]) >>> (vector & 31)) & 1) === 1;
  }

  /** TSC frequency of vCPU 0 in kHz. */
  tscKhz(): number {
    return Number(this.#query(3, 0, 1)[0]);
  }

  /** Number of host timer threads currently running for this VM. */
  armedTimers(): number {
    return Number(this.#query(5, 0, 2)[0]);
  }

  /** Close plugins and free the VM (idempotent). */
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
    finalizer.unregister(this);
    this.#sym.dv_vm_destroy(this.#handle);
  }

  /** Same as {@link Vm.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** A host tick source backed by a core timer thread and an irqfd. */
class CoreTickSource implements TickSource {
  readonly #lib: CoreLibrary;
  readonly #sym: CoreSymbols;
  readonly #h: bigint;
  readonly #id: number;
  readonly #out = new BigUint64Array(5);
  #armed = false;

  constructor(
    lib: CoreLibrary,
    sym: CoreSymbols,
    h: bigint,
    target: TickTarget,
    pacing: 0 | 1,
  ) {
    this.#lib = lib;
    this.#sym = sym;
    this.#h = h;
    this.#id = target.kind === "gsi"
      ? lib.check(sym.dv_event(h, 10, target.gsi, 0, 0n), "create timer")
      : lib.check(
        sym.dv_event(
          h,
          10,
          (target.vector & 0xff) | (target.destination << 8),
          1,
          0n,
        ),
        "create timer",
      );
    if (pacing !== 0) {
      lib.check(
        sym.dv_event(h, 14, this.#id, 0, BigInt(pacing)),
        "timer pacing",
      );
    }
  }
  arm(periodNs: number): void {
    if (!(periodNs > 0) || !Number.isFinite(periodNs)) {
      throw new RangeError(`bad timer period ${periodNs} ns`);
    }
    this.#lib.check(
      this.#sym.dv_event(
        this.#h,
        11,
        this.#id,
        0,
        BigInt(Math.round(periodNs)),
      ),
      "arm timer",
    );
    this.#armed = true;
  }
  disarm(): void {
    if (!this.#armed) return;
    this.#armed = false;
    this.#sym.dv_event(this.#h, 12, this.#id, 0, 0n);
  }
  get armed(): boolean {
    return this.#armed;
  }
  #stats(): BigUint64Array {
    this.#lib.check(
      this.#sym.dv_vm_query(this.#h, 4, this.#id, this.#out, 5n),
      "timer stats",
    );
    return this.#out;
  }
  get ticks(): number {
    return Number(this.#stats()[0]);
  }
  get missedTicks(): number {
    return Number(this.#stats()[1]);
  }
  /** CPU time of the timer thread in ns. */
  get cpuNs(): number {
    return Number(this.#stats()[2]);
  }
  /** True when the timer thread runs with real-time priority. */
  get realtime(): boolean {
    return this.#stats()[4] === 1n;
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
