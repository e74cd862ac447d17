/**
 * Lifecycle round trips for every built-in device with state: drive a
 * device into a (seeded random) state, snapshot it through JSON, restore
 * into a fresh instance, and check identical snapshots and identical
 * guest-visible register reads. The IOAPIC and PIC have theirs in their
 * plugin tests; testdev, PIT and RTC in their device tests too.
 */
import assert from "node:assert/strict";
import type { DeviceState, Plugin, Region } from "../bus/types.ts";
import { FakeContext, readValue, writeValue } from "./testing/fake_context.ts";
import { prng } from "./testing/prng.ts";
import { serialPlugin } from "./serial/plugin.ts";
import { pvTimerPlugin } from "./pv_timer/plugin.ts";
import { fwCfgPlugin } from "./fw_cfg/plugin.ts";
import { pitPlugin } from "./pit/plugin.ts";
import { rtcPlugin } from "./rtc/plugin.ts";
import { testdevPlugin } from "./testdev/plugin.ts";
import { hpetPlugin } from "./hpet/plugin.ts";
import { acpiPlugin } from "./acpi/plugin.ts";
import { virtioRng } from "./virtio/rng.ts";
import { virtioBlk } from "./virtio/blk.ts";
import { GuestDriver } from "./virtio/testing/guest_driver.ts";
import { COMMON_CFG } from "./virtio/constants.ts";
import { MemoryBackend } from "./virtio/block_backend.ts";
import type { PciFunction } from "./pci/pci_function.ts";
import { restorePlugins, snapshotPlugins } from "../vmm/plugin_state.ts";

const viaJson = <T>(s: T): T => JSON.parse(JSON.stringify(s));

function pair<P extends Plugin>(make: () => P) {
  const a = make();
  const b = make();
  const ca = new FakeContext();
  const cb = new FakeContext();
  return { a, b, ca, cb, ra: a.setup(ca), rb: b.setup(cb) };
}

Deno.test("round trip: 16550 UART (seeded random registers and queue)", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const rand = prng(seed);
    const byte = () => Math.floor(rand() * 256);
    const { a, b, ca, cb, ra, rb } = pair(() => serialPlugin({}));
    const [r] = ra;
    writeValue(r, 3, 1, 0x80); // DLAB
    writeValue(r, 0, 1, byte());
    writeValue(r, 1, 1, byte());
    writeValue(r, 3, 1, byte() & 0x7f);
    writeValue(r, 1, 1, byte() & 0x0f);
    writeValue(r, 4, 1, byte() & 0x0f); // MCR (no loopback)
    writeValue(r, 7, 1, byte());
    writeValue(r, 2, 1, byte() & 0x01);
    a.enqueueInput(Array.from({ length: seed * 3 }, byte));
    const state = viaJson(a.snapshot());
    b.restore(state);
    assert.deepEqual(b.snapshot(), a.snapshot());
    assert.equal(cb.levels.get(4) ?? false, ca.levels.get(4) ?? false);
    // lockstep reads (RBR pops the queue in both) see the same bytes
    for (let i = 0; i < 2 * seed * 3 + 4; i++) {
      for (const off of [5, 0, 2, 6, 1, 3, 4, 7]) {
        assert.equal(readValue(rb[0], off, 1), readValue(r, off, 1), `+${off}`);
      }
    }
    assert.throws(
      () => b.restore({ ...state, version: 2 } as never),
      TypeError,
    );
    assert.throws(() => b.restore({ ...state, ier: 999 } as never), TypeError);
  }
});

Deno.test("round trip: PV timer period", () => {
  const { a, b, cb, ra, rb } = pair(() => pvTimerPlugin({}));
  writeValue(ra[0], 0, 4, 1234);
  const state = viaJson(a.snapshot());
  b.restore(state);
  assert.deepEqual(b.snapshot(), a.snapshot());
  assert.equal(readValue(rb[0], 0, 4), 1234);
  assert.deepEqual(cb.tickSources[0].arms, [1_234_000]);
  b.restore({ version: 1, periodUs: 0 });
  assert.equal(cb.tickSources[0].armed, false);
  assert.throws(() => b.restore({ version: 1, periodUs: 1 }), TypeError);
});

