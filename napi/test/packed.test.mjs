// The npm packages as users get them: @denovmm/vmm and
// @denovmm/core-linux-x64-gnu packed (napi/pack.mjs), installed into a
// temporary project with no registry (`npm install --offline`, empty
// cache), and used by plain scripts importing "@denovmm/vmm" — no
// DENOVMM_LIB, no checkout on the import path. Each scenario runs in its
// own `node` process and prints one RESULT line.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pack } from "../pack.mjs";
import { missing, ROOT } from "./harness.mjs";

const TSC = join(ROOT, "napi", "node_modules", ".bin", "tsc");
const why = missing() ??
  (existsSync(TSC) ? null : `no tsc at ${TSC} (cd napi && npm ci --offline)`);
if (why) console.log(`# SKIP packed-package tests: ${why}`);
const skip = why ?? false;

let dir; // the temporary project
let tarballs;
const cleanup = [];

before(() => {
  if (why) return;
  const out = mkdtempSync(join(tmpdir(), "denovmm-tgz-"));
  cleanup.push(out);
  tarballs = pack(out);
  dir = mkdtempSync(join(tmpdir(), "denovmm-npm-"));
  cleanup.push(dir);
  writeFileSync(join(dir, "package.json"), '{"name":"t","private":true,"type":"module"}');
  execFileSync("npm", [
    "install", "--offline", "--no-audit", "--no-fund",
    "--cache", join(dir, ".npm-cache"), tarballs.main, tarballs.platform,
  ], { cwd: dir, stdio: ["ignore", "ignore", "inherit"] });
});
after(() => cleanup.forEach((d) => rmSync(d, { recursive: true, force: true })));

const guest = (name) => join(ROOT, "guests", "build", `${name}.elf`);

// Bun, from the npm package @oven/bun-linux-x64 (a dev dependency of
// napi/): the same scenarios run under `node` and `bun`.
const BUN = join(ROOT, "napi", "node_modules", "@oven", "bun-linux-x64", "bin", "bun");
const RUNTIMES = [
  { label: "", cmd: ["node"], skip: false },
  {
    label: " [bun]",
    cmd: [BUN],
    skip: existsSync(BUN) ? false : `no Bun at ${BUN} (cd napi && npm ci)`,
  },
];
if (!why && RUNTIMES[1].skip) console.log(`# SKIP Bun legs: ${RUNTIMES[1].skip}`);
let runtime = RUNTIMES[0].cmd; // the runtime of the scenario being run

/** Register `body` (synchronous) once per runtime. */
function onEachRuntime(name, body) {
  for (const rt of RUNTIMES) {
    test(`${name}${rt.label}`, { skip: skip || rt.skip }, () => {
      runtime = rt.cmd;
      try {
        body();
      } finally {
        runtime = RUNTIMES[0].cmd;
      }
    });
  }
}

/** Run `source` as a module of the project; returns its RESULT value. */
function scenario(name, source, cmd = runtime) {
  const file = join(dir, `${name}${cmd[0] === BUN ? "_bun" : ""}.mjs`);
  writeFileSync(file, source);
  const env = { ...process.env, NO_COLOR: "1" };
  delete env.DENOVMM_LIB;
  delete env.DENOVMM_NODE;
  const text = execFileSync(cmd[0], [...cmd.slice(1), file], {
    cwd: dir, encoding: "utf8", env, stdio: ["ignore", "pipe", "pipe"],
  });
  const line = text.split("\n").find((l) => l.startsWith("RESULT "));
  assert.ok(line, text);
  return JSON.parse(line.slice(7));
}

const BOOT_HELLO = `
import { createMachine } from "@denovmm/vmm";
let out = "";
const m = createMachine({ serialOutput: (b) => out += String.fromCharCode(b) });
m.vm.load(${JSON.stringify(guest("hello"))}, [21]);
const r = m.vm.run({ timeoutMs: 20000 });
m.vm.close();
const deno = typeof Deno !== "undefined", bun = typeof Bun !== "undefined";
console.log("RESULT " + JSON.stringify({ r, out, deno, bun }));
`;

