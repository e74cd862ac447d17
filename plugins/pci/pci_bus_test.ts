import assert from "node:assert/strict";
import type { Region } from "../../bus/types.ts";
import { access, readValue, writeValue } from "../testing/fake_context.ts";
import { FakeIrqChipContext } from "../testing/fake_irqchip.ts";
import { ConfigSpace } from "./config_space.ts";
import { defaultIntxGsi, PciBus, pciBusPlugin } from "./pci_bus.ts";
import type { PciFunction, PciHost } from "./pci_function.ts";
import { CFG, COMMAND, STATUS } from "./registers.ts";

class TestFunction implements PciFunction {
  readonly config: ConfigSpace;
  host: PciHost | null = null;
  close?: () => void;
  readonly accesses: string[] = [];
  constructor(readonly name: string, pin = 1) {
    this.config = new ConfigSpace({
      vendorId: 0x1234,
      deviceId: 0x11,
      classCode: 0xff0000,
      interruptPin: pin,
    });
    this.config.defineBar(0, { kind: "mem64", size: 0x4000 });
    this.config.defineBar(2, { kind: "mem32", size: 0x1000 });
    this.config.defineBar(4, { kind: "io", size: 32 });
  }
  attach(host: PciHost): void {
    this.host = host;
  }
  barRead(bar: number, offset: number, data: Uint8Array): void {
    this.accesses.push(`r${bar}:${offset}`);
    data.fill(bar + 1);
  }
  barWrite(bar: number, offset: number, data: Uint8Array): void {
    this.accesses.push(`w${bar}:${offset}:${data[0]}`);
  }
}

function rig(extra: { gsi?: number } = {}) {
  const ctx = new FakeIrqChipContext();
  const a = new TestFunction("a");
  const b = new TestFunction("b");
  const c = new TestFunction("c", 0);
  const bus = new PciBus({
    devices: [
      { device: 1, function: a, gsi: extra.gsi },
      { device: 5, function: b },
      { device: 5, fn: 2, function: c },
    ],
  });
  const [addrPort, dataPort, ecam] = bus.setup(ctx);
  const cf8 = (dev: number, fn: number, off: number) =>
    writeValue(
      addrPort,
      0,
      4,
      0x80000000 | (dev << 11) | (fn << 8) | (off & 0xfc),
    );
  const pioRead = (dev: number, fn: number, off: number, size: 1 | 2 | 4) => {
    cf8(dev, fn, off);
    return readValue(dataPort, off & 3, size);
  };
  const pioWrite = (
    dev: number,
    fn: number,
    off: number,
    size: 1 | 2 | 4,
    v: number,
  ) => {
    cf8(dev, fn, off);
    writeValue(dataPort, off & 3, size, v);
  };
  const ecamOff = (dev: number, fn: number, off: number) =>
    (dev << 15) | (fn << 12) | off;
  const ecamRead = (dev: number, fn: number, off: number, size: 1 | 2 | 4) =>
    readValue(ecam, ecamOff(dev, fn, off), size);
  const ecamWrite = (
    dev: number,
    fn: number,
    off: number,
    size: 1 | 2 | 4,
    v: number,
  ) => writeValue(ecam, ecamOff(dev, fn, off), size, v);
  return {
    ctx,
    a,
    b,
    c,
    bus,
    addrPort,
    dataPort,
    ecam,
    pioRead,
    pioWrite,
    ecamRead,
    ecamWrite,
  };
}

const findMapped = (
  ctx: FakeIrqChipContext,
  space: string,
  base: number,
): Region | undefined =>
  ctx.mapped.find((r) => r.range.space === space && r.range.base === base);

