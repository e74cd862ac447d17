/**
 * Pins the public surface of the root module: a change to it must change
 * this list too, so it is always deliberate.
 */
import assert from "node:assert/strict";

const PINNED = [
  "Access",
  "AsyncRunOptions",
  "Bus",
  "BusStats",
  "Clock",
  "CoreError",
  "DeviceContext",
  "DeviceState",
  "ErrorCode",
  "GuestMemory",
  "HostQuirks",
  "InterruptLine",
  "IoapicPlugin",
  "IrqchipMode",
  "LevelSource",
  "LevelSourceStats",
  "LogLevel",
  "Logger",
  "Machine",
  "MachineOptions",
  "Mapping",
  "MsiInterrupt",
  "MsiMessage",
  "MultibootModuleSpec",
  "MultibootOptions",
  "PicPlugin",
  "Plugin",
  "PvTimerPlugin",
  "Range",
  "Region",
  "RemoteVm",
  "RestoreOptions",
  "RestoreVmOptions",
  "RunOptions",
  "RunReason",
  "RunResult",
  "SerialPlugin",
  "SnapshotOptions",
  "Space",
  "TickCounters",
  "TickSource",
  "TickTarget",
  "TimerDelivery",
  "TriggerMode",
  "VcpuCounters",
  "Vm",
  "VmOptions",
  "VmSnapshot",
  "VmStats",
  "WorkerOutcome",
  "WorkerSetup",
  "createMachine",
  "createVm",
  "interruptVm",
  "readLe",
  "restoreVm",
  "runAsync",
  "spawnVm",
  "stopVm",
  "writeLe",
];

/** Names in the `export { ... }` / `export type { ... }` lists of `src`. */
function exportedNames(src: string): string[] {
  const names: string[] = [];
  for (const m of src.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (let item of m[1].split(",")) {
      item = item.replace(/\/\/.*$/gm, "").trim();
      if (!item) continue;
      const parts = item.replace(/^type\s+/, "").split(/\s+as\s+/);
      names.push(parts[parts.length - 1].trim());
    }
  }
  return names.sort();
}

Deno.test("mod.ts: the pinned public export list, no export *, at most 60", () => {
  const src = Deno.readTextFileSync(new URL("./mod.ts", import.meta.url));
  assert.equal(/export\s+\*/.test(src), false, "no export * in mod.ts");
  const names = exportedNames(src);
  assert.equal(new Set(names).size, names.length, "duplicate export names");
  assert.deepEqual(names, [...PINNED].sort());
  assert.ok(names.length <= 60, `${names.length} exports`);
});

Deno.test("mod.ts: runtime values are a subset of the pinned list", async () => {
  const mod = await import("./mod.ts");
  for (const k of Object.keys(mod)) assert.ok(PINNED.includes(k), k);
  // internals stay internal
  for (
    const k of [
      "RamView",
      "Vm",
      "irqChipPlugin",
      "PluginContexts",
      "UART_LSR",
      "testdevPlugin",
    ]
  ) {
    assert.equal(k in mod, false, k);
  }
});

Deno.test("deno.json: subpath exports per family, the testing kit", () => {
  const cfg = JSON.parse(
    Deno.readTextFileSync(new URL("./deno.json", import.meta.url)),
  );
  assert.deepEqual(Object.keys(cfg.exports).sort(), [
    ".",
    "./cli",
    "./cpu",
    "./plugins",
    "./snapshot",
    "./testing",
  ]);
  assert.ok(cfg.publish.exclude.includes("**/*_test.ts"));
});
