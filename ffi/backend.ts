/**
 * The backend interface: how `CoreVm` reaches the Rust core, whatever the
 * runtime. Two backends implement it with the same `dv_*` functions of
 * the C ABI (same names, arguments, results and error messages):
 * - `deno-ffi` (`library.ts`): `Deno.dlopen` of `libdenovmm_core.so`;
 * - `napi` (`napi_backend.ts`): the napi-rs addon (`napi/`, a `.node`
 *   file) through `require`, on Node, Bun, or Deno's Node-API support.
 *
 * The only runtime-specific operations besides the calls are the two that
 * turn core memory into zero-copy `ArrayBuffer`s (the exit record, guest
 * RAM). Nothing outside `ffi/` knows which backend is in use.
 *
 * @module
 */

import type { CoreSymbols } from "./library.ts";

/** Which implementation of the backend interface. */
export type BackendKind = "deno-ffi" | "napi";

/**
 * An opened core: the C ABI's functions plus zero-copy views of the two
 * pieces of core memory that outlive a call.
 *
 * @example
 * ```ts ignore
 * import { openLibrary } from "./library.ts";
 * const b = openLibrary(); // a CoreBackend
 * console.log(b.kind, b.symbols.dv_abi_version());
 * ```
 */
export interface CoreBackend {
  /** Which implementation this is. */
  readonly kind: BackendKind;
  /** The `dv_*` functions, called exactly as the C ABI documents. */
  readonly symbols: CoreSymbols;
  /** Path the native code was loaded from. */
  readonly path: string;
  /** Throw a `CoreError` for a negative `rc`; return `rc` otherwise. */
  check(rc: number, what: string): number;
  /**
   * vCPU `vcpu`'s exit record of VM `vm` as an `ArrayBuffer` over the
   * core's memory (`RECORD_LEN` bytes), valid until the VM is destroyed.
   */
  recordBuffer(vm: number, vcpu: number): ArrayBuffer;
  /** Guest RAM of VM `vm` over the core's mapping, valid until destroy. */
  memoryBuffer(vm: number): ArrayBuffer;
  /**
   * Detach a buffer of {@link recordBuffer} / {@link memoryBuffer} in
   * place (its views throw or read as empty from then on), without copying
   * or freeing its memory; called before the VM is destroyed.
   */
  detachBuffer(buffer: ArrayBuffer): void;
}

/**
 * An error reported by the Rust core.
 *
 * @example
 * ```ts
 * import { CoreError } from "./backend.ts";
 * const e = new CoreError(-5, "/dev/kvm is missing");
 * console.log(e.code, e.message);
 * ```
 */
export class CoreError extends Error {
  /** Negative core error code (`DvCode`). */
  readonly code: number;
  /** Create an error from a code and message. */
  constructor(code: number, message: string) {
    super(message);
    this.name = "CoreError";
    this.code = code;
  }
}

/** True when `path` names a Node-API addon rather than a C library. */
export function isAddonPath(path: string): boolean {
  return path.endsWith(".node");
}
