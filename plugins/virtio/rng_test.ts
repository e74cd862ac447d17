import assert from "node:assert/strict";
import { VirtioRng, virtioRng } from "./rng.ts";
import { GuestDriver } from "./testing/guest_driver.ts";
import { VirtioPciFunction } from "./virtio_pci.ts";

Deno.test("virtio-rng", async (t) => {
  await t.step("fills every writable buffer; used.len = bytes written", () => {
    const fn = virtioRng();
    const g = new GuestDriver([{ device: 1, function: fn }]);
    g.placeBar(1, 0xc0000000);
    assert.equal(g.initVirtio(1), 0x0f);
    const mem = g.ctx.memory.bytes;
    const head = g.submit(0, [
      { addr: 0x80000, len: 16 }, // readable: ignored
      { addr: 0x90000, len: 100000, write: true },
      { addr: 0xb0000, len: 7, write: true },
    ]);
    const [[id, len]] = g.takeUsed(0);
    assert.equal(id, head);
    assert.equal(len, 65536, "capped per request");
    assert.ok(
      mem.subarray(0x90000 + 65000, 0x90000 + 65536).some((b) => b !== 0),
    );
    assert.ok(
      mem.subarray(0x90000 + 65536, 0x90000 + 100000).every((b) => b === 0),
    );
    assert.equal(fn.device.bytesServed, 65536);
    assert.deepEqual(g.msiData(), [0x41]);
  });

  await t.step("injected source, multiple chunks, several chains", () => {
    let calls = 0;
    const dev = new VirtioRng({
      queueSize: 8,
      maxBytesPerRequest: 200000,
      random: (b) => {
        calls++;
        b.fill(0x42);
      },
    });
    const g = new GuestDriver([{
      device: 2,
      function: new VirtioPciFunction(dev),
    }]);
    g.placeBar(2, 0xc0000000);
    g.initVirtio(2);
    g.submit(0, [{ addr: 0x90000, len: 150000, write: true }], false);
    g.submit(0, [{ addr: 0x80000, len: 3, write: true }]);
    assert.deepEqual(g.takeUsed(0).map(([, l]) => l), [150000, 3]);
    assert.equal(calls, 4, "65536-byte chunks");
    assert.ok(
      g.ctx.memory.bytes.subarray(0x90000, 0x90000 + 150000).every((b) =>
        b === 0x42
      ),
    );
  });

  await t.step("chain with only readable buffers gets used.len 0", () => {
    const g = new GuestDriver([{ device: 1, function: virtioRng() }]);
    g.placeBar(1, 0xc0000000);
    g.initVirtio(1);
    g.submit(0, [{ addr: 0x80000, len: 8 }]);
    assert.deepEqual(g.takeUsed(0).map(([, l]) => l), [0]);
  });
});
