import assert from "node:assert/strict";
import { FileBackend, MemoryBackend } from "./block_backend.ts";

Deno.test("block backends", async (t) => {
  await t.step("memory", () => {
    const m = new MemoryBackend(1024);
    m.write(1000, new Uint8Array([1, 2, 3]));
    const b = new Uint8Array(40);
    m.read(1000, b);
    assert.deepEqual([...b.subarray(0, 4)], [1, 2, 3, 0]);
    assert.throws(() => m.write(1023, new Uint8Array(2)));
    m.resize(2048);
    assert.equal(m.size, 2048);
    assert.equal(m.bytes[1001], 2);
    m.flush();
    assert.equal(m.flushes, 1);
  });
});

Deno.test({
  name:
    "file backend: read/write/flush/resize; reads past EOF are zero (needs --allow-read --allow-write)",
  ignore: !canUseFiles(),
  fn() {
    const path = Deno.makeTempFileSync();
    try {
      Deno.writeFileSync(path, new Uint8Array(1000).fill(9));
      const f = FileBackend.open(path);
      assert.equal(f.size, 1000);
      f.write(998, new Uint8Array([1, 2, 3, 4]));
      f.flush();
      const b = new Uint8Array(8);
      f.read(998, b);
      assert.deepEqual([...b], [1, 2, 3, 4, 0, 0, 0, 0]);
      f.resize(4096);
      assert.equal(f.size, 4096);
      f.close();
      assert.equal(Deno.statSync(path).size, 4096);
      const ro = FileBackend.open(path, { readOnly: true });
      assert.throws(() => ro.write(0, new Uint8Array(1)));
      ro.close();
    } finally {
      Deno.removeSync(path);
    }
  },
});

function canUseFiles(): boolean {
  return Deno.permissions.querySync({ name: "write" }).state === "granted" &&
    Deno.permissions.querySync({ name: "read" }).state === "granted";
}
