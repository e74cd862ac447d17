/**
 * An example third-party device plugin, written against the public
 * surface only (`@denovmm/vmm`; here the same module by relative path): a
 * doorbell with a 32-bit count register and an interrupt. Writing any
 * value to `base + 0` rings it (count + 1, and one edge on the interrupt
 * line unless masked by bit 0 of `base + 4`); reading `base + 0` returns
 * the count. It implements the whole contract: reset and versioned state.
 *
 * @module
 */
import {
  type DeviceState,
  type InterruptLine,
  type Plugin,
  readLe,
  type Region,
  writeLe,
} from "../mod.ts";

/** Options of {@link doorbellPlugin}. */
export interface DoorbellOptions {
  /** First I/O port (8 ports). */
  readonly base: number;
  /** Interrupt line (the host's wiring). */
  readonly line: number;
}

/** The doorbell's saved state. */
export interface DoorbellState extends DeviceState {
  /** Format version, currently 1. */
  readonly version: 1;
  /** Rings so far (u32). */
  readonly count: number;
  /** Interrupt masked. */
  readonly masked: boolean;
}

/** A doorbell plugin. */
export interface DoorbellPlugin extends Plugin {
  /** Saved state. */
  snapshot(): DoorbellState;
  /** Load a saved state (TypeError and no change when malformed). */
  restore(state: DoorbellState): void;
}

/** Create a doorbell at `base` raising `line`. */
export function doorbellPlugin(options: DoorbellOptions): DoorbellPlugin {
  let count = 0;
  let masked = false;
  let irq: InterruptLine | null = null;
  return {
    name: `doorbell@${options.base.toString(16)}`,
    setup(ctx): readonly Region[] {
      irq = ctx.interruptLine(options.line, "edge");
      return [{
        range: { space: "pio", base: options.base, length: 8 },
        read(a, data) {
          if (a.offset === 0) writeLe(data, count);
          else if (a.offset === 4) writeLe(data, masked ? 1 : 0);
          else data.fill(0xff);
        },
        write(a, data) {
          if (a.offset === 0) {
            count = (count + 1) >>> 0;
            if (!masked) irq?.trigger();
          } else if (a.offset === 4) {
            masked = (readLe(data) & 1) === 1;
          } else {
            ctx.log("debug", `ignored write at +${a.offset}`);
          }
        },
      }];
    },
    reset() {
      count = 0;
      masked = false;
    },
    snapshot: () => ({ version: 1, count, masked }),
    restore(state: DoorbellState) {
      const s = state as unknown as Record<string, unknown>;
      if (
        s?.version !== 1 || !Number.isInteger(s.count) ||
        (s.count as number) < 0 || (s.count as number) > 0xffffffff ||
        typeof s.masked !== "boolean"
      ) {
        throw new TypeError("doorbell state: unknown version or malformed");
      }
      count = s.count as number;
      masked = s.masked;
    },
  };
}
