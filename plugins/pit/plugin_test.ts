import assert from "node:assert/strict";
import { FakeContext, readValue, writeValue } from "../testing/mod.ts";
import { pitPlugin } from "./plugin.ts";
import { ticksToNs } from "./pit_clock.ts";

Deno.test("pit plugin", async (t) => {
  await t.step("claims 0x40-0x43 and 0x61", () => {
    const rs = pitPlugin().setup(new FakeContext());
    assert.deepEqual(rs.map((r) => r.range), [
      { space: "pio", base: 0x40, length: 4 },
      { space: "pio", base: 0x61, length: 1 },
    ]);
    assert.equal(pitPlugin({ portB: null }).setup(new FakeContext()).length, 1);
  });
  await t.step("counter 0 pulses its IRQ line from service()", () => {
    const ctx = new FakeContext();
    const p = pitPlugin({ irq: 2 });
    const [pit] = p.setup(ctx);
    assert.equal(p.service!(ctx.clock.now()), null, "unprogrammed: silent");
    writeValue(pit, 3, 1, 0x34); // counter 0, LSB/MSB, mode 2
    writeValue(pit, 0, 1, 1000 & 0xff);
    writeValue(pit, 0, 1, 1000 >> 8);
    const next = p.service!(ctx.clock.now());
    assert.equal(next, ticksToNs(1000));
    ctx.clock.advance(next!);
    p.service!(ctx.clock.now());
    assert.deepEqual(ctx.events, [{ kind: "pulse", gsi: 2 }]);
  });
  await t.step("port 0x61 gate and OUT2 through the region", () => {
    const ctx = new FakeContext();
    const [pit, portB] = pitPlugin().setup(ctx);
    writeValue(portB, 0, 1, 0x01);
    writeValue(pit, 3, 1, 0xb0); // counter 2, LSB/MSB, mode 0
    writeValue(pit, 2, 1, 10);
    writeValue(pit, 2, 1, 0);
    assert.equal(readValue(portB, 0, 1) & 0x21, 0x01);
    ctx.clock.advance(ticksToNs(11));
    assert.equal(readValue(portB, 0, 1) & 0x21, 0x21);
  });
  await t.step("snapshot/restore through the plugin", () => {
    const ctx = new FakeContext();
    const p = pitPlugin();
    const [pit] = p.setup(ctx);
    writeValue(pit, 3, 1, 0x14); // counter 0, LSB, mode 2
    writeValue(pit, 0, 1, 200);
    ctx.clock.advance(ticksToNs(50));
    const q = pitPlugin();
    const ctx2 = new FakeContext();
    const [pit2] = q.setup(ctx2);
    q.restore(JSON.parse(JSON.stringify(p.snapshot())));
    assert.equal(readValue(pit2, 0, 1), readValue(pit, 0, 1));
    assert.throws(() => pitPlugin().snapshot(), /not set up/);
  });
});
