import assert from "node:assert/strict";
import { readLe, readLeBig, writeLe, writeLeBig } from "./le.ts";

Deno.test("le: every width round-trips and matches DataView", () => {
  for (const width of [1, 2, 3, 4, 6, 8]) {
    const max = width >= 7 ? 2 ** 53 - 1 : 2 ** (8 * width) - 1;
    for (const v of [0, 1, 0x7f, 0x80, 0xff, max, Math.floor(max / 3)]) {
      if (v > max) continue;
      const d = new Uint8Array(width);
      writeLe(d, v);
      assert.equal(readLe(d), v);
      assert.equal(readLeBig(d), BigInt(v));
    }
  }
  const d = new Uint8Array(4);
  writeLe(d, 0xdeadbeef);
  assert.equal(new DataView(d.buffer).getUint32(0, true), 0xdeadbeef);
});

Deno.test("le: offset and width select a window; negatives wrap", () => {
  const d = new Uint8Array([9, 9, 9, 9, 9, 9]);
  writeLe(d, 0x1234, 2, 2);
  assert.deepEqual([...d], [9, 9, 0x34, 0x12, 9, 9]);
  assert.equal(readLe(d, 2, 2), 0x1234);
  writeLe(d, -1, 0, 2);
  assert.equal(readLe(d, 0, 2), 0xffff);
});

Deno.test("le: u64 as bigint", () => {
  const d = new Uint8Array(8);
  writeLeBig(d, 0xfedcba9876543210n);
  assert.equal(readLeBig(d), 0xfedcba9876543210n);
  assert.equal(
    new DataView(d.buffer).getBigUint64(0, true),
    0xfedcba9876543210n,
  );
  writeLeBig(d, -1n);
  assert.equal(readLeBig(d), 2n ** 64n - 1n);
});

Deno.test("le: out-of-range windows throw RangeError", () => {
  assert.throws(() => readLe(new Uint8Array(2), 1, 2), RangeError);
  assert.throws(() => writeLe(new Uint8Array(2), 0, -1, 1), RangeError);
  assert.throws(() => readLeBig(new Uint8Array(2), 0, 3), RangeError);
});
