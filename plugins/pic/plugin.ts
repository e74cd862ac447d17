/**
 * Bus adapter for {@link PicPair}: claims the master (0x20/0x21), slave
 * (0xA0/0xA1) and ELCR (0x4D0/0x4D1) ports, and through its irqchip
 * context makes the pair the VM's split-irqchip line controller (ISA IRQ
 * 0..15) and ExtINT source.
 *
 * @module
 */
import type { Access, DeviceContext, Plugin, Region } from "../../bus/types.ts";
import { asIrqChipContext, irqChipPlugin } from "../../bus/irqchip.ts";
import {
  I8259_ELCR_MASTER,
  I8259_MASTER_COMMAND,
  I8259_OPEN_BUS,
  I8259_SLAVE_COMMAND,
  PicPair,
  type PicPairState,
} from "./pic_8259.ts";

/**
 * Options of {@link picPlugin}.
 *
 * @example
 * ```ts
 * import type { PicPluginOptions } from "./plugin.ts";
 * const o: PicPluginOptions = { onChange: () => {} };
 * ```
 */
export interface PicPluginOptions {
  /** The device, when the host constructs it; default a new pair. */
  readonly pic?: PicPair;
  /**
   * Called when the pair's `interruptPending` changed. With `pic` given,
   * it runs after the pair's own `onChange` (which is kept).
   */
  readonly onChange?: () => void;
  /**
   * Called when a non-specific EOI finds nothing in service in the pair;
   * when it returns true the EOI is passed on to the LAPIC. Hyperlight-style
   * guests take PV-timer ticks as MSIs but acknowledge them with a PIC EOI
   * (0x20 to port 0x20): the machine passes `() => pvTimer.active`.
   */
  readonly emptyEoiToLapic?: () => boolean;
}

/**
 * The PIC plugin: the pair's ports, lines and ExtINT output.
 *
 * @example
 * ```ts
 * import { picPlugin } from "./plugin.ts";
 * const p = picPlugin({});
 * p.pic.setLevel(1, true);
 * ```
 */
export interface PicPlugin extends Plugin {
  /** The device. */
  readonly pic: PicPair;
  /** The pair state. */
  snapshot(): PicPairState;
  /** Load a pair state (TypeError and no change when malformed). */
  restore(state: PicPairState): void;
}

/**
 * Adapt a {@link PicPair} to the bus. Only 1-byte accesses reach the
 * device; other sizes read 0xFF and are counted in `pic.stats.badAccesses`.
 *
 * @example
 * ```ts
 * import { picPlugin } from "./plugin.ts";
 * let changes = 0;
 * const plugin = picPlugin({ onChange: () => changes++ });
 * console.log(plugin.name); // "pic"
 * ```
 */
export function picPlugin(options: PicPluginOptions = {}): PicPlugin {
  const extra = options.onChange;
  let pic: PicPair;
  if (options.pic) {
    pic = options.pic;
    if (extra) {
      const own = pic.onChange;
      pic.onChange = own
        ? () => {
          own();
          extra();
        }
        : extra;
    }
  } else {
    pic = new PicPair({ onChange: extra });
  }
  let lapicEoi: (vcpu: number) => void = () => {};
  const toLapic = options.emptyEoiToLapic;
  const region = (base: number): Region => ({
    range: { space: "pio", base, length: 2 },
    read(a: Access, data: Uint8Array): void {
      if (a.size !== 1) {
        pic.stats.badAccesses++;
        data.fill(I8259_OPEN_BUS);
      } else data[0] = pic.read(a.address);
    },
    write(a: Access, data: Uint8Array): void {
      if (a.size !== 1) {
        pic.stats.badAccesses++;
        return;
      }
      const before = pic.stats.emptyEois;
      pic.write(a.address, data[0]);
      // The EOI-ing vCPU's LAPIC: its access is being handled, so it is
      // not running (with more vCPUs, others may be).
      if (pic.stats.emptyEois !== before && toLapic?.()) lapicEoi(a.vcpu);
    },
  });
  return irqChipPlugin({
    name: "pic",
    pic,
    setup(context: DeviceContext): readonly Region[] {
      const ctx = asIrqChipContext(context, "pic");
      ctx.addLineController(pic);
      ctx.setExtint(pic);
      lapicEoi = (vcpu) => ctx.lapicEoi(vcpu);
      return [
        region(I8259_MASTER_COMMAND),
        region(I8259_SLAVE_COMMAND),
        region(I8259_ELCR_MASTER),
      ];
    },
    reset(): void {
      pic.reset();
    },
    snapshot: () => pic.snapshot(),
    restore: (state: PicPairState) => pic.restore(state),
  });
}
