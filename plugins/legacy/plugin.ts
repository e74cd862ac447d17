/**
 * Legacy PC port stubs for split-irqchip mode: both 8259 PICs
 * (0x20/0x21, 0xA0/0xA1) and the 8254 PIT (0x40–0x43). With `pic: false`
 * only the PIT stub is claimed, so a real 8259A pair (`plugins/pic`) can
 * own the PIC ports.
 *
 * @module
 */
import type { Access, DeviceContext, Plugin, Region } from "../../bus/types.ts";
import { asIrqChipContext, irqChipPlugin } from "../../bus/irqchip.ts";
import { PIC_MASTER_COMMAND, PIC_SLAVE_COMMAND, PicStub } from "./pic_stub.ts";
import { PIT_BASE, PIT_PORTS, PitStub } from "./pit_stub.ts";

/**
 * Options of {@link legacyPlugin}.
 *
 * @example
 * ```ts
 * import type { LegacyOptions } from "./plugin.ts";
 * const o: LegacyOptions = { timerActive: () => false, pic: true };
 * ```
 */
export interface LegacyOptions {
  /** True while the PV timer ticks (e.g. `pvTimerPlugin(...).active`). */
  readonly timerActive?: () => boolean;
  /**
   * Claim the PIC ports 0x20/0x21 and 0xA0/0xA1 with the stub (default
   * true). False leaves them to a real PIC (`plugins/pic`): only the PIT
   * ports are claimed and `pic()` stays null.
   */
  readonly pic?: boolean;
}

/**
 * The legacy stubs plugin; `pic()`/`pit()` expose the devices after setup.
 *
 * @example
 * ```ts
 * import { legacyPlugin } from "./plugin.ts";
 * const p = legacyPlugin({});
 * console.log(p.pic()); // null before setup
 * ```
 */
export interface LegacyPlugin extends Plugin {
  /** The PIC stub, once set up (always null with `pic: false`). */
  pic(): PicStub | null;
  /** The PIT stub, once set up. */
  pit(): PitStub | null;
}

/**
 * Create the PIC/PIT stub plugin. Accesses wider than one byte read 0xFF
 * and are counted in the device's `badAccesses`.
 *
 * @example
 * ```ts
 * import { legacyPlugin } from "./plugin.ts";
 * const p = legacyPlugin({ timerActive: () => true });
 * console.log(p.name); // "legacy"
 * ```
 */
export function legacyPlugin(options: LegacyOptions = {}): LegacyPlugin {
  const timerActive = options.timerActive ?? (() => false);
  let pic: PicStub | null = null;
  let pit: PitStub | null = null;
  return irqChipPlugin({
    name: "legacy",
    pic: () => pic,
    pit: () => pit,
    setup(context: DeviceContext): readonly Region[] {
      const ctx = asIrqChipContext(context, "legacy");
      const t = new PitStub();
      pit = t;
      const pitRegion: Region = {
        range: { space: "pio", base: PIT_BASE, length: PIT_PORTS },
        read(a: Access, data: Uint8Array): void {
          if (a.size !== 1) {
            t.stats.badAccesses++;
            data.fill(0xff);
          } else data[0] = t.read(a.offset);
        },
        write(a: Access, data: Uint8Array): void {
          if (a.size !== 1) t.stats.badAccesses++;
          else t.write(a.offset, data[0]);
        },
      };
      if (options.pic === false) return [pitRegion];
      const p = new PicStub({ timerActive, lapicEoi: () => ctx.lapicEoi() });
      pic = p;
      const picRegion = (base: number): Region => ({
        range: { space: "pio", base, length: 2 },
        read(a: Access, data: Uint8Array): void {
          if (a.size !== 1) {
            p.stats.badAccesses++;
            data.fill(0xff);
          } else data[0] = p.read(a.address);
        },
        write(a: Access, data: Uint8Array): void {
          if (a.size !== 1) p.stats.badAccesses++;
          else p.write(a.address, data[0]);
        },
      });
      return [
        picRegion(PIC_MASTER_COMMAND),
        picRegion(PIC_SLAVE_COMMAND),
        pitRegion,
      ];
    },
  });
}
