import assert from "node:assert/strict";
import { FakeContext, readValue, writeValue } from "../testing/mod.ts";
import { serialPlugin } from "./plugin.ts";

Deno.test("serial plugin", async (t) => {
  await t.step("claims COM1 and outputs THR writes", () => {
    const out: number[] = [];
    const p = serialPlugin({ output: (b) => out.push(b) });
    const ctx = new FakeContext();
    const [r] = p.setup(ctx);
    assert.deepEqual(r.range, { space: "pio", base: 0x3f8, length: 8 });
    writeValue(r, 0, 1, 0x41);
    assert.deepEqual(out, [0x41]);
    assert.equal(readValue(r, 5, 1), 0x60);
  });
  await t.step("interrupt drives GSI 4 by level", () => {
    const p = serialPlugin({});
    const ctx = new FakeContext();
    const [r] = p.setup(ctx);
    writeValue(r, 1, 1, 0x01);
    p.enqueueInput([0x61]);
    assert.equal(ctx.levels.get(4), true);
    assert.equal(readValue(r, 0, 1), 0x61);
    assert.equal(ctx.levels.get(4), false);
  });
  await t.step("custom base and gsi", () => {
    const p = serialPlugin({ base: 0x2f8, gsi: 3 });
    const ctx = new FakeContext();
    const [r] = p.setup(ctx);
    assert.equal(r.range.base, 0x2f8);
    assert.equal(p.name, "serial@2f8");
    writeValue(r, 1, 1, 0x02);
    assert.deepEqual(ctx.events, [{ kind: "level", gsi: 3, level: true }]);
  });
  await t.step("wide accesses are counted no-ops", () => {
    const p = serialPlugin({});
    const [r] = p.setup(new FakeContext());
    assert.equal(readValue(r, 0, 2), 0xffff);
    writeValue(r, 0, 4, 0x41424344);
    assert.equal(p.uart.stats.badAccesses, 2);
    assert.equal(p.uart.stats.transmitted, 0);
  });
  await t.step("overrun log goes to the context", () => {
    const p = serialPlugin({});
    const ctx = new FakeContext();
    p.setup(ctx);
    p.enqueueInput(new Uint8Array(100));
    assert.equal(ctx.logs.length, 1);
    p.reset?.();
    assert.equal(p.uart.pendingInput, 0);
  });
});
