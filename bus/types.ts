/**
 * The plugin contract: address ranges, regions, interrupt lines and the
 * services a device receives through its {@link DeviceContext}.
 *
 * A plugin never imports the FFI layer: everything it may do to the VM
 * arrives through the context, so every device can be driven in unit tests
 * with the fakes of the testing kit (`@denovmm/vmm/testing`).
 *
 * @module
 */

/** Address space of a range: x86 I/O ports or guest-physical MMIO. */
export type Space = "pio" | "mmio";

/**
 * A half-open address range `[base, base + length)` in one space.
 *
 * Addresses are plain numbers (exact up to 2^53), so no BigInt is created
 * per exit.
 *
 * @example
 * ```ts
 * import type { Range } from "./types.ts";
 * const com1: Range = { space: "pio", base: 0x3f8, length: 8 };
 * ```
 */
export interface Range {
  /** Which address space. */
  readonly space: Space;
  /** First address. */
  readonly base: number;
  /** Number of addresses (bytes). */
  readonly length: number;
}

/**
 * One guest access, as seen by a region handler.
 *
 * The bus reuses one `Access` object for every exit: read it inside the
 * handler, do not keep it.
 *
 * @example
 * ```ts
 * import type { Access } from "./types.ts";
 * function describe(a: Access): string {
 *   return `${a.size}-byte access at +${a.offset}`;
 * }
 * ```
 */
export interface Access {
  /** Offset from the start of the region's range. */
  readonly offset: number;
  /** Absolute port or guest-physical address. */
  readonly address: number;
  /** Access width in bytes. */
  readonly size: 1 | 2 | 4 | 8;
  /** Index of the vCPU that made the access. */
  readonly vcpu: number;
}

/**
 * A claimed range with synchronous handlers.
 *
 * `data` has exactly `access.size` bytes, little-endian. A read handler
 * fills it (it arrives zeroed); a write handler reads it. Handlers must be
 * synchronous: a returned Promise fails the VM with an error.
 *
 * @example
 * ```ts
 * import type { Region } from "./types.ts";
 * const zero: Region = {
 *   range: { space: "pio", base: 0x80, length: 1 },
 *   read(_access, data) { data.fill(0); },
 *   write() {},
 * };
 * ```
 */
export interface Region {
  /** The addresses this region answers. */
  readonly range: Range;
  /** Fill `data` with the value the guest reads. */
  read(access: Access, data: Uint8Array): void;
  /** Consume the value the guest writes. */
  write(access: Access, data: Uint8Array): void;
}

/** How an interrupt source signals: a pulse (edge) or a held level. */
export type TriggerMode = "edge" | "level";

/**
 * An interrupt source on one irqchip input line, handed to a device by its
 * {@link DeviceContext}. The device drives only its own output: the line
 * the irqchip sees is the wired OR of every source on it, so lowering this
 * source never retires another device's interrupt (shared INTx lines
 * work). Like rust-vmm's `InterruptSourceGroup`: trigger, mask, unmask.
 *
 * @example
 * ```ts
 * import type { InterruptLine } from "./types.ts";
 * function tick(irq: InterruptLine) { irq.trigger(); }
 * function status(irq: InterruptLine, pending: boolean) { irq.set(pending); }
 * ```
 */
export interface InterruptLine {
  /** The irqchip input this source is wired to (chosen by the host's wiring). */
  readonly line: number;
  /** Edge (pulses) or level (held until lowered). */
  readonly mode: TriggerMode;
  /** This source's own output level. */
  readonly level: boolean;
  /** True while masked at the source. */
  readonly masked: boolean;
  /** Edge: one pulse. Level: assert (same as `set(true)`). */
  trigger(): void;
  /** Drive this source's output level. */
  set(level: boolean): void;
  /**
   * Stop signalling: the source's level stops counting on the line and
   * edges are held (one pending edge at most).
   */
  mask(): void;
  /** Signal again: a held edge is delivered, a held level re-asserted. */
  unmask(): void;
}

/**
 * A message-signalled interrupt source handed to a device by its
 * {@link DeviceContext}: the device sets its message (usually what the
 * guest programmed into the device's MSI registers) and triggers it. It
 * never touches the VM's GSI routing table.
 *
 * @example
 * ```ts
 * import type { MsiInterrupt } from "./types.ts";
 * function complete(irq: MsiInterrupt) {
 *   irq.modify({ address: 0xfee00000, data: 0x41 });
 *   irq.trigger();
 * }
 * ```
 */
export interface MsiInterrupt {
  /** The current message, or null (a trigger is then dropped). */
  readonly message: MsiMessage | null;
  /** True while masked. */
  readonly masked: boolean;
  /** True when a trigger arrived while masked. */
  readonly pending: boolean;
  /** Set (or with `null` clear) the message. */
  modify(message: MsiMessage | null): void;
  /** Deliver the message now (held as pending while masked). */
  trigger(): void;
  /** Hold triggers as pending. */
  mask(): void;
  /** Deliver a pending trigger, then signal normally. */
  unmask(): void;
}

