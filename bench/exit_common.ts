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
 * The MSI mode runs the `msi_exits` guest instead (arg2 = vector): each
 * write to port 0x600 is answered by the plugin with `ctx.signalMsi` to
 * that vector, and the guest waits for its handler (count, LAPIC EOI,
 * `iretq`) before the next write.
 *
 * @module
 */
import type { Plugin, PluginContext, Region } from "../bus/types.ts";
import type { GapMeter, GapStats } from "./native.ts";
import { debugExitPlugin } from "../plugins/debug_exit/plugin.ts";
import { defaultLibraryPath } from "../ffi/library.ts";
import { createVm } from "../vmm/vm.ts";

/** Port claimed by the TypeScript plugin region. */
export const TS_PORT = 0x600;
/** Port answered in the Rust fast path (`ignoredPorts`). */
export const FAST_PORT = 0x80;
/** Vector of the MSI benchmark. */
export const MSI_VECTOR = 0x40;
/** MSI address: the LAPIC window, destination APIC 0. */
export const MSI_ADDRESS = 0xfee00000;

function repoPath(rel: string): string {
  return decodeURIComponent(new URL(`../${rel}`, import.meta.url).pathname);
}

/** Path of the `exits` guest. */
export const EXITS_ELF: string = repoPath("guests/build/exits.elf");
/** Path of the `msi_exits` guest. */
export const MSI_EXITS_ELF: string = repoPath("guests/build/msi_exits.elf");
/** Path of the pure-Rust baseline binary. */
export const BASELINE_BIN: string = repoPath("core/target/release/dv_baseline");

const elfCache = new Map<string, Uint8Array>();

function guestImage(path: string): Uint8Array {
  let b = elfCache.get(path);
  if (!b) {
    try {
      b = Deno.readFileSync(path);
    } catch (e) {
      throw new Error(
        `${path}: ${(e as Error).message} (run bash guests/build.sh)`,
      );
    }
    elfCache.set(path, b);
  }
  return b;
}

/** The `exits` guest image (read once). */
export function exitsElf(): Uint8Array {
  return guestImage(EXITS_ELF);
}

/**
 * A plugin that answers every write to `port` with an MSI to `vector`
 * (`ctx.signalMsi`), and counts them.
 */
export function msiPlugin(
  port: number = TS_PORT,
  vector: number = MSI_VECTOR,
): Plugin & { readonly writes: () => number } {
  let writes = 0;
  let ctx: PluginContext | undefined;
  const msg = { address: MSI_ADDRESS, data: vector };
  const region: Region = {
    range: { space: "pio", base: port, length: 1 },
    read(_access, data) {
      data.fill(0xff);
    },
    write() {
      writes++;
      ctx!.signalMsi(msg);
    },
  };
  return {
    name: "bench-msi",
    writes: () => writes,
    setup(c) {
      ctx = c;
      return [region];
    },
  };
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
  /** Userspace time of the run, when a {@link GapMeter} traced it. */
  readonly gaps?: GapStats;
}

/** Which in-process path a run exercises. */
export type InProcessMode = "ts-plugin" | "fastpath" | "ts-msi";

/** A created and loaded VM, ready for a timed `run()`. */
export interface PreparedRun {
  /** Run the guest to its debug exit and time it (once). */
  run(): ExitRun;
  /** Free the VM. */
  close(): void;
}

/**
 * Create a VM for `mode` and load the `exits` guest doing `count` writes
 * (`msi_exits` for `ts-msi`; not timed). Call `run()` on the result to
 * time the run; with `meter`, the run is traced for its userspace time
 * instead (slower: not a timing run).
 */
export function prepareRun(
  mode: InProcessMode,
  count: number,
  libraryPath?: string,
  meter?: GapMeter,
): PreparedRun {
  const counter = mode === "ts-msi"
    ? msiPlugin(TS_PORT, MSI_VECTOR)
    : counterPlugin(TS_PORT);
  const ts = mode !== "fastpath";
  const vm = createVm({
    memory: "16M",
    libraryPath,
    plugins: ts ? [debugExitPlugin(), counter] : [debugExitPlugin()],
    ignoredPorts: ts ? [] : [{ space: "pio", base: FAST_PORT, length: 1 }],
  });
  try {
    if (mode === "ts-msi") {
      vm.load(guestImage(MSI_EXITS_ELF), [TS_PORT, count, MSI_VECTOR]);
    } else {
      vm.load(exitsElf(), [ts ? TS_PORT : FAST_PORT, count]);
    }
  } catch (e) {
    vm.close();
    throw e;
  }
  return {
    close: () => vm.close(),
    run(): ExitRun {
      meter?.start();
      const t0 = performance.now();
      const r = vm.run();
      const t1 = performance.now();
      const gaps = meter?.stop();
      if (r.reason !== "exit" || r.status !== 1) {
        throw new Error(
          `${mode}: guest ended with ${r.reason} ${r.status ?? ""} ${
            r.detail ?? ""
          }`,
        );
      }
      const c = vm.counters();
      if (ts && counter.writes() !== count) {
        throw new Error(`${mode}: ${counter.writes()} writes, not ${count}`);
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
        gaps,
      };
    },
  };
}

/** Create, load and time one run of `mode` (traced with `meter`). */
export function timedRun(
  mode: InProcessMode,
  count: number,
  meter?: GapMeter,
): ExitRun {
  const p = prepareRun(mode, count, undefined, meter);
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
