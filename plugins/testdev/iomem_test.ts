import assert from "node:assert/strict";
import { TESTDEV_IOMEM_LEN, TestDevIomem } from "./iomem.ts";

Deno.test("testdev iomem", async (t) => {
  await t.step("reads back every width at any alignment", () => {
    const m = new TestDevIomem();
    for (const size of [1, 2, 4, 8]) {
      for (let off = 0; off < 9; off++) {
        const w = new Uint8Array(size).map((_, i) => off * 16 + i + size);
        m.write(0x100 * size + off, w);
        const r = new Uint8Array(size);
        m.read(0x100 * size + off, r);
        assert.deepEqual(r, w);
      }
    }
  });
  await t.step("overlapping writes merge byte-wise", () => {
    const m = new TestDevIomem();
    m.write(0, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    m.write(3, new Uint8Array([0xaa, 0xbb]));
    const r = new Uint8Array(8);
    m.read(0, r);
    assert.deepEqual([...r], [1, 2, 3, 0xaa, 0xbb, 6, 7, 8]);
  });
  await t.step("outside the window: counted no-ops, reads 0xFF", () => {
    const m = new TestDevIomem();
    m.write(TESTDEV_IOMEM_LEN - 2, new Uint8Array(4));
    const r = new Uint8Array(4);
    m.read(TESTDEV_IOMEM_LEN - 1, r);
    assert.deepEqual([...r], [0xff, 0xff, 0xff, 0xff]);
    assert.equal(m.stats.badAccesses, 2);
  });
  await t.step("snapshot round trip through JSON", () => {
    const m = new TestDevIomem();
    m.write(0, new Uint8Array([9, 8, 7]));
    m.write(TESTDEV_IOMEM_LEN - 8, new Uint8Array(8).fill(0xee));
    const s = JSON.parse(JSON.stringify(m.snapshot()));
    const n = new TestDevIomem();
    n.restore(s);
    const a = new Uint8Array(3);
    n.read(0, a);
    assert.deepEqual([...a], [9, 8, 7]);
    const b = new Uint8Array(8);
    n.read(TESTDEV_IOMEM_LEN - 8, b);
    assert.deepEqual([...b], new Array(8).fill(0xee));
    assert.throws(() => n.restore({ version: 1, bytes: "AAAA" }), TypeError);
    assert.throws(() => n.restore({ version: 1, bytes: "!!" }), TypeError);
    n.read(0, a);
    assert.deepEqual([...a], [9, 8, 7]);
  });
});
