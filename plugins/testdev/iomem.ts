/**
 * QEMU pc-testdev's "iomem": 64 KiB of MMIO at 0xFF000000 that reads back
 * what was written, at any width and alignment (QEMU `hw/misc/pc-testdev.c`,
 * `test_iomem_read`/`test_iomem_write`: a memcpy into a buffer). Kernels use
 * it to exercise the instruction emulator on MMIO.
 *
 * @module
 */

/** Guest-physical base of the iomem window. */
export const TESTDEV_IOMEM_BASE = 0xff000000;
/** Size of the iomem window (QEMU `IOMEM_LEN`). */
export const TESTDEV_IOMEM_LEN = 0x10000;

/**
 * Plain-data state of a {@link TestDevIomem}: the bytes as base64.
 *
 * @example
 * ```ts
 * import { TestDevIomem } from "./iomem.ts";
 * console.log(new TestDevIomem().snapshot().version); // 1
 * ```
 */
export interface TestDevIomemState {
  /** Format version, currently 1. */
  readonly version: 1;
  /** The window's bytes, base64-encoded. */
  readonly bytes: string;
}

/**
 * The iomem buffer; addressed by offset into the window.
 *
 * @example
 * ```ts
 * import { TestDevIomem } from "./iomem.ts";
 * const m = new TestDevIomem();
 * m.write(3, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
 * const d = new Uint8Array(2);
 * m.read(4, d);
 * console.log(d); // Uint8Array(2) [ 2, 3 ]
 * ```
 */
export class TestDevIomem {
  readonly #buf = new Uint8Array(TESTDEV_IOMEM_LEN);
  /** Counters. */
  readonly stats = { reads: 0, writes: 0, badAccesses: 0 };

  #inside(offset: number, length: number): boolean {
    return Number.isInteger(offset) && offset >= 0 &&
      offset + length <= TESTDEV_IOMEM_LEN;
  }

  /** Guest read of `data.length` bytes at `offset`; outside reads as 0xFF. */
  read(offset: number, data: Uint8Array): void {
    if (!this.#inside(offset, data.length)) {
      this.stats.badAccesses++;
      data.fill(0xff);
      return;
    }
    this.stats.reads++;
    data.set(this.#buf.subarray(offset, offset + data.length));
  }

  /** Guest write of `data` at `offset`; outside is a counted no-op. */
  write(offset: number, data: Uint8Array): void {
    if (!this.#inside(offset, data.length)) {
      this.stats.badAccesses++;
      return;
    }
    this.stats.writes++;
    this.#buf.set(data, offset);
  }

  /** Power-on state (zeroed). */
  reset(): void {
    this.#buf.fill(0);
  }

  /** Plain-data copy of the state. */
  snapshot(): TestDevIomemState {
    let s = "";
    for (let i = 0; i < this.#buf.length; i += 0x2000) {
      s += String.fromCharCode(...this.#buf.subarray(i, i + 0x2000));
    }
    return { version: 1, bytes: btoa(s) };
  }

  /** Load a state from {@link snapshot}; a malformed one throws TypeError. */
  restore(state: TestDevIomemState): void {
    const s = state as unknown as Record<string, unknown>;
    if (typeof s !== "object" || s === null || s.version !== 1) {
      throw new TypeError("testdev iomem state: unknown version");
    }
    let bin: string;
    try {
      bin = atob(String(s.bytes));
    } catch {
      throw new TypeError("testdev iomem state: bytes is not base64");
    }
    if (typeof s.bytes !== "string" || bin.length !== TESTDEV_IOMEM_LEN) {
      throw new TypeError(
        `testdev iomem state: bytes must hold ${TESTDEV_IOMEM_LEN} bytes`,
      );
    }
    for (let i = 0; i < bin.length; i++) this.#buf[i] = bin.charCodeAt(i);
  }
}
