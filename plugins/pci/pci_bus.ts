/**
 * PCI bus 0: a host bridge at 00:00.0 and functions at devices 1..31,
 * reached through configuration mechanism #1 (ports 0xCF8/0xCFC) and ECAM.
 * The bus maps each function's BARs on the VM bus as the guest programs
 * them and routes INTx pins to GSIs.
 *
 * References: PCI Local Bus Specification 3.0 §3.2.2.3.2 (mechanism #1),
 * §6.2 (header), PCIe Base Specification §7.2.2 (ECAM).
 *
 * @module
 */
import type {
  Access,
  DeviceContext,
  DeviceState,
  InterruptLine,
  LogLevel,
  Mapping,
  MsiMessage,
  Plugin,
  Region,
} from "../../bus/types.ts";
import {
  asIrqChipContext,
  type IrqChipContext,
  irqChipPlugin,
  type MsiIrqfd,
} from "../../bus/irqchip.ts";
import { readLe, writeLe } from "../../bus/le.ts";
import { stateFields } from "../../bus/state.ts";
import type { ConfigSpaceState } from "./config_space.ts";
import { hostBridge } from "./host_bridge.ts";
import type { PciFunction, PciHost } from "./pci_function.ts";
import { CFG, CONFIG_MECHANISM } from "./registers.ts";

/**
 * Where one function sits on bus 0.
 *
 * @example
 * ```ts
 * import type { PciSlot } from "./pci_bus.ts";
 * import { hostBridge } from "./host_bridge.ts";
 * const s: PciSlot = { device: 3, function: hostBridge() };
 * ```
 */
export interface PciSlot {
  /** Device number, 1..31 (0 is the host bridge). */
  readonly device: number;
  /** Function number 0..7, default 0. */
  readonly fn?: number;
  /** The function. */
  readonly function: PciFunction;
  /** GSI for the INTx pin; default from {@link PciBusOptions.intxGsi}. */
  readonly gsi?: number;
}

/**
 * Options of {@link PciBus}.
 *
 * @example
 * ```ts
 * import type { PciBusOptions } from "./pci_bus.ts";
 * const o: PciBusOptions = { devices: [], ecamBase: 0xb0000000 };
 * ```
 */
export interface PciBusOptions {
  /** Plugin name, default "pci". */
  readonly name?: string;
  /** Functions on bus 0. */
  readonly devices: readonly PciSlot[];
  /** Function at 00:00.0, default {@link hostBridge}; `null` for none. */
  readonly hostBridge?: PciFunction | null;
  /** ECAM base (1 MiB window for bus 0); `null` disables ECAM. */
  readonly ecamBase?: number | null;
  /** Claim ports 0xCF8 and 0xCFC..0xCFF (default true). */
  readonly configPorts?: boolean;
  /**
   * GSI for a function's INTx `pin` (1..4) at `device`; default the
   * swizzle `16 + ((device + pin - 1) & 3)` (IOAPIC pins 16..19).
   */
  readonly intxGsi?: (device: number, pin: number) => number;
  /**
   * Deliver MSI-X messages through one irqfd per vector (its own GSI with
   * an MSI route that follows the table entry; masked vectors detach the
   * irqfd instead of touching the route), so a host thread can fire a
   * vector without TypeScript. Default false: `KVM_SIGNAL_MSI` per message.
   */
  readonly msixIrqfd?: boolean;
  /** Called when a function's MSI-X entry changes its address/data. */
  readonly onMsixRouteChanged?: (
    fn: PciFunction,
    vector: number,
    msg: MsiMessage | null,
  ) => void;
}

/**
 * Counters of ignored guest actions and host failures.
 *
 * @example
 * ```ts
 * import type { PciBusCounters } from "./pci_bus.ts";
 * const c: PciBusCounters = { mapFailures: 0, ignoredAccesses: 0, handlerErrors: 0 };
 * ```
 */
export interface PciBusCounters {
  /** BAR placements refused by the VM bus (overlap). */
  mapFailures: number;
  /** Config accesses that could not mean anything (odd port widths). */
  ignoredAccesses: number;
  /** Exceptions caught from function handlers. */
  handlerErrors: number;
}

interface Attached {
  readonly fn: PciFunction;
  readonly device: number;
  readonly func: number;
  readonly gsi: number | null;
  intx: boolean;
  lineOn: boolean;
  readonly mappings: (Mapping | null)[];
  readonly failedAt: (number | null)[];
  readonly irqfds: Map<number, MsiIrqfd>;
}

