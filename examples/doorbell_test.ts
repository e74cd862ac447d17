// The doorbell's unit test, using only the public testing kit
// (`@denovmm/vmm/testing`; here by relative path).
import assert from "node:assert/strict";
import { FakeContext, readValue, writeValue } from "../plugins/testing/mod.ts";
import { doorbellPlugin } from "./doorbell.ts";

Deno.test("doorbell: rings count and raise one edge each", () => {
  const ctx = new FakeContext();
  const [regs] = doorbellPlugin({ base: 0x600, line: 5 }).setup(ctx);
  writeValue(regs, 0, 4, 1);
  writeValue(regs, 0, 4, 1);
  assert.equal(readValue(regs, 0, 4), 2);
  assert.deepEqual(ctx.events, [
    { kind: "pulse", gsi: 5 },
    { kind: "pulse", gsi: 5 },
  ]);
});

Deno.test("doorbell: masked rings count silently; state round-trips", () => {
  const ctx = new FakeContext();
  const bell = doorbellPlugin({ base: 0x600, line: 5 });
  const [regs] = bell.setup(ctx);
  writeValue(regs, 4, 4, 1);
  writeValue(regs, 0, 4, 1);
  assert.deepEqual(ctx.events, []);
  const copy = doorbellPlugin({ base: 0x600, line: 5 });
  const [copyRegs] = copy.setup(new FakeContext());
  copy.restore(JSON.parse(JSON.stringify(bell.snapshot())));
  assert.equal(readValue(copyRegs, 0, 4), 1);
  assert.equal(readValue(copyRegs, 4, 4), 1);
  assert.throws(() => copy.restore({ version: 2 } as never), TypeError);
  bell.reset?.();
  assert.equal(readValue(regs, 0, 4), 0);
});
