/**
 * QEMU pc-testdev IRQ-line ports: a byte written to port `0x2000 + n` sets
 * the level of GSI n (non-zero = asserted); a read returns the current
 * level. Source: QEMU `hw/misc/pc-testdev.c` (`test_irq_line_write`,
 * region "pc-testdev-irq" of 24 ports at 0x2000).
 *
 * @module
 */

/** Base port of the IRQ-line region. */
export const TESTDEV_IRQ_BASE = 0x2000;
/** Number of ports in the region (QEMU: 24). */
export const TESTDEV_IRQ_PORTS = 24;

/**
 * Plain-data state of a {@link TestDevIrqLines} (JSON-serializable).
 *
 * @example
 * ```ts
 * import { TestDevIrqLines } from "./irq_lines.ts";
 * console.log(new TestDevIrqLines(2, () => {}).snapshot().levels); // [false, false]
 * ```
 */
export interface TestDevIrqLinesState {
  /** Format version, currently 1. */
  readonly version: 1;
  /** Level of every wired line. */
  readonly levels: readonly boolean[];
}

/**
 * The IRQ-line state machine; `setLine(n, level)` drives the host line.
 *
 * @example
 * ```ts
 * import { TestDevIrqLines } from "./irq_lines.ts";
 * const set: [number, boolean][] = [];
 * const dev = new TestDevIrqLines(24, (n, l) => set.push([n, l]));
 * dev.write(4, 1);
 * console.log(set, dev.read(4)); // [[4, true]] 1
 * ```
 */
export class TestDevIrqLines {
  readonly #lines: number;
  readonly #setLine: (n: number, level: boolean) => void;
  readonly #levels: boolean[];
  /** Counters. */
  readonly stats = { writes: 0, badAccesses: 0 };

  /** `lines` wired lines (0..lines-1); others are counted no-ops. */
  constructor(lines: number, setLine: (n: number, level: boolean) => void) {
    if (!Number.isInteger(lines) || lines < 0 || lines > 256) {
      throw new RangeError(`testdev: bad line count ${lines}`);
    }
    this.#lines = lines;
    this.#setLine = setLine;
    this.#levels = new Array(lines).fill(false);
  }

  /** Number of wired lines. */
  get lines(): number {
    return this.#lines;
  }

  #valid(n: number): boolean {
    return Number.isInteger(n) && n >= 0 && n < this.#lines;
  }

  /** Current level of line `n` as 0/1 (0 for an unwired line). */
  read(n: number): number {
    if (!this.#valid(n)) {
      this.stats.badAccesses++;
      return 0;
    }
    return this.#levels[n] ? 1 : 0;
  }

  /** Set line `n` to `value !== 0`. */
  write(n: number, value: number): void {
    if (!this.#valid(n)) {
      this.stats.badAccesses++;
      return;
    }
    this.stats.writes++;
    const level = value !== 0;
    this.#levels[n] = level;
    this.#setLine(n, level);
  }

  /** Plain-data copy of the state. */
  snapshot(): TestDevIrqLinesState {
    return { version: 1, levels: [...this.#levels] };
  }

  /**
   * Load a state from {@link snapshot} (same line count); lines whose level
   * changes are driven on the host. A malformed state throws TypeError and
   * changes nothing.
   */
  restore(state: TestDevIrqLinesState): void {
    const s = state as unknown as Record<string, unknown>;
    if (typeof s !== "object" || s === null || s.version !== 1) {
      throw new TypeError("testdev irq state: unknown version");
    }
    const l = s.levels;
    if (
      !Array.isArray(l) || l.length !== this.#lines ||
      !l.every((b) => typeof b === "boolean")
    ) {
      throw new TypeError(
        `testdev irq state: levels must be ${this.#lines} booleans`,
      );
    }
    for (let n = 0; n < this.#lines; n++) {
      if (this.#levels[n] !== l[n]) {
        this.#levels[n] = l[n];
        this.#setLine(n, l[n]);
      }
    }
  }
}
