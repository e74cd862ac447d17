/**
 * The test "echo device": 16 bytes of read/write backing store used by the
 * `ports` guest. Initial byte k is `0xA0 + k`. An access that does not fit
 * inside the 16 bytes is a counted no-op (reads return 0xFF bytes).
 *
 * @module
 */

/** Size of the backing store in bytes. */
export const ECHO_SIZE = 16;
/** Initial value of byte 0; byte k starts as `ECHO_INITIAL_BASE + k`. */
export const ECHO_INITIAL_BASE = 0xa0;

/**
 * The echo device state machine.
 *
 * @example
 * ```ts
 * import { EchoDevice } from "./echo_device.ts";
 * const e = new EchoDevice();
 * e.write(2, new Uint8Array([1, 2]));
 * const d = new Uint8Array(2);
 * e.read(2, d);
 * console.log(d); // Uint8Array [1, 2]
 * ```
 */
export class EchoDevice {
  /** The backing bytes. */
  readonly bytes: Uint8Array = new Uint8Array(ECHO_SIZE);
  /** Counters. */
  readonly stats = { reads: 0, writes: 0, badAccesses: 0 };

  /** Create a device in its initial state. */
  constructor() {
    this.reset();
  }

  /** Restore the initial pattern. */
  reset(): void {
    for (let k = 0; k < ECHO_SIZE; k++) this.bytes[k] = ECHO_INITIAL_BASE + k;
  }

  #fits(offset: number, size: number): boolean {
    return Number.isInteger(offset) && offset >= 0 && size > 0 &&
      offset + size <= ECHO_SIZE;
  }

  /** Fill `data` with bytes `offset..offset+data.length-1`. */
  read(offset: number, data: Uint8Array): void {
    if (!this.#fits(offset, data.length)) {
      this.stats.badAccesses++;
      data.fill(0xff);
      return;
    }
    this.stats.reads++;
    data.set(this.bytes.subarray(offset, offset + data.length));
  }

  /** Store `data` at `offset`. */
  write(offset: number, data: Uint8Array): void {
    if (!this.#fits(offset, data.length)) {
      this.stats.badAccesses++;
      return;
    }
    this.stats.writes++;
    this.bytes.set(data, offset);
  }
}
