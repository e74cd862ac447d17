import assert from "node:assert/strict";
import { CFG } from "../pci/registers.ts";
import { BLK, virtioBlk } from "./blk.ts";
import { FileBackend, MemoryBackend } from "./block_backend.ts";
import { COMMON_CFG, PCI_CAP } from "./constants.ts";
import { GuestDriver } from "./testing/guest_driver.ts";
import { VIRTIO_BAR } from "./virtio_pci.ts";

const BAR = 0xc0000000;
const DEV = 4;
const HDR = 0x70000;
const DATA = 0x80000;
const STATUS = 0x7f000;

function rig(
  options: { readOnly?: boolean; size?: number; serial?: string } = {},
) {
  const backend = new MemoryBackend(options.size ?? 64 * 512);
  const fn = virtioBlk({
    backend,
    readOnly: options.readOnly,
    serial: options.serial,
  });
  const g = new GuestDriver([{ device: DEV, function: fn }]);
  g.placeBar(DEV, BAR);
  assert.equal(g.initVirtio(DEV, { features: (1n << 32n) | (1n << 9n) }), 0x0f);
  const mem = g.ctx.memory.bytes;
  const request = (
    type: number,
    sector: number,
    data: { len: number; write: boolean } | null,
  ) => {
    const dv = new DataView(mem.buffer);
    dv.setUint32(HDR, type, true);
    dv.setUint32(HDR + 4, 0, true);
    dv.setUint32(HDR + 8, sector % 2 ** 32, true);
    dv.setUint32(HDR + 12, Math.floor(sector / 2 ** 32), true);
    mem[STATUS] = 0xff;
    const bufs = [{ addr: HDR, len: 16 }];
    if (data) {
      bufs.push({ addr: DATA, len: data.len, write: data.write } as never);
    }
    bufs.push({ addr: STATUS, len: 1, write: true } as never);
    g.submit(0, bufs);
    const used = g.takeUsed(0);
    assert.equal(used.length, 1);
    return { status: mem[STATUS], len: used[0][1] };
  };
  return { backend, fn, g, mem, request };
}

