/**
 * Node built-in modules fetched on first use. A static `import "node:…"`
 * makes Deno initialise its Node compatibility layer (~20-30 ms here) in
 * every process that imports the core, the CLI included, which never
 * needs it; `process.getBuiltinModule` is synchronous (Deno 2,
 * Node >= 20.16, Bun), so synchronous callers keep working.
 *
 * @module
 */

/** The built-ins the host layer and the napi backend use. */
export type BuiltinId =
  | "node:fs"
  | "node:module"
  | "node:path"
  | "node:stream"
  | "node:url"
  | "node:worker_threads";

/**
 * The Node built-in `id`, or an error naming what the runtime lacks.
 *
 * @example
 * ```ts
 * import { builtin } from "./builtin.ts";
 * const path = builtin<typeof import("node:path")>("node:path");
 * console.log(path.join("a", "b")); // a/b
 * ```
 */
export function builtin<T>(id: BuiltinId): T {
  const p = (globalThis as {
    process?: { getBuiltinModule?: (id: string) => unknown };
  }).process;
  const m = p?.getBuiltinModule?.(id);
  if (!m) {
    throw new Error(
      `denovmm needs ${id} through process.getBuiltinModule ` +
        "(Deno 2, Node >= 20.16 or Bun)",
    );
  }
  return m as T;
}
