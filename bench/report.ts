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
