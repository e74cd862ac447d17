// The npm packages as users get them: both tarballs packed, installed
// into a temporary project with no registry (`--offline`, empty cache),
// and hello booted through the installed `@denovmm/vmm/core`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { pack } from "../pack.mjs";
import {
  ADDON_PATH, attach, check, createVm, debugExit, missing, ROOT, runLoop,
  serialPort,
} from "./harness.mjs";

const why = missing();
if (why) console.log(`# SKIP napi tests: ${why}`);

/** A fresh project with `tarballs` installed offline (extra npm flags). */
function install(tarballs, flags = []) {
  const dir = mkdtempSync(join(tmpdir(), "denovmm-npm-"));
  writeFileSync(join(dir, "package.json"), '{"name":"t","private":true}');
  execFileSync("npm", [
    "install", "--offline", "--no-audit", "--no-fund",
    "--cache", join(dir, ".npm-cache"), ...flags, ...tarballs,
  ], { cwd: dir, stdio: ["ignore", "ignore", "inherit"] });
  return dir;
}

test("packed tarballs install offline and boot hello", { skip: why ?? false }, (t) => {
  const out = mkdtempSync(join(tmpdir(), "denovmm-tgz-"));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const p = pack(out);
  // the shipped addon is stripped: no bigger than the cargo build
  assert.ok(p.addonBytes <= statSync(ADDON_PATH).size, JSON.stringify(p));
  const dir = install([p.main, p.platform]);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const req = createRequire(join(dir, "index.js"));
  const resolved = req.resolve("@denovmm/core-linux-x64-gnu");
  assert.ok(resolved.startsWith(dir), resolved);
  const env = process.env.DENOVMM_NODE;
  delete process.env.DENOVMM_NODE; // the platform package, not an override
  let dv;
  try {
    dv = req("@denovmm/vmm/core");
  } finally {
    if (env !== undefined) process.env.DENOVMM_NODE = env;
  }
  const vm = createVm(dv, { elf: "hello", arg0: 3 });
  try {
    const serial = serialPort();
    const devices = [serial, debugExit()];
    attach(dv, vm, devices);
    assert.equal(runLoop(dv, vm, devices).result, 3);
    assert.equal(serial.text(), "hello from denovmm\n");
  } finally {
    check(dv, dv.dv_vm_destroy(vm), "destroy");
  }
});

const DENO = join(ROOT, "deno");

test("Deno boots hello on the addon of the installed tarballs (npm resolution)", {
  skip: why ?? (existsSync(DENO) ? false : "no ./deno"),
}, (t) => {
  const out = mkdtempSync(join(tmpdir(), "denovmm-tgz-"));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const p = pack(out);
  const dir = install([p.main, p.platform]);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const url = (f) => pathToFileURL(join(ROOT, f)).href;
  writeFileSync(join(dir, "boot.ts"), `
import { createMachine } from "${url("vmm/machine.ts")}";
import { openLibrary } from "${url("ffi/library.ts")}";
import { findPlatformAddon } from "${url("ffi/napi_backend.ts")}";
const lib = findPlatformAddon();
if (!lib) throw new Error("platform package not found");
let out = "";
const m = createMachine({ libraryPath: lib, serialOutput: (b) => out += String.fromCharCode(b) });
m.vm.load("${join(ROOT, "guests", "build", "hello.elf")}", [21]);
const r = m.vm.run({ timeoutMs: 20000 });
m.vm.close();
console.log("RESULT " + JSON.stringify({ r, out, lib, kind: openLibrary(lib).kind }));
`);
  const text = execFileSync(DENO, ["run", "-A", "--node-modules-dir=manual", "boot.ts"], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", DENOVMM_LIB: "" },
  });
  const line = text.split("\n").find((l) => l.startsWith("RESULT "));
  assert.ok(line, text);
  const got = JSON.parse(line.slice(7));
  assert.deepEqual(got.r, { reason: "exit", status: 43 });
  assert.equal(got.out, "hello from denovmm\n");
  assert.equal(got.kind, "napi");
  assert.ok(got.lib.startsWith(join(dir, "node_modules")), got.lib);
});

test("without the platform package the error names it and the fix", { skip: why ?? false }, (t) => {
  const out = mkdtempSync(join(tmpdir(), "denovmm-tgz-"));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const p = pack(out);
  const dir = install([p.main], ["--omit=optional"]);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = (() => {
    try {
      execFileSync("node", ["-e", 'require("@denovmm/vmm/core")'], {
        cwd: dir,
        env: { ...process.env, DENOVMM_NODE: "" },
        stdio: ["ignore", "pipe", "pipe"],
        encoding: "utf8",
      });
      return "";
    } catch (e) {
      return String(e.stderr);
    }
  })();
  assert.match(r, /platform package @denovmm\/core-linux-x64-gnu is not installed/);
  assert.match(r, /npm install @denovmm\/core-linux-x64-gnu/);
});
