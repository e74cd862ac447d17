/**
 * Conversions between host nanoseconds and 8254 input clock ticks
 * (1.193182 MHz), exact in plain numbers for any run length: the products
 * are split so no intermediate exceeds 2^53.
 *
 * @module
 */

/** The PC's PIT input clock in Hz (14.31818 MHz / 12). */
export const PIT_FREQ_HZ = 1_193_182;

const NS = 1_000_000_000;

/**
 * Whole ticks elapsed in `ns` nanoseconds (floor; `ns` ≥ 0).
 *
 * @example
 * ```ts
 * import { nsToTicks } from "./pit_clock.ts";
 * console.log(nsToTicks(1_000_000_000)); // 1193182
 * ```
 */
export function nsToTicks(ns: number): number {
  if (!(ns > 0)) return 0;
  const q = Math.floor(ns / NS);
  const r = ns - q * NS;
  return q * PIT_FREQ_HZ + Math.floor(r * PIT_FREQ_HZ / NS);
}

/**
 * The first nanosecond offset at which `ticks` whole ticks have elapsed
 * (the inverse of {@link nsToTicks}: `nsToTicks(ticksToNs(k)) === k`).
 *
 * @example
 * ```ts
 * import { ticksToNs } from "./pit_clock.ts";
 * console.log(ticksToNs(1_193_182)); // 1000000000
 * ```
 */
export function ticksToNs(ticks: number): number {
  if (!(ticks > 0)) return 0;
  const q = Math.floor(ticks / PIT_FREQ_HZ);
  const r = ticks - q * PIT_FREQ_HZ;
  return q * NS + Math.ceil(r * NS / PIT_FREQ_HZ);
}
