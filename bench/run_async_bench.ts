/**
 * `await vm.runAsync()` against `vm.run()` per exit, in the same
 * interleaved rounds: the `exits` guest writing a TS plugin's port
 * `--count` times, timed from the call to the debug exit. The async run
 * adds an event-loop turn every slice (20 ms); the bar is ≤ 1.05×
 * the sync path (median of the per-round ratios).
 *
 * ```sh
 * deno run -A bench/run_async_bench.ts [--rounds 11] [--count 10000]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { debugExitPlugin } from "../plugins/debug_exit/plugin.ts";
import { createVm } from "../vmm/vm.ts";
import { counterPlugin, exitsElf, TS_PORT } from "./exit_common.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "11" },
    count: { type: "string", default: "10000" },
    warm: { type: "string", default: "40000" },
  },
});
const rounds = Number(values.rounds);
const count = Number(values.count);

async function timed(mode: "sync" | "async", n: number): Promise<number> {
  const counter = counterPlugin(TS_PORT);
  using vm = createVm({ plugins: [debugExitPlugin(), counter] });
  vm.load(exitsElf(), [TS_PORT, n]);
  const t0 = performance.now();
  const r = mode === "sync" ? vm.run() : await vm.runAsync();
  const t1 = performance.now();
  if (r.reason !== "exit" || counter.writes() !== n) {
    throw new Error(
      `${mode}: ${JSON.stringify(r)}, ${counter.writes()} writes`,
    );
  }
  return (t1 - t0) * 1e6 / vm.counters().exits;
}

// Both paths share the run slice: warm it to Turbofan first (see
// bench/README.md on the JIT's tiers).
await timed("sync", Number(values.warm));
const per: Record<string, number[]> = { sync: [], async: [] };
const ratios: number[] = [];
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0
    ? ["sync", "async"] as const
    : ["async", "sync"] as const;
  const got: Record<string, number> = {};
  for (const m of order) got[m] = await timed(m, count);
  per.sync.push(got.sync);
  per.async.push(got.async);
  ratios.push(got.async / got.sync);
}
const med = (a: number[]) =>
  [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const q = (a: number[], p: number) =>
  [...a].sort((x, y) => x - y)[Math.floor(p * (a.length - 1))];
console.log(`${rounds} rounds × ${count} exits (TS plugin port), interleaved`);
console.log(`sync  ${med(per.sync).toFixed(0)} ns/exit (median)`);
console.log(`async ${med(per.async).toFixed(0)} ns/exit (median)`);
console.log(
  `async/sync ${med(ratios).toFixed(3)} [p25 ${
    q(ratios, 0.25).toFixed(3)
  }, p75 ${q(ratios, 0.75).toFixed(3)}, min ${q(ratios, 0).toFixed(3)}, max ${
    q(ratios, 1).toFixed(3)
  }] (target <= 1.05)`,
);