/**
 * A message-signalled interrupt (Intel SDM Vol. 3, 11.11).
 *
 * `address` is the full 64-bit address as a number; only messages whose
 * address lies in 0xFEE00000..0xFEEFFFFF are deliverable.
 *
 * @example
 * ```ts
 * import type { MsiMessage } from "./types.ts";
 * const toVector0x30: MsiMessage = { address: 0xfee00000, data: 0x30 };
 * ```
 */
export interface MsiMessage {
  /** Message address (0xFEEx_xxxx for the LAPIC). */
  readonly address: number;
  /** Message data: vector in bits 7:0, delivery mode 10:8, trigger 15. */
  readonly data: number;
}

/**
 * Bounds-checked access to guest RAM. Every method throws `RangeError`
 * when `[gpa, gpa + length)` is not inside RAM; no access ever reaches
 * host memory outside the guest.
 *
 * @example
 * ```ts
 * import type { GuestMemory } from "./types.ts";
 * function readU32(mem: GuestMemory, gpa: number): number {
 *   const b = new Uint8Array(4);
 *   mem.read(gpa, b);
 *   return new DataView(b.buffer).getUint32(0, true);
 * }
 * ```
 */
export interface GuestMemory {
  /** RAM size in bytes (RAM spans GPA 0..size). */
  readonly size: number;
  /** True when `[gpa, gpa + length)` is inside RAM. */
  contains(gpa: number, length: number): boolean;
  /** Copy guest bytes at `gpa` into `dst`. */
  read(gpa: number, dst: Uint8Array): void;
  /** Copy `src` into guest RAM at `gpa`. */
  write(gpa: number, src: Uint8Array): void;
  /** A live view of `length` guest bytes at `gpa` (no copy). */
  view(gpa: number, length: number): Uint8Array;
}

/**
 * Monotonic clock in nanoseconds. Injectable, so tests can use a fake.
 *
 * @example
 * ```ts
 * import type { Clock } from "./types.ts";
 * const clock: Clock = { now: () => Math.round(performance.now() * 1e6) };
 * ```
 */
export interface Clock {
  /** Monotonic time in nanoseconds. */
  now(): number;
}

/** Log severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * A region mapped at run time (for example a PCI BAR); `unmap` removes it.
 *
 * @example
 * ```ts
 * import type { Mapping } from "./types.ts";
 * function move(m: Mapping) { m.unmap(); }
 * ```
 */
export interface Mapping {
  /** The mapped range. */
  readonly range: Range;
  /** Remove the region from the bus. Idempotent. */
  unmap(): void;
}

/**
 * Where a host-generated periodic tick is delivered.
 * - `gsi`: a pulse on an irqchip line (in-kernel PIC/IOAPIC, or our IOAPIC
 *   in split mode);
 * - `msi`: a direct MSI to `vector` on LAPIC `destination` (lowest latency).
 *
 * @example
 * ```ts
 * import type { TickTarget } from "./types.ts";
 * const t: TickTarget = { kind: "msi", vector: 0x20, destination: 0 };
 * ```
 */
export type TickTarget =
  | { readonly kind: "gsi"; readonly gsi: number }
  | {
    readonly kind: "msi";
    readonly vector: number;
    readonly destination: number;
  };

/**
 * A periodic tick generated in the host core (timerfd with absolute
 * deadlines feeding an irqfd), never in JavaScript.
 *
 * @example
 * ```ts
 * import type { TickSource } from "./types.ts";
 * function oneMs(t: TickSource) { t.arm(1_000_000); }
 * ```
 */
export interface TickSource {
  /** Start, or re-arm with a new period (nanoseconds, > 0). */
  arm(periodNs: number): void;
  /** Stop the ticks; the timer thread ends. Idempotent. */
  disarm(): void;
  /** True while armed. */
  readonly armed: boolean;
  /** Ticks delivered since creation. */
  readonly ticks: number;
  /**
   * Ticks the guest will never see: expirations coalesced because the host
   * fell behind (`coalesce` policy) or dropped over the backlog cap
   * (`catchup`).
   */
  readonly missedTicks: number;
  /** Detailed counters, where the source keeps them. */
  counters?(): TickCounters;
}

/**
 * Counters of a host tick source. Under the `catchup` policy
 * `owed === delivered + backlog + droppedOverCap + cleared`.
 *
 * @example
 * ```ts
 * import type { TickCounters } from "./types.ts";
 * const lost = (c: TickCounters) => c.coalesced + c.droppedOverCap;
 * ```
 */