Deno.test("PciBus", async (t) => {
  await t.step("regions: 0xCF8, 0xCFC, ECAM at 0xB0000000", () => {
    const { addrPort, dataPort, ecam } = rig();
    assert.deepEqual(addrPort.range, { space: "pio", base: 0xcf8, length: 4 });
    assert.deepEqual(dataPort.range, { space: "pio", base: 0xcfc, length: 4 });
    assert.deepEqual(ecam.range, {
      space: "mmio",
      base: 0xb0000000,
      length: 1 << 20,
    });
    const none = new PciBus({
      devices: [],
      ecamBase: null,
      configPorts: false,
    });
    assert.equal(none.setup(new FakeIrqChipContext()).length, 0);
    assert.equal(pciBusPlugin({ devices: [] }).name, "pci");
  });

  await t.step("host bridge at 00:00.0; absent functions read all-ones", () => {
    const { pioRead, ecamRead } = rig();
    assert.equal(pioRead(0, 0, 0, 4), 0x29c08086);
    assert.equal(ecamRead(0, 0, 0, 4), 0x29c08086);
    assert.equal(pioRead(2, 0, 0, 4), 0xffffffff);
    assert.equal(pioRead(0, 1, 0, 2), 0xffff);
    assert.equal(ecamRead(31, 7, 0, 4), 0xffffffff);
    assert.equal(ecamRead(2, 0, 0x2, 1), 0xff);
  });

  await t.step(
    "CF8 latch: dword only, reserved bits zero; enable bit and bus checked",
    () => {
      const { addrPort, dataPort, pioRead, bus } = rig();
      writeValue(addrPort, 0, 4, 0xffffffff);
      assert.equal(readValue(addrPort, 0, 4), 0x80fffffc);
      writeValue(addrPort, 1, 1, 0x06); // 0xCF9 byte: not ours
      assert.equal(readValue(addrPort, 0, 4), 0x80fffffc);
      assert.ok(bus.counters.ignoredAccesses >= 1);
      writeValue(addrPort, 0, 4, 0x00000800); // device 1, enable clear
      assert.equal(readValue(dataPort, 0, 4), 0xffffffff);
      writeValue(addrPort, 0, 4, 0x80010800); // bus 1
      assert.equal(readValue(dataPort, 0, 4), 0xffffffff);
      assert.equal(pioRead(1, 0, 0, 4), 0x00111234);
    },
  );

  await t.step(
    "CF8/CFC and ECAM see the same space at every width/offset",
    () => {
      const { pioRead, pioWrite, ecamRead, ecamWrite } = rig();
      for (let off = 0; off < 0x40; off++) {
        for (const size of [1, 2, 4] as const) {
          if ((off & 3) + size > 4) continue;
          assert.equal(
            pioRead(5, 0, off, size),
            ecamRead(5, 0, off, size),
            `${size}@${off}`,
          );
        }
      }
      pioWrite(1, 0, CFG.INTERRUPT_LINE, 1, 0x0a);
      assert.equal(ecamRead(1, 0, CFG.INTERRUPT_LINE, 1), 0x0a);
      ecamWrite(1, 0, CFG.COMMAND + 1, 1, 0x04);
      assert.equal(pioRead(1, 0, CFG.COMMAND, 2), COMMAND.INTX_DISABLE);
      pioWrite(1, 0, 0x12, 2, 0xc000); // word write to the upper half of BAR 0
      assert.equal(ecamRead(1, 0, 0x10, 4), 0xc0000004);
      assert.equal(
        ecamRead(1, 0, 0x100, 4),
        0,
        "extended space of a present function",
      );
    },
  );

  await t.step(
    "multi-function bit set on function 0 when function 2 exists",
    () => {
      const { pioRead } = rig();
      assert.equal(pioRead(5, 0, CFG.HEADER_TYPE, 1), 0x80);
      assert.equal(pioRead(5, 2, 0, 2), 0x1234);
      assert.equal(pioRead(1, 0, CFG.HEADER_TYPE, 1), 0);
    },
  );

  await t.step(
    "BARs map only with decoding on and a real address, and move",
    () => {
      const { ctx, a, pioWrite, pioRead } = rig();
      pioWrite(1, 0, 0x10, 4, 0xc0000000);
      pioWrite(1, 0, 0x14, 4, 0);
      pioWrite(1, 0, 0x18, 4, 0xc0010000);
      pioWrite(1, 0, 0x20, 4, 0xc000);
      assert.equal(ctx.mapped.length, 0, "decoding off");
      pioWrite(1, 0, CFG.COMMAND, 2, COMMAND.MEMORY);
      assert.ok(findMapped(ctx, "mmio", 0xc0000000));
      assert.ok(findMapped(ctx, "mmio", 0xc0010000));
      assert.equal(ctx.mapped.length, 2, "I/O decoding still off");
      pioWrite(1, 0, CFG.COMMAND, 2, COMMAND.MEMORY | COMMAND.IO);
      const io = findMapped(ctx, "pio", 0xc000)!;
      assert.equal(io.range.length, 32);
      // Accesses reach the function with BAR-relative offsets.
      const bar0 = findMapped(ctx, "mmio", 0xc0000000)!;
      bar0.write(access(0xc0000010, 0x10, 4), new Uint8Array([7, 0, 0, 0]));
      assert.equal(readValue(io, 3, 1), 5);
      assert.deepEqual(a.accesses, ["w0:16:7", "r4:3"]);
      // Sizing BAR 2 (all-ones) unmaps it; restoring maps it back.
      pioWrite(1, 0, 0x18, 4, 0xffffffff);
      assert.equal(pioRead(1, 0, 0x18, 4), 0xfffff000);
      assert.equal(findMapped(ctx, "mmio", 0xfffff000), undefined);
      assert.equal(ctx.mapped.length, 2);
      pioWrite(1, 0, 0x18, 4, 0xd0000000);
      assert.ok(findMapped(ctx, "mmio", 0xd0000000));
      // Move BAR 0 above 4 GiB in two halves.
      pioWrite(1, 0, 0x14, 4, 0x1);
      assert.ok(findMapped(ctx, "mmio", 0x1_c0000000));
      assert.equal(findMapped(ctx, "mmio", 0xc0000000), undefined);
      // Memory decoding off unmaps memory BARs only.
      pioWrite(1, 0, CFG.COMMAND, 2, COMMAND.IO);
      assert.deepEqual(ctx.mapped.map((r) => r.range.space), ["pio"]);
      pioWrite(1, 0, CFG.COMMAND, 2, 0);
      assert.equal(ctx.mapped.length, 0);
    },
  );

  await t.step("64-bit BAR mid-sizing of the high dword is not mapped", () => {
    const { ctx, pioWrite } = rig();
    pioWrite(1, 0, CFG.COMMAND, 2, COMMAND.MEMORY);
    pioWrite(1, 0, 0x10, 4, 0xc0000000);
    assert.ok(findMapped(ctx, "mmio", 0xc0000000));
    pioWrite(1, 0, 0x14, 4, 0xffffffff);
    assert.equal(ctx.mapped.length, 0);
    pioWrite(1, 0, 0x14, 4, 0);
    assert.ok(findMapped(ctx, "mmio", 0xc0000000));
  });

  await t.step("I/O BAR beyond 64 KiB is not mapped", () => {
    const { ctx, pioWrite } = rig();
    pioWrite(1, 0, CFG.COMMAND, 2, COMMAND.IO);
    pioWrite(1, 0, 0x20, 4, 0x10000);
    assert.equal(ctx.mapped.length, 0);
  });

  await t.step(
    "overlapping BARs: logged, counted, left unmapped, no throw",
    () => {
      const { ctx, bus, pioWrite } = rig();
      for (const dev of [1, 5]) {
        pioWrite(dev, 0, 0x18, 4, 0xc0000000);
        pioWrite(dev, 0, CFG.COMMAND, 2, COMMAND.MEMORY);
      }
      assert.equal(ctx.mapped.length, 1);
      assert.equal(bus.counters.mapFailures, 1);
      assert.ok(ctx.logs.some((l) => l.includes("not mapped")));
      pioWrite(5, 0, CFG.INTERRUPT_LINE, 1, 3); // unrelated write: no retry spam
      assert.equal(bus.counters.mapFailures, 1);
      pioWrite(1, 0, CFG.COMMAND, 2, 0); // free the address...
      pioWrite(5, 0, 0x18, 4, 0xc0000000); // ...and rewrite: now maps
      assert.equal(ctx.mapped.length, 1);
      assert.equal(bus.counters.mapFailures, 1);
    },
  );

  await t.step("INTx: routed GSI, status bit 3, disable bit, wired-OR", () => {
    const { ctx, a, b, bus, pioRead, pioWrite } = rig();
    assert.equal(bus.gsiOf(1), defaultIntxGsi(1, 1));
    assert.equal(bus.gsiOf(1), 17);
    assert.equal(bus.gsiOf(5), 17, "device 5 INTA swizzles onto the same GSI");
    assert.equal(bus.gsiOf(5, 2), null, "no pin");
    assert.equal(pioRead(1, 0, CFG.INTERRUPT_LINE, 1), 17);
    a.host!.setIntx(true);
    assert.equal(ctx.levels.get(17), true);
    assert.ok(pioRead(1, 0, CFG.STATUS, 2) & STATUS.INTERRUPT);
    b.host!.setIntx(true);
    a.host!.setIntx(false);
    assert.equal(ctx.levels.get(17), true, "b still asserts");
    assert.equal(pioRead(1, 0, CFG.STATUS, 2) & STATUS.INTERRUPT, 0);
    pioWrite(5, 0, CFG.COMMAND, 2, COMMAND.INTX_DISABLE);
    assert.equal(ctx.levels.get(17), false, "disabled: line drops");
    assert.ok(pioRead(5, 0, CFG.STATUS, 2) & STATUS.INTERRUPT, "still pending");
    pioWrite(5, 0, CFG.COMMAND, 2, 0);
    assert.equal(ctx.levels.get(17), true);
    b.host!.setIntx(false);
    assert.equal(ctx.levels.get(17), false);
    const levelEvents = ctx.events.filter((e) => e.kind === "level");
    assert.equal(levelEvents.length, 4, "line toggles only on OR changes");
  });

  await t.step("explicit GSI", () => {
    const { ctx, a, bus } = rig({ gsi: 11 });
    assert.equal(bus.gsiOf(1), 11);
    a.host!.setIntx(true);
    assert.equal(ctx.levels.get(11), true);
  });

  await t.step("reset unmaps, drops INTx, restores interrupt line", () => {
    const { ctx, a, bus, pioWrite, pioRead } = rig();
    pioWrite(1, 0, 0x18, 4, 0xc0000000);
    pioWrite(1, 0, CFG.COMMAND, 2, COMMAND.MEMORY);
    a.host!.setIntx(true);
    bus.reset();
    assert.equal(ctx.mapped.length, 0);
    assert.equal(ctx.levels.get(17), false);
    assert.equal(pioRead(1, 0, 0x18, 4), 0);
    assert.equal(pioRead(1, 0, CFG.INTERRUPT_LINE, 1), 17);
  });

  await t.step("throwing function handlers are caught and counted", () => {
    const ctx = new FakeIrqChipContext();
    const f = new TestFunction("bad");
    f.barRead = () => {
      throw new Error("boom");
    };
    const bus = new PciBus({ devices: [{ device: 1, function: f }] });
    const [addrPort, dataPort] = bus.setup(ctx);
    writeValue(addrPort, 0, 4, 0x80000800 | 0x18);
    writeValue(dataPort, 0, 4, 0xc0000000);
    writeValue(addrPort, 0, 4, 0x80000800 | 0x04);
    writeValue(dataPort, 0, 2, COMMAND.MEMORY);
    const r = findMapped(ctx, "mmio", 0xc0000000)!;
    assert.doesNotThrow(() => readValue(r, 0, 4));
    assert.equal(bus.counters.handlerErrors, 1);
  });

  await t.step("host configuration errors throw at construction", () => {
    const f = () => new TestFunction("x");
    assert.throws(() =>
      new PciBus({ devices: [{ device: 0, function: f() }] })
    );
    assert.throws(() =>
      new PciBus({ devices: [{ device: 32, function: f() }] })
    );
    assert.throws(() =>
      new PciBus({
        devices: [{ device: 3, function: f() }, { device: 3, function: f() }],
      })
    );
    assert.throws(() =>
      new PciBus({ devices: [{ device: 3, fn: 1, function: f() }] })
    );
  });

  await t.step("close unmaps and closes functions", () => {
    const { ctx, a, bus, pioWrite } = rig();
    let closed = 0;
    a.close = () => closed++;
    pioWrite(1, 0, 0x18, 4, 0xc0000000);
    pioWrite(1, 0, CFG.COMMAND, 2, COMMAND.MEMORY);
    bus.close();
    assert.equal(ctx.mapped.length, 0);
    assert.equal(closed, 1);
  });
});
