/**
 * virtio benchmark: the `virtio_bench` guest (notify → MSI-X → handler
 * round trip on virtio-rng, then 4-KiB virtio-blk writes and reads one
 * request at a time, all timed in the guest with rdtsc) in kernel and split
 * irqchip mode, interleaved for R rounds, next to two host-only references
 * measured in the same rounds:
 *
 * - `host FileBackend`: the same 4-KiB pwrite/pread pattern straight on a
 *   `FileBackend` (plugins/virtio/block_backend.ts) on a temp file, no
 *   guest, no exits: what the device's storage work costs by itself.
 * - PIO exit cost: the `exits` guest against a TypeScript plugin port and
 *   against the Rust fast path (bench/exit_common.ts), so a request's time
 *   can be read as "so many exits".
 *
 *     deno run -A bench/run_virtio_bench.ts [--rounds 3] [--notify 200]
 *         [--reqs 100] [--exit-count 2000] [--json PATH]
 *
 * Guest TSC deltas are converted with `vm.tscKhz()`. The guest writes a
 * phase marker to port 0x2F8 (claimed here by a tiny plugin) before each
 * phase, where the runner snapshots `vm.counters()` and the wall clock:
 * exits per request and a host-clock cross-check of the guest's TSC come
 * from those. Writes `bench/out/virtio_bench.json`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { positiveInt } from "./cli_args.ts";
import { median } from "./report.ts";
import type { Plugin } from "../bus/types.ts";
import { createMachine } from "../vmm/machine.ts";
import type { IrqchipMode, VcpuCounters } from "../vmm/vm.ts";
import { pciBusPlugin } from "../plugins/pci/pci_bus.ts";
import { virtioRng } from "../plugins/virtio/rng.ts";
import { virtioBlk } from "../plugins/virtio/blk.ts";
import { FileBackend } from "../plugins/virtio/block_backend.ts";
import { type InProcessMode, timedRun } from "./exit_common.ts";

const repoPath = (rel: string) =>
  decodeURIComponent(new URL(`../${rel}`, import.meta.url).pathname);
const ELF = repoPath("guests/build/virtio_bench.elf");

const BLK_BYTES = 4096;
const STAMP = 0xb10c000000000000n;
const MAGIC = 0x4e4542564d564e44n; // "DNVMVBEN"
const RESULTS = 0x200000;
const MARK_PORT = 0x2f8;
const MODES: readonly IrqchipMode[] = ["kernel", "split"];

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string" },
    notify: { type: "string" },
    reqs: { type: "string" },
    "exit-count": { type: "string" },
    json: { type: "string" },
  },
});
const rounds = positiveInt(values.rounds, "rounds", 3);
const nNotify = positiveInt(values.notify, "notify", 200);
const nReqs = positiveInt(values.reqs, "reqs", 100);
const exitCount = positiveInt(values["exit-count"], "exit-count", 2000);
if (nNotify > 4000 || nReqs > 1000) {
  throw new RangeError("--notify <= 4000 and --reqs <= 1000 (guest buffer)");
}
const jsonPath = values.json ?? repoPath("bench/out/virtio_bench.json");

// ---- statistics -------------------------------------------------------------

// ---- one guest run ----------------------------------------------------------

/** One phase of one guest run, in µs. */
interface PhaseResult {
  /** Completed iterations. */
  n: number;
  /** Per-iteration samples (µs): t0 before the notify write .. handler. */
  medianUs: number;
  minUs: number;
  maxUs: number;
  meanUs: number;
  /** First t0 .. last completion (guest TSC, µs). */
  phaseUs: number;
  /** Handler entry .. back in the wait loop (EOI, iretq), mean µs. */
  tailUs: number;
  /** Guest work between requests: (phase - samples - tails) / n, µs. */
  guestWorkUs: number;
  /** The same span on the host clock (marker to marker, ms → µs). */
  hostPhaseUs: number;
  /** KVM exits per iteration (marker exit excluded). */
  exitsPerIter: number;
  /** Exits returned to TypeScript per iteration. */
  forwardedPerIter: number;
}

interface GuestRun {
  mode: IrqchipMode;
  tscKhz: number;
  runMs: number;
  notify: PhaseResult;
  write: PhaseResult & { mbps: number };
  read: PhaseResult & { mbps: number };
  irqs: number;
  totalExits: number;
}

interface Snapshot {
  t: number;
  c: VcpuCounters;
}

function markerPlugin(snap: (phase: number) => void): Plugin {
  return {
    name: "bench-marker",
    setup: () => [{
      range: { space: "pio", base: MARK_PORT, length: 1 },
      read: (_a, d) => d.fill(0),
      write: (_a, d) => snap(d[0]),
    }],
  };
}

