/**
 * Bus adapter for the {@link I8254}: ports 0x40–0x43 and port 0x61 (system
 * control port B: counter 2's gate and output), counter 0's output on an
 * IRQ line. IRQ0 edges are delivered from `service()`, which the VM calls
 * after exits and at the core's wake-up alarm for the deadline it returns:
 * no JavaScript timer runs per tick, deadlines come from the counter's own
 * start time (no drift), and the pulse goes through an edge `ctx.interruptLine`, so it
 * reaches every interrupt controller (8259A and IOAPIC) as ISA IRQ0 does.
 *
 * @module
 */
import type { DeviceContext, Plugin, Region } from "../../bus/types.ts";
import { I8254, I8254_BASE, type I8254State } from "./i8254.ts";

/** System control port B (8042-era "port 61h"). */
export const PORT_B = 0x61;

/**
 * Options of {@link pitPlugin}.
 *
 * @example
 * ```ts
 * import type { PitOptions } from "./plugin.ts";
 * const o: PitOptions = { base: 0x40, irq: 0 };
 * ```
 */
export interface PitOptions {
  /** First port; default 0x40. */
  readonly base?: number;
  /** Port of the gate/OUT2 register; default 0x61, `null` for none. */
  readonly portB?: number | null;
  /** GSI driven by counter 0's output; default 0. */
  readonly irq?: number;
}

/**
 * The PIT plugin; `pit` exists from creation.
 *
 * @example
 * ```ts
 * import { pitPlugin } from "./plugin.ts";
 * console.log(pitPlugin().name); // "pit"
 * ```
 */
export interface PitPlugin extends Plugin {
  /** The device (null before setup). */
  readonly pit: I8254 | null;
  /** Plain-data state; throws before setup. */
  snapshot(): I8254State;
  /** Load a state from {@link PitPlugin.snapshot}; throws before setup. */
  restore(state: I8254State): void;
}

/**
 * Create the 8254 PIT plugin. Accesses wider than a byte act byte by byte
 * on consecutive ports, as on the ISA bus.
 *
 * @example
 * ```ts
 * import { pitPlugin } from "./plugin.ts";
 * import { FakeContext, writeValue } from "../testing/fake_context.ts";
 * const ctx = new FakeContext();
 * const p = pitPlugin();
 * const [pit] = p.setup(ctx);
 * writeValue(pit, 3, 1, 0x34); // counter 0, mode 2
 * writeValue(pit, 0, 1, 0xa9);
 * writeValue(pit, 0, 1, 0x04); // 1193 ticks ≈ 1 ms
 * ctx.clock.advance(1_000_000);
 * p.service!(ctx.clock.now());
 * console.log(ctx.events); // [{ kind: "pulse", gsi: 0 }]
 * ```
 */
export function pitPlugin(options: PitOptions = {}): PitPlugin {
  const base = options.base ?? I8254_BASE;
  const portB = options.portB === undefined ? PORT_B : options.portB;
  const irq = options.irq ?? 0;
  let pit: I8254 | null = null;
  const need = (): I8254 => {
    if (!pit) throw new Error("pit: not set up");
    return pit;
  };
  return {
    name: "pit",
    get pit() {
      return pit;
    },
    setup(ctx: DeviceContext): readonly Region[] {
      const line = ctx.interruptLine(irq, "edge");
      const p = new I8254({ clock: ctx.clock, irq0: () => line.trigger() });
      pit = p;
      const regions: Region[] = [{
        range: { space: "pio", base, length: 4 },
        read(a, data) {
          for (let i = 0; i < a.size; i++) {
            data[i] = a.offset + i < 4 ? p.read(a.offset + i) : 0xff;
          }
        },
        write(a, data) {
          for (let i = 0; i < a.size && a.offset + i < 4; i++) {
            p.write(a.offset + i, data[i]);
          }
        },
      }];
      if (portB !== null) {
        regions.push({
          range: { space: "pio", base: portB, length: 1 },
          read(_a, data) {
            data.fill(0xff);
            data[0] = p.readPortB();
          },
          write(_a, data) {
            p.writePortB(data[0]);
          },
        });
      }
      return regions;
    },
    service(now: number): number | null {
      return pit ? pit.service(now) : null;
    },
    reset(): void {
      pit?.reset();
    },
    snapshot: () => need().snapshot(),
    restore: (state) => need().restore(state),
  };
}
