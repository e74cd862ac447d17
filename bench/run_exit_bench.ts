/**
 * Interleaved port-I/O exit benchmark against an independent C reference:
 * the TypeScript plugin path and the Rust fast path vs a plain C KVM_RUN
 * loop (`bench/c_loop.c`), `ctx.signalMsi` vs C `KVM_SIGNAL_MSI`, and the
 * pure-Rust `dv_baseline` loop, measured round by round so that host drift
 * (±20% on the nested-KVM dev hosts) cancels out of the ratios.
 *
 *     deno run -A bench/run_exit_bench.ts [--rounds 21] [--count 10000]
 *         [--msi-count 3000] [--warm-exits 40000] [--trace-rounds 7]
 *         [--json PATH] [--svg PATH]
 *
 * Per round, in an order rotated by one each round (a fresh VM each):
 *
 * - `c-loop`: `c_loop out`, the `exits` guest writing `count` times to port
 *   0x600, every write returning to the C loop (a fresh process per round,
 *   its first round a dropped warm-up);
 * - `fastpath`: `createVm` + `exits` on port 0x80 in `ignoredPorts`;
 * - `ts-plugin`: `createVm` + `exits` on port 0x600, a trivial TS plugin;
 * - `base-fastpath` / `base-forward`: `dv_baseline` (Rust, no Deno) with
 *   port 0x80 ignored / forwarded;
 * - `c-msi`: `c_loop msi`, the `msi_exits` guest: each write to 0x600 is
 *   answered by `KVM_SIGNAL_MSI` (vector 0x40) and the guest waits for its
 *   handler (count, EOI, iretq) before the next write;
 * - `ts-msi`: the same guest in `createVm`, the plugin calling
 *   `ctx.signalMsi`.
 *
 * Before the rounds, the in-process paths run `--warm-exits` exits (MSI:
 * a quarter as many round trips) unrecorded: V8 compiles the run slice
 * with Maglev first and reaches Turbofan only after ~20–25k exits (traced
 * with `--v8-flags=--trace-opt`), and until then each TS exit costs
 * ~0.5–1 µs more; the rounds measure the steady state.
 *
 * Cold start is sampled once at the start (the process's first `dlopen`)
 * and, after all measurements, once per round with a fresh library copy
 * (new FFI functions: sampled earlier, they would make the run loop's FFI
 * call site polymorphic, and slow, for the rest of the process).
 *
 * Values are ns per KVM exit over the whole run (MSI methods: ns per
 * round trip, run / count). Ratios are medians of the per-round ratios,
 * with their quartiles and extremes; `floor` divides the two methods'
 * fastest rounds.
 *
 * Then `--trace-rounds` rounds of the C, fast-path and TS methods are
 * traced for the userspace breakdown (bench/syscall_gaps.c: the time from
 * each syscall's return to the thread's next syscall entry). Tracing adds
 * a fixed ~1 µs per syscall to every gap, so the C loop's own userspace
 * time is taken from rdtsc around its KVM_RUN, and each other method's is
 * C's plus its extra gap time per exit over the C loop's in the same
 * round. Results go to `bench/out/exit_bench.json` and `.svg`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { positiveInt } from "./cli_args.ts";
import { median, type Spread, spread, table } from "./report.ts";
import {
  type BaselineRound,
  coldStart,
  type ExitRun,
  EXITS_ELF,
  freshLibraryCopy,
  type InProcessMode,
  MSI_EXITS_ELF,
  MSI_VECTOR,
  runBaseline,
  timedRun,
  TS_PORT,
} from "./exit_common.ts";
import {
  buildNative,
  type CLoopRound,
  type GapMeter,
  openGapMeter,
  runCLoop,
  tracepointIds,
} from "./native.ts";
import { exitBenchSvg } from "./exit_svg.ts";
import { defaultLibraryPath } from "../ffi/library.ts";

const METHODS = [
  "c-loop",
  "fastpath",
  "ts-plugin",
  "base-fastpath",
  "base-forward",
  "c-msi",
  "ts-msi",
] as const;
type Method = typeof METHODS[number];
const MSI_METHODS: readonly Method[] = ["c-msi", "ts-msi"];

/** Ratios reported, with the targets. */
const RATIOS = [
  { name: "ts-plugin / c-loop", num: "ts-plugin", den: "c-loop", target: 1.05 },
  { name: "fastpath / c-loop", num: "fastpath", den: "c-loop", target: 1.02 },
  { name: "ts-msi / c-msi", num: "ts-msi", den: "c-msi", target: 1.05 },
  { name: "ts-plugin / base-forward", num: "ts-plugin", den: "base-forward" },
  { name: "fastpath / base-fastpath", num: "fastpath", den: "base-fastpath" },
  { name: "base-forward / c-loop", num: "base-forward", den: "c-loop" },
] as const satisfies readonly {
  name: string;
  num: Method;
  den: Method;
  target?: number;
}[];

