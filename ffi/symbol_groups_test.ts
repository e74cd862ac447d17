import assert from "node:assert/strict";
import { SYMBOLS } from "./library.ts";
import { BOOT_SYMBOLS, symbolGroup } from "./symbol_groups.ts";

Deno.test("every boot symbol is in the dlopen table, and each symbol has one group", () => {
  for (const n of BOOT_SYMBOLS) assert.ok(n in SYMBOLS, n);
  const groups = new Map<string, number>();
  for (const n of Object.keys(SYMBOLS)) {
    const g = symbolGroup(n);
    groups.set(g, (groups.get(g) ?? 0) + 1);
  }
  assert.equal(groups.get("boot"), BOOT_SYMBOLS.size);
  assert.equal(symbolGroup("dv_vm_state_save"), "snapshot");
  assert.equal(symbolGroup("dv_vm_start_aps"), "smp");
  assert.equal(symbolGroup("dv_level_create"), "irq");
  assert.equal(symbolGroup("dv_vcpu_inject_extint"), "split");
  assert.equal(symbolGroup("dv_timer_stats"), "timer");
  assert.equal(symbolGroup("dv_vcpu_run"), "boot");
  // a boot opens less than half of the table
  assert.ok(BOOT_SYMBOLS.size * 2 < Object.keys(SYMBOLS).length);
});

Deno.test("grouped symbols: lazy groups open on first read and call the core", async () => {
  const { defaultLibraryPath } = await import("./library.ts");
  const { openGrouped } = await import("./symbol_groups.ts");
  let path: string;
  try {
    path = defaultLibraryPath();
    Deno.statSync(path);
  } catch {
    return; // no core built: library_load_test covers the error
  }
  const s = openGrouped(path, SYMBOLS);
  assert.ok(Object.isFrozen(s));
  assert.equal(typeof s.dv_abi_version(), "number");
  // dv_vm_count is in a lazy group; reading it twice gives the same function
  assert.equal(s.dv_vm_count, s.dv_vm_count);
  assert.equal(typeof s.dv_vm_count(), "number");
  assert.deepEqual(Object.keys(s).sort(), Object.keys(SYMBOLS).sort());
});
