/**
 * The native side of the exit benchmark: the independent C reference loop
 * (`bench/c_loop.c`) and the syscall-gap userspace meter
 * (`bench/syscall_gaps.c`), both compiled here with `cc -O2` into
 * `bench/out/` (rebuilt when a source is newer than its output).
 *
 * @module
 */

function benchPath(rel: string): string {
  return decodeURIComponent(new URL(rel, import.meta.url).pathname);
}

const C_LOOP_SRC = benchPath("./c_loop.c");
const GAPS_SRC = benchPath("./syscall_gaps.c");
/** The compiled C reference loop. */
export const C_LOOP_BIN: string = benchPath("./out/c_loop");
const C_START_SRC = benchPath("./c_start.c");
/** The compiled C cold-start reference (`bench/c_start.c`). */
export const C_START_BIN: string = benchPath("./out/c_start");
/** The compiled syscall-gap meter (a shared library for `Deno.dlopen`). */
export const GAPS_LIB: string = benchPath("./out/libsyscall_gaps.so");

function mtime(path: string): number {
  try {
    return Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch {
    return -1;
  }
}

async function cc(args: string[], out: string, srcs: string[]): Promise<void> {
  const t = mtime(out);
  if (t > 0 && srcs.every((s) => mtime(s) <= t)) return;
  Deno.mkdirSync(benchPath("./out"), { recursive: true });
  let r: Deno.CommandOutput;
  try {
    r = await new Deno.Command("cc", { args: [...args, "-o", out, ...srcs] })
      .output();
  } catch (e) {
    throw new Error(`cc: ${(e as Error).message} (a C compiler is needed)`);
  }
  if (!r.success) {
    throw new Error(
      `cc failed building ${out}:\n${new TextDecoder().decode(r.stderr)}`,
    );
  }
}

/** Compile `c_loop` and `libsyscall_gaps.so` when missing or stale. */
export async function buildNative(): Promise<void> {
  await cc(["-O2", "-Wall", "-Wextra"], C_LOOP_BIN, [C_LOOP_SRC, GAPS_SRC]);
  await cc(["-O2", "-Wall", "-Wextra", "-shared", "-fPIC"], GAPS_LIB, [
    GAPS_SRC,
  ]);
}

/** Compile `c_start` when missing or stale. */
export async function buildCStart(): Promise<void> {
  await cc(["-O2", "-Wall", "-Wextra"], C_START_BIN, [C_START_SRC]);
}

/** Ids of the `raw_syscalls:sys_enter` / `sys_exit` tracepoints. */
export interface TracepointIds {
  /** sys_enter id. */
  readonly enter: number;
  /** sys_exit id. */
  readonly exit: number;
}

function readIds(root: string): TracepointIds | null {
  try {
    const r = (n: string) =>
      Number(Deno.readTextFileSync(`${root}/events/raw_syscalls/${n}/id`));
    const ids = { enter: r("sys_enter"), exit: r("sys_exit") };
    return Number.isInteger(ids.enter) && Number.isInteger(ids.exit)
      ? ids
      : null;
  } catch {
    return null;
  }
}

/**
 * The tracepoint ids, from a mounted tracefs, or else (root only) from a
 * tracefs mounted in a private mount namespace (`unshare -m`), which
 * leaves the system's mounts alone. `null` when neither works: the
 * userspace breakdown is then skipped.
 */
export async function tracepointIds(): Promise<TracepointIds | null> {
  for (const root of ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]) {
    const ids = readIds(root);
    if (ids) return ids;
  }
  const dir = Deno.makeTempDirSync({ prefix: "denovmm-tracefs-" });
  try {
    const ev = `${dir}/events/raw_syscalls`;
    const out = await new Deno.Command("unshare", {
      args: [
        "-m",
        "sh",
        "-c",
        `mount -t tracefs nodev ${dir} && cat ${ev}/sys_enter/id ${ev}/sys_exit/id`,
      ],
      stderr: "null",
    }).output();
    if (!out.success) return null;
    const [enter, exit] = new TextDecoder().decode(out.stdout).trim().split(
      /\s+/,
    ).map(Number);
    return Number.isInteger(enter) && Number.isInteger(exit)
      ? { enter, exit }
      : null;
  } catch {
    return null;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Userspace time of one run, from the syscall-gap meter. */
export interface GapStats {
  /** Sum of the gaps (syscall return → next syscall entry) ≤ 50 µs, ns. */
  readonly gapNs: number;
  /** Number of those gaps. */
  readonly gaps: number;
  /** Median gap, ns. */
  readonly medianGapNs: number;
  /** Gaps over 50 µs (the thread was preempted), left out of `gapNs`. */
  readonly longGaps: number;
  /** Trace records the ring buffer lost (0 for a valid measurement). */
  readonly lost: number;
  /** 90th percentile gap, ns. */
  readonly p90GapNs: number;
  /** 99th percentile gap, ns. */
  readonly p99GapNs: number;
  /** Gaps over 10 µs (still ≤ 50 µs): count. */
  readonly tailGaps: number;
  /** Their ns (part of `gapNs`). */
  readonly tailGapNs: number;
}

/** One JSON line of `c_loop`. */
export interface CLoopRound {
  /** `out` or `msi`. */
  readonly mode: "out" | "msi";
  /** Guest writes. */
  readonly count: number;
  /** Wall time of the KVM_RUN loop, ns. */
  readonly ns: number;
  /** KVM_RUN returns. */
  readonly exits: number;
  /** Guest exit status (1 = success). */
  readonly status: number;
  /** MSIs KVM reported as blocked. */
  readonly blocked: number;
  /** Thread CPU time, ns. */
  readonly cpu_ns: number;
  /** Syscall gaps ≤ 50 µs, ns (traced rounds). */
  readonly gap_ns: number;
  /** Their number. */
  readonly gaps: number;
  /** Median gap, ns. */
  readonly median_gap_ns: number;
  /** Gaps over 50 µs. */
  readonly long_gaps: number;
  /** Lost trace records. */
  readonly lost: number;
  /** Time outside KVM_RUN by rdtsc, ns (traced rounds). */
  readonly user_ns: number;
  /** 90th percentile gap, ns. */
  readonly p90_gap_ns: number;
  /** 99th percentile gap, ns. */
  readonly p99_gap_ns: number;
  /** Gaps over 10 µs (≤ 50 µs). */
  readonly tail_gaps: number;
  /** Their ns. */
  readonly tail_gap_ns: number;
}

/**
 * Parse `c_loop` output (one JSON object a line); throws naming the line
 * when one is not an object with numeric `ns`, `exits` and `status`.
 *
 * @example
 * ```ts
 * import { parseCLoop } from "./native.ts";
 * console.log(parseCLoop('{"mode":"out","ns":10,"exits":2,"status":1}\n'));
 * ```
 */
export function parseCLoop(text: string): CLoopRound[] {
  return text.split("\n").filter((l) => l.trim() !== "").map((l, i) => {
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch {
      throw new Error(`c_loop line ${i + 1} is not JSON: ${l}`);
    }
    const o = v as Record<string, unknown>;
    if (
      typeof o !== "object" || o === null ||
      !["ns", "exits", "status"].every((k) => typeof o[k] === "number")
    ) {
      throw new Error(`c_loop line ${i + 1} lacks ns/exits/status: ${l}`);
    }
    return o as unknown as CLoopRound;
  });
}

/**
 * Run `c_loop` for `rounds` rounds and return the last one (the first
 * warms the fresh process and is dropped when `rounds` > 1). With `ids`,
 * the rounds are traced (userspace breakdown, not timing).
 */
export async function runCLoop(
  elf: string,
  mode: "out" | "msi",
  port: number,
  count: number,
  rounds: number,
  vector: number,
  ids?: TracepointIds,
): Promise<CLoopRound> {
  const args = [elf, mode, `0x${port.toString(16)}`, `${count}`, `${rounds}`];
  args.push(`0x${vector.toString(16)}`);
  if (ids) args.push(`${ids.enter}`, `${ids.exit}`);
  const out = await new Deno.Command(C_LOOP_BIN, { args }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `c_loop ${args.join(" ")} failed (${out.code}): ${
        new TextDecoder().decode(out.stderr)
      }${text}`,
    );
  }
  const r = parseCLoop(text);
  return r[r.length - 1];
}

/** Measures the calling thread's userspace time around a run. */
export interface GapMeter {
  /** Reset and start tracing this thread's syscalls. */
  start(): void;
  /** Stop and count. */
  stop(): GapStats;
}

const SG_OUT = 12;

/**
 * Open the syscall-gap meter for the calling thread (`Deno.dlopen` of
 * {@link GAPS_LIB}); throws with the errno when perf refuses.
 */
export function openGapMeter(ids: TracepointIds): GapMeter {
  const lib = Deno.dlopen(GAPS_LIB, {
    sg_open: { parameters: ["u32", "u32"], result: "i32" },
    sg_start: { parameters: ["i32"], result: "i32" },
    sg_stop: { parameters: ["i32", "buffer"], result: "i32" },
  });
  const h = lib.symbols.sg_open(ids.enter, ids.exit);
  if (h < 0) {
    lib.close();
    throw new Error(`perf_event_open (raw_syscalls tracepoints): errno ${-h}`);
  }
  const out = new BigUint64Array(SG_OUT);
  return {
    start() {
      const rc = lib.symbols.sg_start(h);
      if (rc < 0) throw new Error(`sg_start: errno ${-rc}`);
    },
    stop(): GapStats {
      const rc = lib.symbols.sg_stop(h, out);
      if (rc < 0) throw new Error(`sg_stop: errno ${-rc}`);
      return {
        gapNs: Number(out[0]),
        gaps: Number(out[1]),
        medianGapNs: Number(out[2]),
        longGaps: Number(out[3]),
        lost: Number(out[7]),
        p90GapNs: Number(out[8]),
        p99GapNs: Number(out[9]),
        tailGaps: Number(out[10]),
        tailGapNs: Number(out[11]),
      };
    },
  };
}
