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
