/**
 * Statistics and table formatting shared by the benchmark runners.
 *
 * @module
 */

/**
 * Median (mean of the middle two for even lengths).
 *
 * @example
 * ```ts
 * import { median } from "./report.ts";
 * console.log(median([3, 1, 2])); // 2
 * ```
 */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * A Markdown table with padded columns (first left-, others right-aligned).
 *
 * @example
 * ```ts
 * import { table } from "./report.ts";
 * console.log(table(["method", "ns"], [["a", "12"]]));
 * ```
 */
export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i].length))
  );
  const line = (r: string[]) =>
    `| ${
      r.map((c, i) => i === 0 ? c.padEnd(w[i]) : c.padStart(w[i])).join(" | ")
    } |`;
  const rule = `| ${
    w.map((n, i) => i === 0 ? "-".repeat(n) : "-".repeat(n - 1) + ":").join(
      " | ",
    )
  } |`;
  return [line(head), rule, ...rows.map(line)].join("\n");
}

/**
 * Quantile `q` (0..1) with linear interpolation between order statistics
 * (the "type 7" definition of R and NumPy). Throws on an empty input or a
 * `q` outside 0..1.
 *
 * @example
 * ```ts
 * import { quantile } from "./report.ts";
 * console.log(quantile([1, 2, 3, 4], 0.25)); // 1.75
 * ```
 */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) throw new RangeError("quantile of no values");
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q} not in 0..1`);
  const s = [...xs].sort((a, b) => a - b);
  const h = (s.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (h - lo) * (s[hi] - s[lo]);
}

/** Median with its spread. */
export interface Spread {
  /** Median. */
  readonly median: number;
  /** 25th percentile. */
  readonly p25: number;
  /** 75th percentile. */
  readonly p75: number;
  /** Smallest value. */
  readonly min: number;
  /** Largest value. */
  readonly max: number;
}

/**
 * Median, quartiles and extremes of `xs` (non-empty).
 *
 * @example
 * ```ts
 * import { spread } from "./report.ts";
 * console.log(spread([5, 1, 3])); // { median: 3, p25: 2, p75: 4, min: 1, max: 5 }
 * ```
 */
export function spread(xs: readonly number[]): Spread {
  return {
    median: median(xs),
    p25: quantile(xs, 0.25),
    p75: quantile(xs, 0.75),
    min: quantile(xs, 0),
    max: quantile(xs, 1),
  };
}
