// The JSR module as a user gets it: the file set of `deno publish
// --dry-run` served over HTTP (node:http) and imported remotely by a Deno
// script that has no DENOVMM_LIB and built nothing. The core comes from
// the npm platform package through `npm:`: fetched from a (local) npm
// registry into Deno's cache with its sha512 integrity checked, or from a
// project's node_modules. Plus the exact message of every load failure.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { pack } from "../pack.mjs";
import { missing, ROOT } from "./harness.mjs";

const DENO = join(ROOT, "deno");
const TSC = join(ROOT, "napi", "node_modules", ".bin", "tsc");
const why = missing() ?? (existsSync(DENO) ? null : "no ./deno") ??
  (existsSync(TSC) ? null : `no tsc at ${TSC} (cd napi && npm ci --offline)`);
if (why) console.log(`# SKIP JSR tests: ${why}`);
const skip = why ?? false;
const PKG = "@denovmm/core-linux-x64-gnu";

const tmp = [];
const servers = [];
let moduleBase; // http://127.0.0.1:PORT/ serving the publish file set
let registry; // http://127.0.0.1:PORT/ serving the platform package
const registryHits = [];
let platformTgz;

function listen(handler) {
  const s = http.createServer(handler);
  servers.push(s);
  return new Promise((res) => s.listen(0, "127.0.0.1", () => res(`http://127.0.0.1:${s.address().port}/`)));
}

before(async () => {
  if (why) return;
  const out = mkdtempSync(join(tmpdir(), "denovmm-jsr-"));
  tmp.push(out);
  platformTgz = pack(out).platform;
  // the publish file set, as `deno publish` would upload it
  const pub = spawnSync(DENO, ["publish", "--dry-run", "--allow-dirty"], {
    cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" },
  });
  const text = pub.stdout + pub.stderr; // the file list goes to stderr
  const files = [...text.matchAll(/^\s+(file:\/\/\S+)/gm)].map((m) => fileURLToPath(m[1]));
  assert.ok(files.some((f) => f.endsWith("/ffi/library.ts")), text);
  const site = join(out, "site");
  for (const f of files) {
    const to = join(site, f.slice(ROOT.length));
    mkdirSync(dirname(to), { recursive: true });
    cpSync(f, to);
  }
  moduleBase = await listen((q, r) => {
    const p = join(site, decodeURIComponent(new URL(q.url, "http://x").pathname));
    if (!p.startsWith(site) || !existsSync(p)) return r.writeHead(404).end();
    r.writeHead(200, { "content-type": "application/typescript" }).end(readFileSync(p));
  });
  // a one-package npm registry: the packument and the tarball
  const tgz = readFileSync(platformTgz);
  const dist = {
    integrity: "sha512-" + createHash("sha512").update(tgz).digest("base64"),
    shasum: createHash("sha1").update(tgz).digest("hex"),
  };
  registry = await listen((q, r) => {
    registryHits.push(decodeURIComponent(q.url));
    if (decodeURIComponent(q.url) === `/${PKG}`) {
      const v = { name: PKG, version: "0.1.0", main: "index.js", os: ["linux"], cpu: ["x64"],
        dist: { ...dist, tarball: `${registry}pkg.tgz` } };
      r.writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ name: PKG, "dist-tags": { latest: "0.1.0" }, versions: { "0.1.0": v } }));
    } else if (q.url === "/pkg.tgz") r.writeHead(200).end(tgz);
    else r.writeHead(404).end("{}");
  });
});
after(() => {
  servers.forEach((s) => s.close());
  tmp.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

const BOOT = () => `
import { createMachine } from "${moduleBase}mod.ts";
let out = "";
const m = createMachine({ serialOutput: (b) => out += String.fromCharCode(b) });
m.vm.load(${JSON.stringify(join(ROOT, "guests", "build", "hello.elf"))}, [21]);
const r = m.vm.run({ timeoutMs: 20000 });
m.vm.close();
console.log("RESULT " + JSON.stringify({ r, out }));
`;

/**
 * A project dir (with `setup(dir)` applied) running boot.ts under `flags`;
 * asynchronous, as the servers answer from this process's event loop.
 */
async function run(flags, { setup = () => {}, env = {}, manual = true } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "denovmm-jsr-user-"));
  tmp.push(dir);
  // a package.json makes Deno use node_modules (manual mode)
  if (manual) writeFileSync(join(dir, "package.json"), '{"name":"user","private":true}');
  setup(dir);
  writeFileSync(join(dir, "boot.ts"), BOOT());
  const e = { ...process.env, NO_COLOR: "1", DENO_DIR: join(dir, ".deno"), ...env };
  delete e.DENOVMM_LIB;
  const r = await new Promise((res) => execFile(DENO, [
    "run", "--no-prompt", `--allow-import=${new URL(moduleBase).host}`,
    ...(manual ? ["--node-modules-dir=manual"] : []), ...flags, "boot.ts",
  ], { cwd: dir, env: e, encoding: "utf8", timeout: 120_000 }, (error, stdout, stderr) =>
    res({ stdout, stderr, status: error ? error.code ?? 1 : 0 })));
  const line = r.stdout.split("\n").find((l) => l.startsWith("RESULT "));
  return { got: line ? JSON.parse(line.slice(7)) : undefined, err: r.stderr, code: r.status };
}