onEachRuntime("packed: hello boots from the installed packages (no DENOVMM_LIB)", () => {
  const got = scenario("hello", BOOT_HELLO);
  assert.deepEqual(got, {
    r: { reason: "exit", status: 43 },
    out: "hello from denovmm\n",
    deno: false,
    bun: runtime[0] === BUN, // the runtime asked for really ran it
  });
  // the package carries JS and declarations, never the TS sources
  const pkg = join(dir, "node_modules", "@denovmm", "vmm");
  assert.ok(existsSync(join(pkg, "mod.d.ts")) && existsSync(join(pkg, "vmm", "vcpu_worker.js")));
  assert.ok(!existsSync(join(pkg, "mod.ts")));
  assert.match(readFileSync(join(pkg, "plugins", "mod.d.ts"), "utf8"), /virtio/);
});

test("packed: the declarations type-check a strict TS consumer (no skipLibCheck, no @types/node)", { skip }, () => {
  writeFileSync(join(dir, "consumer.ts"), `
import { createMachine, spawnVm, type RunResult } from "@denovmm/vmm";
import { pciBusPlugin, virtioBlk } from "@denovmm/vmm/plugins";
const pci = pciBusPlugin({ devices: [{ device: 2, function: virtioBlk({ path: "d.img" }) }] });
const m = createMachine({ serialOutput: (b: number) => void b, plugins: [pci] });
const r: RunResult = m.vm.run({ timeoutMs: 1 });
console.log(r.reason, typeof spawnVm);
`);
  // lib esnext: the API is Disposable (\`using m = createMachine()\`)
  execFileSync(TSC, [
    "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext",
    "--target", "es2022", "--lib", "esnext,dom", "consumer.ts",
  ], { cwd: dir, stdio: ["ignore", "inherit", "inherit"] });
});

onEachRuntime("packed: TS plugins raise interrupts (testdev lines -> TS PIC -> ExtINT)", () => {
  const got = scenario("pic", `
import { createMachine } from "@denovmm/vmm";
let out = "";
const m = createMachine({ irqchip: "split", serialOutput: (b) => out += String.fromCharCode(b) });
m.vm.load(${JSON.stringify(guest("pic"))});
const r = m.vm.run({ timeoutMs: 20000 });
const extint = m.vm.stats.extintInjected;
m.vm.close();
console.log("RESULT " + JSON.stringify({ r, out, extint }));
`);
  const lines = got.out.split("\n");
  assert.deepEqual(lines.filter((l) => l.startsWith("FAIL ")), [], got.out);
  for (const c of ["edge_irq3_delivered_once", "slave_irq10_delivered_once", "level_irq5_delivered_once"]) {
    assert.ok(lines.includes(`PASS ${c}`), `${c}\n${got.out}`);
  }
  assert.deepEqual(got.r, { reason: "exit", status: 1 });
  assert.ok(got.extint >= 8, String(got.extint));
});

onEachRuntime("packed: the PV timer ticks (GSI and MSI delivery)", () => {
  for (const [delivery, pin] of [["gsi", 0], ["msi", 0xffffffff]]) {
    const got = scenario(`timer_${delivery}`, `
import { createMachine } from "@denovmm/vmm";
let out = "";
const m = createMachine({ timerDelivery: "${delivery}", serialOutput: (b) => out += String.fromCharCode(b) });
m.vm.load(${JSON.stringify(guest("timer"))}, [1000, 50, 0x20, ${pin}]);
const r = m.vm.run({ timeoutMs: 20000 });
const st = m.pvTimer.stats;
const armed = m.vm.armedTimers();
m.vm.close();
console.log("RESULT " + JSON.stringify({ r, out, halts: st.halts, armed }));
`);
    assert.deepEqual(got.r, { reason: "halt" }, got.out);
    assert.match(got.out, /done count=50\b/, delivery);
    assert.equal(got.halts, 1);
    assert.equal(got.armed, 0);
  }
});

