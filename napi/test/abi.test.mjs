// The addon exports every function of the C ABI (the generated header).
// Skips (loudly) without the addon.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { addon, missing, ROOT } from "./harness.mjs";

const why = missing();
if (why) console.log(`# SKIP napi tests: ${why}`);

test("the addon exports every dv_* function of core/include/denovmm.h", { skip: why ?? false }, () => {
  const dv = addon();
  const header = readFileSync(join(ROOT, "core", "include", "denovmm.h"), "utf8");
  const names = [...header.matchAll(/^int32_t (dv_\w+)\(/gm)].map((m) => m[1]);
  assert.ok(names.length > 50, `${names.length} functions in the header`);
  const missingFns = names.filter((n) => typeof dv[n] !== "function");
  assert.deepEqual(missingFns, []);
});

test("index.d.ts declares every dv_* function the addon exports", { skip: why ?? false }, () => {
  const dv = addon();
  const dts = readFileSync(join(ROOT, "napi", "index.d.ts"), "utf8");
  const declared = new Set([...dts.matchAll(/^export declare function (dv_\w+)\(/gm)].map((m) => m[1]));
  const undeclared = Object.keys(dv).filter((n) => n.startsWith("dv_") && !declared.has(n));
  assert.deepEqual(undeclared, []);
});

// napi/src/raw.rs: the u32-only functions are raw Node-API callbacks; they
// keep the napi-rs contract (bad arguments throw, handles are checked).
test("raw callbacks: a missing or non-number argument throws a TypeError", { skip: why ?? false }, () => {
  const dv = addon();
  assert.throws(() => dv.dv_vcpu_run(1), { name: "TypeError", message: /dv_vcpu_run\(vm, vcpu\)/ });
  assert.throws(() => dv.dv_irq_line(1, "2", 0), TypeError);
  assert.throws(() => dv.dv_vm_stop({}), TypeError);
  assert.throws(() => dv.dv_irq_signal_msi(1, 2, 3n, 4), TypeError);
});

test("raw callbacks: a closed handle is the core's error code", { skip: why ?? false }, () => {
  const dv = addon();
  const rc = dv.dv_vcpu_run(0xfffffff0, 0);
  assert.ok(Number.isInteger(rc) && rc < 0, `rc ${rc}`);
  assert.match(dv.dv_last_error_string(), /handle/);
  assert.ok(dv.dv_vm_destroy(0xfffffff0) < 0);
});
