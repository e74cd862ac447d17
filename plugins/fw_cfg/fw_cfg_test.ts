import assert from "node:assert/strict";
import { FwCfg } from "./fw_cfg.ts";

function readN(fw: FwCfg, key: number, n: number): number[] {
  fw.select(key);
  return Array.from({ length: n }, () => fw.readData());
}

Deno.test("fw_cfg items", async (t) => {
  const fw = new FwCfg({
    ramSize: 0x1_2345_6789,
    cpus: 3,
    cmdline: "console=ttyS0",
  });
  await t.step("signature", () => {
    assert.deepEqual(readN(fw, 0x00, 4), [0x51, 0x45, 0x4d, 0x55]);
  });
  await t.step("ID = 1 (traditional only)", () => {
    assert.deepEqual(readN(fw, 0x01, 4), [1, 0, 0, 0]);
  });
  await t.step("RAM size u64 LE", () => {
    assert.deepEqual(readN(fw, 0x03, 8), [0x89, 0x67, 0x45, 0x23, 1, 0, 0, 0]);
  });
  await t.step("CPU counts u16 LE", () => {
    assert.deepEqual(readN(fw, 0x05, 2), [3, 0]);
    assert.deepEqual(readN(fw, 0x0f, 2), [3, 0]);
  });
  await t.step("command line size and NUL-terminated data", () => {
    assert.deepEqual(readN(fw, 0x14, 4), [14, 0, 0, 0]);
    const bytes = readN(fw, 0x15, 14);
    assert.equal(
      new TextDecoder().decode(new Uint8Array(bytes)),
      "console=ttyS0\0",
    );
  });
  await t.step("empty file directory", () => {
    assert.deepEqual(readN(fw, 0x19, 4), [0, 0, 0, 0]);
  });
  await t.step("past the end and unknown keys read 0", () => {
    assert.deepEqual(readN(fw, 0x00, 6), [0x51, 0x45, 0x4d, 0x55, 0, 0]);
    assert.deepEqual(readN(fw, 0x02, 3), [0, 0, 0]);
    assert.deepEqual(readN(fw, 0xffff, 2), [0, 0]);
    assert.ok(fw.stats.unknownKeys >= 2);
  });
  await t.step("reselect rewinds; write-channel bit ignored", () => {
    fw.select(0);
    fw.readData();
    assert.deepEqual(readN(fw, 0x4000, 1), [0x51]);
  });
});

Deno.test("fw_cfg options", async (t) => {
  await t.step("no cmdline: keys 0x14/0x15 absent", () => {
    const fw = new FwCfg({ ramSize: 0, cpus: 1 });
    assert.equal(fw.item(0x14), undefined);
    assert.deepEqual(readN(fw, 0x14, 4), [0, 0, 0, 0]);
  });
  await t.step("files are listed big-endian from key 0x20", () => {
    const fw = new FwCfg({
      ramSize: 0,
      cpus: 1,
      files: [{ name: "etc/a", data: new Uint8Array([7, 8, 9]) }],
    });
    const dir = readN(fw, 0x19, 4 + 64);
    assert.deepEqual(dir.slice(0, 4), [0, 0, 0, 1]);
    assert.deepEqual(dir.slice(4, 8), [0, 0, 0, 3]);
    assert.deepEqual(dir.slice(8, 10), [0, 0x20]);
    assert.equal(String.fromCharCode(...dir.slice(12, 17)), "etc/a");
    assert.equal(dir[17], 0);
    assert.deepEqual(readN(fw, 0x20, 4), [7, 8, 9, 0]);
  });
  await t.step("bad host options throw", () => {
    assert.throws(() => new FwCfg({ ramSize: -1, cpus: 1 }), RangeError);
    assert.throws(() => new FwCfg({ ramSize: 0, cpus: 0 }), RangeError);
    assert.throws(() => new FwCfg({ ramSize: 0, cpus: 1, cmdline: "a\0" }));
    assert.throws(() =>
      new FwCfg({
        ramSize: 0,
        cpus: 1,
        files: [{ name: "x".repeat(56), data: new Uint8Array() }],
      })
    );
  });
});
