/**
 * QEMU `isa-debug-exit`: a write of value `v` ends the run with exit status
 * `(v << 1) | 1`. Source: QEMU `hw/misc/debugexit.c` (`debug_exit_write`
 * calls `exit((val << 1) | 1)`; reads return 0).
 *
 * @module
 */

/** Default I/O port (QEMU `iobase` default 0x501; 0xF4 is the usual choice). */
export const DEBUG_EXIT_DEFAULT_BASE = 0xf4;
/** Default port width in bytes (QEMU `iosize` default 2; we use 4). */
export const DEBUG_EXIT_DEFAULT_SIZE = 4;

/**
 * The exit status a written value maps to: `v * 2 + 1`, computed without
 * 32-bit overflow (v up to 0xFFFFFFFF gives 0x1FFFFFFFF).
 *
 * @example
 * ```ts
 * import { debugExitStatus } from "./debug_exit.ts";
 * console.log(debugExitStatus(0x10)); // 33
 * ```
 */
export function debugExitStatus(value: number): number {
  return (value >>> 0) * 2 + 1;
}

/**
 * The device: counts writes and reports the exit status to a callback.
 *
 * @example
 * ```ts
 * import { DebugExit } from "./debug_exit.ts";
 * const d = new DebugExit((s) => console.log("exit", s));
 * d.write(4, 0);
 * ```
 */
export class DebugExit {
  readonly #exit: (status: number) => void;
  /** Counters: accepted writes and rejected accesses. */
  readonly stats = { writes: 0, badAccesses: 0 };
  /** Status of the last accepted write, or null. */
  lastStatus: number | null = null;

  /** Create a device that calls `exit(status)` on each valid write. */
  constructor(exit: (status: number) => void) {
    this.#exit = exit;
  }

  /** A guest read: always 0 (as in QEMU). */
  read(): number {
    return 0;
  }

  /**
   * A guest write of `size` bytes (1, 2 or 4) with unsigned `value`.
   * Other sizes are counted no-ops.
   */
  write(size: number, value: number): void {
    if (size !== 1 && size !== 2 && size !== 4) {
      this.stats.badAccesses++;
      return;
    }
    this.stats.writes++;
    const status = debugExitStatus(value);
    this.lastStatus = status;
    this.#exit(status);
  }
}
