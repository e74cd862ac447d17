import assert from "node:assert/strict";
import { FakeContext, readValue, writeValue } from "../testing/fake_context.ts";
import { hpetPlugin } from "./plugin.ts";

Deno.test("hpet plugin: MMIO region, lines through interrupt sources, MSI through an MSI source", () => {
  const ctx = new FakeContext();
  const p = hpetPlugin({ irq0Gsi: 0 });
  const [r] = p.setup(ctx);
  assert.deepEqual(r.range, { space: "mmio", base: 0xfed00000, length: 0x400 });
  assert.equal(readValue(r, 4, 4), 10_000_000, "period in the high half");
  // 8-byte access through the region.
  const d = new Uint8Array(8);
  r.read({ offset: 0, address: 0xfed00000, size: 8, vcpu: 0 }, d);
  assert.equal(new DataView(d.buffer).getUint32(4, true), 10_000_000);
  writeValue(r, 0x100, 4, 1 << 2); // timer 0 enabled, edge
  writeValue(r, 0x108, 4, 100);
  writeValue(r, 0x108 + 4, 4, 0); // comparator high half
  writeValue(r, 0x140, 4, (1 << 2) | (1 << 14)); // timer 2: FSB
  writeValue(r, 0x148, 4, 200);
  writeValue(r, 0x14c, 4, 0);
  writeValue(r, 0x150, 4, 0x31);
  writeValue(r, 0x154, 4, 0xfee00000);
  writeValue(r, 0x10, 4, 3); // enable + legacy route
  const next = p.service!(ctx.clock.now());
  assert.equal(next, 1000);
  ctx.clock.advance(2000);
  p.service!(ctx.clock.now());
  assert.deepEqual(ctx.events, [
    { kind: "level", gsi: 0, level: true },
    { kind: "level", gsi: 0, level: false },
    { kind: "msi", address: 0xfee00000, data: 0x31 },
  ]);
  p.reset!();
  assert.equal(readValue(r, 0x10, 4), 0);
});
