import assert from "node:assert/strict";
import { FakeContext, readValue, writeValue } from "../testing/mod.ts";
import { fwCfgPlugin } from "./plugin.ts";

Deno.test("fw_cfg plugin", async (t) => {
  await t.step("select with a 16-bit write, read bytes at 0x511", () => {
    const p = fwCfgPlugin({ ramSize: 1 << 20, cpus: 2 });
    const [r] = p.setup(new FakeContext());
    assert.deepEqual(r.range, { space: "pio", base: 0x510, length: 2 });
    writeValue(r, 0, 2, 0x0005);
    assert.equal(readValue(r, 1, 1), 2);
    assert.equal(readValue(r, 1, 1), 0);
  });
  await t.step("other access shapes are counted no-ops", () => {
    const p = fwCfgPlugin({ ramSize: 1 << 20, cpus: 2 });
    const [r] = p.setup(new FakeContext());
    writeValue(r, 0, 2, 0x0000);
    writeValue(r, 0, 1, 0x05);
    writeValue(r, 1, 1, 0x05);
    assert.equal(readValue(r, 0, 2), 0);
    assert.equal(readValue(r, 1, 1), 0x51); // still the signature
    assert.equal(p.device.stats.badAccesses, 3);
  });
});
