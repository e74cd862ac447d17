// The TS layer itself on Node 20: vmm/machine.ts and everything it imports
// (bus, plugins, vm.ts, run loop, ffi/ with the napi backend) compiled by
// tsc from napi/node_modules, booting hello through the addon. No shim:
// host services come from ffi/host.ts (node:fs on Node), and there is no
// `Deno` global at all.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ADDON_PATH, missing, ROOT } from "./harness.mjs";

const TSC = join(ROOT, "napi", "node_modules", ".bin", "tsc");
const why = missing() ??
  (existsSync(TSC) ? null : `no tsc at ${TSC} (cd napi && npm install)`);
if (why) console.log(`# SKIP napi TS-layer test: ${why}`);

const BOOT = `
if (typeof globalThis.Deno !== "undefined") throw new Error("a Deno global");
import { createMachine } from "./vmm/machine.js";
let out = "";
const m = createMachine({
  libraryPath: process.env.ADDON,
  irqchip: process.env.IRQCHIP,
  vcpus: Number(process.env.VCPUS),
  serialOutput: (b) => out += String.fromCharCode(b),
});
m.vm.load(process.env.ELF, [21]);
const r = m.vm.run({ timeoutMs: 20000 });
// close() detaches the RAM views in place (napi_detach_arraybuffer: Node 20
// has no ArrayBuffer.transfer and a structuredClone would copy instead)
const sub = m.vm.memory.view(0x100000, 16);
m.vm.close();
console.log("RESULT " + JSON.stringify({ r, out, detached: sub.length }));
`;

// With 2 vCPUs every vCPU runs on its own core thread and the run loop
// waits through dv_vm_wait_exits (the AP waits for SIPI; vCPU 0's exits
// come through the handoff).
test("vmm/machine.ts compiled by tsc boots hello on Node (napi backend), 1 and 2 vCPUs", { skip: why ?? false }, (t) => {
  const out = mkdtempSync(join(tmpdir(), "denovmm-tsc-"));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  execFileSync(TSC, [
    "--rewriteRelativeImportExtensions", "--noCheck", "--module", "esnext",
    "--moduleResolution", "bundler", "--target", "es2022",
    "--outDir", out, "--rootDir", ROOT, join(ROOT, "vmm", "machine.ts"),
  ], { stdio: ["ignore", "inherit", "inherit"] });
  writeFileSync(join(out, "package.json"), '{"type":"module"}');
  writeFileSync(join(out, "boot.mjs"), BOOT);
  for (const [vcpus, irqchip] of [[1, "kernel"], [1, "split"], [2, "kernel"], [2, "split"]]) {
    const text = execFileSync("node", ["boot.mjs"], {
      cwd: out,
      encoding: "utf8",
      env: {
        ...process.env,
        ADDON: ADDON_PATH,
        IRQCHIP: irqchip,
        VCPUS: String(vcpus),
        ELF: join(ROOT, "guests", "build", "hello.elf"),
      },
    });
    const line = text.split("\n").find((l) => l.startsWith("RESULT "));
    assert.ok(line, text);
    const { r, out: serial, detached } = JSON.parse(line.slice(7));
    assert.deepEqual(r, { reason: "exit", status: 43 }, `${irqchip}, ${vcpus} vCPUs`);
    assert.equal(detached, 0, "a RAM view is detached after close()");
    assert.equal(serial, "hello from denovmm\n");
  }
});
