import assert from "node:assert/strict";
import { prng } from "../testing/prng.ts";
import { CAP_ID, CFG, COMMAND } from "../pci/registers.ts";
import {
  COMMON_CFG,
  DEVICE_STATUS,
  ISR,
  PCI_CAP,
  VIRTIO_MSI_NO_VECTOR,
  VIRTQ,
} from "./constants.ts";
import { VirtioRng } from "./rng.ts";
import { GuestDriver } from "./testing/guest_driver.ts";
import { VIRTIO_BAR, VirtioPciFunction } from "./virtio_pci.ts";

const BAR = 0xc0000000;
const DEV = 3;

function rng(memSize?: number) {
  const fn = new VirtioPciFunction(new VirtioRng({ queueSize: 16 }));
  const g = new GuestDriver([{ device: DEV, function: fn }], memSize);
  g.placeBar(DEV, BAR);
  return { fn, g };
}

Deno.test("VirtioPciFunction", async (t) => {
  await t.step("PCI identity and capabilities", () => {
    const { g } = rng();
    assert.equal(g.cfgRead(DEV, 0), 0x10441af4);
    assert.equal(g.cfgRead(DEV, CFG.REVISION_ID, 1), 1);
    assert.equal(g.cfgRead(DEV, CFG.SUBSYSTEM_ID, 2), 0x40);
    assert.equal(g.cfgRead(DEV, CFG.INTERRUPT_PIN, 1), 1);
    const caps = g.capabilities(DEV);
    const types = caps.filter(([, id]) => id === CAP_ID.VENDOR)
      .map(([p]) => g.cfgRead(DEV, p + PCI_CAP.CFG_TYPE, 1));
    assert.deepEqual(types, [1, 2, 3, 5], "rng has no device config");
    assert.ok(caps.some(([, id]) => id === CAP_ID.MSIX));
    const notify = caps.find(([p, id]) =>
      id === CAP_ID.VENDOR && g.cfgRead(DEV, p + 3, 1) === 2
    )![0];
    assert.equal(g.cfgRead(DEV, notify + PCI_CAP.LEN, 1), 20);
    assert.equal(g.cfgRead(DEV, notify + PCI_CAP.NOTIFY_OFF_MULTIPLIER), 4);
    assert.equal(g.cfgRead(DEV, notify + PCI_CAP.OFFSET), VIRTIO_BAR.NOTIFY);
    // BAR 0 is 64-bit memory of 32 KiB.
    g.cfgWrite(DEV, CFG.COMMAND, 2, 0);
    g.cfgWrite(DEV, CFG.BAR0, 4, 0xffffffff);
    assert.equal(g.cfgRead(DEV, CFG.BAR0), 0xffff8004);
  });

  await t.step(
    "full driver init with MSI-X; rng request completes on its vector",
    () => {
      const { fn, g } = rng();
      const st = g.initVirtio(DEV);
      assert.equal(st, 0x0f);
      g.setCommon(COMMON_CFG.DEVICE_FEATURE_SELECT, 4, 1);
      assert.equal(g.common(COMMON_CFG.DEVICE_FEATURE, 4), 1, "VERSION_1");
      g.setCommon(COMMON_CFG.DEVICE_FEATURE_SELECT, 4, 0);
      assert.equal(
        g.common(COMMON_CFG.DEVICE_FEATURE, 4),
        1 << 28,
        "INDIRECT_DESC",
      );
      assert.equal(fn.driverFeatures, 1n << 32n);
      g.setCommon(COMMON_CFG.QUEUE_SELECT, 2, 0);
      assert.equal(g.common(COMMON_CFG.QUEUE_MSIX_VECTOR, 2), 1);
      assert.equal(g.common(COMMON_CFG.QUEUE_ENABLE, 2), 1);
      assert.equal(g.common(COMMON_CFG.QUEUE_DESC, 4), g.queues[0].desc);
      const mem = g.ctx.memory.bytes;
      const head = g.submit(0, [{ addr: 0x80000, len: 64, write: true }]);
      assert.deepEqual(g.takeUsed(0), [[head, 64]]);
      assert.notDeepEqual(
        [...mem.subarray(0x80000, 0x80040)],
        new Array(64).fill(0),
      );
      assert.deepEqual(g.msiData(), [0x41], "queue 0 -> MSI-X vector 1");
    },
  );

  await t.step(
    "FEATURES_OK refused without VERSION_1 or with unknown bits",
    () => {
      for (
        const features of [0n, 1n << 33n | 1n << 32n, 1n << 5n | 1n << 32n]
      ) {
        const { fn, g } = rng();
        const st = g.initVirtio(DEV, { features });
        assert.equal(st & DEVICE_STATUS.FEATURES_OK, 0, features.toString(16));
        assert.equal(fn.counters.refusedFeatures, 1);
        // DRIVER_OK without FEATURES_OK is refused too.
        g.setCommon(COMMON_CFG.DEVICE_STATUS, 1, 7);
        assert.equal(
          g.common(COMMON_CFG.DEVICE_STATUS, 1) & DEVICE_STATUS.DRIVER_OK,
          0,
        );
      }
    },
  );

  await t.step("driver features locked after FEATURES_OK", () => {
    const { fn, g } = rng();
    g.initVirtio(DEV);
    g.setCommon(COMMON_CFG.DRIVER_FEATURE_SELECT, 4, 0);
    g.setCommon(COMMON_CFG.DRIVER_FEATURE, 4, 1 << 28);
    assert.equal(fn.driverFeatures, 1n << 32n);
  });

  await t.step("invalid MSI-X vectors read back as NO_VECTOR", () => {
    const { g } = rng();
    g.initVirtio(DEV);
    g.setCommon(COMMON_CFG.CONFIG_MSIX_VECTOR, 2, 2);
    assert.equal(
      g.common(COMMON_CFG.CONFIG_MSIX_VECTOR, 2),
      VIRTIO_MSI_NO_VECTOR,
      "only 2 vectors",
    );
    g.setCommon(COMMON_CFG.CONFIG_MSIX_VECTOR, 2, 1);
    assert.equal(g.common(COMMON_CFG.CONFIG_MSIX_VECTOR, 2), 1);
    g.setCommon(COMMON_CFG.QUEUE_MSIX_VECTOR, 2, 0x1234);
    assert.equal(
      g.common(COMMON_CFG.QUEUE_MSIX_VECTOR, 2),
      VIRTIO_MSI_NO_VECTOR,
    );
  });

  await t.step("NO_VECTOR: used buffers, no interrupt", () => {
    const { g } = rng();
    g.initVirtio(DEV);
    g.setCommon(COMMON_CFG.QUEUE_SELECT, 2, 0);
    g.setCommon(COMMON_CFG.QUEUE_MSIX_VECTOR, 2, VIRTIO_MSI_NO_VECTOR);
    g.submit(0, [{ addr: 0x80000, len: 8, write: true }]);
    assert.equal(g.takeUsed(0).length, 1);
    assert.deepEqual(g.msiData(), []);
  });

  await t.step("INTx mode: ISR bit 0, read clears and lowers the line", () => {
    const { g } = rng();
    g.initVirtio(DEV, { msix: false });
    g.submit(0, [{ addr: 0x80000, len: 8, write: true }]);
    const gsi = g.bus.gsiOf(DEV)!;
    assert.equal(g.ctx.levels.get(gsi), true);
    assert.ok(g.cfgRead(DEV, CFG.STATUS, 2) & 0x8);
    assert.equal(g.readIsr(), ISR.QUEUE);
    assert.equal(g.ctx.levels.get(gsi), false);
    assert.equal(g.readIsr(), 0);
    // INTx disable bit masks the line even while pending.
    g.cfgWrite(
      DEV,
      CFG.COMMAND,
      2,
      COMMAND.MEMORY | COMMAND.BUS_MASTER | COMMAND.INTX_DISABLE,
    );
    g.submit(0, [{ addr: 0x80000, len: 8, write: true }]);
    assert.equal(g.ctx.levels.get(gsi), false);
    assert.ok(g.cfgRead(DEV, CFG.STATUS, 2) & 0x8);
  });

  await t.step("enabling MSI-X drops a pending INTx", () => {
    const { g } = rng();
    g.initVirtio(DEV, { msix: false });
    g.submit(0, [{ addr: 0x80000, len: 8, write: true }]);
    const gsi = g.bus.gsiOf(DEV)!;
    assert.equal(g.ctx.levels.get(gsi), true);
    g.enableMsix(DEV, 2);
    assert.equal(g.ctx.levels.get(gsi), false);
  });

  await t.step("avail NO_INTERRUPT suppresses the interrupt", () => {
    const { g } = rng();
    g.initVirtio(DEV);
    new DataView(g.ctx.memory.bytes.buffer).setUint16(
      g.queues[0].avail,
      VIRTQ.AVAIL_F_NO_INTERRUPT,
      true,
    );
    g.submit(0, [{ addr: 0x80000, len: 8, write: true }]);
    assert.equal(g.takeUsed(0).length, 1);
    assert.deepEqual(g.msiData(), []);
  });

  await t.step(
    "buffers made available before DRIVER_OK are used at DRIVER_OK",
    () => {
      const { fn, g } = rng();
      g.initVirtio(DEV, { driverOk: false });
      g.submit(0, [{ addr: 0x80000, len: 8, write: true }]);
      assert.equal(g.takeUsed(0).length, 0);
      assert.equal(fn.counters.ignoredNotifies, 1);
      g.setCommon(COMMON_CFG.DEVICE_STATUS, 1, 0x0f);
      assert.equal(g.takeUsed(0).length, 1);
    },
  );

  await t.step(
    "queue config: bad sizes ignored, locked once enabled, bad queue_select",
    () => {
      const { fn, g } = rng();
      g.initVirtio(DEV, { driverOk: false });
      g.setCommon(COMMON_CFG.QUEUE_SELECT, 2, 0);
      g.setCommon(COMMON_CFG.QUEUE_SIZE, 2, 4); // enabled: locked
      assert.equal(g.common(COMMON_CFG.QUEUE_SIZE, 2), 16);
      g.setCommon(COMMON_CFG.QUEUE_DESC, 4, 0);
      assert.equal(g.common(COMMON_CFG.QUEUE_DESC, 4), g.queues[0].desc);
      g.setCommon(COMMON_CFG.QUEUE_SELECT, 2, 7);
      assert.equal(g.common(COMMON_CFG.QUEUE_SIZE, 2), 0, "no such queue");
      g.setCommon(COMMON_CFG.QUEUE_SIZE, 2, 8);
      g.setCommon(COMMON_CFG.NUM_QUEUES, 2, 9); // read-only
      assert.equal(g.common(COMMON_CFG.NUM_QUEUES, 2), 1);
      g.setCommon(COMMON_CFG.DEVICE_STATUS + 1, 1, 5); // config_generation RO
      g.setCommon(COMMON_CFG.QUEUE_SELECT, 1, 0); // wrong width
      assert.ok(fn.counters.ignoredWrites >= 5);
      // A fresh (reset) device: sizes must be powers of two <= max.
      g.setCommon(COMMON_CFG.DEVICE_STATUS, 1, 0);
      g.setCommon(COMMON_CFG.QUEUE_SELECT, 2, 0);
      for (const bad of [0, 3, 32]) {
        g.setCommon(COMMON_CFG.QUEUE_SIZE, 2, bad);
        assert.equal(g.common(COMMON_CFG.QUEUE_SIZE, 2), 16);
      }
      g.setCommon(COMMON_CFG.QUEUE_SIZE, 2, 4);
      assert.equal(g.common(COMMON_CFG.QUEUE_SIZE, 2), 4);
    },
  );

  await t.step("64-bit queue address written with one 8-byte access", () => {
    const { g } = rng();
    g.findVirtioStructures(DEV);
    g.mmioWrite64(BAR + COMMON_CFG.QUEUE_DEVICE, 0x12345678, 0x9);
    assert.equal(g.common(COMMON_CFG.QUEUE_DEVICE, 4), 0x12345678);
    assert.equal(g.common(COMMON_CFG.QUEUE_DEVICE + 4, 4), 0x9);
  });

  await t.step("reset (status 0) clears status, queues and vectors", () => {
    const { fn, g } = rng();
    g.initVirtio(DEV);
    g.setCommon(COMMON_CFG.DEVICE_STATUS, 1, 0);
    assert.equal(fn.status, 0);
    assert.equal(
      g.common(COMMON_CFG.CONFIG_MSIX_VECTOR, 2),
      VIRTIO_MSI_NO_VECTOR,
    );
    g.setCommon(COMMON_CFG.QUEUE_SELECT, 2, 0);
    assert.equal(g.common(COMMON_CFG.QUEUE_ENABLE, 2), 0);
    assert.equal(
      g.common(COMMON_CFG.QUEUE_MSIX_VECTOR, 2),
      VIRTIO_MSI_NO_VECTOR,
    );
    assert.equal(g.common(COMMON_CFG.QUEUE_DESC, 4), 0);
    assert.equal(fn.driverFeatures, 0n);
    g.notify(0);
    assert.equal(fn.counters.ignoredNotifies, 1);
  });

  await t.step("queue enabled outside RAM -> DEVICE_NEEDS_RESET", () => {
    const { fn, g } = rng(1 << 20);
    g.initVirtio(DEV, { driverOk: false, ramBase: 0x10000 });
    g.setCommon(COMMON_CFG.DEVICE_STATUS, 1, 0);
    g.initVirtio(DEV, { driverOk: false, ramBase: (1 << 20) - 0x100 });
    assert.ok(fn.status & DEVICE_STATUS.DEVICE_NEEDS_RESET);
  });

  await t.step(
    "hostile ring -> NEEDS_RESET, config interrupt, later notifies ignored",
    () => {
      const { fn, g } = rng();
      g.initVirtio(DEV);
      const dv = new DataView(g.ctx.memory.bytes.buffer);
      const q = g.queues[0];
      dv.setUint16(q.desc + 12, VIRTQ.DESC_F_NEXT, true); // desc 0 -> desc 0 loop
      dv.setUint32(q.desc + 8, 4, true);
      dv.setUint16(q.avail + 2, 1, true);
      g.notify(0);
      assert.ok(
        g.common(COMMON_CFG.DEVICE_STATUS, 1) &
          DEVICE_STATUS.DEVICE_NEEDS_RESET,
      );
      assert.deepEqual(g.msiData(), [0x40], "config vector 0");
      assert.equal(fn.counters.deviceErrors, 1);
      assert.equal(
        g.ctx.logs.filter((l) => l.includes("needs reset")).length,
        1,
      );
      g.notify(0);
      assert.equal(fn.counters.deviceErrors, 1);
      // Driver writes can't clear NEEDS_RESET; only a reset does.
      g.setCommon(COMMON_CFG.DEVICE_STATUS, 1, 0x0f);
      assert.ok(fn.status & DEVICE_STATUS.DEVICE_NEEDS_RESET);
      g.setCommon(COMMON_CFG.DEVICE_STATUS, 1, 0);
      assert.equal(fn.status, 0);
      g.ctx.memory.bytes.fill(0, q.desc, q.used + 0x1000); // a fresh driver zeroes its rings
      assert.equal(g.initVirtio(DEV), 0x0f);
    },
  );

  await t.step("bus mastering off: notifications ignored", () => {
    const { fn, g } = rng();
    g.initVirtio(DEV);
    g.cfgWrite(DEV, CFG.COMMAND, 2, COMMAND.MEMORY);
    g.submit(0, [{ addr: 0x80000, len: 8, write: true }]);
    assert.equal(g.takeUsed(0).length, 0);
    assert.equal(fn.counters.ignoredNotifies, 1);
  });

  await t.step("PCI configuration access window (cap type 5)", () => {
    const { g } = rng();
    const p = g.capabilities(DEV).find(([p, id]) =>
      id === CAP_ID.VENDOR && g.cfgRead(DEV, p + 3, 1) === 5
    )![0];
    g.cfgWrite(DEV, p + PCI_CAP.BAR, 1, 0);
    g.cfgWrite(DEV, p + PCI_CAP.OFFSET, 4, COMMON_CFG.NUM_QUEUES);
    g.cfgWrite(DEV, p + PCI_CAP.LENGTH, 4, 2);
    assert.equal(g.cfgRead(DEV, p + PCI_CAP.PCI_CFG_DATA, 4) & 0xffff, 1);
    g.cfgWrite(DEV, p + PCI_CAP.OFFSET, 4, COMMON_CFG.DEVICE_STATUS);
    g.cfgWrite(DEV, p + PCI_CAP.LENGTH, 4, 1);
    g.cfgWrite(DEV, p + PCI_CAP.PCI_CFG_DATA, 4, DEVICE_STATUS.ACKNOWLEDGE);
    g.findVirtioStructures(DEV);
    assert.equal(
      g.common(COMMON_CFG.DEVICE_STATUS, 1),
      DEVICE_STATUS.ACKNOWLEDGE,
    );
    g.cfgWrite(DEV, p + PCI_CAP.OFFSET, 4, 0x7fff); // misaligned/oob: ignored
    g.cfgWrite(DEV, p + PCI_CAP.LENGTH, 4, 4);
    g.cfgWrite(DEV, p + PCI_CAP.PCI_CFG_DATA, 4, 0);
  });

  await t.step("odd BAR accesses are harmless", () => {
    const { g } = rng();
    g.initVirtio(DEV);
    for (
      const off of [0x1001, 0x2000, 0x3ffc, 0x4ffc, 0x5100, 0x6000, 0x7ffc]
    ) {
      g.mmioWrite(BAR + off, 4, 0xffffffff);
      g.mmioRead(BAR + off, 4);
    }
    g.mmioWrite(BAR + 0x4001, 1, 0xff);
    assert.equal(g.common(COMMON_CFG.DEVICE_STATUS, 1), 0x0f);
  });

  await t.step("PCI reset returns to power-on state", () => {
    const { fn, g } = rng();
    g.initVirtio(DEV);
    g.bus.reset();
    assert.equal(fn.status, 0);
    assert.equal(fn.msix.enabled, false);
    assert.equal(g.ctx.mapped.length, 0);
  });

  await t.step("randomised hostile queues never throw or hang (seeded)", () => {
    const rand = prng(0x5eed);
    let resets = 0;
    let processed = 0;
    for (let iter = 0; iter < 300; iter++) {
      const { fn, g } = rng(1 << 20);
      const indirect = rand() < 0.5;
      g.initVirtio(DEV, {
        features: (1n << 32n) | (indirect ? 1n << 28n : 0n),
      });
      const q = g.queues[0];
      const dv = new DataView(g.ctx.memory.bytes.buffer);
      const memSize = 1 << 20;
      const pick = (n: number) => Math.floor(rand() * n);
      const table = rand() < 0.3 ? 0x90000 : q.desc;
      for (let i = 0; i < (table === q.desc ? q.size : 64); i++) {
        const o = table + 16 * i;
        const r = rand();
        const addr = r < 0.7
          ? 0x80000 + pick(0x10000)
          : r < 0.9
          ? pick(memSize * 1.2)
          : pick(2 ** 32) * 2 ** pick(20);
        dv.setUint32(o, addr % 2 ** 32, true);
        dv.setUint32(o + 4, Math.floor(addr / 2 ** 32) >>> 0, true);
        dv.setUint32(o + 8, rand() < 0.9 ? pick(4096) : pick(2 ** 32), true);
        dv.setUint16(o + 12, pick(8), true);
        dv.setUint16(o + 14, rand() < 0.9 ? pick(q.size) : pick(65536), true);
      }
      if (table !== q.desc) {
        dv.setUint32(q.desc, table, true);
        dv.setUint32(q.desc + 8, 16 * pick(70), true);
        dv.setUint16(q.desc + 12, VIRTQ.DESC_F_INDIRECT, true);
      }
      for (let i = 0; i < q.size; i++) {
        dv.setUint16(
          q.avail + 4 + 2 * i,
          rand() < 0.9 ? pick(q.size) : pick(65536),
          true,
        );
      }
      const availIdx = rand() < 0.8 ? pick(q.size + 1) : pick(65536);
      dv.setUint16(q.avail + 2, availIdx, true);
      const t0 = performance.now();
      assert.doesNotThrow(() => g.notify(0));
      assert.ok(performance.now() - t0 < 1000, "bounded time");
      const used = dv.getUint16(q.used + 2, true);
      const needsReset = (fn.status & DEVICE_STATUS.DEVICE_NEEDS_RESET) !== 0;
      assert.ok(
        needsReset || used === availIdx,
        `iter ${iter}: used ${used} avail ${availIdx}`,
      );
      if (needsReset) resets++;
      else if (used > 0) processed++;
    }
    assert.ok(
      resets > 0 && processed > 0,
      `resets ${resets} processed ${processed}`,
    );
  });
});