const PERMS = ["--allow-ffi", "--allow-read", "--allow-env=DENOVMM_LIB"];
const HELLO = { r: { reason: "exit", status: 43 }, out: "hello from denovmm\n" };
const installPlatform = (dir) =>
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund",
    "--cache", join(dir, ".npm-cache"), platformTgz], { cwd: dir, stdio: "ignore" });

test("JSR: the remote module fetches the platform package from the npm registry (no DENOVMM_LIB, no build)", { skip }, async () => {
  registryHits.length = 0;
  const { got, err } = await run(PERMS, { manual: false, env: { NPM_CONFIG_REGISTRY: registry } });
  assert.deepEqual(got, HELLO, err);
  assert.deepEqual(registryHits, [`/${PKG}`, "/pkg.tgz"]);
});

test("JSR: the remote module uses the platform package of the project's node_modules", { skip }, async () => {
  const { got, err } = await run(PERMS, { setup: installPlatform });
  assert.deepEqual(got, HELLO, err);
});

test("JSR: load failures name the cause and the fix", { skip }, async (t) => {
  await t.test("no platform package anywhere", async () => {
    const { got, err } = await run(PERMS);
    assert.equal(got, undefined);
    assert.match(err, /cannot load the denovmm core: the core library is not part of the published module: the prebuilt one comes from the npm package @denovmm\/core-linux-x64-gnu@0\.1\.0 \(imported as npm:, or npm install it\), or set DENOVMM_LIB=\/path\/to\/libdenovmm_core\.so; npm:@denovmm\/core-linux-x64-gnu@0\.1\.0 could not be imported \(/);
  });
  await t.test("no --allow-env: DENOVMM_LIB is named as unreadable", async () => {
    const { err } = await run(["--allow-ffi", "--allow-read"], { env: { DENOVMM_LIB: "/x.so" } });
    assert.match(err, /DENOVMM_LIB could not be read: add --allow-env=DENOVMM_LIB to use it/);
  });
  await t.test("no --allow-ffi", async () => {
    const { err } = await run(["--allow-read", "--allow-env=DENOVMM_LIB"], { setup: installPlatform });
    assert.match(err, /denovmm needs --allow-ffi to load its core \(\S+\/node_modules\/@denovmm\/core-linux-x64-gnu\/libdenovmm_core\.so\); run with --allow-ffi --allow-read/);
  });
  await t.test("a platform package of another ABI", async () => {
    const { err } = await run(PERMS, {
      setup: (dir) => {
        const p = join(dir, "node_modules", "@denovmm", "core-linux-x64-gnu");
        mkdirSync(p, { recursive: true });
        writeFileSync(join(p, "package.json"), JSON.stringify({ name: PKG, version: "0.1.0", main: "index.js" }));
        writeFileSync(join(p, "index.js"), 'module.exports = { addon: "/a.node", library: "/a.so", abi: 99 };');
      },
    });
    assert.match(err, /cannot load the denovmm core: @denovmm\/core-linux-x64-gnu \(npm:@denovmm\/core-linux-x64-gnu@0\.1\.0\) speaks ABI 99 and this module ABI \d+; install @denovmm\/core-linux-x64-gnu@0\.1\.0/);
  });
});
