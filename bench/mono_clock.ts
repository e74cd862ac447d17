/**
 * CLOCK_MONOTONIC in nanoseconds through libc: one clock shared by every
 * thread of the process (Workers' `performance.now()` and
 * `process.hrtime` each count from their own start).
 *
 * @module
 */
const libc = Deno.dlopen("libc.so.6", {
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
});
const ts = new BigInt64Array(2);
const CLOCK_MONOTONIC = 1;

/** Monotonic time in nanoseconds (same clock in every Worker). */
export function monoNs(): number {
  libc.symbols.clock_gettime(CLOCK_MONOTONIC, ts);
  return Number(ts[0]) * 1e9 + Number(ts[1]);
}
