/**
 * Stop → return latency: how long after `stopVm(handle)` (main thread) a
 * vCPU spinning in a Worker's `vm.run()` is back in JavaScript, against
 * the core alone (`dv_stop_baseline`: a Rust thread stopping a Rust vCPU
 * thread) in the same interleaved rounds. Reports p50/p99/max per method
 * and the p50 ratio with its spread over rounds.
 *
 * ```sh
 * deno run -A bench/run_stop_bench.ts [--rounds 5] [--stops 100] [--json PATH]
 * ```
 *
 * @module
 */
import { monoNs } from "./mono_clock.ts";
import { parseArgs } from "node:util";
import { stopVm } from "../vmm/vm.ts";

const here = (p: string) =>
  decodeURIComponent(new URL(p, import.meta.url).pathname);
const SPIN = here("../guests/build/spin.elf");
const BASELINE = here("../core/target/release/dv_stop_baseline");

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "5" },
    stops: { type: "string", default: "100" },
    json: { type: "string" },
  },
});
const rounds = Number(values.rounds);
const stops = Number(values.stops);
if (!(rounds >= 1 && stops >= 10)) {
  throw new RangeError("--rounds >= 1, --stops >= 10");
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
const stats = (ns: number[]) => {
  const s = [...ns].sort((a, b) => a - b);
  return {
    p50Us: quantile(s, 0.5) / 1e3,
    p99Us: quantile(s, 0.99) / 1e3,
    maxUs: s[s.length - 1] / 1e3,
  };
};

async function coreRound(): Promise<number[]> {
  const out = await new Deno.Command(BASELINE, { args: [SPIN, String(stops)] })
    .output();
  if (!out.success) {
    throw new Error(
      `dv_stop_baseline: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return JSON.parse(new TextDecoder().decode(out.stdout)).ns;
}

async function workerRound(): Promise<number[]> {
  const w = new Worker(new URL("./stop_worker.ts", import.meta.url), {
    type: "module",
  });
  const sab = new SharedArrayBuffer(4);
  const flag = new Int32Array(sab);
  let next:
    | ((m: { type: string; t1?: number; handle?: number }) => void)
    | undefined;
  w.onmessage = (e) => next?.(e.data);
  const wait = () =>
    new Promise<{ type: string; t1?: number; handle?: number }>((r) =>
      next = r
    );
  let msg = wait();
  w.postMessage({ type: "init", elf: SPIN, sab });
  const { handle } = await msg;
  const ns: number[] = [];
  for (let i = 0; i < stops; i++) {
    msg = wait();
    w.postMessage({ type: "go" });
    while (Atomics.load(flag, 0) === 0) {
      await new Promise((r) => setTimeout(r, 0));
    }
    await new Promise((r) => setTimeout(r, Math.random() * 2));
    const t0 = monoNs();
    stopVm(handle!);
    const m = await msg;
    ns.push(m.t1! - t0);
  }
  msg = wait();
  w.postMessage({ type: "close" });
  await msg;
  w.terminate();
  return ns;
}

const all: Record<string, number[]> = { core: [], worker: [] };
const ratios: number[] = [];
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? ["core", "worker"] : ["worker", "core"];
  const got: Record<string, number[]> = {};
  for (const m of order) {
    got[m] = m === "core" ? await coreRound() : await workerRound();
  }
  for (const m of order) all[m].push(...got[m]);
  ratios.push(stats(got.worker).p50Us / stats(got.core).p50Us);
  console.error(
    `round ${r}: core p50 ${stats(got.core).p50Us.toFixed(1)} µs, worker p50 ${
      stats(got.worker).p50Us.toFixed(1)
    } µs`,
  );
}
ratios.sort((a, b) => a - b);
const report = {
  rounds,
  stopsPerRound: stops,
  core: stats(all.core),
  worker: stats(all.worker),
  p50Ratio: {
    median: quantile(ratios, 0.5),
    min: ratios[0],
    max: ratios[ratios.length - 1],
  },
};
console.log("method  p50 µs   p99 µs    max µs");
for (const m of ["core", "worker"] as const) {
  const s = report[m];
  console.log(
    `${m.padEnd(7)} ${s.p50Us.toFixed(1).padStart(6)} ${
      s.p99Us.toFixed(1).padStart(8)
    } ${s.maxUs.toFixed(1).padStart(9)}`,
  );
}
console.log(
  `worker/core p50: ${report.p50Ratio.median.toFixed(2)}× (rounds ${
    report.p50Ratio.min.toFixed(2)
  }–${report.p50Ratio.max.toFixed(2)})`,
);
if (values.json) {
  Deno.writeTextFileSync(values.json, JSON.stringify(report, null, 2));
}