function expectedBlock(i: number): Uint8Array {
  const b = new Uint8Array(BLK_BYTES);
  for (let j = 0; j < BLK_BYTES; j++) b[j] = (j * 7 + 0x5a) & 0xff;
  new DataView(b.buffer).setBigUint64(0, STAMP | BigInt(i), true);
  return b;
}

function runGuest(mode: IrqchipMode): GuestRun {
  const path = Deno.makeTempFileSync({
    prefix: "denovmm-vbench-",
    suffix: ".img",
  });
  try {
    Deno.truncateSync(path, nReqs * BLK_BYTES);
    const blk = virtioBlk({ path });
    const pci = pciBusPlugin({
      devices: [
        { device: 1, function: virtioRng() },
        { device: 2, function: blk },
      ],
    });
    const snaps = new Map<number, Snapshot>();
    let serial = "";
    // deno-lint-ignore prefer-const
    let m: ReturnType<typeof createMachine>;
    const marker = markerPlugin((p) =>
      snaps.set(p, { t: performance.now(), c: m.vm.counters() })
    );
    m = createMachine({
      irqchip: mode,
      serialOutput: (b) => serial += String.fromCharCode(b),
      plugins: [pci, marker],
    });
    let result;
    let words: BigUint64Array;
    let tscKhz: number;
    let runMs: number;
    let totalExits: number;
    try {
      m.vm.load(ELF, [nNotify, nReqs]);
      const t0 = performance.now();
      result = m.vm.run({ timeoutMs: 120_000 });
      runMs = performance.now() - t0;
      tscKhz = m.vm.tscKhz();
      totalExits = m.vm.counters().exits;
      const raw = new Uint8Array(0xc000);
      m.vm.memory.read(RESULTS, raw);
      words = new BigUint64Array(raw.buffer);
    } finally {
      m[Symbol.dispose](); // also closes the blk backend
    }
    if (
      result.reason !== "exit" || result.status !== 1 || words[0] !== MAGIC
    ) {
      throw new Error(
        `${mode}: guest ended with ${JSON.stringify(result)}, magic ${
          words[0].toString(16)
        }, errors ${words[1]}\n${serial}`,
      );
    }
    // The file must hold every written block.
    const disk = Deno.readFileSync(path);
    for (let i = 0; i < nReqs; i++) {
      const want = expectedBlock(i);
      const got = disk.subarray(i * BLK_BYTES, (i + 1) * BLK_BYTES);
      if (!want.every((v, k) => got[k] === v)) {
        throw new Error(`${mode}: block ${i} of the backing file is wrong`);
      }
    }
    const usPerTsc = 1000 / tscKhz;
    const phase = (
      base: number,
      samplesAt: number,
      mark: number,
    ): PhaseResult => {
      const n = Number(words[base]);
      const samples = Array.from(
        words.subarray(samplesAt / 8, samplesAt / 8 + n),
        (v) => Number(v) * usPerTsc,
      );
      const a = snaps.get(mark), b = snaps.get(mark + 1);
      if (!a || !b) throw new Error(`${mode}: phase marker ${mark} missing`);
      return {
        n,
        medianUs: median(samples),
        minUs: Number(words[base + 2]) * usPerTsc,
        maxUs: Number(words[base + 3]) * usPerTsc,
        meanUs: Number(words[base + 1]) * usPerTsc / n,
        phaseUs: Number(words[base + 4]) * usPerTsc,
        tailUs: Number(words[base + 5]) * usPerTsc / n,
        guestWorkUs: (Number(words[base + 4]) - Number(words[base + 1]) -
          Number(words[base + 5])) * usPerTsc / n,
        hostPhaseUs: (b.t - a.t) * 1000,
        exitsPerIter: (b.c.exits - a.c.exits - 1) / n,
        forwardedPerIter: (b.c.forwarded - a.c.forwarded - 1) / n,
      };
    };
    const notify = phase(5, 0x100, 1);
    const w = phase(11, 0x8000, 2);
    const r = phase(17, 0xa000, 3);
    const mbps = (p: PhaseResult) => p.n * BLK_BYTES / p.phaseUs; // bytes/µs = MB/s
    return {
      mode,
      tscKhz,
      runMs,
      notify,
      write: { ...w, mbps: mbps(w) },
      read: { ...r, mbps: mbps(r) },
      irqs: Number(words[23]),
      totalExits,
    };
  } finally {
    Deno.removeSync(path);
  }
}

// ---- host-only references -----------------------------------------------------

interface HostRun {
  writeUs: number; // per 4-KiB request
  readUs: number;
  writeMbps: number;
  readMbps: number;
}

