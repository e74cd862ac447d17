import assert from "node:assert/strict";
import {
  access,
  FakeContext,
  readValue,
  writeValue,
} from "../testing/fake_context.ts";
import { echoPlugin } from "./plugin.ts";

Deno.test("echo plugin", async (t) => {
  await t.step("pio: 16 ports at base", () => {
    const p = echoPlugin({ space: "pio", base: 0x500 });
    const [r] = p.setup(new FakeContext());
    assert.deepEqual(r.range, { space: "pio", base: 0x500, length: 16 });
    assert.equal(readValue(r, 0, 4), 0xa3a2a1a0);
    writeValue(r, 4, 2, 0xbeef);
    assert.equal(readValue(r, 4, 2), 0xbeef);
    assert.equal(readValue(r, 5, 1), 0xbe);
  });
  await t.step("mmio: 8-byte accesses and crossing the end", () => {
    const p = echoPlugin({ space: "mmio", base: 0xd0000000 });
    const [r] = p.setup(new FakeContext());
    assert.equal(r.range.space, "mmio");
    const d = new Uint8Array(8);
    r.read(access(0xd0000008, 8, 8), d);
    assert.deepEqual([...d], [0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf]);
    r.read(access(0xd000000c, 12, 8), d);
    assert.deepEqual([...d], new Array(8).fill(0xff));
    assert.equal(p.device.stats.badAccesses, 1);
    p.reset?.();
  });
});
