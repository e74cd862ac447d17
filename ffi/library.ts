/**
 * The single `Deno.dlopen` table of the Rust core, and error decoding.
 *
 * Hand-written rather than generated: the core's surface is a handful of
 * multiplexed calls over opaque handles with out-buffers and a raw exit
 * record pointer, which is smaller and faster to load this way (Deno's
 * dlopen costs ~155 µs per symbol) than a generated binding.
 *
 * @module
 */

/** ABI version this binding speaks (see `core/src/ffi.rs`). */
export const ABI_VERSION = 1;

const SYMBOLS = {
  dv_abi_version: { parameters: [], result: "u32" },
  dv_last_error: { parameters: ["buffer", "usize"], result: "usize" },
  dv_vm_create: { parameters: ["u64", "u32", "u32", "buffer"], result: "i32" },
  dv_vm_destroy: { parameters: ["u64"], result: "i32" },
  dv_vm_load_elf: {
    parameters: ["u64", "buffer", "usize", "buffer"],
    result: "i32",
  },
  dv_vm_load_multiboot: {
    parameters: ["u64", "buffer", "usize", "buffer", "usize"],
    result: "i32",
  },
  dv_vm_query: {
    parameters: ["u64", "u32", "u32", "buffer", "usize"],
    result: "i32",
  },
  dv_vm_range: {
    parameters: ["u64", "u32", "u32", "u64", "u64", "u32", "u64"],
    result: "i32",
  },
  dv_vcpu_run: { parameters: ["u64", "u32"], result: "i32" },
  dv_vm_control: { parameters: ["u64", "u32", "u64"], result: "i32" },
  dv_irq: { parameters: ["u64", "u32", "u32", "u32", "u64"], result: "i32" },
  dv_event: { parameters: ["u64", "u32", "u32", "u32", "u64"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The raw symbol table. */
export type CoreSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Error codes of the core (negative return values). */
export const ErrorCode = {
  BadHandle: -1,
  InvalidArgument: -2,
  Os: -3,
  BadImage: -4,
  NoKvm: -5,
  Panic: -6,
  Busy: -7,
  Unsupported: -8,
} as const;

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