/** Userspace target for a TS-plugin exit, ns. */
const TS_USER_TARGET_NS = 400;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string" },
    count: { type: "string" },
    "msi-count": { type: "string" },
    "trace-rounds": { type: "string" },
    "warm-exits": { type: "string" },
    "no-trace": { type: "boolean" },
    json: { type: "string" },
    svg: { type: "string" },
  },
});
const rounds = positiveInt(values.rounds, "rounds", 21);
const count = positiveInt(values.count, "count", 10000);
const msiCount = positiveInt(values["msi-count"], "msi-count", 3000);
const traceRounds = values["no-trace"]
  ? 0
  : positiveInt(values["trace-rounds"], "trace-rounds", 7);
const warmExits = positiveInt(values["warm-exits"], "warm-exits", 40000);
const outPath = (name: string) =>
  decodeURIComponent(new URL(`./out/${name}`, import.meta.url).pathname);
const jsonPath = values.json ?? outPath("exit_bench.json");
const svgPath = values.svg ?? outPath("exit_bench.svg");

await buildNative();

async function baseline(forward: boolean): Promise<BaselineRound> {
  // Two rounds per process: the first warms the fresh process and is
  // dropped (the same for c_loop).
  const r = await runBaseline(count, 2, forward);
  return r[r.length - 1];
}

function cLoop(mode: "out" | "msi", n: number, traced = false) {
  return runCLoop(
    mode === "out" ? EXITS_ELF : MSI_EXITS_ELF,
    mode,
    TS_PORT,
    n,
    traced ? 1 : 2,
    MSI_VECTOR,
    traced && ids ? ids : undefined,
  );
}

function checkC(r: CLoopRound, what: string): CLoopRound {
  if (r.status !== 1) throw new Error(`${what}: guest status ${r.status}`);
  return r;
}

