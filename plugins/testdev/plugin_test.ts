import assert from "node:assert/strict";
import {
  access,
  FakeContext,
  readValue,
  writeValue,
} from "../testing/fake_context.ts";
import { testdevPlugin } from "./plugin.ts";
import type { Region } from "../../bus/types.ts";

const at = (rs: readonly Region[], space: string, base: number): Region => {
  const r = rs.find((x) => x.range.space === space && x.range.base === base);
  if (!r) throw new Error(`no region at ${space} ${base}`);
  return r;
};

Deno.test("testdev plugin", async (t) => {
  await t.step("claims QEMU's ports and iomem window", () => {
    const rs = testdevPlugin().setup(new FakeContext());
    assert.deepEqual(rs.map((r) => r.range), [
      { space: "pio", base: 0x2000, length: 24 },
      { space: "pio", base: 0xe0, length: 4 },
      { space: "pio", base: 0xe4, length: 4 },
      { space: "pio", base: 0xe8, length: 4 },
      { space: "mmio", base: 0xff000000, length: 0x10000 },
    ]);
    const none = testdevPlugin({ ioport: null, iomem: null }).setup(
      new FakeContext(),
    );
    assert.equal(none.length, 1);
  });
  await t.step("port 0x2000+n drives GSI n", () => {
    const ctx = new FakeContext();
    const rs = testdevPlugin().setup(ctx);
    const r = at(rs, "pio", 0x2000);
    writeValue(r, 10, 1, 1);
    assert.equal(ctx.levels.get(10), true);
    assert.equal(readValue(r, 10, 1), 1);
    writeValue(r, 10, 1, 0);
    assert.equal(ctx.levels.get(10), false);
    assert.equal(readValue(r, 10, 1), 0);
  });
  await t.step("2- and 4-byte IRQ writes act byte by byte", () => {
    const ctx = new FakeContext();
    const r = at(testdevPlugin().setup(ctx), "pio", 0x2000);
    writeValue(r, 4, 2, 0x0001);
    // line 5 was low already: lowering it changes nothing on the wire
    assert.deepEqual(ctx.events, [{ kind: "level", gsi: 4, level: true }]);
    writeValue(r, 8, 4, 0x01000100);
    assert.deepEqual([8, 9, 10, 11].map((n) => ctx.levels.get(n) ?? false), [
      false,
      true,
      false,
      true,
    ]);
    assert.equal(readValue(r, 8, 4), 0x01000100);
  });
  await t.step("unwired lines are counted no-ops", () => {
    const ctx = new FakeContext();
    const p = testdevPlugin({ lines: 16 });
    const r = at(p.setup(ctx), "pio", 0x2000);
    writeValue(r, 20, 1, 1);
    writeValue(r, 15, 2, 0x0101); // line 15 wired, 16 not
    assert.equal(readValue(r, 20, 1), 0);
    assert.deepEqual(ctx.events, [{ kind: "level", gsi: 15, level: true }]);
    assert.equal(p.device()?.stats.badAccesses, 3);
  });
  await t.step("0xE0 and 0xE8 share the scratch register", () => {
    const rs = testdevPlugin().setup(new FakeContext());
    const e0 = at(rs, "pio", 0xe0);
    const e8 = at(rs, "pio", 0xe8);
    writeValue(e0, 0, 4, 0xcafef00d);
    assert.equal(readValue(e8, 0, 4), 0xcafef00d);
    writeValue(e8, 1, 1, 0x11);
    assert.equal(readValue(e0, 0, 4), 0xcafe110d);
    assert.equal(readValue(e0, 2, 2), 0xcafe);
  });
  await t.step("flush port: 4-byte write recorded, reads 0", () => {
    const p = testdevPlugin();
    const f = at(p.setup(new FakeContext()), "pio", 0xe4);
    writeValue(f, 0, 4, 0x5000);
    assert.equal(p.ioport.lastFlush, 0x5000);
    assert.equal(readValue(f, 0, 4), 0);
  });
  await t.step("iomem reads back 8-byte and unaligned accesses", () => {
    const m = at(testdevPlugin().setup(new FakeContext()), "mmio", 0xff000000);
    const w = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    m.write(access(0xff000003, 3, 8), w);
    const r = new Uint8Array(8);
    m.read(access(0xff000003, 3, 8), r);
    assert.deepEqual(r, w);
    assert.equal(readValue(m, 5, 2), 0x0403);
  });
  await t.step("snapshot → JSON → restore gives identical reads", () => {
    const ctx = new FakeContext();
    const p = testdevPlugin();
    const rs = p.setup(ctx);
    writeValue(at(rs, "pio", 0x2000), 3, 1, 1);
    writeValue(at(rs, "pio", 0xe0), 0, 4, 0x89abcdef);
    writeValue(at(rs, "mmio", 0xff000000), 0x1234, 4, 0x01020304);
    const s = JSON.parse(JSON.stringify(p.snapshot()));
    const ctx2 = new FakeContext();
    const q = testdevPlugin();
    const qs = q.setup(ctx2);
    q.restore(s);
    assert.equal(ctx2.levels.get(3), true);
    assert.equal(readValue(at(qs, "pio", 0x2000), 3, 1), 1);
    assert.equal(readValue(at(qs, "pio", 0xe0), 0, 4), 0x89abcdef);
    assert.equal(readValue(at(qs, "mmio", 0xff000000), 0x1234, 4), 0x01020304);
    assert.deepEqual(q.snapshot(), p.snapshot());
    assert.throws(() => q.restore({ ...s, ioport: { version: 9 } }), TypeError);
    assert.equal(readValue(at(qs, "pio", 0xe0), 0, 4), 0x89abcdef);
  });
});