onEachRuntime("packed: virtio-blk on a host file (PCI, MSI-X, resize)", () => {
  const disk = join(dir, "disk.img");
  writeFileSync(disk, new Uint8Array(64 * 1024));
  const got = scenario("virtio", `
import { createMachine } from "@denovmm/vmm";
import { pciBusPlugin, virtioBlk, virtioRng } from "@denovmm/vmm/plugins";
let out = "";
const blk = virtioBlk({ path: ${JSON.stringify(disk)} });
const pci = pciBusPlugin({ devices: [{ device: 1, function: virtioRng() }, { device: 2, function: blk }] });
let resizes = 0;
const hook = { name: "resize-hook", setup: () => [{
  range: { space: "pio", base: 0x2f0, length: 1 },
  read: (_a, d) => d.fill(0),
  write: (_a, d) => { if (d[0] === 1) { resizes++; blk.device.resize(128 * 1024); } },
}] };
const m = createMachine({ plugins: [pci, hook], serialOutput: (b) => out += String.fromCharCode(b) });
m.vm.load(${JSON.stringify(guest("virtio"))}, [256]);
const r = m.vm.run({ timeoutMs: 30000 });
m.vm.close();
console.log("RESULT " + JSON.stringify({ r, out, resizes }));
`);
  const lines = got.out.split("\n");
  assert.deepEqual(lines.filter((l) => l.startsWith("FAIL ")), [], got.out);
  assert.ok(lines.filter((l) => l.startsWith("PASS ")).length >= 60, got.out);
  assert.ok(lines.includes("PASS after_resize_sector1_intact"), got.out);
  assert.deepEqual(got.r, { reason: "exit", status: 1 });
  assert.equal(got.resizes, 1);
  const bytes = readFileSync(disk);
  assert.equal(bytes.length, 128 * 1024, "resized through the host file");
  for (let i = 0; i < 512; i++) assert.equal(bytes[512 + i], (i * 7 + 0x5a) & 0xff);
});

onEachRuntime("packed: spawnVm runs the vCPU in a worker_threads worker; stopped from the main thread", () => {
  writeFileSync(join(dir, "spin_setup.mjs"), `
import { createMachine } from "@denovmm/vmm";
export default (args) => {
  const m = createMachine({ serialOutput: () => {} });
  m.vm.load(args.path);
  return { vm: m.vm, run: { timeoutMs: 60000 } };
};
`);
  const got = scenario("stop", `
import { spawnVm } from "@denovmm/vmm";
import { pathToFileURL } from "node:url";
import { threadId } from "node:worker_threads";
const remote = spawnVm(pathToFileURL(${JSON.stringify(join(dir, "spin_setup.mjs"))}), { path: ${JSON.stringify(guest("spin"))} });
const handle = await remote.ready;
await new Promise((r) => setTimeout(r, 200)); // the guest is spinning in the worker
await remote.stop();
const outcome = await remote.done;
await remote.terminate();
console.log("RESULT " + JSON.stringify({ handle, outcome, mainThread: threadId }));
`);
  assert.equal(typeof got.handle, "number");
  assert.deepEqual(got.outcome.result, { reason: "stopped" });
  assert.equal(got.mainThread, 0);
});

const DENO = join(ROOT, "deno");

test("packed: a Deno script boots hello from the same tarballs via npm: (node_modules)", {
  skip: why ?? (existsSync(DENO) ? false : "no ./deno"),
}, () => {
  const src = BOOT_HELLO.replace('"@denovmm/vmm"', '"npm:@denovmm/vmm@0.1.0"');
  const got = scenario("deno_hello", src, [
    DENO, "run", "--no-prompt", "--node-modules-dir=manual",
    "--allow-ffi", "--allow-read", "--allow-env=DENOVMM_LIB",
  ]);
  assert.deepEqual(got, {
    r: { reason: "exit", status: 43 },
    out: "hello from denovmm\n",
    deno: true,
    bun: false,
  });
});