async function measure(m: Method): Promise<number> {
  switch (m) {
    case "c-loop": {
      const r = checkC(await cLoop("out", count), m);
      return r.ns / r.exits;
    }
    case "c-msi": {
      const r = checkC(await cLoop("msi", msiCount), m);
      return r.ns / msiCount;
    }
    case "ts-plugin":
    case "fastpath":
      return timedRun(m, count).nsPerExit;
    case "ts-msi":
      return timedRun("ts-msi", msiCount).ns / msiCount;
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
// The very first createVm of the process: dlopen of the default library +
// Deno FFI set-up. Fresh-copy samples come after all measurements: each
// dlopen makes new FFI functions, and a second one seen by the run loop's
// call site would turn its fast FFI call into a polymorphic slow one.
const firstCold = coldStart(defaultLibraryPath());
// Warm-up (JIT up to Turbofan, library, page cache), not recorded.
const warmStart = performance.now();
for (
  const [m, n] of [
    ["ts-plugin", warmExits],
    ["fastpath", Math.min(warmExits, 10000)],
    ["ts-msi", Math.ceil(warmExits / 4)],
  ] as [InProcessMode, number][]
) {
  for (let done = 0; done < n; done += 5000) {
    timedRun(m, Math.min(5000, n - done));
  }
}
console.error(
  `warm-up: ${warmExits} TS exits, ${Math.ceil(warmExits / 4)} MSI round ` +
    `trips (${((performance.now() - warmStart) / 1000).toFixed(1)} s)`,
);
await baseline(false);
await cLoop("out", 1000);

const samples = Object.fromEntries(
  METHODS.map((m) => [m, [] as number[]]),
) as Record<Method, number[]>;
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
  perRound.push(row);
  console.error(
    `round ${i + 1}/${rounds}: ` +
      METHODS.map((m) => `${m} ${(row[m] / 1000).toFixed(2)}`).join(", ") +
      " µs",
  );
}

const ratios = RATIOS.map((r) => {
  const per = perRound.map((row) => row[r.num] / row[r.den]);
  const s = spread(per);
  const target = "target" in r ? r.target : null;
  return {
    name: r.name,
    ...s,
    floor: Math.min(...samples[r.num]) / Math.min(...samples[r.den]),
    perRound: per,
    target,
    meetsTarget: target === null ? null : s.median <= target,
  };
});
const methodStats = Object.fromEntries(
  METHODS.map((m) => [m, spread(samples[m])]),
) as Record<Method, Spread>;

// ---- userspace breakdown (traced rounds) --------------------------------
const ids = traceRounds > 0 ? await tracepointIds() : null;
let meter: GapMeter | null = null;
let traceError: string | null = null;
if (traceRounds > 0 && ids) {
  try {
    meter = openGapMeter(ids);
  } catch (e) {
    traceError = (e as Error).message;
  }
} else if (traceRounds > 0) {
  traceError = "raw_syscalls tracepoint ids unavailable (tracefs, root)";
}

/** Per traced round: gap ns per unit (exit or MSI round trip). */
interface TraceRow {
  cUserPerExit: number;
  gapPerExit: Record<string, number>;
  medianGap: Record<string, number>;
  p90Gap: Record<string, number>;
  longGaps: number;
  lost: number;
}
const traced: TraceRow[] = [];
if (meter) {
  const TRACED = ["c-loop", "fastpath", "ts-plugin", "c-msi", "ts-msi"];
  const tCount = Math.min(count, 5000);
  const tMsi = Math.min(msiCount, 2000);
  for (let i = 0; i < traceRounds; i++) {
    const row: TraceRow = {
      cUserPerExit: 0,
      gapPerExit: {},
      medianGap: {},
      p90Gap: {},
      longGaps: 0,
      lost: 0,
    };
    for (let k = 0; k < TRACED.length; k++) {
      const m = TRACED[(k + i) % TRACED.length];
      if (m === "c-loop" || m === "c-msi") {
        const msi = m === "c-msi";
        const r = checkC(
          await cLoop(msi ? "msi" : "out", msi ? tMsi : tCount, true),
          m,
        );
        row.gapPerExit[m] = r.gap_ns / (msi ? tMsi : r.exits);
        row.medianGap[m] = r.median_gap_ns;
        row.p90Gap[m] = r.p90_gap_ns;
        row.longGaps += r.long_gaps;
        row.lost += r.lost;
        if (!msi) row.cUserPerExit = r.user_ns / r.exits;
      } else {
        const msi = m === "ts-msi";
        const r: ExitRun = timedRun(
          m as InProcessMode,
          msi ? tMsi : tCount,
          meter,
        );
        const g = r.gaps!;
        row.gapPerExit[m] = g.gapNs / (msi ? tMsi : r.exits);
        row.medianGap[m] = g.medianGapNs;
        row.p90Gap[m] = g.p90GapNs;
        row.longGaps += g.longGaps;
        row.lost += g.lost;
      }
    }
    traced.push(row);
    console.error(
      `traced ${i + 1}/${traceRounds}: C user ${
        row.cUserPerExit.toFixed(0)
      } ns/exit; gap ns/unit ` +
        TRACED.map((m) => `${m} ${row.gapPerExit[m].toFixed(0)}`).join(", "),
    );
  }
}

for (let i = 0; i < rounds; i++) colds.push(coldSample());

const breakdown = traced.length === 0 ? null : (() => {
  const cUser = spread(traced.map((r) => r.cUserPerExit));
  const user = (m: string) =>
    spread(
      traced.map((r) =>
        r.cUserPerExit + r.gapPerExit[m] - r.gapPerExit["c-loop"]
      ),
    );
  const userMedian = (m: string) =>
    spread(
      traced.map((r) =>
        r.cUserPerExit + r.medianGap[m] - r.medianGap["c-loop"]
      ),
    );
  const gap = (m: string) => spread(traced.map((r) => r.gapPerExit[m]));
  const msiExtra = spread(
    traced.map((r) => r.gapPerExit["ts-msi"] - r.gapPerExit["c-msi"]),
  );
  return {
    unit: "ns of userspace per exit (MSI: per round trip)",
    rounds: traced.length,
    userPerExit: {
      "c-loop": cUser,
      "fastpath": user("fastpath"),
      "ts-plugin": user("ts-plugin"),
    },
    userPerExitFromMedianGaps: {
      "fastpath": userMedian("fastpath"),
      "ts-plugin": userMedian("ts-plugin"),
    },
    gapPerUnit: Object.fromEntries(
      ["c-loop", "fastpath", "ts-plugin", "c-msi", "ts-msi"].map((
        m,
      ) => [m, gap(m)]),
    ),
    medianGapNs: Object.fromEntries(
      ["c-loop", "fastpath", "ts-plugin", "c-msi", "ts-msi"].map((
        m,
      ) => [m, median(traced.map((r) => r.medianGap[m]))]),
    ),
    p90GapNs: Object.fromEntries(
      ["c-loop", "fastpath", "ts-plugin", "c-msi", "ts-msi"].map((
        m,
      ) => [m, median(traced.map((r) => r.p90Gap[m]))]),
    ),
    msiExtraOverC: msiExtra,
    longGaps: traced.reduce((a, r) => a + r.longGaps, 0),
    lostRecords: traced.reduce((a, r) => a + r.lost, 0),
    tsTargetNs: TS_USER_TARGET_NS,
  };
})();

// ---- report -------------------------------------------------------------
const f0 = (x: number) => x.toFixed(0);
const f3 = (x: number) => x.toFixed(3);
console.log(
  `\nport-I/O exits: ${count} guest writes per run (MSI: ${msiCount} round ` +
    `trips), ${rounds} rounds (interleaved, rotating order)\n`,
);
console.log(table(
  ["method", "median ns", "p25", "p75", "min", "max", "unit"],
  METHODS.map((m) => {
    const s = methodStats[m];
    return [
      m,
      f0(s.median),
      f0(s.p25),
      f0(s.p75),
      f0(s.min),
      f0(s.max),
      MSI_METHODS.includes(m) ? "MSI round trip" : "exit",
    ];
  }),
));
console.log();
console.log(table(
  ["ratio", "median", "p25", "p75", "min", "max", "floor", "target"],
  ratios.map((r) => [
    r.name,
    f3(r.median),
    f3(r.p25),
    f3(r.p75),
    f3(r.min),
    f3(r.max),
    f3(r.floor),
    r.target === null
      ? "-"
      : `<= ${r.target.toFixed(2)} ${r.meetsTarget ? "ok" : "MISS"}`,
  ]),
));
console.log(
  "median/p25/p75/min/max: of the per-round ratios (the target applies to " +
    "the median);\nfloor: ratio of the two methods' fastest rounds.",
);
if (breakdown) {
  console.log(
    `\nuserspace time per exit (${breakdown.rounds} traced rounds; C: rdtsc ` +
      `outside KVM_RUN; others: C + their extra syscall-gap time)\n`,
  );
  const u = breakdown.userPerExit;
  const um = breakdown.userPerExitFromMedianGaps;
  console.log(table(
    [
      "method",
      "user ns/exit",
      "min",
      "max",
      "by p50 gaps",
      "gap ns/unit",
      "p50 gap",
      "p90 gap",
    ],
    (["c-loop", "fastpath", "ts-plugin", "c-msi", "ts-msi"] as const).map(
      (m) => {
        const s = (u as Record<string, Spread | undefined>)[m];
        const sm = (um as Record<string, Spread | undefined>)[m];
        const g = breakdown.gapPerUnit[m];
        return [
          m,
          s ? f0(s.median) : "-",
          s ? f0(s.min) : "-",
          s ? f0(s.max) : "-",
          sm ? f0(sm.median) : "-",
          f0(g.median),
          f0(breakdown.medianGapNs[m]),
          f0(breakdown.p90GapNs[m]),
        ];
      },
    ),
  ));
  console.log(
    "user ns/exit: C by rdtsc; others C + (their gap time per exit − C's), " +
      "median over the traced rounds [min, max];\nby p50 gaps: the same " +
      "with each run's median gap instead of its mean (robust to stray " +
      "interrupts and host stalls).",
  );
  const ts = u["ts-plugin"].median;
  console.log(
    `TS-plugin userspace ${f0(ts)} ns/exit: target <= ${TS_USER_TARGET_NS} ` +
      `${ts <= TS_USER_TARGET_NS ? "ok" : "MISS"}; ts-msi − c-msi userspace ` +
      `${f0(breakdown.msiExtraOverC.median)} ns per MSI round trip ` +
      `[${f0(breakdown.msiExtraOverC.min)}, ${
        f0(breakdown.msiExtraOverC.max)
      }]; gaps > 50 µs left out: ${breakdown.longGaps}; lost records: ` +
      `${breakdown.lostRecords}`,
  );
} else if (traceRounds > 0) {
  console.log(`\nuserspace breakdown skipped: ${traceError}`);
}
console.log(
  `\ncold start (dlopen + create + load + first exit): first in process ` +
    `${(firstCold / 1e6).toFixed(2)} ms, median of fresh library copies ` +
    `${(median(colds) / 1e6).toFixed(2)} ms`,
);

const result = {
  date: new Date().toISOString(),
  host: { os: Deno.build.os, arch: Deno.build.arch, deno: Deno.version.deno },
  count,
  msiCount,
  rounds,
  warmExits,
  unit:
    "ns per KVM exit (whole run / all exits of the run); MSI methods: ns per round trip",
  methods: methodStats,
  medians: Object.fromEntries(METHODS.map((m) => [m, methodStats[m].median])),
  ratios,
  userspace: breakdown ?? { skipped: traceError },
  coldStartNs: { first: firstCold, median: median(colds), samples: colds },
  perRound,
  tracedRounds: traced,
  totalMs: performance.now() - started,
};
Deno.mkdirSync(outPath(""), { recursive: true });
Deno.writeTextFileSync(jsonPath, JSON.stringify(result, null, 2) + "\n");
Deno.writeTextFileSync(
  svgPath,
  exitBenchSvg({
    title: `exit bench: ${rounds} interleaved rounds, ${count} exits ` +
      `(MSI ${msiCount}) per run`,
    ratios: ratios.map((r) => ({ ...r, name: r.name })),
    userspace: breakdown
      ? Object.entries(breakdown.userPerExit).map(([name, s]) => ({
        name,
        ...s,
      }))
      : [],
    userTarget: TS_USER_TARGET_NS,
  }),
);
console.log(
  `\nwrote ${jsonPath} and ${svgPath} (${
    (result.totalMs / 1000).toFixed(1)
  } s total)`,
);
