/**
 * The interrupt-controller half of the plugin contract, internal to
 * denovmm: GSI routes, EOIs, resampling, ExtINT and line controllers. Only
 * the built-in interrupt controllers (the IOAPIC, the 8259A pair and its
 * stub, the PCI host with its MSI-X irqfds) are marked with
 * {@link irqChipPlugin}; the VM gives such a plugin an
 * {@link IrqChipContext} and every other plugin a plain
 * {@link DeviceContext}, which has none of these members. This module is
 * not exported from the package, so a third-party plugin can neither mark
 * itself nor reach the routing table.
 *
 * @module
 */
import type { DeviceContext, MsiMessage, Plugin } from "./types.ts";

/**
 * What an interrupt controller may do besides a device's services.
 *
 * @example
 * ```ts
 * import type { IrqChipContext } from "./irqchip.ts";
 * function bridge(ctx: IrqChipContext) { ctx.onEoi((v) => console.log(v)); }
 * ```
 */
export interface IrqChipContext extends DeviceContext {
  /** Deliver an MSI now (KVM_SIGNAL_MSI); false when the guest blocked it. */
  signalMsi(msg: MsiMessage): boolean;
  /**
   * Set (or with `null` remove) the MSI route of `gsi` in the core's GSI
   * routing table, so irqfds on that GSI (host timers, device threads)
   * deliver `msg` directly. Used by the split-irqchip IOAPIC.
   */
  routeMsi(gsi: number, msg: MsiMessage | null): void;
  /**
   * Split irqchip: a level interrupt on `gsi` was retired by the userspace
   * IOAPIC; signal the resample eventfds of host irqfds on that line (the
   * in-kernel irqchip does this itself). No-op when there are none.
   */
  resample(gsi: number): void;
  /**
   * Retire the highest-priority in-service interrupt of vCPU `vcpu`'s
   * (default 0) in-kernel LAPIC (what a guest write to the LAPIC EOI
   * register does). Used to bridge legacy 8259 EOIs when the PIC is not in
   * the kernel: pass the vCPU whose access is being handled (with more
   * than one vCPU the others may be running, and cannot be touched).
   */
  lapicEoi(vcpu?: number): void;
  /**
   * True when `vector` is in service (ISR) or requested (IRR) in vCPU 0's
   * in-kernel LAPIC. Used by the split-irqchip IOAPIC's Remote-IRR
   * watchdog, which must never complete the EOI of a pending interrupt.
   */
  lapicHasVector(vector: number): boolean;
  /**
   * An irqfd on a freshly allocated GSI with an MSI route, for a vector a
   * host thread may fire without TypeScript (MSI-X with irqfds).
   */
  msiIrqfd(): MsiIrqfd;
  /** Be told of every end of interrupt (split irqchip: KVM_EXIT_IOAPIC_EOI). */
  onEoi(listener: (vector: number) => void): void;
  /**
   * Receive every GSI line level (split irqchip only; throws otherwise):
   * ISA lines reach both the PIC and the IOAPIC, as on a PC.
   */
  addLineController(controller: LineController): void;
  /** Become the VM's ExtINT source (split irqchip only; one per VM). */
  setExtint(source: ExtIntSource): void;
}

const chips = new WeakSet<Plugin>();

/**
 * Mark `plugin` as an interrupt controller: the VM gives it an
 * {@link IrqChipContext}. Returns the plugin.
 *
 * @example
 * ```ts
 * import { irqChipPlugin, isIrqChipPlugin } from "./irqchip.ts";
 * const p = irqChipPlugin({ name: "chip", setup: () => [] });
 * console.log(isIrqChipPlugin(p)); // true
 * ```
 */
export function irqChipPlugin<P extends Plugin>(plugin: P): P {
  chips.add(plugin);
  return plugin;
}

/**
 * True when `plugin` was marked with {@link irqChipPlugin}.
 *
 * @example
 * ```ts
 * import { isIrqChipPlugin } from "./irqchip.ts";
 * console.log(isIrqChipPlugin({ name: "dev", setup: () => [] })); // false
 * ```
 */
export function isIrqChipPlugin(plugin: Plugin): boolean {
  return chips.has(plugin);
}

/**
 * The irqchip view of `ctx`, or a TypeError naming `who` when the context
 * is a plain device context (the plugin was not attached as an interrupt
 * controller).
 *
 * @example
 * ```ts ignore
 * import { asIrqChipContext } from "./irqchip.ts";
 * // setup(ctx) { const chip = asIrqChipContext(ctx, "ioapic"); ... }
 * ```
 */
export function asIrqChipContext(
  ctx: DeviceContext,
  who: string,
): IrqChipContext {
  const c = ctx as Partial<IrqChipContext>;
  if (
    typeof c.routeMsi !== "function" || typeof c.onEoi !== "function" ||
    typeof c.msiIrqfd !== "function"
  ) {
    throw new TypeError(
      `${who} is an interrupt controller: it needs the VM's irqchip context`,
    );
  }
  return ctx as IrqChipContext;
}

/**
 * An irqfd bound to its own GSI whose MSI route follows the guest's
 * message. Masking detaches it from KVM (writes keep counting) instead of
 * changing the route, so mask/unmask costs no routing-table rewrite.
 *
 * @example
 * ```ts
 * import type { MsiIrqfd } from "./irqchip.ts";
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
 * our IOAPIC). A device's
 * `InterruptLine` on line `gsi` drives it (through the wired OR).
 *
 * @example
 * ```ts
 * import type { LineController } from "./irqchip.ts";
 * const levels = new Map<number, boolean>();
 * const chip: LineController = { setLevel: (g, l) => void levels.set(g, l) };
 * ```
 */
export interface LineController {
  /** Drive line `gsi` to `level`. */
  setLevel(gsi: number, level: boolean): void;
}

/**
 * An interrupt controller whose output is an ExtINT (SDM 10.5.1): the
 * vector is supplied by an INTA cycle when the CPU takes the interrupt.
 *
 * @example
 * ```ts
 * import type { ExtIntSource } from "./irqchip.ts";
 * const none: ExtIntSource = { interruptPending: false, acknowledge: () => 0x27 };
 * ```
 */
export interface ExtIntSource {
  /** True while the INT output is asserted. */
  readonly interruptPending: boolean;
  /** The INTA cycle: the vector to inject (updates in-service state). */
  acknowledge(): number;
}
