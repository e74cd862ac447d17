/**
 * Internal test double for the interrupt controllers' context
 * ({@link IrqChipContext}): a {@link FakeContext} that also records GSI
 * routes, resamples, LAPIC EOIs, irqfds, EOI listeners, line controllers
 * and the ExtINT source. Not part of the public testing kit (third-party
 * plugins never get an irqchip context).
 *
 * @module
 */
import type { MsiMessage } from "../../bus/types.ts";
import type {
  ExtIntSource,
  IrqChipContext,
  LineController,
  MsiIrqfd,
} from "../../bus/irqchip.ts";
import { FakeContext } from "./fake_context.ts";

/**
 * A recording {@link IrqChipContext}.
 *
 * @example
 * ```ts
 * import { FakeIrqChipContext } from "./fake_irqchip.ts";
 * const ctx = new FakeIrqChipContext();
 * ctx.routeMsi(5, { address: 0xfee00000, data: 0x30 });
 * console.log(ctx.routes.get(5)?.data); // 48
 * ```
 */
export class FakeIrqChipContext extends FakeContext implements IrqChipContext {
  /** Number of `lapicEoi` calls. */
  lapicEois = 0;
  /** Vectors `lapicHasVector` reports as in service or requested. */
  readonly lapicVectors: Set<number> = new Set();
  /** True when `vector` is in {@link FakeIrqChipContext.lapicVectors}. */
  lapicHasVector(vector: number): boolean {
    return this.lapicVectors.has(vector);
  }
  /** Current MSI routes set through `routeMsi`. */
  readonly routes: Map<number, MsiMessage> = new Map();
  /** Irqfds created through `msiIrqfd`. */
  readonly irqfds: FakeMsiIrqfd[] = [];
  /** GSIs passed to `resample`, in order. */
  readonly resamples: number[] = [];
  /** EOI listeners registered by the plugin. */
  readonly eoiListeners: ((vector: number) => void)[] = [];
  /** Line controllers registered by the plugin. */
  readonly lineControllers: LineController[] = [];
  /** The ExtINT source, once set. */
  extint: ExtIntSource | null = null;

  /** Record an MSI; true (delivered). */
  signalMsi(msg: MsiMessage): boolean {
    this.recordMsi(msg);
    return true;
  }
  /** Count a LAPIC EOI. */
  lapicEoi(): void {
    this.lapicEois++;
  }
  /** Create a recording irqfd on the next free GSI (from 24). */
  msiIrqfd(): MsiIrqfd {
    const q = new FakeMsiIrqfd(24 + this.irqfds.length, this);
    this.irqfds.push(q);
    return q;
  }
  /** Record a resample. */
  resample(gsi: number): void {
    this.resamples.push(gsi);
  }
  /** Record a route change. */
  routeMsi(gsi: number, msg: MsiMessage | null): void {
    if (msg) this.routes.set(gsi, msg);
    else this.routes.delete(gsi);
  }
  /** Register an EOI listener. */
  onEoi(listener: (vector: number) => void): void {
    this.eoiListeners.push(listener);
  }
  /** Register a line controller. */
  addLineController(controller: LineController): void {
    this.lineControllers.push(controller);
  }
  /** Set the ExtINT source (once). */
  setExtint(source: ExtIntSource): void {
    if (this.extint) throw new Error("ExtINT source already set");
    this.extint = source;
  }
  /** What the VM does at KVM_EXIT_IOAPIC_EOI: tell every listener. */
  eoi(vector: number): void {
    for (const fn of this.eoiListeners) fn(vector);
  }
  /** What the VM does for a GSI level: tell every line controller. */
  setLine(gsi: number, level: boolean): void {
    for (const c of this.lineControllers) c.setLevel(gsi, level);
  }
}

/**
 * A recording {@link MsiIrqfd}: a fire while attached is recorded as an MSI
 * to the current route; while masked it is held.
 *
 * @example
 * ```ts
 * import { FakeIrqChipContext } from "./fake_irqchip.ts";
 * const ctx = new FakeIrqChipContext();
 * const q = ctx.msiIrqfd();
 * q.route({ address: 0xfee00000, data: 0x41 });
 * q.fire();
 * ```
 */
export class FakeMsiIrqfd implements MsiIrqfd {
  /** Current route. */
  msg: MsiMessage | null = null;
  /** True while detached. */
  masked = false;
  /** A fire happened while masked. */
  held = false;
  /** Number of route changes. */
  routeChanges = 0;
  /** True once closed. */
  closed = false;
  /** Create on `gsi`, recording into `ctx`. */
  constructor(readonly gsi: number, readonly ctx: FakeIrqChipContext) {}
  /** Set the route. */
  route(msg: MsiMessage | null): void {
    this.msg = msg;
    this.routeChanges++;
  }
  /** Deliver to the route, or hold while masked. */
  fire(): void {
    if (this.masked) this.held = true;
    else if (this.msg) this.ctx.recordMsi(this.msg);
  }
  /** Detach. */
  mask(): void {
    this.masked = true;
  }
  /** Re-attach; report a held fire. */
  unmask(): boolean {
    this.masked = false;
    const h = this.held;
    this.held = false;
    return h;
  }
  /** Close. */
  close(): void {
    this.closed = true;
  }
}
