/**
 * Bus adapter for {@link TestDevIrqLines}.
 *
 * @module
 */
import type {
  Access,
  IrqLine,
  Plugin,
  PluginContext,
  Region,
} from "../../bus/types.ts";
import {
  TESTDEV_IRQ_BASE,
  TESTDEV_IRQ_PORTS,
  TestDevIrqLines,
} from "./irq_lines.ts";

/**
 * Options of {@link testdevPlugin}.
 *
 * @example
 * ```ts
 * import type { TestdevOptions } from "./plugin.ts";
 * const o: TestdevOptions = { lines: 16 };
 * ```
 */
export interface TestdevOptions {
  /** Base port; default 0x2000. */
  readonly base?: number;
  /** Number of wired GSIs (0..lines-1); default 24. */
  readonly lines?: number;
}

/**
 * Create the pc-testdev IRQ-line plugin. The region spans
 * `max(24, lines)` ports; ports at or past `lines` and accesses wider than
 * one byte are counted no-ops (reads return 0).
 *
 * @example
 * ```ts
 * import { testdevPlugin } from "./plugin.ts";
 * const p = testdevPlugin({});
 * console.log(p.name); // "testdev"
 * ```
 */
export function testdevPlugin(
  options: TestdevOptions = {},
): Plugin & { device(): TestDevIrqLines | null } {
  const base = options.base ?? TESTDEV_IRQ_BASE;
  const lines = options.lines ?? TESTDEV_IRQ_PORTS;
  let dev: TestDevIrqLines | null = null;
  return {
    name: "testdev",
    device: () => dev,
    setup(ctx: PluginContext): readonly Region[] {
      const irqs = new Map<number, IrqLine>();
      const d = new TestDevIrqLines(lines, (n, level) => {
        let line = irqs.get(n);
        if (!line) {
          line = ctx.irqLine(n);
          irqs.set(n, line);
        }
        line.set(level);
      });
      dev = d;
      return [{
        range: {
          space: "pio",
          base,
          length: Math.max(TESTDEV_IRQ_PORTS, lines),
        },
        read(a: Access, data: Uint8Array): void {
          if (a.size !== 1) d.stats.badAccesses++;
          else data[0] = d.read(a.offset);
        },
        write(a: Access, data: Uint8Array): void {
          if (a.size !== 1) d.stats.badAccesses++;
          else d.write(a.offset, data[0]);
        },
      }];
    },
  };
}
