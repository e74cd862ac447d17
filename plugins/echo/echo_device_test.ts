import assert from "node:assert/strict";
import { EchoDevice } from "./echo_device.ts";

function read(e: EchoDevice, offset: number, size: number): number[] {
  const d = new Uint8Array(size);
  e.read(offset, d);
  return [...d];
}

Deno.test("echo device", async (t) => {
  await t.step("initial byte k is 0xA0 + k", () => {
    const e = new EchoDevice();
    assert.deepEqual(read(e, 0, 4), [0xa0, 0xa1, 0xa2, 0xa3]);
    assert.deepEqual(read(e, 15, 1), [0xaf]);
  });
  for (const size of [1, 2, 4, 8]) {
    await t.step(
      `${size}-byte write then read at the last fitting offset`,
      () => {
        const e = new EchoDevice();
        const off = 16 - size;
        const data = Uint8Array.from({ length: size }, (_, i) => i + 1);
        e.write(off, data);
        assert.deepEqual(read(e, off, size), [...data]);
        assert.equal(e.bytes[off - 1], 0xa0 + off - 1);
      },
    );
  }
  await t.step("crossing the end: counted no-op, reads 0xFF", () => {
    const e = new EchoDevice();
    e.write(14, new Uint8Array([1, 2, 3, 4]));
    assert.deepEqual(read(e, 13, 4), [0xff, 0xff, 0xff, 0xff]);
    assert.deepEqual(read(e, 16, 1), [0xff]);
    assert.deepEqual(read(e, -1, 1), [0xff]);
    assert.deepEqual(read(e, 12, 4), [0xac, 0xad, 0xae, 0xaf]);
    assert.deepEqual(e.stats, { reads: 1, writes: 0, badAccesses: 4 });
  });
  await t.step("reset restores the pattern", () => {
    const e = new EchoDevice();
    e.write(0, new Uint8Array([0]));
    e.reset();
    assert.deepEqual(read(e, 0, 1), [0xa0]);
  });
});
