// Packs the two npm packages into a directory, offline:
//   node napi/pack.mjs OUT_DIR [ADDON.node]
// - @denovmm/core-linux-x64-gnu: the stripped addon (for Node/Bun), the
//   stripped C library (for Deno's FFI) and index.js naming both;
// - @denovmm/vmm: the TS layer (mod.ts and the subpath modules, the
//   worker entry) compiled by tsc from napi/node_modules into JS + .d.ts,
//   core.cjs (the raw dv_* addon) and the platform package as an optional
//   dependency.
// Prints {"platform": tgz, "main": tgz, ...} as JSON.
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");

/** The TS modules the npm package exposes (as in deno.json), plus the worker entry. */
export const ENTRIES = [
  "mod.ts",
  "plugins/mod.ts",
  "plugins/testing/mod.ts",
  "snapshot.ts",
  "cpu.ts",
  "vmm/vcpu_worker.ts",
];

// The only Deno types the emitted declarations name (the FFI table's type
// in ffi/library.ts), declared so a Node project type-checks without Deno's.
const DENO_FFI_DTS = `// Minimal declarations of the Deno FFI types named by library.d.ts.
declare namespace Deno {
  type ForeignLibraryInterface = Record<string, { parameters: readonly string[]; result: string }>;
  interface DynamicLibrary<S extends ForeignLibraryInterface> {
    symbols: { [K in keyof S]: (...args: any[]) => any };
    close(): void;
  }
}
`;

function strip(file) {
  try {
    execFileSync("strip", ["--strip-unneeded", file], { stdio: "ignore" });
    return true;
  } catch {
    return false; // no binutils: ship the cargo build as is
  }
}

/** Compile the TS layer into `out` with tsc (JS + .d.ts). */
export function compileTs(out) {
  const tsc = join(here, "node_modules", ".bin", "tsc");
  if (!existsSync(tsc)) {
    throw new Error(`no tsc at ${tsc}: cd napi && npm ci --offline`);
  }
  execFileSync(tsc, [
    "--rewriteRelativeImportExtensions", "--noCheck", "--declaration",
    "--module", "esnext", "--moduleResolution", "bundler",
    "--target", "es2022", "--lib", "es2022,dom", "--skipLibCheck",
    "--outDir", out, "--rootDir", root,
    ...ENTRIES.map((e) => join(root, e)),
  ], { stdio: ["ignore", "inherit", "inherit"] });
  writeFileSync(join(out, "ffi", "deno_ffi.d.ts"), DENO_FFI_DTS);
  const lib = join(out, "ffi", "library.d.ts");
  writeFileSync(
    lib,
    `/// <reference path="./deno_ffi.d.ts" />\n${readFileSync(lib, "utf8")}`,
  );
}

/** Pack both packages into `out`; returns the tarball paths and sizes. */
export function pack(
  out,
  addon = join(here, "denovmm.linux-x64-gnu.node"),
  library = join(root, "core", "target", "release", "libdenovmm_core.so"),
) {
  mkdirSync(out, { recursive: true });
  const stage = mkdtempSync(join(tmpdir(), "denovmm-pack-"));
  try {
    const plat = join(stage, "core-linux-x64-gnu");
    const main = join(stage, "vmm");
    cpSync(join(here, "npm", "core-linux-x64-gnu"), plat, { recursive: true });
    const node = join(plat, "denovmm.linux-x64-gnu.node");
    const so = join(plat, "libdenovmm_core.so");
    cpSync(addon, node);
    cpSync(library, so);
    const stripped = strip(node) && strip(so);
    compileTs(main);
    cpSync(join(here, "npm", "vmm"), main, { recursive: true });
    cpSync(join(here, "index.d.ts"), join(main, "core.d.ts"));
    const tgz = (dir) => {
      const json = execFileSync(
        "npm",
        ["pack", "--offline", "--json", "--pack-destination", out],
        { cwd: dir, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" },
      );
      return resolve(out, JSON.parse(json)[0].filename);
    };
    const platform = tgz(plat);
    const mainTgz = tgz(main);
    return {
      platform,
      main: mainTgz,
      addonBytes: statSync(node).size,
      libraryBytes: statSync(so).size,
      platformTgzBytes: statSync(platform).size,
      mainTgzBytes: statSync(mainTgz).size,
      stripped,
    };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) {
    console.error("usage: node napi/pack.mjs OUT_DIR [ADDON.node]");
    process.exit(2);
  }
  console.log(JSON.stringify(pack(resolve(out), process.argv[3])));
}
