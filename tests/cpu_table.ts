/**
 * The per-CPU count table the SMP guests report on port 0x648: each 4-byte
 * write is (case << 16) | (cpu << 8) | count.
 */
import type { Plugin } from "../bus/types.ts";

/** Collects the guest's per-CPU counts: case -> count by CPU. */
export function cpuTablePlugin(): Plugin & { table: Map<number, number[]> } {
  const table = new Map<number, number[]>();
  return {
    name: "smp-table",
    table,
    setup: () => [{
      range: { space: "pio", base: 0x648, length: 4 },
      read: (_a, d) => d.fill(0),
      write: (_a, d) => {
        const v = new DataView(d.buffer, d.byteOffset).getUint32(0, true);
        const row = table.get(v >>> 16) ?? [];
        row[(v >>> 8) & 0xff] = v & 0xff;
        table.set(v >>> 16, row);
      },
    }],
  };
}