Deno.test("round trip: fw_cfg selector and offset", () => {
  const make = () => fwCfgPlugin({ ramSize: 1 << 20, cpus: 1, cmdline: "x" });
  const { a, b, ra, rb } = pair(make);
  writeValue(ra[0], 0, 2, 0); // signature
  readValue(ra[0], 1, 1);
  readValue(ra[0], 1, 1);
  b.restore(viaJson(a.snapshot()));
  assert.deepEqual(b.snapshot(), a.snapshot());
  assert.equal(readValue(rb[0], 1, 1), "M".charCodeAt(0));
  assert.equal(readValue(ra[0], 1, 1), "M".charCodeAt(0));
  assert.throws(
    () => b.restore({ version: 1, key: 1 << 20, offset: 0 } as never),
    TypeError,
  );
});

Deno.test("round trip: PIT, RTC and testdev plugins", () => {
  const pit = pair(() => pitPlugin({}));
  writeValue(pit.ra[0], 3, 1, 0x34); // ch0 mode 2, lo/hi
  writeValue(pit.ra[0], 0, 1, 0x9c);
  writeValue(pit.ra[0], 0, 1, 0x2e);
  pit.ca.clock.advance(1_000_000);
  pit.cb.clock.advance(1_000_000);
  pit.b.restore(viaJson(pit.a.snapshot()));
  assert.deepEqual(pit.b.snapshot(), pit.a.snapshot());
  writeValue(pit.ra[0], 3, 1, 0x00); // latch ch0
  writeValue(pit.rb[0], 3, 1, 0x00);
  assert.equal(readValue(pit.rb[0], 0, 1), readValue(pit.ra[0], 0, 1));

  const rtc = pair(() => rtcPlugin({ hostTimeMs: () => Date.UTC(2024, 1, 2) }));
  writeValue(rtc.ra[0], 0, 1, 0x0b);
  writeValue(rtc.ra[0], 1, 1, 0x06); // binary, 24h
  writeValue(rtc.ra[0], 0, 1, 0x0a);
  rtc.b.restore(viaJson(rtc.a.snapshot()));
  assert.deepEqual(rtc.b.snapshot(), rtc.a.snapshot());
  for (const reg of [0x0a, 0x0b, 0x00, 0x04, 0x32]) {
    writeValue(rtc.ra[0], 0, 1, reg);
    writeValue(rtc.rb[0], 0, 1, reg);
    assert.equal(readValue(rtc.rb[0], 1, 1), readValue(rtc.ra[0], 1, 1));
  }

  const td = pair(() => testdevPlugin({}));
  writeValue(td.ra[0], 5, 1, 1);
  td.b.restore(viaJson(td.a.snapshot()));
  assert.deepEqual(td.b.snapshot(), td.a.snapshot());
  assert.equal(td.cb.levels.get(5), true);
});

Deno.test("round trip: HPET and ACPI PM", () => {
  const h = pair(() => hpetPlugin({}));
  const r = h.ra[0];
  writeValue(r, 0x100, 4, (1 << 1) | (1 << 2) | (20 << 9)); // T0 level, pin 20
  writeValue(r, 0x108, 4, 500);
  writeValue(r, 0x10c, 4, 0);
  writeValue(r, 0x120, 4, (1 << 2) | (1 << 3) | (1 << 6)); // T1 periodic
  writeValue(r, 0x128, 4, 300);
  writeValue(r, 0x10, 4, 1); // enable
  h.ca.clock.advance(6_000); // 600 ticks: T0 matched, its line is high
  h.a.service!(h.ca.clock.now());
  assert.equal(h.ca.levels.get(20), true);
  h.b.restore(viaJson(h.a.snapshot()));
  assert.deepEqual(h.b.snapshot(), h.a.snapshot());
  assert.equal(h.cb.levels.get(20), true, "the level line is driven again");
  for (const off of [0x10, 0x20, 0xf0, 0x100, 0x108, 0x120, 0x128]) {
    assert.equal(
      readValue(h.rb[0], off, 4),
      readValue(r, off, 4),
      `0x${off.toString(16)}`,
    );
  }
  assert.throws(() => h.b.restore({ version: 2 } as never), TypeError);

  const a = pair(() =>
    acpiPlugin({
      base: 0xf0000,
      cpus: 1,
      ioapic: { id: 0, address: 0xfec00000, gsiBase: 0 },
      lapicAddress: 0xfee00000,
      sciIrq: 9,
      pmBase: 0xb000,
      hpet: { address: 0xfed00000, blockId: 0x8086a201 },
      overrides: [],
    })
  );
  const io = (rs: readonly Region[]) =>
    rs.find((q) => q.range.space === "pio")!;
  writeValue(io(a.ra), 2, 2, 0x0121); // PM1_EN
  a.ca.clock.advance(1_000_000);
  a.b.restore(viaJson(a.a.snapshot()));
  assert.deepEqual(a.b.snapshot(), a.a.snapshot());
  assert.equal(readValue(io(a.rb), 2, 2), 0x0121);
  assert.equal(
    readValue(io(a.rb), 8, 4),
    readValue(io(a.ra), 8, 4),
    "PM timer",
  );
});

