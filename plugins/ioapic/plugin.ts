/**
 * Bus adapter for {@link Ioapic}: one MMIO region of 0x100 bytes at the
 * IOAPIC base. It is an interrupt controller: through its irqchip context
 * it receives every GSI level and every EOI (KVM_EXIT_IOAPIC_EOI), and
 * sets the GSI routes of the pins.
 *
 * @module
 */
import type { Access, DeviceContext, Plugin, Region } from "../../bus/types.ts";
import { readLe, writeLe } from "../../bus/le.ts";
import {
  asIrqChipContext,
  type IrqChipContext,
  irqChipPlugin,
} from "../../bus/irqchip.ts";
import { RemoteIrrWatchdog } from "./remote_irr_watchdog.ts";
import {
  Ioapic,
  IOAPIC_DEFAULT_BASE,
  IOAPIC_MMIO_LENGTH,
  type IoapicOptions,
  type IoapicState,
} from "./ioapic.ts";

/**
 * Options of {@link ioapicPlugin}.
 *
 * @example
 * ```ts
 * import { Ioapic } from "./ioapic.ts";
 * import type { IoapicPluginOptions } from "./plugin.ts";
 * const ioapic = new Ioapic({ sink: { deliver() {} }, clock: { now: () => 0 } });
 * const o: IoapicPluginOptions = { ioapic, base: 0xfec00000 };
 * ```
 */
export interface IoapicPluginOptions {
  /**
   * The device, when the host constructs it. When absent the plugin builds
   * one whose sink is the context: deliveries go to `ctx.signalMsi`, route
   * changes to `ctx.routeMsi` (pin n = GSI n), level EOIs to `ctx.resample`,
   * logs to `ctx.log`, time from
   * `ctx.clock` (all from `setup` on; earlier deliveries are dropped).
   */
  readonly ioapic?: Ioapic;
  /** Storm-guard settings for a plugin-built device. */
  readonly storm?: Pick<
    IoapicOptions,
    "stormThreshold" | "stormWindowNs" | "stormDelayNs"
  >;
  /** MMIO base; default 0xFEC00000. */
  readonly base?: number;
  /**
   * Host quirk `remoteIrrWatchdog`: complete lost level EOIs (see
   * {@link RemoteIrrWatchdog}); null or absent for none.
   */
  readonly remoteIrrWatchdog?: { readonly periodNs?: number } | null;
}

/**
 * The IOAPIC plugin: also the split-irqchip line controller.
 *
 * @example
 * ```ts
 * import { ioapicPlugin } from "./plugin.ts";
 * const p = ioapicPlugin({});
 * p.ioapic.setLevel(4, true);
 * ```
 */
export interface IoapicPlugin extends Plugin {
  /** The device. */
  readonly ioapic: Ioapic;
  /** Run deferred deliveries due at `now`; returns the next deadline. */
  service(now: number): number | null;
  /** The device state. */
  snapshot(): IoapicState;
  /** Load a device state (TypeError and no change when malformed). */
  restore(state: IoapicState): void;
  /** The Remote-IRR watchdog, when enabled (after setup). */
  readonly watchdog: RemoteIrrWatchdog | null;
}

/**
 * Adapt an {@link Ioapic} to the bus. Only 4-byte accesses reach the
 * device registers; other sizes read 0 and are counted in
 * `ioapic.stats.badAccesses`.
 *
 * @example
 * ```ts
 * import { Ioapic } from "./ioapic.ts";
 * import { ioapicPlugin } from "./plugin.ts";
 * const ioapic = new Ioapic({ sink: { deliver() {} }, clock: { now: () => 0 } });
 * const plugin = ioapicPlugin({ ioapic });
 * console.log(plugin.name); // "ioapic"
 * ```
 */
export function ioapicPlugin(
  options: IoapicPluginOptions = {},
): IoapicPlugin {
  let ctx: IrqChipContext | null = null;
  const ioapic = options.ioapic ?? new Ioapic({
    sink: {
      deliver: (msg) => ctx?.signalMsi(msg),
      routeChanged: (pin, msg) => ctx?.routeMsi(pin, msg),
      levelEoi: (pin) => ctx?.resample(pin),
    },
    clock: { now: () => ctx?.clock.now() ?? 0 },
    log: (level, msg) => ctx?.log(level, msg),
    ...options.storm,
  });
  const base = options.base ?? IOAPIC_DEFAULT_BASE;
  let watchdog: RemoteIrrWatchdog | null = null;
  return irqChipPlugin({
    name: "ioapic",
    ioapic,
    get watchdog() {
      return watchdog;
    },
    setup(context: DeviceContext): readonly Region[] {
      const chip = asIrqChipContext(context, "ioapic");
      ctx = chip;
      chip.addLineController(ioapic);
      chip.onEoi((vector) => ioapic.eoi(vector));
      if (options.remoteIrrWatchdog) {
        watchdog = new RemoteIrrWatchdog({
          ioapic,
          lapicHasVector: (v) => chip.lapicHasVector(v),
          periodNs: options.remoteIrrWatchdog.periodNs,
        });
      }
      return [{
        range: { space: "mmio", base, length: IOAPIC_MMIO_LENGTH },
        read(access: Access, data: Uint8Array): void {
          const v = ioapic.read(access.offset, access.size);
          if (access.size !== 4) return; // counted by the device; reads 0
          writeLe(data, v);
        },
        write(access: Access, data: Uint8Array): void {
          ioapic.write(
            access.offset,
            access.size,
            access.size === 4 ? readLe(data) : 0,
          );
        },
      }];
    },
    reset(): void {
      ioapic.reset();
      watchdog?.reset();
    },
    service(now: number): number | null {
      ioapic.service(now);
      const next = ioapic.nextDeadline();
      const check = watchdog ? watchdog.service(now) : null;
      return next === null
        ? check
        : check === null
        ? next
        : Math.min(next, check);
    },
    snapshot: () => ioapic.snapshot(),
    restore: (state: IoapicState) => ioapic.restore(state),
  });
}
