/**
 * Cold start, in one interleaved run: `--rounds` rounds, each running (in
 * an order rotated per round) the legs below on the same tiny Multiboot
 * kernel (`guests/build/multiboot_tiny.elf`: 32-bit entry, "hello\n" on
 * COM1, `outl 0xF4, 0`):
 *
 * - `cli`: `deno run --allow-ffi --allow-read cli.ts KERNEL`, process
 *   start → exit (spawn to reaped), with its stage times
 *   (`DENOVMM_START_TIMES`) from stderr;
 * - `qemu`: `qemu-system-x86_64 -M microvm -accel kvm -nodefaults
 *   -no-user-config -nographic -m 16 -kernel KERNEL -device
 *   isa-debug-exit`, process start → exit (installed with
 *   `apt-get install -y qemu-system-x86` when missing and possible,
 *   skipped otherwise);
 * - `c`: `bench/c_start.c`, a C VMM (open /dev/kvm, the core's machine,
 *   load, run to the exit), process start → exit, and its own main() →
 *   guest exit (`c-inproc`);
 * - `inproc`: in this process, `createMachine` (the CLI's machine) + load +
 *   sync run to the debug exit, the library already open (the first,
 *   cold sample of the process is reported apart);
 * - `deno`: `deno run` of an empty module: the runtime's own floor;
 * - `cli-compare` (with `--compare OTHER/cli.ts`): another checkout's CLI,
 *   for a before/after in the same run.
 *
 * All guests print "hello" and exit through port 0xF4 with value 0
 * (QEMU's isa-debug-exit turns that into process status 1). Reports
 * medians and p10–p90 per leg, the ratios CLI / QEMU and in-process / C
 * (targets ≤ 0.5 and ≤ 1.5) of the medians and per round, a table, and
 * `bench/out/start_bench.json`.
 *
 * ```sh
 * deno task bench:start   # = build + deno run -A bench/run_start_bench.ts [--rounds 21]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createMachine } from "../vmm/machine.ts";
import { positiveInt } from "./cli_args.ts";
import { buildCStart, C_START_BIN } from "./native.ts";
import { median, quantile, table } from "./report.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { rounds: { type: "string" }, compare: { type: "string" } },
});
// --compare OTHER/cli.ts: one more leg, another checkout's CLI (before/after)
const compare = values.compare;
const rounds = positiveInt(values.rounds, "rounds", 21);

const root = (p: string) =>
  decodeURIComponent(new URL(`../${p}`, import.meta.url).pathname);
const KERNEL = root("guests/build/multiboot_tiny.elf");
const CLI = root("cli.ts");
const MEM_MIB = 16;
const QEMU = "qemu-system-x86_64";

/** Is `cmd` on PATH? */
async function have(cmd: string): Promise<boolean> {
  try {
    const r = await new Deno.Command("sh", {
      args: ["-c", `command -v ${cmd}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success;
  } catch {
    return false;
  }
}

/** QEMU on PATH, installing it with apt-get when that is possible. */
async function ensureQemu(): Promise<string | null> {
  if (await have(QEMU)) return null;
  if (!(await have("apt-get")) || Deno.uid?.() !== 0) {
    return `${QEMU} not installed and apt-get (as root) unavailable`;
  }
  console.error(`${QEMU} missing: apt-get install -y qemu-system-x86 ...`);
  const r = await new Deno.Command("apt-get", {
    args: ["install", "-y", "qemu-system-x86"],
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (r.success && await have(QEMU)) return null;
  return `apt-get install qemu-system-x86 failed: ${
    new TextDecoder().decode(r.stderr).trim().split("\n").at(-1)
  }`;
}

interface Spawned {
  ms: number;
  code: number;
  stdout: string;
  stderr: string;
}

async function spawn(
  cmd: string,
  args: string[],
  env?: Record<string, string>,
): Promise<Spawned> {
  const t0 = performance.now();
  const r = await new Deno.Command(cmd, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t0;
  const dec = new TextDecoder();
  return {
    ms,
    code: r.code,
    stdout: dec.decode(r.stdout),
    stderr: dec.decode(r.stderr),
  };
}

function expect(leg: string, r: Spawned, code: number): void {
  if (r.code !== code || !r.stdout.includes("hello")) {
    throw new Error(
      `${leg}: exit ${r.code} (want ${code}), stdout ${
        JSON.stringify(r.stdout)
      }, stderr ${r.stderr.slice(-400)}`,
    );
  }
}

const EMPTY = Deno.makeTempFileSync({
  prefix: "denovmm-empty-",
  suffix: ".ts",
});
const kernel = Deno.readFileSync(KERNEL);

/** One sample per leg: ms, plus the CLI's and C's own stage times. */
type Leg = "cli" | "cli-compare" | "qemu" | "c" | "inproc" | "deno";
const samples: Record<Leg | "c-inproc", number[]> = {
  cli: [],
  "cli-compare": [],
  qemu: [],
  c: [],
  "c-inproc": [],
  inproc: [],
  deno: [],
};
const cliStages: Record<string, number>[] = [];
const cStages: Record<string, number>[] = [];

function inproc(): number {
  const t0 = performance.now();
  const m = createMachine({ memory: `${MEM_MIB}M`, serialOutput: () => {} });
  try {
    m.vm.loadMultiboot(kernel, { cmdline: "", imageName: KERNEL });
    const r = m.vm.run();
    const ms = performance.now() - t0;
    if (r.reason !== "exit" || r.status !== 1) {
      throw new Error(`inproc: ${JSON.stringify(r)}`);
    }
    return ms;
  } finally {
    m.vm.close();
  }
}

const legs: Record<Leg, () => Promise<void>> = {
  async cli() {
    const r = await spawn(Deno.execPath(), [
      "run",
      "--allow-ffi",
      "--allow-read",
      "--allow-env=DENOVMM_START_TIMES",
      CLI,
      KERNEL,
    ], { DENOVMM_START_TIMES: "1" });
    expect("cli", r, 0);
    samples.cli.push(r.ms);
    const line = r.stderr.split("\n").find((l) =>
      l.startsWith("denovmm-start-times ")
    );
    if (line) cliStages.push(JSON.parse(line.slice(20)));
  },
  async "cli-compare"() {
    const r = await spawn(Deno.execPath(), [
      "run",
      "--allow-ffi",
      "--allow-read",
      compare!,
      KERNEL,
    ]);
    expect("cli-compare", r, 0);
    samples["cli-compare"].push(r.ms);
  },
  async qemu() {
    const r = await spawn(QEMU, [
      ..."-M microvm -accel kvm -nodefaults -no-user-config -nographic"
        .split(" "),
      "-m",
      `${MEM_MIB}`,
      "-kernel",
      KERNEL,
      "-device",
      "isa-debug-exit,iobase=0xf4,iosize=4",
      "-serial",
      "stdio",
    ]);
    expect("qemu", r, 1);
    samples.qemu.push(r.ms);
  },
  async c() {
    const r = await spawn(C_START_BIN, [KERNEL, `${MEM_MIB}`]);
    expect("c", r, 0);
    samples.c.push(r.ms);
    const st = JSON.parse(r.stderr.trim().split("\n").at(-1)!) as Record<
      string,
      number
    >;
    cStages.push(st);
    samples["c-inproc"].push(st.exit / 1e6);
  },
  inproc() {
    samples.inproc.push(inproc());
    return Promise.resolve();
  },
  async deno() {
    const r = await spawn(Deno.execPath(), ["run", EMPTY]);
    if (r.code !== 0) throw new Error(`deno: exit ${r.code}: ${r.stderr}`);
    samples.deno.push(r.ms);
  },
};

await buildCStart();
const qemuMissing = await ensureQemu();
if (qemuMissing) console.error(`QEMU leg skipped: ${qemuMissing}`);
const order: Leg[] = ["cli", "cli-compare", "qemu", "c", "inproc", "deno"]
  .filter((l) =>
    (l !== "qemu" || !qemuMissing) && (l !== "cli-compare" || compare)
  ) as Leg[];

// The process's first VM: dlopen, JIT and first KVM use (reported apart).
const inprocFirst = inproc();
// One unrecorded pass of every leg: page cache, Deno's module cache.
for (const l of order) await legs[l]();
for (const k of Object.keys(samples)) samples[k as Leg].length = 0;
cliStages.length = 0;
cStages.length = 0;

const perRound = { cliQemu: [] as number[], inprocC: [] as number[] };
for (let r = 0; r < rounds; r++) {
  const o = order.map((_, i) => order[(i + r) % order.length]);
  for (const l of o) await legs[l]();
  if (!qemuMissing) perRound.cliQemu.push(samples.cli[r] / samples.qemu[r]);
  perRound.inprocC.push(samples.inproc[r] / samples["c-inproc"][r]);
}
Deno.removeSync(EMPTY);

const f = (x: number) => x.toFixed(2);
const stat = (xs: number[]) =>
  xs.length
    ? {
      median: median(xs),
      p10: quantile(xs, 0.1),
      p90: quantile(xs, 0.9),
      min: quantile(xs, 0),
    }
    : null;
const label: Record<string, string> = {
  cli: "CLI (deno run cli.ts), process",
  "cli-compare": `CLI ${compare}, process`,
  qemu: "qemu -M microvm, process",
  c: "C VMM (c_start), process",
  deno: "deno run (empty module), process",
  inproc: "in-process createMachine → exit",
  "c-inproc": "C main() → exit",
};
const rows = Object.entries(samples).filter(([, v]) => v.length).map((
  [k, v],
) => {
  const s = stat(v)!;
  return [label[k], f(s.median), `${f(s.p10)}–${f(s.p90)}`, f(s.min)];
});
console.log(
  `\ncold start, ${rounds} interleaved rounds, ${MEM_MIB} MiB, ${
    KERNEL.split("/").at(-1)
  } (ms)\n`,
);
console.log(table(["leg", "median", "p10–p90", "min"], rows));

const ratio = (
  name: string,
  a: number[],
  b: number[],
  per: number[],
  target: number,
) => {
  if (!a.length || !b.length) return [name, "n/a", "n/a", `≤ ${target}`];
  return [
    name,
    f(median(a) / median(b)),
    `${f(median(per))} [${f(quantile(per, 0.1))}–${f(quantile(per, 0.9))}]`,
    `≤ ${target}`,
  ];
};
console.log();
console.log(
  table(["ratio", "of medians", "per round median [p10–p90]", "target"], [
    ratio("CLI / QEMU", samples.cli, samples.qemu, perRound.cliQemu, 0.5),
    ...(compare
      ? [ratio(
        "CLI / CLI --compare",
        samples.cli,
        samples["cli-compare"],
        samples.cli.map((x, i) => x / samples["cli-compare"][i]),
        1,
      )]
      : []),
    ratio(
      "in-process / C",
      samples.inproc,
      samples["c-inproc"],
      perRound.inprocC,
      1.5,
    ),
  ]),
);

const stageMedians = (xs: Record<string, number>[]) =>
  xs.length
    ? Object.fromEntries(
      Object.keys(xs[0]).map((k) => [k, median(xs.map((x) => x[k] ?? NaN))]),
    )
    : null;
const cli = stageMedians(cliStages);
const c = stageMedians(cStages);
if (cli) {
  console.log(
    `\nCLI stages (median ms since the runtime's time origin): ${
      Object.entries(cli).map(([k, v]) => `${k} ${f(v)}`).join(", ")
    }`,
  );
}
if (c) {
  console.log(
    `C stages (median ms since main()): ${
      Object.entries(c).map(([k, v]) => `${k} ${f(v / 1e6)}`).join(", ")
    }`,
  );
}
console.log(`in-process first VM of the process: ${f(inprocFirst)} ms`);

Deno.mkdirSync(new URL("./out/", import.meta.url), { recursive: true });
Deno.writeTextFileSync(
  new URL("./out/start_bench.json", import.meta.url),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      rounds,
      compare: compare ?? null,
      memMiB: MEM_MIB,
      kernel: KERNEL,
      qemu: qemuMissing ? { skipped: qemuMissing } : { skipped: null },
      legs: Object.fromEntries(
        Object.entries(samples).map((
          [k, v],
        ) => [k, { ...stat(v), samples: v }]),
      ),
      ratios: {
        cliOverQemu: qemuMissing ? null : {
          ofMedians: median(samples.cli) / median(samples.qemu),
          perRound: perRound.cliQemu,
        },
        cliOverCompare: compare
          ? median(samples.cli) / median(samples["cli-compare"])
          : null,
        inprocOverC: {
          ofMedians: median(samples.inproc) / median(samples["c-inproc"]),
          perRound: perRound.inprocC,
        },
      },
      cliStagesMs: cli,
      cStagesNs: c,
      inprocFirstMs: inprocFirst,
    },
    null,
    2,
  ),
);
console.log("wrote bench/out/start_bench.json");