/** The guest's blk pattern straight on a FileBackend, `reps` passes. */
function hostBackend(reps = 20): HostRun {
  const path = Deno.makeTempFileSync({
    prefix: "denovmm-vbench-host-",
    suffix: ".img",
  });
  try {
    Deno.truncateSync(path, nReqs * BLK_BYTES);
    const be = FileBackend.open(path);
    const blocks = Array.from({ length: nReqs }, (_, i) => expectedBlock(i));
    const buf = new Uint8Array(BLK_BYTES);
    let wMs = 0, rMs = 0;
    try {
      for (let rep = 0; rep < reps + 1; rep++) {
        const t0 = performance.now();
        for (let i = 0; i < nReqs; i++) be.write(i * BLK_BYTES, blocks[i]);
        const t1 = performance.now();
        for (let i = 0; i < nReqs; i++) {
          be.read(i * BLK_BYTES, buf);
          if (buf[0] !== blocks[i][0]) throw new Error("host read mismatch");
        }
        const t2 = performance.now();
        if (rep > 0) { // rep 0 is a warm-up
          wMs += t1 - t0;
          rMs += t2 - t1;
        }
      }
    } finally {
      be.close?.();
    }
    const n = nReqs * reps;
    const writeUs = wMs * 1000 / n, readUs = rMs * 1000 / n;
    return {
      writeUs,
      readUs,
      writeMbps: BLK_BYTES / writeUs,
      readMbps: BLK_BYTES / readUs,
    };
  } finally {
    Deno.removeSync(path);
  }
}

function exitCost(mode: InProcessMode): number {
  return timedRun(mode, exitCount).nsPerExit / 1000; // µs
}

// ---- rounds ---------------------------------------------------------------------

try {
  Deno.statSync(ELF);
} catch {
  console.error(`${ELF} missing: run bash guests/build.sh`);
  Deno.exit(1);
}

const guest: Record<IrqchipMode, GuestRun[]> = { kernel: [], split: [] };
const host: HostRun[] = [];
const exitTs: number[] = [], exitFast: number[] = [];
const tAll = performance.now();
for (let r = 0; r < rounds; r++) {
  const order = r % 2 ? [...MODES].reverse() : MODES;
  for (const mode of order) guest[mode].push(runGuest(mode));
  host.push(hostBackend());
  exitTs.push(exitCost("ts-plugin"));
  exitFast.push(exitCost("fastpath"));
  const k = guest.kernel.at(-1)!, s = guest.split.at(-1)!;
  console.log(
    `round ${r + 1}/${rounds}: notify median kernel ${
      k.notify.medianUs.toFixed(1)
    } / split ${s.notify.medianUs.toFixed(1)} µs; write ${
      k.write.mbps.toFixed(2)
    } / ${s.write.mbps.toFixed(2)} MB/s; read ${k.read.mbps.toFixed(2)} / ${
      s.read.mbps.toFixed(2)
    } MB/s; ts-plugin exit ${exitTs.at(-1)!.toFixed(2)} µs`,
  );
}
const wallS = (performance.now() - tAll) / 1000;

// ---- report -----------------------------------------------------------------------

const f = (x: number, d = 1) => x.toFixed(d);
const med = (xs: GuestRun[], pick: (g: GuestRun) => number) =>
  median(xs.map(pick));
const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);

const tsExit = median(exitTs), fastExit = median(exitFast);
const hostW = median(host.map((h) => h.writeUs));
const hostR = median(host.map((h) => h.readUs));

