/**
 * Interleaved port-I/O exit benchmark: TypeScript plugin path vs Rust fast
 * path vs the pure-Rust `dv_baseline` loop, measured round by round in one
 * process so that host drift (±20% on the nested-KVM dev hosts) cancels
 * out of the ratios.
 *
 *     deno run -A bench/run_exit_bench.ts [--rounds N] [--count N] [--json PATH]
 *
 * Per round, in an order rotated by one each round:
 *
 * - `ts-plugin`: `createVm` + the `exits` guest writing `count` times to
 *   port 0x600, claimed by a trivial TS plugin region;
 * - `fastpath`: the same with port 0x80 in `ignoredPorts` (Rust fast path);
 * - `base-fastpath`: `dv_baseline` with port 0x80 as an `Ignore` range;
 * - `base-forward`: `dv_baseline --forward`: port 0x80 forwarded, the Rust
 *   loop returns from `run` per write and re-enters it (the TS path's shape);
 *
 * then one `cold-start` sample (dlopen of a fresh library copy + create VM +
 * load + first exit). Each value is ns per KVM exit over the whole run.
 * Ratios are medians of the per-round ratios; the `floor` column divides
 * the two methods' fastest rounds. Results also go to
 * `bench/out/exit_bench.json`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { positiveInt } from "./cli_args.ts";
import { median, table } from "./report.ts";
import {
  type BaselineRound,
  coldStart,
  freshLibraryCopy,
  runBaseline,
  timedRun,
} from "./exit_common.ts";

const METHODS = [
  "ts-plugin",
  "fastpath",
  "base-fastpath",
  "base-forward",
] as const;
type Method = typeof METHODS[number];

/** Issue targets: method / baseline method <= limit. */
const RATIOS = [
  { name: "ts-plugin / base-forward", num: "ts-plugin", den: "base-forward" },
  { name: "ts-plugin / base-fastpath", num: "ts-plugin", den: "base-fastpath" },
  { name: "fastpath / base-fastpath", num: "fastpath", den: "base-fastpath" },
  {
    name: "base-forward / base-fastpath",
    num: "base-forward",
    den: "base-fastpath",
  },
] as const satisfies readonly { name: string; num: Method; den: Method }[];

/** Targets from the issue, keyed by ratio name. */
const TARGETS: Record<string, number> = {
  "ts-plugin / base-forward": 1.05,
  "ts-plugin / base-fastpath": 1.05,
  "fastpath / base-fastpath": 1.02,
};

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string" },
    count: { type: "string" },
    json: { type: "string" },
  },
});
const rounds = positiveInt(values.rounds, "rounds", 7);
const count = positiveInt(values.count, "count", 20000);
const jsonPath = values.json ??
  decodeURIComponent(
    new URL("./out/exit_bench.json", import.meta.url).pathname,
  );

async function baseline(forward: boolean): Promise<BaselineRound> {
  // Two rounds per process: the first warms the fresh process (page
  // faults, KVM module state) and is dropped.
  const r = await runBaseline(count, 2, forward);
  return r[r.length - 1];
}

async function measure(m: Method): Promise<number> {
  switch (m) {
    case "ts-plugin":
      return timedRun("ts-plugin", count).nsPerExit;
    case "fastpath":
      return timedRun("fastpath", count).nsPerExit;
    case "base-fastpath":
      return (await baseline(false)).ns_per_exit;
    case "base-forward":
      return (await baseline(true)).ns_per_exit;
  }
}

function coldSample(): number {
  const lib = freshLibraryCopy();
  try {
    return coldStart(lib.path);
  } finally {
    lib.dispose();
  }
}

const started = performance.now();
// The very first createVm of the process: dlopen + Deno FFI set-up.
const firstCold = coldSample();
// Warm-up (JIT, library, page cache), not recorded.
timedRun("ts-plugin", Math.min(count, 2000));
timedRun("fastpath", Math.min(count, 2000));
await baseline(false);

const samples: Record<Method, number[]> = {
  "ts-plugin": [],
  "fastpath": [],
  "base-fastpath": [],
  "base-forward": [],
};
const perRound: Record<string, number>[] = [];
const colds: number[] = [];
for (let i = 0; i < rounds; i++) {
  const order = METHODS.map((_, k) => METHODS[(k + i) % METHODS.length]);
  const row: Record<string, number> = {};
  for (const m of order) {
    const v = await measure(m);
    samples[m].push(v);
    row[m] = v;
  }
  const c = coldSample();
  colds.push(c);
  row["cold-start-ns"] = c;
  perRound.push(row);
  console.error(
    `round ${i + 1}/${rounds} [${order.join(", ")}]: ` +
      METHODS.map((m) => `${m} ${(row[m] / 1000).toFixed(2)} µs`).join(", "),
  );
}

const ratios = RATIOS.map((r) => {
  const per = perRound.map((row) => row[r.num] / row[r.den]);
  const med = median(per);
  const target = TARGETS[r.name];
  return {
    name: r.name,
    median: med,
    floor: Math.min(...samples[r.num]) / Math.min(...samples[r.den]),
    min: Math.min(...per),
    max: Math.max(...per),
    perRound: per,
    target: target ?? null,
    meetsTarget: target === undefined ? null : med <= target,
  };
});

const medians = Object.fromEntries(
  METHODS.map((m) => [m, median(samples[m])]),
) as Record<Method, number>;

console.log(
  `\nport-I/O exits: ${count} guest writes per run, ${rounds} rounds ` +
    `(interleaved, rotating order)\n`,
);
console.log(table(
  ["method", "median ns/exit", "min", "max"],
  METHODS.map((m) => [
    m,
    medians[m].toFixed(0),
    Math.min(...samples[m]).toFixed(0),
    Math.max(...samples[m]).toFixed(0),
  ]),
));
console.log();
console.log(table(
  ["ratio", "median", "min", "max", "floor", "target"],
  ratios.map((r) => [
    r.name,
    r.median.toFixed(3),
    r.min.toFixed(3),
    r.max.toFixed(3),
    r.floor.toFixed(3),
    r.target === null
      ? "-"
      : `<= ${r.target.toFixed(2)} ${r.meetsTarget ? "ok" : "MISS"}`,
  ]),
));
console.log(
  "median/min/max: of the per-round ratios (the target applies to the " +
    "median);\nfloor: ratio of the two methods' fastest rounds (host noise " +
    "only adds time,\nso this is the least disturbed estimate).",
);
console.log(
  `\ncold start (dlopen + create + load + first exit): first in process ` +
    `${(firstCold / 1e6).toFixed(2)} ms, median of fresh library copies ` +
    `${(median(colds) / 1e6).toFixed(2)} ms`,
);

const result = {
  date: new Date().toISOString(),
  host: { os: Deno.build.os, arch: Deno.build.arch, deno: Deno.version.deno },
  count,
  rounds,
  unit: "ns per KVM exit (whole run / all exits of the run)",
  medians,
  ratios,
  coldStartNs: { first: firstCold, median: median(colds), samples: colds },
  perRound,
  totalMs: performance.now() - started,
};
Deno.mkdirSync(new URL(".", `file://${jsonPath}`).pathname, {
  recursive: true,
});
Deno.writeTextFileSync(jsonPath, JSON.stringify(result, null, 2) + "\n");
console.log(
  `\nwrote ${jsonPath} (${(result.totalMs / 1000).toFixed(1)} s total)`,
);
