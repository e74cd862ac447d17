import assert from "node:assert/strict";
import { TestDevIoport } from "./ioport.ts";

const rd = (d: TestDevIoport, off: number, size: number): number => {
  const b = new Uint8Array(size);
  d.read(off, b);
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + b[i];
  return v;
};
const wr = (d: TestDevIoport, off: number, size: number, v: number) => {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (v >>> (8 * i)) & 0xff;
  d.write(off, b);
};

Deno.test("testdev ioport", async (t) => {
  await t.step("every width reads back at every offset", () => {
    const d = new TestDevIoport();
    wr(d, 0, 4, 0x12345678);
    assert.equal(rd(d, 0, 4), 0x12345678);
    assert.equal(rd(d, 0, 2), 0x5678);
    assert.equal(rd(d, 2, 2), 0x1234);
    for (let i = 0; i < 4; i++) {
      assert.equal(rd(d, i, 1), [0x78, 0x56, 0x34, 0x12][i]);
    }
    wr(d, 1, 2, 0xbeef);
    assert.equal(d.value, 0x12beef78);
    wr(d, 3, 1, 0xaa);
    assert.equal(d.value, 0xaabeef78);
  });
  await t.step("bytes past the register drop (QEMU's 32-bit mask)", () => {
    const d = new TestDevIoport();
    wr(d, 0, 4, 0x11223344);
    wr(d, 2, 4, 0xa1b2c3d4);
    assert.equal(d.value, 0xc3d43344);
    assert.equal(rd(d, 3, 4), 0xc3);
  });
  await t.step("string I/O: repeated elements leave the last one", () => {
    const d = new TestDevIoport();
    for (const v of [0x01, 0x02, 0x03]) wr(d, 0, 1, v);
    assert.equal(rd(d, 0, 1), 0x03);
  });
  await t.step("flush takes 4-byte writes at its base only", () => {
    const d = new TestDevIoport();
    d.flush(0, new Uint8Array([0x00, 0x30, 0x20, 0x00]));
    assert.equal(d.lastFlush, 0x203000);
    d.flush(0, new Uint8Array(2));
    d.flush(1, new Uint8Array(4));
    assert.deepEqual(d.stats, { flushes: 1, badAccesses: 2 });
  });
  await t.step("snapshot round trip; malformed state changes nothing", () => {
    const d = new TestDevIoport();
    wr(d, 0, 4, 0xdeadbeef);
    d.flush(0, new Uint8Array([0, 0x10, 0, 0]));
    const s = JSON.parse(JSON.stringify(d.snapshot()));
    const e = new TestDevIoport();
    e.restore(s);
    assert.equal(rd(e, 0, 4), 0xdeadbeef);
    assert.equal(e.lastFlush, 0x1000);
    assert.deepEqual(e.snapshot(), d.snapshot());
    assert.throws(() => e.restore({ ...s, version: 2 }), TypeError);
    assert.throws(() => e.restore({ ...s, data: -1 }), TypeError);
    assert.equal(e.value, 0xdeadbeef);
    e.reset();
    assert.equal(e.value, 0);
  });
});