console.log(
  `\nvirtio_bench: ${rounds} rounds, ${nNotify} notifies + ${nReqs} writes + ${nReqs} reads of 4 KiB per run; ` +
    `TSC ${guest.kernel[0].tscKhz} kHz; ${f(wallS, 1)} s in all`,
);
console.log(
  "values: median over rounds of each run's statistic (notify: median/min of the run's samples)\n",
);
const hdr = [
  pad("measurement", 44),
  lpad("kernel", 11),
  lpad("split", 11),
  lpad("split/kern", 11),
].join("");
console.log(hdr);
console.log("-".repeat(hdr.length));
const row = (
  name: string,
  pick: (g: GuestRun) => number,
  d = 1,
) => {
  const k = med(guest.kernel, pick), s = med(guest.split, pick);
  console.log(
    pad(name, 44) + lpad(f(k, d), 11) + lpad(f(s, d), 11) +
      lpad(f(s / k, 2), 11),
  );
};
row("notify→MSI-X→handler median (µs)", (g) => g.notify.medianUs);
row("notify→MSI-X→handler min (µs)", (g) => g.notify.minUs);
row("notify→MSI-X→handler max (µs)", (g) => g.notify.maxUs);
row("  handler entry → back in loop, mean (µs)", (g) => g.notify.tailUs);
row("notify exits / iteration", (g) => g.notify.exitsPerIter, 2);
row("blk 4K write (MB/s)", (g) => g.write.mbps, 3);
row("blk 4K write (µs/request, phase/n)", (g) => g.write.phaseUs / g.write.n);
row("blk 4K write median request (µs)", (g) => g.write.medianUs);
row("blk 4K write mean request (µs)", (g) => g.write.meanUs);
row("  handler entry → back in loop, mean (µs)", (g) => g.write.tailUs);
row("  guest's own work per request (µs)", (g) => g.write.guestWorkUs);
row("blk 4K write exits / request", (g) => g.write.exitsPerIter, 2);
row("blk 4K read (MB/s)", (g) => g.read.mbps, 3);
row("blk 4K read (µs/request, phase/n)", (g) => g.read.phaseUs / g.read.n);
row("blk 4K read median request (µs)", (g) => g.read.medianUs);
row("blk 4K read mean request (µs)", (g) => g.read.meanUs);
row("  handler entry → back in loop, mean (µs)", (g) => g.read.tailUs);
row("  guest's own work per request (µs)", (g) => g.read.guestWorkUs);
row("blk 4K read exits / request", (g) => g.read.exitsPerIter, 2);
row(
  "host clock / guest TSC (write+read phases)",
  (g) =>
    (g.write.hostPhaseUs + g.read.hostPhaseUs) /
    (g.write.phaseUs + g.read.phaseUs),
  3,
);

console.log("\nbaseline (no guest) and context, median over rounds:");
console.log(
  `  host FileBackend 4K pwrite: ${f(hostW, 2)} µs/request (${
    f(BLK_BYTES / hostW, 0)
  } MB/s)`,
);
console.log(
  `  host FileBackend 4K pread:  ${f(hostR, 2)} µs/request (${
    f(BLK_BYTES / hostR, 0)
  } MB/s)`,
);
console.log(
  `  PIO exit, TS plugin port (exits guest): ${f(tsExit, 2)} µs/exit; ` +
    `Rust fast path: ${f(fastExit, 2)} µs/exit`,
);
console.log("\nratios (median values):");
for (const mode of MODES) {
  const g = guest[mode];
  const nm = med(g, (x) => x.notify.medianUs);
  const w = med(g, (x) => x.write.phaseUs / x.write.n);
  const rd = med(g, (x) => x.read.phaseUs / x.read.n);
  console.log(
    `  ${pad(mode, 7)} notify RT = ${f(nm / tsExit, 1)} TS-plugin exits; ` +
      `write req = ${f(w / tsExit, 1)} exits, ${
        f(w / hostW, 0)
      }x host pwrite; ` +
      `read req = ${f(rd / tsExit, 1)} exits, ${f(rd / hostR, 0)}x host pread`,
  );
}

const summary = (mode: IrqchipMode) => {
  const g = guest[mode];
  return {
    notifyMedianUs: med(g, (x) => x.notify.medianUs),
    notifyMinUs: med(g, (x) => x.notify.minUs),
    notifyExitsPerIter: med(g, (x) => x.notify.exitsPerIter),
    writeMBps: med(g, (x) => x.write.mbps),
    writeUsPerReq: med(g, (x) => x.write.phaseUs / x.write.n),
    writeExitsPerReq: med(g, (x) => x.write.exitsPerIter),
    readMBps: med(g, (x) => x.read.mbps),
    readUsPerReq: med(g, (x) => x.read.phaseUs / x.read.n),
    readExitsPerReq: med(g, (x) => x.read.exitsPerIter),
  };
};
const out = {
  date: new Date().toISOString(),
  params: {
    rounds,
    notify: nNotify,
    reqs: nReqs,
    exitCount,
    blkBytes: BLK_BYTES,
  },
  units: "µs; MB/s = 10^6 bytes/s; guest TSC converted with vm.tscKhz()",
  summary: {
    kernel: summary("kernel"),
    split: summary("split"),
    hostFileBackend: {
      writeUsPerReq: hostW,
      readUsPerReq: hostR,
      writeMBps: BLK_BYTES / hostW,
      readMBps: BLK_BYTES / hostR,
    },
    pioExitUs: { tsPlugin: tsExit, fastPath: fastExit },
  },
  rounds: {
    kernel: guest.kernel,
    split: guest.split,
    host,
    pioExitUs: { tsPlugin: exitTs, fastPath: exitFast },
  },
  wallS,
};
Deno.mkdirSync(new URL("./out/", import.meta.url), { recursive: true });
Deno.writeTextFileSync(jsonPath, JSON.stringify(out, null, 2) + "\n");
console.log(`\nwrote ${jsonPath}`);
