/**
 * The ACPI plugin: writes the tables of {@link buildAcpiTables} into guest
 * RAM in the BIOS area at setup and again at every `reset()` (a reset
 * zeroes RAM), and serves the PM1a event/control blocks and the PM timer
 * ({@link AcpiPm}) on one 12-byte I/O range at `pmBase`. A guest write of
 * SLP_EN ends the run with `{ reason: "sleep", state }` or
 * `{ reason: "poweroff", state: 5 }` through `ctx.sleep`.
 *
 * @module
 */
import type { Access, DeviceContext, Plugin, Region } from "../../bus/types.ts";
import { AcpiPm, type AcpiPmState } from "./pm.ts";
import {
  type AcpiConfig,
  type AcpiImage,
  buildAcpiTables,
  PM_LAYOUT,
  SLP_TYP,
} from "./tables.ts";

/**
 * The ACPI plugin.
 *
 * @example
 * ```ts
 * import { acpiPlugin } from "./plugin.ts";
 * const p = acpiPlugin({
 *   base: 0xf0000, cpus: 1, ioapic: { id: 0, address: 0xfec00000, gsiBase: 0 },
 *   lapicAddress: 0xfee00000, sciIrq: 9, pmBase: 0xb000, hpet: null, overrides: [],
 * });
 * console.log(p.image.addresses.RSDP); // 983040
 * ```
 */
export interface AcpiPlugin extends Plugin {
  /** The tables as written. */
  readonly image: AcpiImage;
  /** The PM registers (null before setup). */
  readonly pm: AcpiPm | null;
  /** The PM block's state (the tables are rebuilt, not saved). */
  snapshot(): AcpiPmState;
  /** Load a state from {@link AcpiPlugin.snapshot}; throws before setup. */
  restore(state: AcpiPmState): void;
}

/** Bytes of the PM I/O range (PM1a_EVT, PM1a_CNT, pad, PM_TMR). */
export const PM_RANGE_LENGTH: number = PM_LAYOUT.tmr + 4;

const STATE_OF_TYP = new Map(
  Object.entries(SLP_TYP).map(([s, t]) => [t, Number(s)]),
);

/** Create the ACPI plugin for `config` (validated here: throws RangeError). */
export function acpiPlugin(config: AcpiConfig): AcpiPlugin {
  const image = buildAcpiTables(config);
  let pm: AcpiPm | null = null;
  const needPm = (): AcpiPm => {
    if (!pm) throw new Error("acpi: not set up yet");
    return pm;
  };
  let ctx: DeviceContext | null = null;
  const writeTables = () => ctx?.memory.write(image.base, image.bytes);
  return {
    name: "acpi",
    image,
    get pm() {
      return pm;
    },
    setup(context: DeviceContext): readonly Region[] {
      ctx = context;
      if (!context.memory.contains(image.base, image.bytes.length)) {
        throw new RangeError(
          `acpi: tables at 0x${image.base.toString(16)} are outside guest RAM`,
        );
      }
      writeTables();
      const sci = context.interruptLine(config.sciIrq, "level");
      const dev = new AcpiPm({
        clock: context.clock,
        sci: (level) => sci.set(level),
        sleep: (typ) => {
          const state = STATE_OF_TYP.get(typ);
          if (state === undefined) {
            context.log(
              "warn",
              `SLP_EN with undeclared SLP_TYP ${typ}: ignored`,
            );
            return;
          }
          context.sleep(state);
        },
      });
      pm = dev;
      const byteAt = (o: number): number => {
        switch (o) {
          case 0:
          case 1:
            return (dev.readStatus() >> (8 * o)) & 0xff;
          case 2:
          case 3:
            return (dev.readEnable() >> (8 * (o - 2))) & 0xff;
          case 4:
          case 5:
            return (dev.readControl() >> (8 * (o - 4))) & 0xff;
          default:
            return 0xff;
        }
      };
      return [{
        range: { space: "pio", base: config.pmBase, length: PM_RANGE_LENGTH },
        read(a: Access, data: Uint8Array): void {
          if (a.offset === PM_LAYOUT.tmr && a.size === 4) {
            new DataView(data.buffer, data.byteOffset, 4).setUint32(
              0,
              dev.readTimer(),
              true,
            );
            return;
          }
          if (a.offset >= PM_LAYOUT.tmr) {
            const t = dev.readTimer();
            for (let i = 0; i < a.size; i++) {
              const o = a.offset + i - PM_LAYOUT.tmr;
              data[i] = o < 4 ? (t >>> (8 * o)) & 0xff : 0xff;
            }
            return;
          }
          for (let i = 0; i < a.size; i++) data[i] = byteAt(a.offset + i);
        },
        write(a: Access, data: Uint8Array): void {
          let sts = 0, en = dev.readEnable(), cnt = dev.readControl();
          let touched = 0;
          for (let i = 0; i < a.size; i++) {
            const o = a.offset + i;
            const v = data[i];
            if (o <= 1) {
              sts |= v << (8 * o);
              touched |= 1;
            } else if (o <= 3) {
              const s = 8 * (o - 2);
              en = (en & ~(0xff << s)) | (v << s);
              touched |= 2;
            } else if (o <= 5) {
              const s = 8 * (o - 4);
              cnt = (cnt & ~(0xff << s)) | (v << s);
              touched |= 4;
            } else {
              dev.stats.badAccesses++; // the timer is read-only
            }
          }
          if (touched & 1) dev.writeStatus(sts);
          if (touched & 2) dev.writeEnable(en);
          if (touched & 4) dev.writeControl(cnt);
        },
      }];
    },
    service(now: number): number | null {
      return pm ? pm.service(now) : null;
    },
    reset(): void {
      writeTables();
      pm?.reset();
    },
    snapshot: () => needPm().snapshot(),
    restore: (state: AcpiPmState) => needPm().restore(state),
  };
}