Deno.test("virtio-blk", async (t) => {
  await t.step("identity and device config (capacity, blk_size)", () => {
    const { g } = rig();
    assert.equal(g.cfgRead(DEV, 0), 0x10421af4);
    assert.equal(g.cfgRead(DEV, CFG.REVISION_ID) >>> 8, 0x018000);
    const dev = g.capabilities(DEV).find(([p, id]) =>
      id === 9 && g.cfgRead(DEV, p + 3, 1) === 4
    )![0];
    assert.equal(g.cfgRead(DEV, dev + PCI_CAP.OFFSET), VIRTIO_BAR.DEVICE);
    assert.equal(g.cfgRead(DEV, dev + PCI_CAP.LENGTH), 24);
    assert.equal(g.mmioRead(BAR + VIRTIO_BAR.DEVICE, 4), 64);
    assert.equal(g.mmioRead(BAR + VIRTIO_BAR.DEVICE + 4, 4), 0);
    assert.equal(
      g.mmioRead(BAR + VIRTIO_BAR.DEVICE + BLK.CFG_BLK_SIZE, 4),
      512,
    );
    assert.equal(
      g.mmioRead(BAR + VIRTIO_BAR.DEVICE + 0x100, 4),
      0,
      "past config: 0",
    );
    g.setCommon(COMMON_CFG.DEVICE_FEATURE_SELECT, 4, 0);
    assert.equal(
      g.common(COMMON_CFG.DEVICE_FEATURE, 4),
      (1 << 9) | (1 << 6) | (1 << 28),
    );
  });

  await t.step("write then read back; MSI on the queue vector", () => {
    const { g, mem, backend, request, fn } = rig();
    for (let i = 0; i < 1024; i++) mem[DATA + i] = (i * 7) & 0xff;
    const w = request(BLK.T_OUT, 3, { len: 1024, write: false });
    assert.deepEqual(w, { status: BLK.S_OK, len: 1 });
    assert.equal(backend.bytes[3 * 512 + 5], 35);
    mem.fill(0, DATA, DATA + 1024);
    const r = request(BLK.T_IN, 3, { len: 1024, write: true });
    assert.deepEqual(r, { status: BLK.S_OK, len: 1025 });
    for (let i = 0; i < 1024; i++) assert.equal(mem[DATA + i], (i * 7) & 0xff);
    assert.deepEqual(g.msiData(), [0x41, 0x41]);
    assert.equal(fn.device.counters.reads, 1);
    assert.equal(fn.device.counters.writes, 1);
  });

  await t.step("data split over several descriptors (any layout)", () => {
    const { g, mem, backend } = rig();
    backend.bytes.fill(0xab, 0, 512);
    const dv = new DataView(mem.buffer);
    dv.setUint32(HDR, BLK.T_IN, true);
    dv.setUint32(HDR + 8, 0, true);
    // header split 10+6, data 100+412, status shares the last data buffer.
    g.submit(0, [
      { addr: HDR, len: 10 },
      { addr: HDR + 10, len: 6 },
      { addr: DATA, len: 100, write: true },
      { addr: DATA + 0x1000, len: 413, write: true },
    ]);
    const [[, len]] = g.takeUsed(0);
    assert.equal(len, 513);
    assert.equal(mem[DATA + 99], 0xab);
    assert.equal(mem[DATA + 0x1000 + 411], 0xab);
    assert.equal(mem[DATA + 0x1000 + 412], BLK.S_OK);
  });

  await t.step("flush", () => {
    const { backend, request } = rig();
    assert.equal(request(BLK.T_FLUSH, 0, null).status, BLK.S_OK);
    assert.equal(backend.flushes, 1);
  });

  await t.step("GET_ID", () => {
    const { mem, request } = rig({ serial: "serial-0123456789abcdefXYZ" });
    const r = request(BLK.T_GET_ID, 0, { len: 20, write: true });
    assert.deepEqual(r, { status: BLK.S_OK, len: 21 });
    assert.equal(
      new TextDecoder().decode(mem.subarray(DATA, DATA + 20)),
      "serial-0123456789abc",
    );
  });

  await t.step("unsupported request type", () => {
    const { request, fn } = rig();
    assert.equal(request(11, 0, null).status, BLK.S_UNSUPP);
    assert.equal(fn.device.counters.errors, 1);
  });

  await t.step("out-of-range and misaligned requests -> IOERR", () => {
    const { request, backend } = rig();
    const cases: [number, number, number][] = [
      [BLK.T_IN, 64, 512],
      [BLK.T_IN, 63, 1024],
      [BLK.T_OUT, 2 ** 40, 512],
      [BLK.T_OUT, 2 ** 60, 512],
      [BLK.T_IN, 0, 100],
    ];
    for (const [type, sector, len] of cases) {
      const r = request(type, sector, { len, write: type === BLK.T_IN });
      assert.equal(r.status, BLK.S_IOERR, `${type} ${sector} ${len}`);
    }
    assert.ok(backend.bytes.every((b) => b === 0));
    assert.equal(
      request(BLK.T_IN, 63, { len: 512, write: true }).status,
      BLK.S_OK,
    );
  });

  await t.step("read-only: RO feature offered, writes fail, reads work", () => {
    const { g, request, backend } = rig({ readOnly: true });
    g.setCommon(COMMON_CFG.DEVICE_FEATURE_SELECT, 4, 0);
    assert.ok(g.common(COMMON_CFG.DEVICE_FEATURE, 4) & (1 << BLK.F_RO));
    assert.equal(
      request(BLK.T_OUT, 0, { len: 512, write: false }).status,
      BLK.S_IOERR,
    );
    assert.ok(backend.bytes.every((b) => b === 0));
    assert.equal(
      request(BLK.T_IN, 0, { len: 512, write: true }).status,
      BLK.S_OK,
    );
  });

  await t.step("malformed chains are dropped with used.len 0", () => {
    const { g, fn } = rig();
    g.submit(0, [{ addr: HDR, len: 8 }, { addr: STATUS, len: 1, write: true }]);
    g.submit(0, [{ addr: HDR, len: 16 }]);
    assert.deepEqual(g.takeUsed(0).map(([, l]) => l), [0, 0]);
    assert.equal(fn.device.counters.malformed, 2);
  });

  await t.step("resize: capacity, config_generation, config vector", () => {
    const { g, fn, request } = rig();
    const gen = g.common(COMMON_CFG.CONFIG_GENERATION, 1);
    g.ctx.events.length = 0;
    fn.device.resize(128 * 512);
    assert.equal(g.mmioRead(BAR + VIRTIO_BAR.DEVICE, 4), 128);
    assert.equal(g.common(COMMON_CFG.CONFIG_GENERATION, 1), (gen + 1) & 0xff);
    assert.deepEqual(g.msiData(), [0x40], "config vector 0");
    assert.equal(
      request(BLK.T_IN, 127, { len: 512, write: true }).status,
      BLK.S_OK,
    );
    fn.device.resize(8 * 512);
    assert.equal(
      request(BLK.T_IN, 8, { len: 512, write: true }).status,
      BLK.S_IOERR,
    );
    assert.throws(() => fn.device.resize(-1));
  });

  await t.step("resize in INTx mode: ISR bit 1", () => {
    const backend = new MemoryBackend(4096);
    const fn = virtioBlk({ backend });
    const g = new GuestDriver([{ device: DEV, function: fn }]);
    g.placeBar(DEV, BAR);
    g.initVirtio(DEV, { msix: false });
    fn.device.resize(8192);
    assert.equal(g.ctx.levels.get(g.bus.gsiOf(DEV)!), true);
    assert.equal(g.readIsr(), 2);
  });
});

Deno.test({
  name:
    "virtio-blk file backend: write, flush, read back (needs --allow-read --allow-write)",
  ignore: !canUseFiles(),
  fn() {
    const path = Deno.makeTempFileSync({ suffix: ".img" });
    try {
      Deno.truncateSync(path, 16 * 512);
      const fn = virtioBlk({ path });
      const g = new GuestDriver([{ device: DEV, function: fn }]);
      g.placeBar(DEV, BAR);
      g.initVirtio(DEV, { features: (1n << 32n) | (1n << 9n) });
      const mem = g.ctx.memory.bytes;
      const dv = new DataView(mem.buffer);
      mem.fill(0x5a, DATA, DATA + 512);
      for (const [type, len] of [[BLK.T_OUT, 512], [BLK.T_FLUSH, 0]]) {
        dv.setUint32(HDR, type, true);
        dv.setUint32(HDR + 8, 2, true);
        const bufs = [{ addr: HDR, len: 16 }, {
          addr: STATUS,
          len: 1,
          write: true,
        }];
        if (len) bufs.splice(1, 0, { addr: DATA, len });
        g.submit(0, bufs);
        assert.equal(mem[STATUS], BLK.S_OK);
      }
      g.bus.close();
      const back = FileBackend.open(path, { readOnly: true });
      const sector = new Uint8Array(512);
      back.read(2 * 512, sector);
      back.close();
      assert.ok(sector.every((b) => b === 0x5a));
    } finally {
      Deno.removeSync(path);
    }
  },
});

function canUseFiles(): boolean {
  return Deno.permissions.querySync({ name: "write" }).state === "granted" &&
    Deno.permissions.querySync({ name: "read" }).state === "granted";
}