export interface TickCounters {
  /** Policy in effect for the current (or last) arm. */
  readonly policy: "coalesce" | "catchup";
  /** Expirations of the host timer while armed: the ticks owed. */
  readonly owed: number;
  /** Ticks delivered to the guest. */
  readonly delivered: number;
  /** `coalesce`: expirations merged into one tick and lost. */
  readonly coalesced: number;
  /** `catchup`: owed ticks dropped because the backlog was at its cap. */
  readonly droppedOverCap: number;
  /** `catchup`: backlog discarded by a re-arm or stop. */
  readonly cleared: number;
  /** `catchup`: owed ticks not yet delivered. */
  readonly backlog: number;
  /** `catchup`: the guest's acknowledgements (EOIs) seen. */
  readonly acks: number;
  /**
   * `catchup`, split irqchip with the level re-signal quirk: unacknowledged
   * ticks the vCPU re-signalled (0 on a healthy host).
   */
  readonly reinjected: number;
}

/**
 * The services a device plugin receives in `setup`: its interrupt sources,
 * guest memory, a clock, logging, timers, run-time mapping and the
 * run-ending outputs. A device never sees GSI routes, EOIs or other
 * devices' interrupts; those belong to the interrupt controllers, which
 * the VM alone equips.
 *
 * @example
 * ```ts
 * import type { DeviceContext } from "./types.ts";
 * function raise(ctx: DeviceContext) { ctx.interruptLine(4, "edge").trigger(); }
 * ```
 */
export interface DeviceContext {
  /**
   * This device's interrupt source on irqchip input `line` (the number the
   * plugin's options carry). One source per (device, line); asking again
   * returns the same source (a different `mode` throws). Throws RangeError
   * for a bad line number.
   */
  interruptLine(line: number, mode: TriggerMode): InterruptLine;
  /** A new message-signalled interrupt source of this device. */
  msiInterrupt(): MsiInterrupt;
  /** Guest RAM. */
  readonly memory: GuestMemory;
  /** Monotonic clock. */
  readonly clock: Clock;
  /** Log a message attributed to the plugin (rate-limited by the VM). */
  log(level: LogLevel, msg: string): void;
  /** Map an extra region at run time (BAR moves); throws on overlap. */
  map(region: Region): Mapping;
  /** End the run with guest exit status `status` (isa-debug-exit). */
  exit(status: number): void;
  /** End the run: the guest said it is done (PV halt port). */
  halt(): void;
  /**
   * End the run: the guest entered ACPI sleep state S`state` (1–5, 5 being
   * soft off). The run returns `{ reason: "sleep", state }`, or
   * `{ reason: "poweroff", state: 5 }`; a later `run()` resumes the guest
   * after the write that slept.
   */
  sleep(state: number): void;
  /** A host periodic tick source delivering to `target`. */
  createTickSource(target: TickTarget): TickSource;
}

/**
 * A device's saved state: plain data (JSON- and structured-clone-able: no
 * class instances, functions, bigints or typed arrays) with a format
 * `version`.
 *
 * Compatibility rule: `restore` accepts the versions it knows (the current
 * one, and older ones it can upgrade) and throws `TypeError` for any other
 * version or a malformed state, changing nothing (restore is
 * all-or-nothing). A device bumps `version` whenever the meaning or shape
 * of its state changes.
 *
 * @example
 * ```ts
 * import type { DeviceState } from "./types.ts";
 * const s: DeviceState = { version: 1 };
 * console.log(JSON.parse(JSON.stringify(s)).version); // 1
 * ```
 */
export interface DeviceState {
  /** Format version of this device's state. */
  readonly version: number;
}

/**
 * A device plugin. Build one with a factory `(options) => Plugin`.
 *
 * @example
 * ```ts
 * import type { Plugin } from "./types.ts";
 * function nullDevice(base: number): Plugin {
 *   return {
 *     name: "null",
 *     setup: () => [{
 *       range: { space: "pio", base, length: 1 },
 *       read: (_a, d) => d.fill(0xff),
 *       write: () => {},
 *     }],
 *   };
 * }
 * ```
 */
export interface Plugin {
  /** Unique name within one VM. */
  readonly name: string;
  /** Claim regions; called once when the plugin is added to a VM. */
  setup(ctx: DeviceContext): readonly Region[];
  /**
   * Return to power-on state. `Vm.reset()` calls it for every plugin,
   * after lowering every interrupt source, so a device re-asserts what its
   * reset state asserts.
   */
  reset?(): void;
  /** Release host resources (threads, files). */
  close?(): void;
  /**
   * Called after exits and on host wake-ups with the clock's time; returns
   * the next time (ns, same clock) the plugin needs servicing, or null.
   */
  service?(now: number): number | null;
  /** The guest-visible state as versioned plain data ({@link DeviceState}). */
  snapshot?(): DeviceState;
  /**
   * Load a state from `snapshot` of the same device type and
   * configuration; a version it does not know or a malformed state throws
   * `TypeError` and changes nothing.
   */
  restore?(state: DeviceState): void;
}

/**
 * A plugin factory: options in, plugin out.
 *
 * @example
 * ```ts
 * import type { PluginFactory } from "./types.ts";
 * const make: PluginFactory<{ base: number }> = ({ base }) => ({
 *   name: `null@${base}`,
 *   setup: () => [],
 * });
 * ```
 */
export type PluginFactory<O> = (options: O) => Plugin;
