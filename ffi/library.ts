/**
 * The single `Deno.dlopen` table of the Rust core, and error decoding.
 *
 * Hand-written from `core/include/denovmm.h` (which cbindgen generates from
 * the Rust sources): one symbol per C function, typed. `abi_test.ts` checks
 * that the names, parameter counts and constants agree with the header.
 * Only `ffi/` sees these symbols; everything above goes through
 * {@link CoreVm} in `core_vm.ts`.
 *
 * @module
 */

import { ABI_VERSION, CoreCode } from "./abi.ts";

const VM = "u32";

/**
 * The `Deno.dlopen` table: one entry per C function of
 * `core/include/denovmm.h` (checked by
 * `abi_test.ts`). Handles and ids are u32 and hot-path arguments are
 * 32-bit, so no call on the exit path converts a BigInt.
 */
export const SYMBOLS = {
  dv_abi_version: { parameters: [], result: "u32" },
  dv_last_error: { parameters: ["buffer", "usize"], result: "usize" },
  dv_vm_create: { parameters: ["buffer", "buffer"], result: "i32" },
  dv_vm_destroy: { parameters: [VM], result: "i32" },
  dv_vm_count: { parameters: [], result: "i32" },
  dv_vm_load_elf: {
    parameters: [VM, "buffer", "usize", "buffer"],
    result: "i32",
  },
  dv_vm_load_multiboot: {
    parameters: [VM, "buffer", "usize", "buffer", "usize"],
    result: "i32",
  },
  dv_vm_memory: { parameters: [VM, "buffer"], result: "i32" },
  dv_vm_range_add: {
    parameters: [VM, "u32", "u64", "u64", "u32", "u32", "u64"],
    result: "i32",
  },
  dv_vm_range_remove: { parameters: [VM, "u32", "u64"], result: "i32" },
  dv_vm_stop: { parameters: [VM], result: "i32" },
  dv_vm_set_timeout: { parameters: [VM, "u64"], result: "i32" },
  dv_vm_set_wake: { parameters: [VM, "u64"], result: "i32" },
  dv_vm_info: { parameters: [VM, "buffer"], result: "i32" },
  dv_vm_reset: { parameters: [VM, "u32"], result: "i32" },
  dv_vcpu_run: { parameters: [VM, "u32"], result: "i32" },
  dv_vcpu_record: { parameters: [VM, "u32", "buffer"], result: "i32" },
  dv_vcpu_counters: { parameters: [VM, "u32", "buffer"], result: "i32" },
  dv_vcpu_tsc_khz: { parameters: [VM, "u32"], result: "i32" },
  dv_vcpu_lapic_read: {
    parameters: [VM, "u32", "buffer", "usize", "buffer"],
    result: "i32",
  },
  dv_vcpu_lapic_eoi: { parameters: [VM, "u32"], result: "i32" },
  dv_vcpu_set_irq_window: { parameters: [VM, "u32", "u32"], result: "i32" },
  dv_vcpu_ready_for_injection: { parameters: [VM, "u32"], result: "i32" },
  dv_vcpu_inject_extint: { parameters: [VM, "u32", "u32"], result: "i32" },
  dv_vcpu_set_cpu: {
    parameters: [VM, "u32", "buffer", "usize"],
    result: "i32",
  },
  dv_vcpu_cpuid: {
    parameters: [VM, "u32", "u32", "u32", "buffer"],
    result: "i32",
  },
  dv_vcpu_crash_report: { parameters: [VM, "u32", "buffer"], result: "i32" },
  dv_irq_line: { parameters: [VM, "u32", "u32"], result: "i32" },
  dv_irq_signal_msi: {
    parameters: [VM, "u32", "u32", "u32"],
    result: "i32",
  },
  dv_irq_request: { parameters: [VM, "u32", "u32", "u32"], result: "i32" },
  dv_route_set_msi: {
    parameters: [VM, "u32", "u32", "u32", "u32"],
    result: "i32",
  },
  dv_route_clear: { parameters: [VM, "u32"], result: "i32" },
  dv_route_allocate: { parameters: [VM], result: "i32" },
  dv_route_release: { parameters: [VM, "u32"], result: "i32" },
  dv_irqfd_create: { parameters: [VM, "u32", "u32"], result: "i32" },
  dv_irqfd_trigger: { parameters: [VM, "u32"], result: "i32" },
  dv_irqfd_set_attached: { parameters: [VM, "u32", "u32"], result: "i32" },
  dv_irqfd_take_pending: { parameters: [VM, "u32"], result: "i32" },
  dv_irqfd_resample_gsi: { parameters: [VM, "u32"], result: "i32" },
  dv_irqfd_destroy: { parameters: [VM, "u32"], result: "i32" },
  dv_level_create: { parameters: [VM, "u32"], result: "i32" },
  dv_level_add: { parameters: [VM, "u32", "u64"], result: "i32" },
  dv_level_stats: { parameters: [VM, "u32", "buffer"], result: "i32" },
  dv_level_destroy: { parameters: [VM, "u32"], result: "i32" },
  dv_timer_create: {
    parameters: [VM, "u32", "u32", "u32", "u32"],
    result: "i32",
  },
  dv_timer_arm: { parameters: [VM, "u32", "u64"], result: "i32" },
  dv_timer_disarm: { parameters: [VM, "u32"], result: "i32" },
  dv_timer_set_pacing: { parameters: [VM, "u32", "u32"], result: "i32" },
  dv_timer_stats: { parameters: [VM, "u32", "buffer"], result: "i32" },
  dv_timer_destroy: { parameters: [VM, "u32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The raw symbol table. */
export type CoreSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Error codes of the core (negative return values; `DvCode`). */
export const ErrorCode = CoreCode;

/**
 * An error reported by the Rust core.
 *
 * @example
 * ```ts
 * import { CoreError } from "./library.ts";
 * const e = new CoreError(-5, "/dev/kvm is missing");
 * console.log(e.code, e.message);
 * ```
 */
export class CoreError extends Error {
  /** Negative core error code (see {@link ErrorCode}). */
  readonly code: number;
  /** Create an error from a code and message. */
  constructor(code: number, message: string) {
    super(message);
    this.name = "CoreError";
    this.code = code;
  }
}

/**
 * An opened core library.
 *
 * @example
 * ```ts ignore
 * import { openLibrary } from "./library.ts";
 * const lib = openLibrary();
 * console.log(lib.symbols.dv_abi_version());
 * ```
 */
export interface CoreLibrary {
  /** Raw symbols. */
  readonly symbols: CoreSymbols;
  /** Path the library was loaded from. */
  readonly path: string;
  /** Throw a {@link CoreError} for a negative `rc`; return `rc` otherwise. */
  check(rc: number, what: string): number;
}

/**
 * Default path of the core library: `$DENOVMM_LIB`, else the release build
 * beside this module (`core/target/release/libdenovmm_core.so`).
 *
 * @example
 * ```ts ignore
 * import { defaultLibraryPath } from "./library.ts";
 * console.log(defaultLibraryPath());
 * ```
 */
export function defaultLibraryPath(): string {
  let env: string | undefined;
  try {
    env = Deno.env.get("DENOVMM_LIB");
  } catch {
    env = undefined; // no --allow-env: use the default
  }
  if (env) return env;
  const url = new URL(
    "../core/target/release/libdenovmm_core.so",
    import.meta.url,
  );
  return decodeURIComponent(url.pathname);
}

const cache = new Map<string, CoreLibrary>();

/**
 * Open (once per path and thread) the core library.
 *
 * @example
 * ```ts ignore
 * import { openLibrary } from "./library.ts";
 * const lib = openLibrary();
 * ```
 */
export function openLibrary(path: string = defaultLibraryPath()): CoreLibrary {
  const hit = cache.get(path);
  if (hit) return hit;
  let dl: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    dl = Deno.dlopen(path, SYMBOLS);
  } catch (e) {
    throw new Error(
      `cannot load the denovmm core from ${path} (build it with \`deno task build:core\`): ${
        (e as Error).message
      }`,
    );
  }
  const symbols = dl.symbols;
  const version = symbols.dv_abi_version();
  if (version !== ABI_VERSION) {
    dl.close();
    throw new Error(
      `core library ${path} speaks ABI ${version}, this module ${ABI_VERSION}`,
    );
  }
  const msgBuf = new Uint8Array(1024);
  const decoder = new TextDecoder();
  const lib: CoreLibrary = {
    symbols,
    path,
    check(rc: number, what: string): number {
      if (rc >= 0) return rc;
      const n = Number(symbols.dv_last_error(msgBuf, BigInt(msgBuf.length)));
      const msg = decoder.decode(
        msgBuf.subarray(0, Math.min(n, msgBuf.length)),
      );
      throw new CoreError(rc, `${what}: ${msg || `error ${rc}`}`);
    },
  };
  cache.set(path, lib);
  return lib;
}