function virtioPair(
  make: () => PciFunction,
) {
  const a = new GuestDriver([{ device: 1, function: make() }]);
  const b = new GuestDriver([{ device: 1, function: make() }]);
  a.placeBar(1, 0xc0000000);
  a.initVirtio(1);
  return { a, b };
}

for (
  const [name, make] of [
    ["virtio-rng", () => virtioRng()],
    ["virtio-blk", () => virtioBlk({ backend: new MemoryBackend(4096) })],
  ] as const
) {
  Deno.test(`round trip: PCI bus + ${name} (config, MSI-X, queues)`, () => {
    const { a, b } = virtioPair(make as never);
    if (name === "virtio-rng") {
      a.submit(0, [{ addr: 0x90000, len: 64, write: true }]);
      assert.equal(a.takeUsed(0).length, 1);
    }
    const state = viaJson(a.bus.snapshot());
    b.ctx.memory.bytes.set(a.ctx.memory.bytes); // RAM is the VM's half
    b.bus.restore(state);
    assert.deepEqual(b.bus.snapshot(), a.bus.snapshot());
    // same config space and common configuration through the guest's eyes
    for (let off = 0; off < 0x40; off += 4) {
      assert.equal(
        b.cfgRead(1, off),
        a.cfgRead(1, off),
        `cfg 0x${off.toString(16)}`,
      );
    }
    b.placeBar(1, 0xc0000000); // the driver-side view: same address as restored
    b.findVirtioStructures(1);
    for (
      const [off, size] of [
        [COMMON_CFG.DEVICE_STATUS, 1],
        [COMMON_CFG.NUM_QUEUES, 2],
        [COMMON_CFG.CONFIG_MSIX_VECTOR, 2],
        [COMMON_CFG.QUEUE_SIZE, 2],
        [COMMON_CFG.QUEUE_ENABLE, 2],
        [COMMON_CFG.QUEUE_MSIX_VECTOR, 2],
        [COMMON_CFG.QUEUE_DESC, 4],
      ] as const
    ) {
      assert.equal(b.common(off, size), a.common(off, size), `common +${off}`);
    }
    assert.throws(
      () => b.bus.restore({ ...state, functions: state.functions.slice(1) }),
      TypeError,
    );
    const bad = viaJson(state);
    (bad.functions[1].state as { version: number }).version = 7;
    const before = b.bus.snapshot();
    assert.throws(() => b.bus.restore(bad), TypeError);
    assert.deepEqual(
      b.bus.snapshot(),
      before,
      "a refused state changes nothing",
    );
  });
}

Deno.test("VM device states: by name, all-or-nothing", () => {
  let x = 1;
  let y = 2;
  const dev = (name: string, get: () => number, set: (v: number) => void) => ({
    name,
    setup: (): Region[] => [],
    snapshot: (): DeviceState & { v: number } => ({ version: 1, v: get() }),
    restore(s: DeviceState) {
      const v = (s as { v?: unknown }).v;
      if (s.version !== 1 || typeof v !== "number") throw new TypeError("bad");
      set(v);
    },
  });
  const plugins = [
    dev("x", () => x, (v) => x = v),
    dev("y", () => y, (v) => y = v),
    { name: "stateless", setup: (): Region[] => [] },
  ];
  const saved = snapshotPlugins(plugins);
  assert.deepEqual(saved, { x: { version: 1, v: 1 }, y: { version: 1, v: 2 } });
  x = 10;
  y = 20;
  restorePlugins(plugins, saved);
  assert.deepEqual([x, y], [1, 2]);
  x = 10;
  assert.throws(() =>
    restorePlugins(plugins, {
      x: { version: 1, v: 5 } as DeviceState,
      y: { version: 9 },
    })
  );
  assert.equal(x, 10, "x rolled back after y refused");
  assert.throws(
    () => restorePlugins(plugins, { x: saved.x }),
    /no device state/,
  );
  assert.throws(
    () => restorePlugins(plugins, { ...saved, z: saved.x }),
    /no such/,
  );
});
