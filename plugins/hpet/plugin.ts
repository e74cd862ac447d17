/**
 * Bus adapter for the {@link Hpet}: 1 KiB of MMIO at 0xFED00000, 4- and
 * 8-byte accesses. Interrupts go through `ctx.interruptLine` (legacy and IOAPIC
 * routes: in-kernel irqchip or our IOAPIC and 8259A pair) and an MSI source
 * (FSB). Timing: `service()` returns the clock time of the next comparator
 * match, which the VM turns into the core's wake-up alarm (absolute
 * deadlines from the counter's start, so no drift), as for the PIT and RTC;
 * no JavaScript timer runs.
 *
 * @module
 */
import type { Access, DeviceContext, Plugin, Region } from "../../bus/types.ts";
import { Hpet, HPET_BASE, HPET_LENGTH, type HpetState } from "./hpet.ts";

/**
 * Options of {@link hpetPlugin}.
 *
 * @example
 * ```ts
 * import type { HpetPluginOptions } from "./plugin.ts";
 * const o: HpetPluginOptions = { base: 0xfed00000, irq0Gsi: 0, irq8Gsi: 8 };
 * ```
 */
export interface HpetPluginOptions {
  /** MMIO base; default 0xFED00000. */
  readonly base?: number;
  /** GSI of the legacy replacement route of timer 0 (IRQ0); default 0. */
  readonly irq0Gsi?: number;
  /** GSI of the legacy replacement route of timer 1 (IRQ8); default 8. */
  readonly irq8Gsi?: number;
}

/**
 * The HPET plugin.
 *
 * @example
 * ```ts
 * import { hpetPlugin } from "./plugin.ts";
 * console.log(hpetPlugin().name); // "hpet"
 * ```
 */
export interface HpetPlugin extends Plugin {
  /** The device (null before setup). */
  readonly hpet: Hpet | null;
  /** The device state; throws before setup. */
  snapshot(): HpetState;
  /** Load a state from {@link HpetPlugin.snapshot}; throws before setup. */
  restore(state: HpetState): void;
}

/** Create the HPET plugin. */
export function hpetPlugin(options: HpetPluginOptions = {}): HpetPlugin {
  const base = options.base ?? HPET_BASE;
  let hpet: Hpet | null = null;
  const need = (): Hpet => {
    if (!hpet) throw new Error("hpet: not set up yet");
    return hpet;
  };
  return {
    name: "hpet",
    get hpet() {
      return hpet;
    },
    setup(ctx: DeviceContext): readonly Region[] {
      const msi = ctx.msiInterrupt();
      const dev = new Hpet({
        clock: ctx.clock,
        legacyIrq0Gsi: options.irq0Gsi ?? 0,
        legacyIrq8Gsi: options.irq8Gsi ?? 8,
        sink: {
          // Level sources throughout: an edge timer is a high-low pulse.
          setLine: (gsi, level) => ctx.interruptLine(gsi, "level").set(level),
          msi: (msg) => {
            msi.modify(msg);
            msi.trigger();
          },
        },
      });
      hpet = dev;
      return [{
        range: { space: "mmio", base, length: HPET_LENGTH },
        read(a: Access, data: Uint8Array): void {
          const v = dev.read(a.offset, a.size);
          const dv = new DataView(data.buffer, data.byteOffset, data.length);
          if (a.size === 8) dv.setBigUint64(0, v, true);
          else if (a.size === 4) dv.setUint32(0, Number(v), true);
        },
        write(a: Access, data: Uint8Array): void {
          const dv = new DataView(data.buffer, data.byteOffset, data.length);
          const v = a.size === 8
            ? dv.getBigUint64(0, true)
            : a.size === 4
            ? BigInt(dv.getUint32(0, true))
            : 0n;
          dev.write(a.offset, a.size, v);
        },
      }];
    },
    service(now: number): number | null {
      return hpet ? hpet.service(now) : null;
    },
    reset(): void {
      hpet?.reset();
    },
    snapshot: () => need().snapshot(),
    restore: (state: HpetState) => need().restore(state),
  };
}
