/**
 * `--stats`: per-device access counts (by wrapping a plugin's regions,
 * only when stats are asked for) and the run summary printed at exit.
 *
 * @module
 */
import type { Plugin, PluginContext, Region } from "../bus/types.ts";

/** Reads and writes one device's regions received. */
export interface DeviceCounts {
  /** Read accesses. */
  reads: number;
  /** Write accesses. */
  writes: number;
}

/**
 * Wrap `plugin` so every access to its regions (claimed at setup or mapped
 * later, e.g. PCI BARs) is counted in `counts[plugin.name]`. Other plugin
 * hooks are kept as they are.
 *
 * @example
 * ```ts
 * import { countAccesses } from "./cli_stats.ts";
 * const counts = {};
 * const p = countAccesses({ name: "x", setup: () => [] }, counts);
 * console.log(p.name); // "x"
 * ```
 */
export function countAccesses(
  plugin: Plugin,
  counts: Record<string, DeviceCounts>,
): Plugin {
  const c: DeviceCounts = counts[plugin.name] ??= { reads: 0, writes: 0 };
  const wrap = (r: Region): Region => ({
    ...r,
    read: (a, d) => {
      c.reads++;
      return r.read(a, d);
    },
    write: (a, d) => {
      c.writes++;
      return r.write(a, d);
    },
  });
  const wrapped: Plugin = Object.create(plugin);
  wrapped.setup = (ctx: PluginContext) =>
    plugin.setup({ ...ctx, map: (r: Region) => ctx.map(wrap(r)) }).map(wrap);
  return wrapped;
}

/** Format a stats object as indented `key: value` lines. */
export function statsText(stats: unknown, indent = ""): string {
  if (stats === null || typeof stats !== "object") return String(stats);
  const lines: string[] = [];
  for (const [k, v] of Object.entries(stats)) {
    if (v !== null && typeof v === "object") {
      lines.push(`${indent}${k}:`);
      lines.push(statsText(v, indent + "  "));
    } else {
      lines.push(`${indent}${k}: ${v}`);
    }
  }
  return lines.join("\n");
}
