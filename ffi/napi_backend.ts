/**
 * The napi backend: the core's napi-rs addon (`napi/`, a `.node` file)
 * loaded with `require`, which Node, Bun and Deno (Node-API support) all
 * provide. The addon exports the C ABI's `dv_*` functions under their own
 * names with the call shapes of the `Deno.dlopen` table (u64 as number or
 * BigInt, pointers as typed arrays), so `CoreVm` calls it unchanged; the
 * exit record and guest RAM come as external (zero-copy) ArrayBuffers.
 *
 * @module
 */

import { ABI_VERSION } from "./abi.ts";
import { type CoreBackend, CoreError } from "./backend.ts";
import { builtin } from "./builtin.ts";
import { findPlatformPackage } from "./platform_package.ts";
import type { CoreSymbols } from "./library.ts";

export { PLATFORM_PACKAGE } from "./platform_package.ts";

/**
 * The prebuilt addon of the npm platform package as Node would resolve it
 * from `fromDir` (default: the working directory), or undefined when it
 * is not installed there.
 *
 * @example
 * ```ts ignore
 * import { findPlatformAddon } from "./napi_backend.ts";
 * console.log(findPlatformAddon()); // .../node_modules/@denovmm/core-linux-x64-gnu/denovmm.linux-x64-gnu.node
 * ```
 */
export function findPlatformAddon(fromDir = "."): string | undefined {
  return findPlatformPackage(fromDir, "")?.addon;
}

/** The addon's exports beyond the C ABI's functions. */
interface AddonExtras {
  dv_last_error_string(): string;
  dv_vcpu_record_buffer(vm: number, vcpu: number): ArrayBuffer;
  dv_vm_memory_buffer(vm: number): ArrayBuffer;
  dv_buffer_detach(buffer: ArrayBuffer): void;
}

/**
 * Load the addon at `path` and check its ABI version; errors name the
 * cause (no file, not an addon, another ABI) and the fix (`hints`).
 *
 * @example
 * ```ts ignore
 * import { openNapiBackend } from "./napi_backend.ts";
 * const b = openNapiBackend("napi/denovmm.linux-x64-gnu.node");
 * console.log(b.kind); // "napi"
 * ```
 */
export function openNapiBackend(
  path: string,
  hints: string[] = [],
): CoreBackend {
  let mod: CoreSymbols & AddonExtras;
  try {
    // relative to the working directory, as dlopen reads a path
    const { createRequire } = builtin<typeof import("node:module")>(
      "node:module",
    );
    const { resolve } = builtin<typeof import("node:path")>("node:path");
    mod = createRequire(import.meta.url)(resolve(path));
  } catch (e) {
    const msg = (e as Error).message;
    const why = /cannot find|ENOENT|no such file/i.test(msg)
      ? `no napi addon at ${path}`
      : `${path} could not be loaded as the denovmm napi addon (${msg})`;
    throw new Error(
      `cannot load the denovmm core: ${why}; ` +
        [...hints, "build it with `cd napi && npm install && npm run build`"]
          .join("; "),
    );
  }
  if (typeof mod.dv_abi_version !== "function") {
    throw new Error(
      `cannot load the denovmm core: ${path} loads but is not the denovmm ` +
        "addon (no dv_abi_version); point DENOVMM_LIB at denovmm's .node",
    );
  }
  const version = mod.dv_abi_version();
  if (version !== ABI_VERSION) {
    throw new Error(
      `cannot load the denovmm core: ${path} speaks ABI ${version} and this ` +
        `module ABI ${ABI_VERSION}; rebuild the addon from the same version`,
    );
  }
  // the addon's own exports are not covered by the C ABI version: an
  // addon built before one was added fails here, not at first use
  const extras: (keyof AddonExtras)[] = [
    "dv_last_error_string",
    "dv_vcpu_record_buffer",
    "dv_vm_memory_buffer",
    "dv_buffer_detach",
  ];
  const lacking = extras.filter((n) => typeof mod[n] !== "function");
  if (lacking.length > 0) {
    throw new Error(
      `cannot load the denovmm core: ${path} lacks ${lacking.join(", ")} ` +
        "(an addon older than this module); rebuild it from the same version",
    );
  }
  return {
    kind: "napi",
    symbols: mod,
    path,
    check(rc: number, what: string): number {
      if (rc >= 0) return rc;
      const msg = mod.dv_last_error_string();
      throw new CoreError(rc, `${what}: ${msg || `error ${rc}`}`);
    },
    recordBuffer: (vm, vcpu) => mod.dv_vcpu_record_buffer(vm, vcpu),
    memoryBuffer: (vm) => mod.dv_vm_memory_buffer(vm),
    // napi_detach_arraybuffer: Node 20 has no ArrayBuffer.transfer, and its
    // transferring structuredClone copies an external buffer (all of guest
    // RAM) and leaves it attached
    detachBuffer: (buffer) => mod.dv_buffer_detach(buffer),
  };
}
