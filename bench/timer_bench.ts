/**
 * Timer pacing as `Deno.bench` cases: one iteration = one guest run of
 * 200 ticks at 100 µs (groups `timer-100us`) or 50 ticks at 1 ms
 * (`timer-1ms`), timed around `vm.run()` only (machine creation and load
 * are outside `b.start()`/`b.end()`). Time per iteration ÷ ticks ≈ the mean
 * tick period plus the guest's start/stop, so the cases compare drift and
 * lost ticks, not cost. `lapic-tsc-deadline` is the baseline.
 *
 * For the numbers to quote (period error, jitter percentiles, missed
 * ticks, CPU, targets) use the interleaving runner:
 * `deno run -A bench/run_timer_bench.ts`.
 *
 *     deno bench -A bench/timer_bench.ts
 *
 * @module
 */
import { METHODS, prepareMethod, runMethod } from "./timer_common.ts";

const CASES = [
  { group: "timer-100us", periodUs: 100, n: 200 },
  { group: "timer-1ms", periodUs: 1000, n: 50 },
] as const;

// Open the library and warm the JIT outside the measured cases.
for (const m of METHODS) runMethod(m, 1000, 5);

for (const c of CASES) {
  for (const m of METHODS) {
    Deno.bench({
      name: `${m} (${c.n} ticks at ${c.periodUs} µs)`,
      group: c.group,
      baseline: m === "lapic-tsc-deadline",
      n: 10,
      warmup: 1,
      fn(b) {
        using p = prepareMethod(m, c.periodUs, c.n);
        b.start();
        p.run();
        b.end();
      },
    });
  }
}
