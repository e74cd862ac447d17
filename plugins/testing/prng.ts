/**
 * A small seeded PRNG (mulberry32) for randomized tests: the same seed gives
 * the same sequence, so a failing random test can be replayed.
 *
 * @module
 */

/**
 * Returns a generator of floats in [0, 1) seeded with `seed`.
 *
 * @example
 * ```ts
 * import { prng } from "./prng.ts";
 * const rand = prng(42);
 * const pin = Math.floor(rand() * 24);
 * ```
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
