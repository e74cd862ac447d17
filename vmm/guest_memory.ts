/**
 * Bounds-checked guest RAM over the core's mapping (zero copy).
 *
 * @module
 */
import type { GuestMemory } from "../bus/types.ts";

/**
 * Guest RAM as a `Uint8Array` over the host mapping, with every access
 * checked against `[0, size)`.
 *
 * @example
 * ```ts
 * import { RamView } from "./guest_memory.ts";
 * const ram = new RamView(new Uint8Array(4096));
 * ram.write(8, new Uint8Array([1]));
 * console.log(ram.contains(4095, 2)); // false
 * ```
 */
export class RamView implements GuestMemory {
  readonly #bytes: Uint8Array;
  /** Wrap the bytes of guest RAM (GPA 0 at index 0). */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }
  /** RAM size. */
  get size(): number {
    return this.#bytes.length;
  }
  /** True when `[gpa, gpa + length)` is inside RAM. */
  contains(gpa: number, length: number): boolean {
    return Number.isSafeInteger(gpa) && Number.isSafeInteger(length) &&
      gpa >= 0 && length >= 0 && gpa + length <= this.#bytes.length;
  }
  #check(gpa: number, length: number): void {
    if ((this.#bytes.buffer as ArrayBuffer).detached) {
      throw new Error("guest memory: the VM is closed");
    }
    if (!this.contains(gpa, length)) {
      throw new RangeError(
        `guest memory access [0x${
          gpa.toString(16)
        }, +${length}) is outside RAM (${this.#bytes.length} bytes)`,
      );
    }
  }
  /** Copy guest bytes into `dst`. */
  read(gpa: number, dst: Uint8Array): void {
    this.#check(gpa, dst.length);
    dst.set(this.#bytes.subarray(gpa, gpa + dst.length));
  }
  /** Copy `src` into guest RAM. */
  write(gpa: number, src: Uint8Array): void {
    this.#check(gpa, src.length);
    this.#bytes.set(src, gpa);
  }
  /** A live view (no copy). */
  view(gpa: number, length: number): Uint8Array {
    this.#check(gpa, length);
    return this.#bytes.subarray(gpa, gpa + length);
  }
}