/**
 * Saved state of one function on the bus.
 *
 * @example
 * ```ts
 * import type { PciFunctionState } from "./pci_bus.ts";
 * const s: PciFunctionState = {
 *   device: 0, func: 0, intx: false, state: null,
 *   config: { version: 1, bytes: new Array(256).fill(0) },
 * };
 * ```
 */
export interface PciFunctionState {
  /** Device number. */
  readonly device: number;
  /** Function number. */
  readonly func: number;
  /** Configuration space. */
  readonly config: ConfigSpaceState;
  /** INTx pending level. */
  readonly intx: boolean;
  /** The function's own state, or null when it has none. */
  readonly state: DeviceState | null;
}

/**
 * Plain-data state of a {@link PciBus}.
 *
 * @example
 * ```ts
 * import type { PciBusState } from "./pci_bus.ts";
 * const s: PciBusState = { version: 1, address: 0, functions: [] };
 * ```
 */
export interface PciBusState {
  /** Format version, currently 1. */
  readonly version: 1;
  /** The CONFIG_ADDRESS latch (port 0xCF8). */
  readonly address: number;
  /** Every function, host bridge included. */
  readonly functions: readonly PciFunctionState[];
}

/**
 * The default INTx swizzle: `16 + ((device + pin - 1) & 3)`.
 *
 * @example
 * ```ts
 * import { defaultIntxGsi } from "./pci_bus.ts";
 * console.log(defaultIntxGsi(1, 1)); // 17
 * ```
 */
export function defaultIntxGsi(device: number, pin: number): number {
  return 16 + ((device + pin - 1) & 3);
}

/**
 * The PCI bus plugin. It is one of the interrupt controllers (MSI-X
 * irqfds need the VM's irqchip context), so the VM attaches it; its
 * `setup` refuses a plain device context.
 *
 * @example
 * ```ts
 * import { PciBus } from "./pci_bus.ts";
 * const bus = new PciBus({ devices: [] });
 * console.log(bus.functionAt(0)?.name); // the host bridge
 * ```
 */
export class PciBus implements Plugin {
  /** Plugin name. */
  readonly name: string;
  /** Counters. */
  readonly counters: PciBusCounters = {
    mapFailures: 0,
    ignoredAccesses: 0,
    handlerErrors: 0,
  };
  readonly #slots = new Map<number, Attached>();
  readonly #opts: PciBusOptions;
  readonly #lines = new Map<number, InterruptLine>();
  readonly #gsiCount = new Map<number, number>();
  #ctx: IrqChipContext | null = null;
  #address = 0;
  #loggedHandlerError = false;

