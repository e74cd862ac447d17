/**
 * QEMU pc-testdev's scratch I/O port and flush port, as a pure state
 * machine. Behaviour follows QEMU `hw/misc/pc-testdev.c`:
 *
 * - "ioport" (4 ports at 0xE0) and "ioport-byte" (4 ports at 0xE8) share one
 *   32-bit register. An access of `size` bytes at offset `o` touches bytes
 *   `o .. o+size-1` of the little-endian register; bytes past the fourth
 *   are dropped on writes and read as 0 (QEMU's 32-bit mask arithmetic).
 *   String I/O (`rep ins/outs`) arrives as one access per element, so a
 *   `rep outs` leaves the last element and a `rep ins` reads it repeatedly.
 * - "flush-page" (4 ports at 0xE4): a 4-byte write names a guest page whose
 *   host mapping QEMU re-protects so KVM drops its shadow entries. Guest
 *   memory here is never remapped by TypeScript, so the write is recorded
 *   (last address, count) and has no other effect; reads return 0.
 *
 * @module
 */

/** Base port of the scratch register. */
export const TESTDEV_IOPORT_BASE = 0xe0;
/** Base port of the flush-page register. */
export const TESTDEV_FLUSH_BASE = 0xe4;
/** Base port of the byte-wise view of the scratch register. */
export const TESTDEV_IOPORT_BYTE_BASE = 0xe8;

/**
 * Plain-data state of a {@link TestDevIoport} (JSON-serializable).
 *
 * @example
 * ```ts
 * import { TestDevIoport } from "./ioport.ts";
 * console.log(new TestDevIoport().snapshot().data); // 0
 * ```
 */
export interface TestDevIoportState {
  /** Format version, currently 1. */
  readonly version: 1;
  /** The 32-bit scratch register. */
  readonly data: number;
  /** Address of the last flush-page write. */
  readonly lastFlush: number;
}

/**
 * The scratch register and flush port.
 *
 * @example
 * ```ts
 * import { TestDevIoport } from "./ioport.ts";
 * const d = new TestDevIoport();
 * d.write(0, new Uint8Array([0x78, 0x56, 0x34, 0x12]));
 * const b = new Uint8Array(2);
 * d.read(2, b);
 * console.log(b); // Uint8Array(2) [ 52, 18 ]
 * ```
 */
export class TestDevIoport {
  readonly #bytes = new Uint8Array(4);
  #lastFlush = 0;
  /** Counters. */
  readonly stats = { flushes: 0, badAccesses: 0 };

  /** The register as an unsigned 32-bit number. */
  get value(): number {
    const b = this.#bytes;
    return (b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24) >>> 0;
  }

  /** Guest read of `data.length` bytes at register offset `offset`. */
  read(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const k = offset + i;
      data[i] = k >= 0 && k < 4 ? this.#bytes[k] : 0;
    }
  }

  /** Guest write of `data` at register offset `offset`. */
  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const k = offset + i;
      if (k >= 0 && k < 4) this.#bytes[k] = data[i];
    }
  }

  /** Address of the last flush-page write. */
  get lastFlush(): number {
    return this.#lastFlush;
  }

  /**
   * Guest write to the flush port. QEMU accepts only 4-byte accesses at its
   * base; anything else is a counted no-op.
   */
  flush(offset: number, data: Uint8Array): void {
    if (offset !== 0 || data.length !== 4) {
      this.stats.badAccesses++;
      return;
    }
    this.stats.flushes++;
    this.#lastFlush =
      (data[0] | data[1] << 8 | data[2] << 16 | data[3] << 24) >>> 0;
  }

  /** Power-on state. */
  reset(): void {
    this.#bytes.fill(0);
    this.#lastFlush = 0;
  }

  /** Plain-data copy of the state. */
  snapshot(): TestDevIoportState {
    return { version: 1, data: this.value, lastFlush: this.#lastFlush };
  }

  /** Load a state from {@link snapshot}; a malformed one throws TypeError. */
  restore(state: TestDevIoportState): void {
    const s = state as unknown as Record<string, unknown>;
    if (typeof s !== "object" || s === null || s.version !== 1) {
      throw new TypeError("testdev ioport state: unknown version");
    }
    if (!isU32(s.data) || !isU32(s.lastFlush)) {
      throw new TypeError("testdev ioport state: data/lastFlush must be u32");
    }
    const v = s.data;
    for (let i = 0; i < 4; i++) this.#bytes[i] = (v >>> (8 * i)) & 0xff;
    this.#lastFlush = s.lastFlush;
  }
}

function isU32(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 &&
    v <= 0xffffffff;
}
