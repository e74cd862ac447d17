/**
 * The package version (kept equal to `deno.json`'s by `version_test.ts`;
 * a constant so `--version` reads no file).
 *
 * @module
 */

/** Version of denovmm. */
export const VERSION = "0.1.0";
