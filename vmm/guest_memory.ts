/**
 * Bounds-checked guest RAM over the core's mapping (zero copy).
 *
 * @module
 */
import type { GuestMemory } from "../bus/types.ts";

/** Where RAM continues past the MMIO hole below 4 GiB. */
export interface RamSplit {
  /** Bytes of RAM at GPA 0 (the hole starts here). */
  lowSize: number;
  /** GPA of the rest of RAM (4 GiB). */
  highBase: number;
}

/**
 * Guest RAM as a `Uint8Array` over the host mapping, with every access
 * checked against RAM. RAM is `[0, size)` or, past the hole, the first
 * `split.lowSize` bytes at GPA 0 and the rest from `split.highBase`; no
 * access spans the hole.
 *
 * @example
 * ```ts
 * import { RamView } from "./guest_memory.ts";
 * const ram = new RamView(new Uint8Array(4096));
 * ram.write(8, new Uint8Array([1]));
 * console.log(ram.contains(4095, 2)); // false
 * const split = new RamView(new Uint8Array(8192), { lowSize: 4096, highBase: 65536 });
 * console.log(split.contains(65536 + 4000, 16)); // true
 * ```
 */
export class RamView implements GuestMemory {
  readonly #bytes: Uint8Array;
  readonly #low: number;
  readonly #highBase: number;
  /** Wrap the bytes of guest RAM (GPA 0 at index 0). */
  constructor(bytes: Uint8Array, split?: RamSplit) {
    this.#bytes = bytes;
    this.#low = Math.min(split?.lowSize ?? bytes.length, bytes.length);
    this.#highBase = split?.highBase ?? bytes.length;
  }
  /** RAM size in bytes (both sides of the hole). */
  get size(): number {
    return this.#bytes.length;
  }
  /** Index in the mapping of `[gpa, gpa + length)`, or -1 outside RAM. */
  #index(gpa: number, length: number): number {
    if (
      !Number.isSafeInteger(gpa) || !Number.isSafeInteger(length) ||
      gpa < 0 || length < 0
    ) return -1;
    if (gpa + length <= this.#low) return gpa;
    const off = gpa - this.#highBase;
    if (off >= 0 && this.#low + off + length <= this.#bytes.length) {
      return this.#low + off;
    }
    return -1;
  }
  /** True when `[gpa, gpa + length)` is inside RAM. */
  contains(gpa: number, length: number): boolean {
    return this.#index(gpa, length) >= 0;
  }
  #check(gpa: number, length: number): number {
    if ((this.#bytes.buffer as ArrayBuffer).detached) {
      throw new Error("guest memory: the VM is closed");
    }
    const i = this.#index(gpa, length);
    if (i < 0) {
      throw new RangeError(
        `guest memory access [0x${
          gpa.toString(16)
        }, +${length}) is outside RAM (${this.#bytes.length} bytes)`,
      );
    }
    return i;
  }
  /** Copy guest bytes into `dst`. */
  read(gpa: number, dst: Uint8Array): void {
    const i = this.#check(gpa, dst.length);
    dst.set(this.#bytes.subarray(i, i + dst.length));
  }
  /** Copy `src` into guest RAM. */
  write(gpa: number, src: Uint8Array): void {
    this.#bytes.set(src, this.#check(gpa, src.length));
  }
  /** A live view (no copy). */
  view(gpa: number, length: number): Uint8Array {
    const i = this.#check(gpa, length);
    return this.#bytes.subarray(i, i + length);
  }
}
