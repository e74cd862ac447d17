/**
 * The exit benchmark's SVG: per-round ratio spreads (box = quartiles,
 * whiskers = min/max, dot = median, red tick = target) and the userspace
 * time per exit of each method.
 *
 * @module
 */

/** One ratio row. */
export interface RatioBox {
  /** Label. */
  readonly name: string;
  /** Median of the per-round ratios. */
  readonly median: number;
  /** 25th percentile. */
  readonly p25: number;
  /** 75th percentile. */
  readonly p75: number;
  /** Smallest. */
  readonly min: number;
  /** Largest. */
  readonly max: number;
  /** Target, or null. */
  readonly target: number | null;
}

/** One userspace row (ns per exit). */
export interface UserBar {
  /** Method. */
  readonly name: string;
  /** Median over the traced rounds. */
  readonly median: number;
  /** Smallest. */
  readonly min: number;
  /** Largest. */
  readonly max: number;
}

const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * Render the chart.
 *
 * @example
 * ```ts
 * import { exitBenchSvg } from "./exit_svg.ts";
 * const svg = exitBenchSvg({ title: "t", ratios: [], userspace: [], userTarget: 400 });
 * console.log(svg.startsWith("<svg"));
 * ```
 */
export function exitBenchSvg(o: {
  title: string;
  ratios: readonly RatioBox[];
  userspace: readonly UserBar[];
  userTarget: number;
}): string {
  const W = 760, left = 200, right = 30, row = 26;
  const plotW = W - left - right;
  const h1 = 40 + row * o.ratios.length + 30;
  const h2 = o.userspace.length ? 40 + row * o.userspace.length + 30 : 0;
  const H = 30 + h1 + h2;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" ` +
    `font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="10" y="20" font-size="14">${esc(o.title)}</text>`,
  ];
  // Ratios.
  const vals = o.ratios.flatMap((r) => [r.min, r.max, r.target ?? 1]);
  const lo = Math.min(0.9, ...vals) - 0.02;
  const hi = Math.max(1.1, ...vals) + 0.02;
  const x = (v: number) => left + ((v - lo) / (hi - lo)) * plotW;
  let y0 = 50;
  out.push(
    `<text x="10" y="${y0 - 10}">per-round ratio (box: quartiles, ` +
      `whiskers: min/max, red: target)</text>`,
  );
  for (let t = Math.ceil(lo * 20) / 20; t <= hi; t += 0.05) {
    out.push(
      `<line x1="${x(t)}" y1="${y0}" x2="${x(t)}" y2="${
        y0 + row * o.ratios.length
      }" stroke="#ddd"/>`,
      `<text x="${x(t)}" y="${
        y0 + row * o.ratios.length + 14
      }" text-anchor="middle">${t.toFixed(2)}</text>`,
    );
  }
  o.ratios.forEach((r, i) => {
    const cy = y0 + row * i + row / 2;
    out.push(
      `<text x="${left - 8}" y="${cy + 4}" text-anchor="end">${
        esc(r.name)
      }</text>`,
      `<line x1="${x(r.min)}" y1="${cy}" x2="${
        x(r.max)
      }" y2="${cy}" stroke="#555"/>`,
      `<rect x="${x(r.p25)}" y="${cy - 7}" width="${
        Math.max(1, x(r.p75) - x(r.p25))
      }" height="14" fill="#9ecae1" stroke="#3182bd"/>`,
      `<circle cx="${x(r.median)}" cy="${cy}" r="3.5" fill="#08519c"/>`,
    );
    if (r.target !== null) {
      out.push(
        `<line x1="${x(r.target)}" y1="${cy - 10}" x2="${x(r.target)}" y2="${
          cy + 10
        }" stroke="red" stroke-width="2"/>`,
      );
    }
  });
  // Userspace.
  if (o.userspace.length) {
    y0 = 30 + h1 + 30;
    const max = Math.max(o.userTarget, ...o.userspace.map((u) => u.max)) *
      1.1;
    const ux = (v: number) => left + (Math.max(0, v) / max) * plotW;
    out.push(
      `<text x="10" y="${y0 - 10}">userspace ns per exit (traced rounds; ` +
        `bar: median, line: min/max, red: TS target ${o.userTarget} ns)</text>`,
    );
    o.userspace.forEach((u, i) => {
      const cy = y0 + row * i + row / 2;
      out.push(
        `<text x="${left - 8}" y="${cy + 4}" text-anchor="end">${
          esc(u.name)
        }</text>`,
        `<rect x="${left}" y="${cy - 7}" width="${
          ux(u.median) - left
        }" height="14" fill="#a1d99b"/>`,
        `<line x1="${ux(u.min)}" y1="${cy}" x2="${
          ux(u.max)
        }" y2="${cy}" stroke="#333"/>`,
        `<text x="${ux(u.max) + 6}" y="${cy + 4}">${
          u.median.toFixed(0)
        } ns</text>`,
      );
    });
    const tx = ux(o.userTarget);
    out.push(
      `<line x1="${tx}" y1="${y0}" x2="${tx}" y2="${
        y0 + row * o.userspace.length
      }" stroke="red" stroke-width="2"/>`,
    );
  }
  out.push(`</svg>`);
  return out.join("\n");
}
