// Packs the npm packages of the addon into a directory:
//   node napi/pack.mjs OUT_DIR [ADDON.node]
// stages napi/npm/core-linux-x64-gnu with the stripped addon and
// napi/npm/core with the generated index.d.ts, runs `npm pack` on each
// (offline), and prints {"platform": tgz, "main": tgz} as JSON.
import { cpSync, mkdirSync, mkdtempSync, statSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";

const here = dirname(fileURLToPath(import.meta.url));

/** Pack both packages into `out`; returns the tarball paths and sizes. */
export function pack(out, addon = join(here, "denovmm.linux-x64-gnu.node")) {
  mkdirSync(out, { recursive: true });
  const stage = mkdtempSync(join(tmpdir(), "denovmm-pack-"));
  const plat = join(stage, "core-linux-x64-gnu");
  const main = join(stage, "core");
  cpSync(join(here, "npm", "core-linux-x64-gnu"), plat, { recursive: true });
  cpSync(join(here, "npm", "core"), main, { recursive: true });
  const node = join(plat, "denovmm.linux-x64-gnu.node");
  cpSync(addon, node);
  let stripped = false;
  try {
    execFileSync("strip", ["--strip-unneeded", node], { stdio: "ignore" });
    stripped = true;
  } catch {
    // no binutils: ship the cargo-stripped (debuginfo) build
  }
  cpSync(join(here, "index.d.ts"), join(main, "index.d.ts"));
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
    platformTgzBytes: statSync(platform).size,
    stripped,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) {
    console.error("usage: node napi/pack.mjs OUT_DIR [ADDON.node]");
    process.exit(2);
  }
  console.log(JSON.stringify(pack(resolve(out), process.argv[3])));
}