  /** Validate the layout; throws on a host configuration error. */
  constructor(options: PciBusOptions) {
    this.#opts = options;
    this.name = options.name ?? "pci";
    // MSI-X irqfds need the interrupt-controller context.
    irqChipPlugin(this);
    const hb = options.hostBridge === undefined
      ? hostBridge()
      : options.hostBridge;
    const gsiOf = options.intxGsi ?? defaultIntxGsi;
    const add = (
      fn: PciFunction,
      device: number,
      func: number,
      gsi?: number,
    ) => {
      if (
        !Number.isInteger(device) || device < 0 || device > 31 ||
        !Number.isInteger(func) || func < 0 || func > 7
      ) {
        throw new RangeError(`bad PCI address ${device}.${func}`);
      }
      const key = device * 8 + func;
      if (this.#slots.has(key)) {
        throw new RangeError(`PCI address 00:${device}.${func} used twice`);
      }
      const pin = fn.config.interruptPin;
      const g = pin === 0 ? null : gsi ?? gsiOf(device, pin);
      this.#slots.set(key, {
        fn,
        device,
        func,
        gsi: g,
        intx: false,
        lineOn: false,
        mappings: new Array(CFG.BAR_COUNT).fill(null),
        failedAt: new Array(CFG.BAR_COUNT).fill(null),
        irqfds: new Map(),
      });
    };
    if (hb) add(hb, 0, 0);
    for (const d of options.devices) {
      if (d.device === 0) {
        throw new RangeError("device 0 is reserved for the host bridge");
      }
      add(d.function, d.device, d.fn ?? 0, d.gsi);
    }
    for (const s of this.#slots.values()) {
      if (s.func === 0) continue;
      const f0 = this.#slots.get(s.device * 8);
      if (!f0) {
        throw new RangeError(`00:${s.device}.${s.func} without function 0`);
      }
      f0.fn.config.set8(
        CFG.HEADER_TYPE,
        f0.fn.config.get8(CFG.HEADER_TYPE) | 0x80,
      );
    }
  }

  /**
   * The irqfd of `s`'s MSI-X `vector` (created on first use, routed to
   * `msg` when given), or undefined when the bus does not use irqfds.
   */
  #irqfd(
    s: Attached,
    vector: number,
    msg: MsiMessage | null,
  ): MsiIrqfd | undefined {
    if (!this.#opts.msixIrqfd || !this.#ctx) return undefined;
    if (!Number.isInteger(vector) || vector < 0 || vector >= 2048) {
      return undefined;
    }
    let q = s.irqfds.get(vector);
    if (!q) {
      q = this.#ctx.msiIrqfd();
      s.irqfds.set(vector, q);
      if (msg) q.route(msg);
    }
    return q;
  }

  /** Irqfds created for MSI-X vectors so far. */
  get irqfdCount(): number {
    let n = 0;
    for (const s of this.#slots.values()) n += s.irqfds.size;
    return n;
  }

  /** The function at `device.fn` on bus 0, if any. */
  functionAt(device: number, fn = 0): PciFunction | undefined {
    return this.#slots.get(device * 8 + fn)?.fn;
  }

  /** The GSI routed to the INTx pin of `device.fn`, or null. */
  gsiOf(device: number, fn = 0): number | null {
    return this.#slots.get(device * 8 + fn)?.gsi ?? null;
  }

  /** Attach functions and claim the configuration regions. */
  setup(context: DeviceContext): readonly Region[] {
    const ctx = asIrqChipContext(context, this.name);
    this.#ctx = ctx;
    for (const s of this.#slots.values()) {
      const host: PciHost = {
        memory: ctx.memory,
        log: (level: LogLevel, msg: string) =>
          ctx.log(level, `${s.fn.name}@${s.device}.${s.func}: ${msg}`),
        signalMsi: (msg: MsiMessage, vector?: number) => {
          const q = vector === undefined
            ? undefined
            : this.#irqfd(s, vector, msg);
          if (q) q.fire();
          else ctx.signalMsi(msg);
        },
        setIntx: (level: boolean) => this.#setIntx(s, level),
        msixRouteChanged: (vector: number, msg: MsiMessage | null) => {
          this.#irqfd(s, vector, null)?.route(msg);
          this.#opts.onMsixRouteChanged?.(s.fn, vector, msg);
        },
        msixVectorMask: (vector: number, masked: boolean) => {
          const q = this.#irqfd(s, vector, null);
          if (!q) return false;
          if (masked) {
            q.mask();
            return false;
          }
          return q.unmask();
        },
      };
      s.fn.attach(host);
      this.#initInterruptLine(s);
      this.#sync(s);
    }
    const regions: Region[] = [];
    if (this.#opts.configPorts ?? true) {
      regions.push({
        range: { space: "pio", base: CONFIG_MECHANISM.ADDRESS_PORT, length: 4 },
        read: (a, d) => this.#addressRead(a, d),
        write: (a, d) => this.#addressWrite(a, d),
      }, {
        range: { space: "pio", base: CONFIG_MECHANISM.DATA_PORT, length: 4 },
        read: (a, d) => this.#dataAccess(a, d, false),
        write: (a, d) => this.#dataAccess(a, d, true),
      });
    }
    const ecam = this.#opts.ecamBase === undefined
      ? CONFIG_MECHANISM.ECAM_DEFAULT_BASE
      : this.#opts.ecamBase;
    if (ecam !== null) {
      regions.push({
        range: {
          space: "mmio",
          base: ecam,
          length: CONFIG_MECHANISM.ECAM_BUS_SIZE,
        },
        read: (a, d) => this.#ecamAccess(a, d, false),
        write: (a, d) => this.#ecamAccess(a, d, true),
      });
    }
    return regions;
  }

  /**
   * Read configuration space of `00:device.fn` at `offset` (what a guest
   * sees; all-ones for an absent function).
   */
  configRead(
    device: number,
    fn: number,
    offset: number,
    data: Uint8Array,
  ): void {
    const s = this.#slots.get(device * 8 + fn);
    if (!s) {
      data.fill(0xff);
      return;
    }
    s.fn.config.readBytes(offset, data);
  }

  /**
   * Write configuration space of `00:device.fn` at `offset` as the guest
   * would, then move BARs and re-evaluate INTx.
   */
  configWrite(
    device: number,
    fn: number,
    offset: number,
    data: Uint8Array,
  ): void {
    const s = this.#slots.get(device * 8 + fn);
    if (!s) return;
    try {
      s.fn.config.writeBytes(offset, data);
    } catch (e) {
      this.#handlerError(s, e);
    }
    const end = offset + data.length;
    if (
      (offset < CFG.COMMAND + 2 && CFG.COMMAND < end) ||
      (offset < CFG.BAR0 + 4 * CFG.BAR_COUNT && CFG.BAR0 < end)
    ) {
      // The guest reprogrammed placement: retry BARs that failed to map.
      s.failedAt.fill(null);
    }
    this.#sync(s);
    this.#updateLine(s);
  }

  /** Power-on reset of every function; unmaps all BARs. */
  reset(): void {
    this.#address = 0;
    for (const s of this.#slots.values()) {
      s.fn.config.reset();
      try {
        s.fn.reset?.();
      } catch (e) {
        this.#handlerError(s, e);
      }
      this.#initInterruptLine(s);
      this.#setIntx(s, false);
      this.#sync(s);
    }
  }

  /**
   * The CF8 latch and, per function, its config space, INTx level and
   * function state.
   */
  snapshot(): PciBusState {
    const functions: PciFunctionState[] = [];
    for (const s of this.#slots.values()) {
      functions.push({
        device: s.device,
        func: s.func,
        config: s.fn.config.snapshot(),
        intx: s.intx,
        state: s.fn.snapshot?.() ?? null,
      });
    }
    return { version: 1, address: this.#address, functions };
  }

  /**
   * Load a state from {@link snapshot} of a bus with the same functions:
   * config spaces, INTx levels, function states; BARs are remapped. A
   * malformed state throws TypeError; functions restored before a refusal
   * are put back, so nothing changes.
   */
  restore(state: PciBusState): void {
    const f = stateFields(state, 1, "pci");
    const address = f.int("address", 0, 0xffffffff);
    const list = state.functions;
    if (!Array.isArray(list) || list.length !== this.#slots.size) {
      throw new TypeError(`pci state: ${this.#slots.size} functions expected`);
    }
    const plan = list.map((p) => {
      const pf = stateFields({ version: 1, ...p }, 1, "pci function");
      const s = this.#slots.get(
        pf.int("device", 0, 31) * 8 + pf.int("func", 0, 7),
      );
      if (!s) throw new TypeError("pci state: no function at that slot");
      if ((p.state === null) !== (s.fn.restore === undefined)) {
        throw new TypeError(
          `pci state of ${s.fn.name}: function state mismatch`,
        );
      }
      pf.bool("intx");
      // validate the config bytes on a scratch copy
      stateFields(p.config, 1, `${s.fn.name} config`).ints(
        "bytes",
        0,
        0xff,
        256,
      );
      return { s, p };
    });
    const done: { s: Attached; before: PciFunctionState }[] = [];
    try {
      for (const { s, p } of plan) {
        const before: PciFunctionState = {
          device: s.device,
          func: s.func,
          config: s.fn.config.snapshot(),
          intx: s.intx,
          state: s.fn.snapshot?.() ?? null,
        };
        this.#restoreFunction(s, p);
        done.push({ s, before });
      }
    } catch (e) {
      for (const { s, before } of done.reverse()) {
        this.#restoreFunction(s, before);
      }
      throw e;
    }
    this.#address = address;
  }

  #restoreFunction(s: Attached, p: PciFunctionState): void {
    const oldConfig = s.fn.config.snapshot();
    s.fn.config.restore(p.config);
    try {
      if (p.state !== null) s.fn.restore!(p.state);
    } catch (e) {
      s.fn.config.restore(oldConfig);
      throw e;
    }
    this.#setIntx(s, p.intx);
    s.failedAt.fill(null);
    this.#sync(s);
  }

  /** Unmap BARs and close every function. */
  close(): void {
    for (const s of this.#slots.values()) {
      for (let i = 0; i < CFG.BAR_COUNT; i++) {
        s.mappings[i]?.unmap();
        s.mappings[i] = null;
      }
      s.fn.close?.();
      for (const q of s.irqfds.values()) q.close();
      s.irqfds.clear();
    }
  }

  #initInterruptLine(s: Attached): void {
    // What firmware would do: report the routed GSI in the interrupt line.
    s.fn.config.set8(
      CFG.INTERRUPT_LINE,
      s.gsi !== null && s.gsi < 255 ? s.gsi : 0xff,
    );
  }

  #addressRead(a: Access, d: Uint8Array): void {
    if (a.size !== 4 || a.offset !== 0) {
      this.counters.ignoredAccesses++;
      d.fill(0xff);
      return;
    }
    writeLe(d, this.#address);
  }

  #addressWrite(a: Access, d: Uint8Array): void {
    // Only dword accesses to 0xCF8 are CONFIG_ADDRESS (PCI 3.0 §3.2.2.3.2).
    if (a.size !== 4 || a.offset !== 0) {
      this.counters.ignoredAccesses++;
      return;
    }
    this.#address = (readLe(d) & CONFIG_MECHANISM.ADDRESS_MASK) >>> 0;
  }

  #dataAccess(a: Access, d: Uint8Array, write: boolean): void {
    const addr = this.#address;
    const n = Math.min(d.length, 4 - a.offset);
    if (
      (addr & CONFIG_MECHANISM.ENABLE) === 0 || ((addr >>> 16) & 0xff) !== 0 ||
      n <= 0
    ) {
      if (!write) d.fill(0xff);
      return;
    }
    const device = (addr >>> 11) & 0x1f;
    const fn = (addr >>> 8) & 0x7;
    const offset = (addr & 0xfc) + a.offset;
    const view = d.subarray(0, n);
    if (write) this.configWrite(device, fn, offset, view);
    else {
      d.fill(0xff);
      this.configRead(device, fn, offset, view);
    }
  }

  #ecamAccess(a: Access, d: Uint8Array, write: boolean): void {
    const off = a.offset;
    const device = (off >>> 15) & 0x1f;
    const fn = (off >>> 12) & 0x7;
    const reg = off & 0xfff;
    const n = Math.min(d.length, CFG.EXTENDED_SIZE - reg);
    const view = d.subarray(0, n);
    if (write) this.configWrite(device, fn, reg, view);
    else {
      d.fill(0xff);
      this.configRead(device, fn, reg, view);
    }
  }

  #setIntx(s: Attached, level: boolean): void {
    s.intx = level;
    s.fn.config.setInterruptStatus(level);
    this.#updateLine(s);
  }

  #updateLine(s: Attached): void {
    const want = s.intx && !s.fn.config.intxDisabled && s.gsi !== null;
    if (want === s.lineOn || s.gsi === null || !this.#ctx) return;
    s.lineOn = want;
    const before = this.#gsiCount.get(s.gsi) ?? 0;
    const after = before + (want ? 1 : -1);
    this.#gsiCount.set(s.gsi, after);
    if ((before > 0) !== (after > 0)) {
      let line = this.#lines.get(s.gsi);
      if (!line) {
        line = this.#ctx.interruptLine(s.gsi, "level");
        this.#lines.set(s.gsi, line);
      }
      line.set(after > 0);
    }
  }

  /** Make each BAR's mapping match the function's config space. */
  #sync(s: Attached): void {
    const ctx = this.#ctx;
    if (!ctx) return;
    const cs = s.fn.config;
    for (let i = 0; i < CFG.BAR_COUNT; i++) {
      const def = cs.bar(i);
      if (!def) continue;
      const io = def.kind === "io";
      let want = (io ? cs.ioEnabled : cs.memoryEnabled)
        ? cs.barAddress(i)
        : null;
      if (want !== null && io && want + def.size > 0x10000) want = null;
      const cur = s.mappings[i];
      if (cur && want === cur.range.base) continue;
      if (!cur && want === s.failedAt[i]) continue;
      cur?.unmap();
      s.mappings[i] = null;
      s.failedAt[i] = null;
      if (want === null) continue;
      const bar = i;
      const fn = s.fn;
      const region: Region = {
        range: { space: io ? "pio" : "mmio", base: want, length: def.size },
        read: (a, d) => {
          try {
            fn.barRead(bar, a.offset, d);
          } catch (e) {
            this.#handlerError(s, e);
          }
        },
        write: (a, d) => {
          try {
            fn.barWrite(bar, a.offset, d);
          } catch (e) {
            this.#handlerError(s, e);
          }
        },
      };
      try {
        s.mappings[i] = ctx.map(region);
      } catch (e) {
        this.counters.mapFailures++;
        s.failedAt[i] = want;
        ctx.log(
          "warn",
          `${fn.name}@${s.device}.${s.func}: BAR ${i} at 0x${
            want.toString(16)
          } not mapped: ${e instanceof Error ? e.message : e}`,
        );
      }
    }
  }

  #handlerError(s: Attached, e: unknown): void {
    this.counters.handlerErrors++;
    if (this.#loggedHandlerError) return;
    this.#loggedHandlerError = true;
    this.#ctx?.log(
      "error",
      `${s.fn.name}@${s.device}.${s.func}: handler threw: ${
        e instanceof Error ? e.stack ?? e.message : e
      }`,
    );
  }
}

/**
 * Factory: a {@link PciBus} plugin.
 *
 * @example
 * ```ts
 * import { pciBusPlugin } from "./pci_bus.ts";
 * const plugin = pciBusPlugin({ devices: [] });
 * console.log(plugin.name); // "pci"
 * ```
 */
export function pciBusPlugin(options: PciBusOptions): PciBus {
  return new PciBus(options);
}
