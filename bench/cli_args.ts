/**
 * Command-line helpers shared by the benchmark runners.
 *
 * @module
 */

/**
 * Parse a positive integer option, or return `def` when absent.
 *
 * @example
 * ```ts
 * import { positiveInt } from "./cli_args.ts";
 * console.log(positiveInt("7", "rounds", 3)); // 7
 * ```
 */
export function positiveInt(
  v: string | undefined,
  name: string,
  def: number,
): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`--${name} must be a positive integer, not ${v}`);
  }
  return n;
}
