import assert from "node:assert/strict";
import { FakeContext, readValue, writeValue } from "../testing/fake_context.ts";
import { parseAcpi } from "./parse.ts";
import { acpiPlugin } from "./plugin.ts";
import type { AcpiConfig } from "./tables.ts";

const config: AcpiConfig = {
  base: 0xf0000,
  cpus: 1,
  ioapic: { id: 0, address: 0xfec00000, gsiBase: 0 },
  lapicAddress: 0xfee00000,
  sciIrq: 9,
  pmBase: 0xb000,
  hpet: { address: 0xfed00000, blockId: 0x8086a201 },
  overrides: [],
};

Deno.test("acpi plugin: tables in guest RAM at setup and after reset", () => {
  const ctx = new FakeContext();
  const p = acpiPlugin(config);
  p.setup(ctx);
  const read = (a: number, n: number) => ctx.memory.view(a, n);
  assert.equal(parseAcpi(read).fadt.pmTmr, 0xb008);
  ctx.memory.view(0xf0000, 0x1000).fill(0); // what a RAM-zeroing reset does
  assert.throws(() => parseAcpi(read), /no RSDP/);
  p.reset!();
  assert.equal(parseAcpi(read).rsdp, 0xf0000);
});

Deno.test("acpi plugin: PM registers through the port range", () => {
  const ctx = new FakeContext();
  const p = acpiPlugin(config);
  const [pm] = p.setup(ctx);
  assert.deepEqual(pm.range, { space: "pio", base: 0xb000, length: 12 });
  ctx.clock.advance(1e9);
  assert.equal(readValue(pm, 8, 4), 3_579_545);
  assert.equal(readValue(pm, 8, 2), 3_579_545 & 0xffff, "narrow timer read");
  assert.equal(readValue(pm, 4, 2), 1, "SCI_EN");
  writeValue(pm, 2, 2, 1); // TMR_EN
  assert.equal(readValue(pm, 0, 4) >>> 16, 1, "PM1_EN in the high half");
  // S3: a sleep result; S5: poweroff; an undeclared type is ignored.
  writeValue(pm, 4, 2, (3 << 10) | (1 << 13));
  writeValue(pm, 5, 1, (5 << 2) | (1 << 5)); // byte write of the high half
  writeValue(pm, 4, 2, (2 << 10) | (1 << 13));
  assert.deepEqual(ctx.sleeps, [3, 5]);
  assert.match(ctx.logs.join("\n"), /undeclared SLP_TYP 2/);
});

Deno.test("acpi plugin: the SCI is a level on its line", () => {
  const ctx = new FakeContext();
  const p = acpiPlugin(config);
  const [pm] = p.setup(ctx);
  writeValue(pm, 2, 2, 1); // TMR_EN
  const due = p.service!(ctx.clock.now())!;
  ctx.clock.advance(due);
  p.service!(ctx.clock.now());
  assert.deepEqual(ctx.events, [{ kind: "level", gsi: 9, level: true }]);
  writeValue(pm, 0, 2, 1); // clear TMR_STS
  assert.deepEqual(ctx.events.at(-1), { kind: "level", gsi: 9, level: false });
});

Deno.test("acpi plugin: tables outside RAM are refused at setup", () => {
  assert.throws(
    () => acpiPlugin(config).setup(new FakeContext(0x80000)),
    /outside guest RAM/,
  );
});
