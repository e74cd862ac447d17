/**
 * A stub for the 8254 PIT (ports 0x40–0x43) when no PIT is emulated:
 * reads return 0, writes are accepted and counted.
 *
 * @module
 */

/** First PIT port (counter 0). */
export const PIT_BASE = 0x40;
/** Number of PIT ports: counters 0–2 and the mode/command register. */
export const PIT_PORTS = 4;
/** Mode/command register offset (8254 datasheet, "Control Word"). */
export const PIT_COMMAND = 3;

/**
 * The PIT stub; addressed by offset from 0x40.
 *
 * @example
 * ```ts
 * import { PitStub } from "./pit_stub.ts";
 * const pit = new PitStub();
 * pit.write(3, 0x34);
 * console.log(pit.read(0), pit.stats.writes); // 0 1
 * ```
 */
export class PitStub {
  /** Counters. */
  readonly stats = { reads: 0, writes: 0, badAccesses: 0 };

  /** Guest read of one byte: always 0. */
  read(offset: number): number {
    if (!(offset >= 0 && offset < PIT_PORTS)) {
      this.stats.badAccesses++;
      return 0xff;
    }
    this.stats.reads++;
    return 0;
  }

  /** Guest write of one byte: accepted and counted. */
  write(offset: number, _value: number): void {
    if (!(offset >= 0 && offset < PIT_PORTS)) {
      this.stats.badAccesses++;
      return;
    }
    this.stats.writes++;
  }
}
