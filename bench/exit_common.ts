/**
 * Shared pieces of the port-I/O exit benchmark (`exit_bench.ts`, run with
 * `deno bench`) and its interleaving runner (`run_exit_bench.ts`).
 *
 * Every measurement runs the `exits` guest (`guests/build/exits.elf`:
 * arg0 = port, arg1 = count; `count` × `outb port`, then `outl 0xF4`) in a
 * fresh VM and times the whole `vm.run()` call, from entering the guest to
 * the debug-exit write that ends it; VM creation and loading are not timed.
 * ns/exit is that time divided by all KVM exits of the run
 * (`vm.counters().exits`), the same definition `dv_baseline` uses.
 *
 * @module
 */
import type { Plugin, Region } from "../bus/types.ts";
import { debugExitPlugin } from "../plugins/debug_exit/plugin.ts";
import { defaultLibraryPath } from "../ffi/library.ts";
import { createVm } from "../vmm/vm.ts";

/** Port claimed by the TypeScript plugin region. */
export const TS_PORT = 0x600;
/** Port answered in the Rust fast path (`ignoredPorts`). */
export const FAST_PORT = 0x80;

function repoPath(rel: string): string {
  return decodeURIComponent(new URL(`../${rel}`, import.meta.url).pathname);
}

/** Path of the `exits` guest. */
export const EXITS_ELF: string = repoPath("guests/build/exits.elf");
/** Path of the pure-Rust baseline binary. */
export const BASELINE_BIN: string = repoPath("core/target/release/dv_baseline");

let elfCache: Uint8Array | undefined;

/** The `exits` guest image (read once). */
export function exitsElf(): Uint8Array {
  if (!elfCache) {
    try {
      elfCache = Deno.readFileSync(EXITS_ELF);
    } catch (e) {
      throw new Error(
        `${EXITS_ELF}: ${(e as Error).message} (run bash guests/build.sh)`,
      );
    }
  }
  return elfCache;
}

/** A trivial plugin: one port whose write handler increments a counter. */
export function counterPlugin(
  port: number = TS_PORT,
): Plugin & { readonly writes: () => number } {
  let writes = 0;
  const region: Region = {
    range: { space: "pio", base: port, length: 1 },
    read(_access, data) {
      data.fill(0xff);
    },
    write() {
      writes++;
    },
  };
  return {
    name: "bench-counter",
    writes: () => writes,
    setup: () => [region],
  };
}

/** One timed run. */
export interface ExitRun {
  /** Wall time of the whole `vm.run()` in ns. */
  readonly ns: number;
  /** All KVM exits of the run. */
  readonly exits: number;
  /** `ns / exits`. */
  readonly nsPerExit: number;
  /** Exits handled in the Rust fast path. */
  readonly fastPath: number;
  /** Exits returned to TypeScript. */
  readonly forwarded: number;
}

/** Which in-process path a run exercises. */
export type InProcessMode = "ts-plugin" | "fastpath";

/** A created and loaded VM, ready for a timed `run()`. */
export interface PreparedRun {
  /** Run the guest to its debug exit and time it (once). */
  run(): ExitRun;
  /** Free the VM. */
  close(): void;
}

/**
 * Create a VM for `mode` and load the `exits` guest doing `count` writes
 * (not timed). Call `run()` on the result to time the run.
 */
export function prepareRun(
  mode: InProcessMode,
  count: number,
  libraryPath?: string,
): PreparedRun {
  const counter = counterPlugin(TS_PORT);
  const ts = mode === "ts-plugin";
  const vm = createVm({
    memory: "16M",
    libraryPath,
    plugins: ts ? [debugExitPlugin(), counter] : [debugExitPlugin()],
    ignoredPorts: ts ? [] : [{ space: "pio", base: FAST_PORT, length: 1 }],
  });
  try {
    vm.load(exitsElf(), [ts ? TS_PORT : FAST_PORT, count]);
  } catch (e) {
    vm.close();
    throw e;
  }
  return {
    close: () => vm.close(),
    run(): ExitRun {
      const t0 = performance.now();
      const r = vm.run();
      const t1 = performance.now();
      if (r.reason !== "exit" || r.status !== 1) {
        throw new Error(
          `${mode}: guest ended with ${r.reason} ${r.status ?? ""} ${
            r.detail ?? ""
          }`,
        );
      }
      const c = vm.counters();
      if (ts && counter.writes() !== count) {
        throw new Error(`ts-plugin: ${counter.writes()} writes, not ${count}`);
      }
      if (!ts && c.fastPath < count) {
        throw new Error(`fastpath: only ${c.fastPath} fast-path exits`);
      }
      const ns = (t1 - t0) * 1e6;
      return {
        ns,
        exits: c.exits,
        nsPerExit: ns / c.exits,
        fastPath: c.fastPath,
        forwarded: c.forwarded,
      };
    },
  };
}

/** Create, load and time one run of `mode`. */
export function timedRun(mode: InProcessMode, count: number): ExitRun {
  const p = prepareRun(mode, count);
  try {
    return p.run();
  } finally {
    p.close();
  }
}

/**
 * A fresh copy of the core library under a unique path, so that
 * `openLibrary` (which caches per path) really `dlopen`s it again. The
 * copy is deleted by `dispose()` (a loaded library stays mapped).
 */
export function freshLibraryCopy(): { path: string; dispose(): void } {
  const dir = Deno.makeTempDirSync({ prefix: "denovmm-cold-" });
  const path = `${dir}/libdenovmm_core.so`;
  Deno.copyFileSync(defaultLibraryPath(), path);
  return {
    path,
    dispose: () => Deno.removeSync(dir, { recursive: true }),
  };
}

/**
 * Cold start: `dlopen` of `libraryPath` (the first `createVm` for that
 * path) + create VM + load the `exits` guest with count 0 + run to its
 * first forwarded exit (the debug-exit write). Returns ns.
 */
export function coldStart(libraryPath: string): number {
  const t0 = performance.now();
  const vm = createVm({
    memory: "16M",
    libraryPath,
    plugins: [debugExitPlugin()],
  });
  try {
    vm.load(exitsElf(), [FAST_PORT, 0]);
    const r = vm.run();
    const t1 = performance.now();
    if (r.reason !== "exit" || r.status !== 1) {
      throw new Error(`cold start: guest ended with ${r.reason}`);
    }
    return (t1 - t0) * 1e6;
  } finally {
    vm.close();
  }
}

/** One line of `dv_baseline` output. */
export interface BaselineRound {
  /** `fastpath` (Ignore range) or `forward` (Rust loop handles it). */
  readonly mode: "fastpath" | "forward";
  /** Wall time of the whole run in ns. */
  readonly ns: number;
  /** All KVM exits of the run. */
  readonly exits: number;
  /** `ns / exits`. */
  readonly ns_per_exit: number;
}

/**
 * Run `dv_baseline` for `rounds` rounds and return its JSON lines.
 */
export async function runBaseline(
  count: number,
  rounds: number,
  forward: boolean,
): Promise<BaselineRound[]> {
  const args = [EXITS_ELF, `0x${FAST_PORT.toString(16)}`, `${count}`];
  args.push(`${rounds}`);
  if (forward) args.push("--forward");
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(BASELINE_BIN, { args }).output();
  } catch (e) {
    throw new Error(
      `${BASELINE_BIN}: ${
        (e as Error).message
      } (build it: cd core && cargo build --release)`,
    );
  }
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr);
    throw new Error(`dv_baseline failed (${out.code}): ${err}${text}`);
  }
  return text.trim().split("\n").map((l) => JSON.parse(l) as BaselineRound);
}
