/**
 * Bus adapter for the {@link Mc146818} RTC/CMOS: index port 0x70, data
 * port 0x71, IRQ8 through a `ctx.interruptLine` source. Register C's flags and IRQ8 are
 * brought up to date from `service()` at the deadline it returns (the
 * core's wake-up alarm), never by a JavaScript timer.
 *
 * @module
 */
import type { DeviceContext, Plugin, Region } from "../../bus/types.ts";
import { Mc146818, type Mc146818State, RTC_INDEX_PORT } from "./mc146818.ts";

/**
 * Options of {@link rtcPlugin}.
 *
 * @example
 * ```ts
 * import type { RtcOptions } from "./plugin.ts";
 * const o: RtcOptions = { ramBelow4g: 64 << 20, irq: 8 };
 * ```
 */
export interface RtcOptions {
  /** Index port (data port at +1); default 0x70. */
  readonly base?: number;
  /** GSI of the interrupt output; default 8. */
  readonly irq?: number;
  /** Guest RAM below 4 GiB in bytes, for the CMOS memory-size bytes. */
  readonly ramBelow4g?: number;
  /** Guest RAM above 4 GiB in bytes. */
  readonly ramAbove4g?: number;
  /** Host wall time in ms since the epoch (default `Date.now`). */
  readonly hostTimeMs?: () => number;
}

/**
 * The RTC plugin.
 *
 * @example
 * ```ts
 * import { rtcPlugin } from "./plugin.ts";
 * console.log(rtcPlugin().rtc); // null before setup
 * ```
 */
export interface RtcPlugin extends Plugin {
  /** The device (null before setup). */
  readonly rtc: Mc146818 | null;
  /** Plain-data state; throws before setup. */
  snapshot(): Mc146818State;
  /** Load a state from {@link RtcPlugin.snapshot}; throws before setup. */
  restore(state: Mc146818State): void;
}

/**
 * Create the MC146818 RTC plugin. Accesses wider than a byte act byte by
 * byte (0x70 then 0x71), as on the ISA bus.
 *
 * @example
 * ```ts
 * import { rtcPlugin } from "./plugin.ts";
 * import { FakeContext, readValue, writeValue } from "../testing/fake_context.ts";
 * const [r] = rtcPlugin({ hostTimeMs: () => Date.UTC(2031, 6, 4) })
 *   .setup(new FakeContext());
 * writeValue(r, 0, 1, 0x09); // year
 * console.log(readValue(r, 1, 1).toString(16)); // "31"
 * ```
 */
export function rtcPlugin(options: RtcOptions = {}): RtcPlugin {
  const base = options.base ?? RTC_INDEX_PORT;
  let rtc: Mc146818 | null = null;
  const need = (): Mc146818 => {
    if (!rtc) throw new Error("rtc: not set up");
    return rtc;
  };
  return {
    name: "rtc",
    get rtc() {
      return rtc;
    },
    setup(ctx: DeviceContext): readonly Region[] {
      const line = ctx.interruptLine(options.irq ?? 8, "level");
      const r = new Mc146818({
        clock: ctx.clock,
        hostTimeMs: options.hostTimeMs,
        ramBelow4g: options.ramBelow4g,
        ramAbove4g: options.ramAbove4g,
        setIrq: (level) => line.set(level),
      });
      rtc = r;
      return [{
        range: { space: "pio", base, length: 2 },
        read(a, data) {
          for (let i = 0; i < a.size; i++) {
            const port = a.offset + i;
            data[i] = port === 0
              ? r.readIndex()
              : port === 1
              ? r.readData()
              : 0xff;
          }
        },
        write(a, data) {
          for (let i = 0; i < a.size; i++) {
            const port = a.offset + i;
            if (port === 0) r.writeIndex(data[i]);
            else if (port === 1) r.writeData(data[i]);
            else r.stats.badAccesses++;
          }
        },
      }];
    },
    service(now: number): number | null {
      return rtc ? rtc.service(now) : null;
    },
    reset(): void {
      rtc?.reset();
    },
    snapshot: () => need().snapshot(),
    restore: (state) => need().restore(state),
  };
}
