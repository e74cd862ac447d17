/**
 * The single `Deno.dlopen` table of the Rust core, error decoding, and
 * `openLibrary`, which opens the core through the backend its path names:
 * `Deno.dlopen` for a `.so`, the napi backend for a `.node` addon.
 *
 * Hand-written from `core/include/denovmm.h` (which cbindgen generates from
 * the Rust sources): one symbol per C function, typed. `abi_test.ts` checks
 * that the names, parameter counts and constants agree with the header.
 * Only `ffi/` sees these symbols; everything above goes through
 * {@link CoreVm} in `core_vm.ts`.
 *
 * @module
 */

import { ABI_VERSION } from "./abi.ts";
import { type CoreBackend, CoreError, isAddonPath } from "./backend.ts";
import { RECORD_LEN } from "./exit_record.ts";
import { openNapiBackend } from "./napi_backend.ts";
import { host } from "./host.ts";
import { openGrouped } from "./symbol_groups.ts";
import {
  findPlatformPackage,
  importPlatformPackage,
  PLATFORM_PACKAGE,
  PLATFORM_VERSION,
  type PlatformPackage,
  platformPackageName,
} from "./platform_package.ts";

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
  dv_vm_start_aps: { parameters: [VM], result: "i32" },
  dv_vm_stop_aps: { parameters: [VM], result: "i32" },
  dv_vm_detach_aps: { parameters: [VM], result: "i32" },
  dv_vm_take_parked: { parameters: [VM, "buffer", "u32"], result: "i32" },
  dv_vm_release_ap: { parameters: [VM, "u32"], result: "i32" },
  dv_vm_wait_exits: {
    parameters: [VM, "buffer", "u32", "u32"],
    result: "i32",
  },
  dv_vcpu_mp_state: { parameters: [VM, "u32"], result: "i32" },
  dv_vcpu_wake: { parameters: [VM, "u32"], result: "i32" },
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
  dv_timer_set_policy: {
    parameters: [VM, "u32", "u32", "u64"],
    result: "i32",
  },
  dv_timer_catchup_stats: {
    parameters: [VM, "u32", "buffer"],
    result: "i32",
  },
  dv_vm_state_save: { parameters: [VM, "buffer", "usize"], result: "i32" },
  dv_vm_state_load: { parameters: [VM, "buffer", "usize"], result: "i32" },
  dv_vm_dirty_log: { parameters: [VM, "u32"], result: "i32" },
  dv_vm_bitmap_words: { parameters: [VM], result: "i32" },
  dv_vm_dirty_bitmap: { parameters: [VM, "buffer", "usize"], result: "i32" },
  dv_vm_memory_save: {
    parameters: [VM, "buffer", "usize", "u64", "buffer", "usize", "buffer"],
    result: "i32",
  },
  dv_vm_memory_load: {
    parameters: [VM, "buffer", "usize", "u64", "u32", "buffer", "usize"],
    result: "i32",
  },
  dv_vm_memory_copy: {
    parameters: [VM, "buffer", "usize", "buffer", "usize", "u32"],
    result: "i32",
  },
  dv_memory_file_crc: {
    parameters: ["buffer", "usize", "u64", "u64", "buffer", "usize", "buffer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The raw symbol table. */
export type CoreSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

export { CoreError };

/**
 * An opened core library: the {@link CoreBackend} of either runtime (the
 * name predates the napi backend).
 */
export type CoreLibrary = CoreBackend;

/** Where the core library comes from, and what is known about it. */
export interface LibraryLocation {
  /** The path to open, or undefined when there is none to try. */
  path?: string;
  /** Why there is no path, or what to add when loading it fails. */
  hints: string[];
}

/**
 * Resolve the core library's path from `$DENOVMM_LIB` (`env`, or
 * `undefined` when the variable is unset or could not be read) and the
 * module's own URL: the release build beside a local checkout. A module
 * imported over the network has no build beside it.
 *
 * @example
 * ```ts
 * import { locateLibrary } from "./library.ts";
 * const l = locateLibrary(undefined, false, "https://jsr.io/@denovmm/vmm/0.1.0/ffi/library.ts");
 * console.log(l.path); // undefined
 * ```
 */
export function locateLibrary(
  env: string | undefined,
  envReadable: boolean,
  moduleUrl: string,
  runtime: "deno" | "node" = "deno",
): LibraryLocation {
  const hints: string[] = [];
  if (!envReadable) {
    hints.push(
      "DENOVMM_LIB could not be read: add --allow-env=DENOVMM_LIB to use it",
    );
  }
  if (env) return { path: env, hints };
  const url = new URL(
    runtime === "deno"
      ? "../core/target/release/libdenovmm_core.so"
      : "../napi/denovmm.linux-x64-gnu.node",
    moduleUrl,
  );
  if (url.protocol !== "file:") {
    hints.unshift(
      "the core library is not part of the published module: the prebuilt " +
        `one comes from the npm package ${PLATFORM_PACKAGE}@${PLATFORM_VERSION}` +
        " (imported as npm:, or npm install it), or set " +
        "DENOVMM_LIB=/path/to/libdenovmm_core.so",
    );
    return { hints };
  }
  hints.push(
    runtime === "deno"
      ? "build it with `deno task build:core`, or set DENOVMM_LIB to a " +
        "built libdenovmm_core.so"
      : "build it with `cd napi && npm run build`, or install " +
        `${PLATFORM_PACKAGE}, or set DENOVMM_LIB to a denovmm .node addon`,
  );
  return { path: decodeURIComponent(url.pathname), hints };
}

function readEnv(): { env?: string; readable: boolean } {
  const readable = host.envReadable("DENOVMM_LIB");
  return { env: host.env("DENOVMM_LIB") || undefined, readable };
}

/**
 * The error when this platform has no prebuilt core.
 *
 * @example
 * ```ts
 * import { noPrebuiltError } from "./library.ts";
 * console.log(noPrebuiltError("darwin", "aarch64").message);
 * ```
 */
export function noPrebuiltError(os: string, arch: string): Error {
  return new Error(
    `cannot load the denovmm core: there is no prebuilt core for ${os}-${arch}` +
      " (denovmm needs KVM: Linux on x86-64); build core/ from the " +
      "repository on such a host and set DENOVMM_LIB to it",
  );
}

/**
 * A module imported over the network (JSR) under Deno has neither a build
 * nor `node_modules` beside it: import the platform package through `npm:`
 * once, when this module loads, unless DENOVMM_LIB overrides it.
 */
const remotePackage: { pkg?: PlatformPackage; error?: string } =
  host.runtime === "deno" && !import.meta.url.startsWith("file:") &&
    !readEnv().env && platformPackageName(host.os, host.arch)
    ? await importPlatformPackage().catch((e: Error) => ({ error: e.message }))
    : {};

/**
 * Where the core comes from when no path is given: `$DENOVMM_LIB`, the
 * build beside this module (a checkout), the npm platform package (an npm
 * install, or `npm:` for a module from the network).
 */
function defaultLocation(): LibraryLocation {
  const { env, readable } = readEnv();
  const l = locateLibrary(env, readable, import.meta.url, host.runtime);
  if (env) return l;
  if (l.path && isFile(l.path)) return l;
  if (!platformPackageName(host.os, host.arch)) {
    throw noPrebuiltError(host.os, host.arch);
  }
  if (remotePackage.error && remotePackage.error.startsWith("cannot load")) {
    throw new Error(remotePackage.error);
  }
  const pkg = remotePackage.pkg ?? findPlatformPackage();
  if (pkg) {
    const path = host.runtime === "deno" ? pkg.library : pkg.addon;
    return { path, hints: l.hints };
  }
  if (l.path) return l; // a checkout without a build: say so
  if (remotePackage.error) l.hints.push(remotePackage.error);
  return l;
}

function isFile(path: string): boolean {
  try {
    return host.stat(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Default path of the core library: `$DENOVMM_LIB`, else the release build
 * beside this module (`core/target/release/libdenovmm_core.so`). Throws
 * with the fix when there is none (a module imported over the network).
 *
 * @example
 * ```ts ignore
 * import { defaultLibraryPath } from "./library.ts";
 * console.log(defaultLibraryPath());
 * ```
 */
export function defaultLibraryPath(): string {
  const l = defaultLocation();
  if (!l.path) {
    throw new Error(`cannot load the denovmm core: ${l.hints.join("; ")}`);
  }
  return l.path;
}

/** The exact permissions the core needs, checked before dlopen. */
function checkFfiPermission(path: string): void {
  const all = Deno.permissions.querySync({ name: "ffi" }).state;
  if (all === "granted") return;
  const scoped = Deno.permissions.querySync({ name: "ffi", path }).state;
  throw new Error(
    scoped === "granted"
      ? "denovmm needs an unscoped --allow-ffi: it maps guest RAM and the " +
        "exit record with Deno.UnsafePointer, which a path-scoped " +
        "--allow-ffi does not cover (run with --allow-ffi --allow-read)"
      : `denovmm needs --allow-ffi to load its core (${path}); run with ` +
        "--allow-ffi --allow-read (and --allow-env=DENOVMM_LIB to choose the library)",
  );
}

/** Why `path` failed to open, with the fix. */
function loadError(path: string, e: Error, hints: string[]): Error {
  let exists: boolean | undefined;
  try {
    exists = Deno.statSync(path).isFile;
  } catch (s) {
    if (s instanceof Deno.errors.NotFound) exists = false;
  }
  const why = exists === false
    ? `no core library at ${path}`
    : `${path} could not be loaded as the denovmm core (${e.message})`;
  return new Error(`cannot load the denovmm core: ${why}; ${hints.join("; ")}`);
}

const cache = new Map<string, CoreLibrary>();

/** An `ArrayBuffer` over `length` bytes of core memory at `address`. */
function pointerBuffer(address: bigint, length: number): ArrayBuffer {
  const ptr = Deno.UnsafePointer.create(address);
  if (ptr === null) throw new Error("core returned a null pointer");
  return Deno.UnsafePointerView.getArrayBuffer(ptr, length);
}

/**
 * Open (once per path and thread) the core library: a `.node` path (from
 * the argument or `$DENOVMM_LIB`) through the napi backend, any other
 * through `Deno.dlopen`.
 *
 * @example
 * ```ts ignore
 * import { openLibrary } from "./library.ts";
 * const lib = openLibrary();
 * ```
 */
export function openLibrary(path?: string): CoreLibrary {
  let hints: string[] = [];
  if (path === undefined) {
    const l = defaultLocation();
    if (!l.path) {
      throw new Error(`cannot load the denovmm core: ${l.hints.join("; ")}`);
    }
    path = l.path;
    hints = l.hints;
  }
  const hit = cache.get(path);
  if (hit) return hit;
  if (host.runtime === "deno") checkFfiPermission(path);
  if (isAddonPath(path)) {
    const b = openNapiBackend(path, hints);
    cache.set(path, b);
    return b;
  }
  let symbols: CoreSymbols;
  try {
    symbols = openGrouped(path, SYMBOLS);
  } catch (e) {
    throw loadError(path, e as Error, hints);
  }
  const version = symbols.dv_abi_version();
  if (version !== ABI_VERSION) {
    // (the boot group stays mapped: a second open of the path fails the same way)
    throw new Error(
      `cannot load the denovmm core: ${path} speaks ABI ${version} and this ` +
        `module ABI ${ABI_VERSION}; rebuild the core from the same version ` +
        "(`deno task build:core`) or point DENOVMM_LIB at a matching build",
    );
  }
  const msgBuf = new Uint8Array(1024);
  const decoder = new TextDecoder();
  const lib: CoreBackend = {
    kind: "deno-ffi",
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
    recordBuffer(vm: number, vcpu: number): ArrayBuffer {
      const out = new BigUint64Array(1);
      lib.check(symbols.dv_vcpu_record(vm, vcpu, out), "exit record");
      return pointerBuffer(out[0], RECORD_LEN);
    },
    memoryBuffer(vm: number): ArrayBuffer {
      const out = new BigUint64Array(2);
      lib.check(symbols.dv_vm_memory(vm, out), "memory");
      return pointerBuffer(out[0], Number(out[1]));
    },
    detachBuffer(buffer: ArrayBuffer): void {
      buffer.transfer(0);
    },
  };
  cache.set(path, lib);
  return lib;
}
