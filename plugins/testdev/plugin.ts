/**
 * Bus adapter for QEMU's pc-testdev: IRQ-line ports ({@link TestDevIrqLines}),
 * the scratch/flush ports ({@link TestDevIoport}) and the iomem window
 * ({@link TestDevIomem}).
 *
 * @module
 */
import type {
  Access,
  DeviceContext,
  InterruptLine,
  Plugin,
  Region,
} from "../../bus/types.ts";
import {
  TESTDEV_IRQ_BASE,
  TESTDEV_IRQ_PORTS,
  TestDevIrqLines,
  type TestDevIrqLinesState,
} from "./irq_lines.ts";
import {
  TESTDEV_IOPORT_BASE,
  TestDevIoport,
  type TestDevIoportState,
} from "./ioport.ts";
import {
  TESTDEV_IOMEM_BASE,
  TESTDEV_IOMEM_LEN,
  TestDevIomem,
  type TestDevIomemState,
} from "./iomem.ts";

/**
 * Options of {@link testdevPlugin}.
 *
 * @example
 * ```ts
 * import type { TestdevOptions } from "./plugin.ts";
 * const o: TestdevOptions = { lines: 16, iomem: null };
 * ```
 */
export interface TestdevOptions {
  /** Base port of the IRQ lines; default 0x2000. */
  readonly base?: number;
  /** Number of wired GSIs (0..lines-1); default 24. */
  readonly lines?: number;
  /**
   * Base port of the scratch register (flush port at +4, byte view at
   * +8); default 0xE0, `null` leaves those ports unclaimed.
   */
  readonly ioport?: number | null;
  /** Guest-physical base of the iomem window; default 0xFF000000, `null` for none. */
  readonly iomem?: number | null;
}

/**
 * Plain-data state of the whole pc-testdev (JSON-serializable).
 *
 * @example
 * ```ts
 * import type { TestdevState } from "./plugin.ts";
 * const v: TestdevState["version"] = 1;
 * ```
 */
export interface TestdevState {
  /** Format version, currently 1. */
  readonly version: 1;
  /** IRQ-line levels. */
  readonly irq: TestDevIrqLinesState;
  /** Scratch register and flush port. */
  readonly ioport: TestDevIoportState;
  /** The iomem window. */
  readonly iomem: TestDevIomemState;
}

/**
 * The pc-testdev plugin; the devices exist once `setup` ran.
 *
 * @example
 * ```ts
 * import { testdevPlugin } from "./plugin.ts";
 * const p = testdevPlugin({});
 * console.log(p.device()); // null before setup
 * ```
 */
export interface TestdevPlugin extends Plugin {
  /** The IRQ-line device, once set up. */
  device(): TestDevIrqLines | null;
  /** The scratch/flush register (exists from creation). */
  readonly ioport: TestDevIoport;
  /** The iomem buffer (exists from creation). */
  readonly iomem: TestDevIomem;
  /** Plain-data state; throws before setup. */
  snapshot(): TestdevState;
  /** Load a state from {@link TestdevPlugin.snapshot}; throws before setup. */
  restore(state: TestdevState): void;
}

/**
 * Create the pc-testdev plugin. IRQ ports: a write of 2 or 4 bytes acts
 * byte by byte on consecutive lines, as QEMU splits it (its IRQ region
 * takes 1-byte accesses only); ports at or past `lines` are counted no-ops
 * (reads return 0).
 *
 * @example
 * ```ts
 * import { testdevPlugin } from "./plugin.ts";
 * import { FakeContext, readValue, writeValue } from "../testing/fake_context.ts";
 * const regions = testdevPlugin().setup(new FakeContext());
 * const scratch = regions.find((r) => r.range.base === 0xe0)!;
 * writeValue(scratch, 0, 4, 0x12345678);
 * console.log(readValue(scratch, 2, 2).toString(16)); // "1234"
 * ```
 */
export function testdevPlugin(options: TestdevOptions = {}): TestdevPlugin {
  const base = options.base ?? TESTDEV_IRQ_BASE;
  const lines = options.lines ?? TESTDEV_IRQ_PORTS;
  const ioportBase = options.ioport === undefined
    ? TESTDEV_IOPORT_BASE
    : options.ioport;
  const iomemBase = options.iomem === undefined
    ? TESTDEV_IOMEM_BASE
    : options.iomem;
  const ioport = new TestDevIoport();
  const iomem = new TestDevIomem();
  let dev: TestDevIrqLines | null = null;
  const setUp = (): TestDevIrqLines => {
    if (!dev) throw new Error("testdev: not set up");
    return dev;
  };
  return {
    name: "testdev",
    device: () => dev,
    ioport,
    iomem,
    setup(ctx: DeviceContext): readonly Region[] {
      const irqs = new Map<number, InterruptLine>();
      const d = new TestDevIrqLines(lines, (n, level) => {
        let line = irqs.get(n);
        if (!line) {
          line = ctx.interruptLine(n, "level");
          irqs.set(n, line);
        }
        line.set(level);
      });
      dev = d;
      const regions: Region[] = [{
        range: {
          space: "pio",
          base,
          length: Math.max(TESTDEV_IRQ_PORTS, lines),
        },
        read(a: Access, data: Uint8Array): void {
          for (let i = 0; i < a.size; i++) data[i] = d.read(a.offset + i);
        },
        write(a: Access, data: Uint8Array): void {
          for (let i = 0; i < a.size; i++) d.write(a.offset + i, data[i]);
        },
      }];
      if (ioportBase !== null) {
        const scratch = (b: number): Region => ({
          range: { space: "pio", base: b, length: 4 },
          read: (a, data) => ioport.read(a.offset, data),
          write: (a, data) => ioport.write(a.offset, data),
        });
        regions.push(
          scratch(ioportBase),
          {
            range: { space: "pio", base: ioportBase + 4, length: 4 },
            read: (_a, data) => data.fill(0),
            write: (a, data) => ioport.flush(a.offset, data),
          },
          scratch(ioportBase + 8),
        );
      }
      if (iomemBase !== null) {
        regions.push({
          range: { space: "mmio", base: iomemBase, length: TESTDEV_IOMEM_LEN },
          read: (a, data) => iomem.read(a.offset, data),
          write: (a, data) => iomem.write(a.offset, data),
        });
      }
      return regions;
    },
    reset(): void {
      ioport.reset();
      iomem.reset();
    },
    snapshot(): TestdevState {
      return {
        version: 1,
        irq: setUp().snapshot(),
        ioport: ioport.snapshot(),
        iomem: iomem.snapshot(),
      };
    },
    restore(state: TestdevState): void {
      if (state?.version !== 1) {
        throw new TypeError("testdev state: unknown version");
      }
      const d = setUp();
      // Validate every part before changing any of them.
      const probeIo = new TestDevIoport();
      probeIo.restore(state.ioport);
      const probeMem = new TestDevIomem();
      probeMem.restore(state.iomem);
      new TestDevIrqLines(d.lines, () => {}).restore(state.irq);
      d.restore(state.irq);
      ioport.restore(state.ioport);
      iomem.restore(state.iomem);
    },
  };
}
