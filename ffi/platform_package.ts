/**
 * The prebuilt core of the npm platform package
 * (`@denovmm/core-linux-x64-gnu`): a stripped Node-API addon for Node and
 * Bun, a stripped C library for Deno's FFI, and `index.js` naming both.
 *
 * Found, in order: beside this module as Node resolves packages (the npm
 * install of `@denovmm/vmm`), from the working directory (a project that
 * installed the platform package), and, for a module imported over the
 * network (JSR), through an `npm:` import, which Deno resolves from the
 * project's `node_modules` or the npm registry and caches.
 *
 * @module
 */

import type * as NodeModule from "node:module";
import type * as NodePath from "node:path";
import { builtin } from "./builtin.ts";
import { ABI_VERSION } from "./abi.ts";

/** The npm package holding this platform's prebuilt core. */
export const PLATFORM_PACKAGE = "@denovmm/core-linux-x64-gnu";
/** The version of it this module was built with. */
export const PLATFORM_VERSION = "0.1.0";

/** What the platform package's `index.js` exports. */
export interface PlatformPackage {
  /** The Node-API addon (`.node`). */
  addon: string;
  /** The C library for `Deno.dlopen` (`.so`). */
  library: string;
  /** The C ABI version both speak. */
  abi: number;
}

/**
 * The platform this process runs on as the platform packages name it, or
 * undefined when no prebuilt core exists for it (KVM is Linux-only).
 *
 * @example
 * ```ts
 * import { platformPackageName } from "./platform_package.ts";
 * console.log(platformPackageName("linux", "x64")); // @denovmm/core-linux-x64-gnu
 * ```
 */
export function platformPackageName(
  os: string,
  arch: string,
): string | undefined {
  return os === "linux" && (arch === "x64" || arch === "x86_64")
    ? PLATFORM_PACKAGE
    : undefined;
}

function check(p: unknown, from: string): PlatformPackage {
  const pkg = p as Partial<PlatformPackage>;
  if (typeof pkg?.addon !== "string" || typeof pkg.library !== "string") {
    throw new Error(`${from} is not denovmm's platform package`);
  }
  if (pkg.abi !== ABI_VERSION) {
    throw new Error(
      `cannot load the denovmm core: ${PLATFORM_PACKAGE} (${from}) speaks ` +
        `ABI ${pkg.abi} and this module ABI ${ABI_VERSION}; install ` +
        `${PLATFORM_PACKAGE}@${PLATFORM_VERSION}`,
    );
  }
  return pkg as PlatformPackage;
}

/**
 * The installed platform package as Node resolves it from this module's
 * own location (a `file:` URL) and then from `fromDir` (default: the
 * working directory); undefined when it is not installed there. Throws
 * when an installed one speaks another ABI.
 *
 * @example
 * ```ts ignore
 * import { findPlatformPackage } from "./platform_package.ts";
 * console.log(findPlatformPackage()?.library);
 * ```
 */
export function findPlatformPackage(
  fromDir = ".",
  moduleUrl: string = import.meta.url,
): PlatformPackage | undefined {
  const { createRequire } = builtin<typeof NodeModule>("node:module");
  const { resolve } = builtin<typeof NodePath>("node:path");
  const bases = [resolve(fromDir, "package.json")];
  if (moduleUrl.startsWith("file:")) bases.unshift(moduleUrl);
  for (const base of bases) {
    let req: NodeRequire;
    let file: string;
    try {
      req = createRequire(base);
      file = req.resolve(PLATFORM_PACKAGE);
    } catch {
      continue;
    }
    return check(req(file), file);
  }
  return undefined;
}

type NodeRequire = ReturnType<typeof NodeModule.createRequire>;

// Through a function: `deno publish` and `deno check` would otherwise
// try to resolve the npm package at build time (the repository has none).
const importer = new Function("s", "return import(s)") as (
  s: string,
) => Promise<{ default?: unknown }>;

/**
 * Import the platform package through an `npm:` specifier (Deno only: a
 * module served over the network has no `node_modules` beside it). Returns
 * the package, or the reason it could not be imported.
 *
 * @example
 * ```ts ignore
 * import { importPlatformPackage } from "./platform_package.ts";
 * const r = await importPlatformPackage();
 * console.log("pkg" in r ? r.pkg.library : r.error);
 * ```
 */
export async function importPlatformPackage(): Promise<
  { pkg: PlatformPackage } | { error: string }
> {
  const spec = `npm:${PLATFORM_PACKAGE}@${PLATFORM_VERSION}`;
  let mod: { default?: unknown };
  try {
    mod = await importer(spec);
  } catch (e) {
    return { error: `${spec} could not be imported (${(e as Error).message})` };
  }
  return { pkg: check(mod.default ?? mod, spec) };
}
