/**
 * The plugin contract: address ranges, regions, interrupt lines and the
 * host services a plugin receives through its {@link PluginContext}.
 *
 * A plugin never imports the FFI layer: everything it may do to the VM
 * arrives through the context, so every device can be driven in unit tests
 * with the fakes from `plugins/testing/`.
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

/**
 * An interrupt line (a GSI) on the active irqchip.
 *
 * @example
 * ```ts
 * import type { IrqLine } from "./types.ts";
 * function raiseOnce(line: IrqLine) { line.pulse(); }
 * ```
 */
export interface IrqLine {
  /** The GSI number of this line. */
  readonly gsi: number;
  /** Drive the line level (level-triggered devices). */
  set(level: boolean): void;
  /** Raise and lower the line (edge-triggered devices). */
  pulse(): void;
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
  /** Expirations that were coalesced because the host fell behind. */
  readonly missedTicks: number;
}

/**
 * Host services handed to a plugin's `setup`.
 *
 * @example
 * ```ts
 * import type { PluginContext } from "./types.ts";
 * function raise(ctx: PluginContext) { ctx.irqLine(4).pulse(); }
 * ```
 */
export interface PluginContext {
  /** An interrupt line on the active irqchip. */
  irqLine(gsi: number): IrqLine;
  /** Deliver an MSI now (KVM_SIGNAL_MSI in the core). */
  signalMsi(msg: MsiMessage): void;
  /** Guest RAM. */
  readonly memory: GuestMemory;
  /** Monotonic clock. */
  readonly clock: Clock;
  /** Log a message attributed to the plugin. */
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
  /**
   * Retire the highest-priority in-service interrupt of the calling vCPU's
   * in-kernel LAPIC (what a guest write to the LAPIC EOI register does).
   * Used to bridge legacy 8259 EOIs when the PIC is not in the kernel.
   */
  lapicEoi(): void;
  /**
   * True when `vector` is in service (ISR) or requested (IRR) in vCPU 0's
   * in-kernel LAPIC. Used by the split-irqchip IOAPIC's Remote-IRR
   * watchdog, which must never complete the EOI of a pending interrupt.
   */
  lapicHasVector(vector: number): boolean;
  /**
   * Set (or with `null` remove) the MSI route of `gsi` in the core's GSI
   * routing table, so irqfds on that GSI (host timers, device threads)
   * deliver `msg` directly. Used by the split-irqchip IOAPIC and MSI-X.
   */
  routeMsi(gsi: number, msg: MsiMessage | null): void;
  /**
   * Split irqchip: a level interrupt on `gsi` was retired by the userspace
   * IOAPIC; signal the resample eventfds of host irqfds on that line (the
   * in-kernel irqchip does this itself). No-op when there are none.
   */
  resample(gsi: number): void;
  /**
   * An irqfd on a freshly allocated GSI with an MSI route, for a vector a
   * host thread may fire without TypeScript (MSI-X with irqfds).
   */
  msiIrqfd(): MsiIrqfd;
}

/**
 * An irqfd bound to its own GSI whose MSI route follows the guest's
 * message. Masking detaches it from KVM (writes keep counting) instead of
 * changing the route, so mask/unmask costs no routing-table rewrite.
 *
 * @example
 * ```ts
 * import type { MsiIrqfd } from "./types.ts";
 * function deliver(q: MsiIrqfd) { q.fire(); }
 * ```
 */
export interface MsiIrqfd {
  /** The GSI carrying the route. */
  readonly gsi: number;
  /** Point the route at `msg`, or drop it (`null`: undeliverable). */
  route(msg: MsiMessage | null): void;
  /** Write the eventfd (what a device thread does). */
  fire(): void;
  /** Detach from KVM: fires are held in the eventfd. */
  mask(): void;
  /** Re-attach; true when it was fired while masked (deliver it now). */
  unmask(): boolean;
  /** Unregister and free. */
  close(): void;
}

/**
 * A userspace interrupt controller that owns GSI lines (split irqchip:
 * our IOAPIC). `PluginContext.irqLine(gsi)` drives it.
 *
 * @example
 * ```ts
 * import type { LineController } from "./types.ts";
 * const levels = new Map<number, boolean>();
 * const chip: LineController = { setLevel: (g, l) => void levels.set(g, l) };
 * ```
 */
export interface LineController {
  /** Drive line `gsi` to `level`. */
  setLevel(gsi: number, level: boolean): void;
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
  setup(ctx: PluginContext): readonly Region[];
  /** End of interrupt for `vector` (split irqchip: KVM_EXIT_IOAPIC_EOI). */
  eoi?(vector: number): void;
  /** Return to power-on state. */
  reset?(): void;
  /** Release host resources (threads, files). */
  close?(): void;
  /**
   * Called after exits and on host wake-ups with the clock's time; returns
   * the next time (ns, same clock) the plugin needs servicing, or null.
   */
  service?(now: number): number | null;
  /**
   * Split irqchip only: a controller that receives GSI lines (our IOAPIC;
   * the 8259A pair for lines 0..15). Every line goes to every controller,
   * as ISA lines reach both the PIC and the IOAPIC on a PC.
   */
  readonly lineController?: LineController;
  /**
   * Split irqchip only: an ExtINT source (the 8259A pair). While it has an
   * interrupt pending the VM asks KVM for an interrupt window and, when the
   * vCPU can take it, runs the INTA cycle and injects the vector.
   */
  readonly extint?: ExtIntSource;
}

/**
 * An interrupt controller whose output is an ExtINT (SDM 10.5.1): the
 * vector is supplied by an INTA cycle when the CPU takes the interrupt.
 *
 * @example
 * ```ts
 * import type { ExtIntSource } from "./types.ts";
 * const none: ExtIntSource = { interruptPending: false, acknowledge: () => 0x27 };
 * ```
 */
export interface ExtIntSource {
  /** True while the INT output is asserted. */
  readonly interruptPending: boolean;
  /** The INTA cycle: the vector to inject (updates in-service state). */
  acknowledge(): number;
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
