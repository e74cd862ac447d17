import assert from "node:assert/strict";
import { RamView } from "./guest_memory.ts";

Deno.test("RamView: RAM below the hole is GPA 0..", () => {
  const ram = new RamView(new Uint8Array(4096));
  ram.write(4088, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  assert.deepEqual([...ram.view(4088, 2)], [1, 2]);
  assert.equal(ram.contains(4095, 1), true);
  assert.equal(ram.contains(4095, 2), false);
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
    assert.equal(ram.contains(bad, 1), false, String(bad));
  }
  assert.throws(() => ram.read(4096, new Uint8Array(1)), RangeError);
});

Deno.test("RamView: RAM past the hole continues at highBase", () => {
  const bytes = new Uint8Array(8192);
  const ram = new RamView(bytes, { lowSize: 4096, highBase: 65536 });
  assert.equal(ram.size, 8192);
  ram.write(65536, new Uint8Array([0xaa]));
  assert.equal(bytes[4096], 0xaa, "GPA highBase is mapping offset lowSize");
  ram.write(65536 + 4095, new Uint8Array([0xbb]));
  assert.equal(bytes[8191], 0xbb);
  assert.equal(ram.contains(4096, 1), false, "the hole is not RAM");
  assert.equal(ram.contains(4090, 16), false, "no access spans the hole");
  assert.equal(ram.contains(65536 + 4090, 8), false, "past the end");
  assert.equal(ram.contains(65535, 2), false, "starts in the hole");
  assert.throws(() => ram.view(8192, 1), /outside RAM/);
});

Deno.test("RamView: detached after close", () => {
  const buf = new ArrayBuffer(4096);
  const ram = new RamView(new Uint8Array(buf));
  buf.transfer(0);
  assert.throws(() => ram.read(0, new Uint8Array(1)), /VM is closed/);
});
