/**
 * A test harness acting as the guest: it enumerates a {@link PciBus}
 * through port 0xCF8/0xCFC, places BARs, enables MSI-X and drives a
 * virtio device through its capabilities, with virtqueues laid out in a
 * {@link FakeIrqChipContext}'s RAM. Test-only; nothing here touches KVM.
 *
 * @module
 */
import type { Region } from "../../../bus/types.ts";
import { access, readValue, writeValue } from "../../testing/fake_context.ts";
import { FakeIrqChipContext } from "../../testing/fake_irqchip.ts";
import { PciBus, type PciSlot } from "../../pci/pci_bus.ts";
import { CAP_ID, CFG, COMMAND, MSIX } from "../../pci/registers.ts";
import { COMMON_CFG, DEVICE_STATUS, PCI_CAP, VIRTQ } from "../constants.ts";

/**
 * Where a queue lives in guest RAM and how far the driver got.
 *
 * @example
 * ```ts
 * import type { DriverQueue } from "./guest_driver.ts";
 * const pending = (q: DriverQueue) => (q.availIdx - q.lastUsed) & 0xffff;
 * ```
 */
export interface DriverQueue {
  size: number;
  desc: number;
  avail: number;
  used: number;
  nextDesc: number;
  availIdx: number;
  lastUsed: number;
  notifyAddr: number;
}

/**
 * One buffer of a chain to submit.
 *
 * @example
 * ```ts
 * import type { GuestBuffer } from "./guest_driver.ts";
 * const b: GuestBuffer = { addr: 0x80000, len: 512, write: true };
 * ```
 */
export interface GuestBuffer {
  /** Guest-physical address. */
  readonly addr: number;
  /** Length. */
  readonly len: number;
  /** Device-writable. */
  readonly write?: boolean;
}

/**
 * The guest side of a virtio-over-PCI test.
 *
 * @example
 * ```ts
 * import { GuestDriver } from "./guest_driver.ts";
 * import { virtioRng } from "../rng.ts";
 * const g = new GuestDriver([{ device: 1, function: virtioRng() }]);
 * g.placeBar(1, 0xc0000000);
 * g.initVirtio(1);
 * ```
 */
export class GuestDriver {
  /** The recording context (RAM, MSIs, mapped BARs). */
  readonly ctx: FakeIrqChipContext;
  /** The bus under test. */
  readonly bus: PciBus;
  /** Regions claimed by the bus at setup (0xCF8, 0xCFC, ECAM). */
  readonly regions: readonly Region[];
  /** Driver-side queue state per queue index. */
  readonly queues: DriverQueue[] = [];
  #common = 0;
  #notifyBase = 0;
  #notifyMul = 0;
  #isr = 0;
  #device = 0;
  #bar = 0;

  /** Build a bus with `devices` on a FakeContext with `memSize` bytes of RAM. */
  constructor(devices: readonly PciSlot[], memSize = 4 << 20) {
    this.ctx = new FakeIrqChipContext(memSize);
    this.bus = new PciBus({ devices });
    this.regions = this.bus.setup(this.ctx);
  }

  /** Config read through mechanism #1. */
  cfgRead(device: number, offset: number, size: 1 | 2 | 4 = 4, fn = 0): number {
    writeValue(
      this.regions[0],
      0,
      4,
      0x80000000 | (device << 11) | (fn << 8) | (offset & 0xfc),
    );
    return readValue(this.regions[1], offset & 3, size);
  }

  /** Config write through mechanism #1. */
  cfgWrite(
    device: number,
    offset: number,
    size: 1 | 2 | 4,
    value: number,
    fn = 0,
  ): void {
    writeValue(
      this.regions[0],
      0,
      4,
      0x80000000 | (device << 11) | (fn << 8) | (offset & 0xfc),
    );
    writeValue(this.regions[1], offset & 3, size, value);
  }

  /** Find the mapped region containing `addr`. */
  regionAt(addr: number): Region | undefined {
    return this.ctx.mapped.find((r) =>
      r.range.space === "mmio" && addr >= r.range.base &&
      addr < r.range.base + r.range.length
    );
  }

  /** MMIO read (must hit a mapped BAR). */
  mmioRead(addr: number, size: 1 | 2 | 4): number {
    const r = this.regionAt(addr);
    if (!r) throw new Error(`nothing mapped at 0x${addr.toString(16)}`);
    return readValue(r, addr - r.range.base, size);
  }

  /** MMIO write (must hit a mapped BAR). */
  mmioWrite(addr: number, size: 1 | 2 | 4, value: number): void {
    const r = this.regionAt(addr);
    if (!r) throw new Error(`nothing mapped at 0x${addr.toString(16)}`);
    writeValue(r, addr - r.range.base, size, value);
  }

  /** 8-byte MMIO write as one access. */
  mmioWrite64(addr: number, lo: number, hi: number): void {
    const r = this.regionAt(addr)!;
    const d = new Uint8Array(8);
    const dv = new DataView(d.buffer);
    dv.setUint32(0, lo, true);
    dv.setUint32(4, hi, true);
    r.write(access(addr, addr - r.range.base, 8), d);
  }

  /** Program 64-bit BAR 0 of `device` at `base` and enable memory + bus mastering. */
  placeBar(device: number, base: number): void {
    this.cfgWrite(device, CFG.BAR0, 4, base % 2 ** 32);
    this.cfgWrite(device, CFG.BAR0 + 4, 4, Math.floor(base / 2 ** 32));
    this.cfgWrite(device, CFG.COMMAND, 2, COMMAND.MEMORY | COMMAND.BUS_MASTER);
    this.#device = device;
    this.#bar = base;
  }

  /** Walk the capability list of `device`: [offset, id][]. */
  capabilities(device: number): [number, number][] {
    const out: [number, number][] = [];
    let p = this.cfgRead(device, CFG.CAPABILITIES_POINTER, 1);
    while (p !== 0 && out.length < 48) {
      out.push([p, this.cfgRead(device, p, 1)]);
      p = this.cfgRead(device, p + 1, 1);
    }
    return out;
  }

  /** Locate the virtio structures from the vendor capabilities. */
  findVirtioStructures(device: number): void {
    for (const [p, id] of this.capabilities(device)) {
      if (id !== CAP_ID.VENDOR) continue;
      const type = this.cfgRead(device, p + PCI_CAP.CFG_TYPE, 1);
      const off = this.cfgRead(device, p + PCI_CAP.OFFSET, 4);
      if (type === 1) this.#common = this.#bar + off;
      if (type === 2) {
        this.#notifyBase = this.#bar + off;
        this.#notifyMul = this.cfgRead(
          device,
          p + PCI_CAP.NOTIFY_OFF_MULTIPLIER,
          4,
        );
      }
      if (type === 3) this.#isr = this.#bar + off;
    }
  }

  /** Common config read. */
  common(off: number, size: 1 | 2 | 4): number {
    return this.mmioRead(this.#common + off, size);
  }

  /** Common config write. */
  setCommon(off: number, size: 1 | 2 | 4, value: number): void {
    this.mmioWrite(this.#common + off, size, value);
  }

  /** Read (and clear) the ISR. */
  readIsr(): number {
    return this.mmioRead(this.#isr, 1);
  }

  /** The MSI-X capability offset of `device`. */
  msixCap(device: number): number {
    return this.capabilities(device).find(([, id]) => id === CAP_ID.MSIX)![0];
  }

  /**
   * Enable MSI-X on `device` with entry v -> 0xFEE00000 / data 0x40 + v,
   * all unmasked. The table is located through the capability.
   */
  enableMsix(device: number, vectors: number): void {
    const cap = this.msixCap(device);
    const table = this.cfgRead(device, cap + MSIX.TABLE, 4) & ~7;
    for (let v = 0; v < vectors; v++) {
      const e = this.#bar + table + 16 * v;
      this.mmioWrite(e, 4, 0xfee00000);
      this.mmioWrite(e + 4, 4, 0);
      this.mmioWrite(e + 8, 4, 0x40 + v);
      this.mmioWrite(e + 12, 4, 0);
    }
    this.cfgWrite(device, cap + MSIX.CONTROL, 2, MSIX.CONTROL_ENABLE);
  }

  /**
   * Driver initialisation (virtio 1.2 §3.1.1) up to DRIVER_OK: features
   * `features` (default VERSION_1 only), queues laid out from `ramBase`,
   * queue i on MSI-X vector i + 1 and config on vector 0 (when `msix`).
   * Returns the final status.
   */
  initVirtio(
    device: number,
    options: {
      features?: bigint;
      msix?: boolean;
      ramBase?: number;
      driverOk?: boolean;
    } = {},
  ): number {
    this.findVirtioStructures(device);
    const msix = options.msix ?? true;
    const nq = this.common(COMMON_CFG.NUM_QUEUES, 2);
    if (msix) this.enableMsix(device, nq + 1);
    this.setCommon(COMMON_CFG.DEVICE_STATUS, 1, 0);
    this.setCommon(COMMON_CFG.DEVICE_STATUS, 1, DEVICE_STATUS.ACKNOWLEDGE);
    this.setCommon(
      COMMON_CFG.DEVICE_STATUS,
      1,
      DEVICE_STATUS.ACKNOWLEDGE | DEVICE_STATUS.DRIVER,
    );
    const f = options.features ?? 1n << 32n;
    for (const sel of [0, 1]) {
      this.setCommon(COMMON_CFG.DRIVER_FEATURE_SELECT, 4, sel);
      this.setCommon(
        COMMON_CFG.DRIVER_FEATURE,
        4,
        Number((f >> BigInt(32 * sel)) & 0xffffffffn),
      );
    }
    this.setCommon(
      COMMON_CFG.DEVICE_STATUS,
      1,
      DEVICE_STATUS.ACKNOWLEDGE | DEVICE_STATUS.DRIVER |
        DEVICE_STATUS.FEATURES_OK,
    );
    const st = this.common(COMMON_CFG.DEVICE_STATUS, 1);
    if (!(st & DEVICE_STATUS.FEATURES_OK)) return st;
    if (msix) this.setCommon(COMMON_CFG.CONFIG_MSIX_VECTOR, 2, 0);
    let ram = options.ramBase ?? 0x10000;
    for (let q = 0; q < nq; q++) {
      this.setCommon(COMMON_CFG.QUEUE_SELECT, 2, q);
      const size = Math.min(this.common(COMMON_CFG.QUEUE_SIZE, 2), 64);
      this.setCommon(COMMON_CFG.QUEUE_SIZE, 2, size);
      const desc = ram;
      const avail = desc + 16 * size;
      const used = (avail + 6 + 2 * size + 3) & ~3;
      ram = (used + 6 + 8 * size + 0xfff) & ~0xfff;
      this.setCommon(COMMON_CFG.QUEUE_DESC, 4, desc);
      this.setCommon(COMMON_CFG.QUEUE_DESC + 4, 4, 0);
      this.setCommon(COMMON_CFG.QUEUE_DRIVER, 4, avail);
      this.setCommon(COMMON_CFG.QUEUE_DRIVER + 4, 4, 0);
      this.setCommon(COMMON_CFG.QUEUE_DEVICE, 4, used);
      this.setCommon(COMMON_CFG.QUEUE_DEVICE + 4, 4, 0);
      if (msix) this.setCommon(COMMON_CFG.QUEUE_MSIX_VECTOR, 2, q + 1);
      const off = this.common(COMMON_CFG.QUEUE_NOTIFY_OFF, 2);
      this.setCommon(COMMON_CFG.QUEUE_ENABLE, 2, 1);
      this.queues[q] = {
        size,
        desc,
        avail,
        used,
        nextDesc: 0,
        availIdx: 0,
        lastUsed: 0,
        notifyAddr: this.#notifyBase + off * this.#notifyMul,
      };
    }
    if (options.driverOk ?? true) {
      this.setCommon(
        COMMON_CFG.DEVICE_STATUS,
        1,
        DEVICE_STATUS.ACKNOWLEDGE | DEVICE_STATUS.DRIVER |
          DEVICE_STATUS.FEATURES_OK | DEVICE_STATUS.DRIVER_OK,
      );
    }
    return this.common(COMMON_CFG.DEVICE_STATUS, 1);
  }

  /** Write a descriptor chain for `buffers`, make it available, optionally notify. Returns the head. */
  submit(q: number, buffers: readonly GuestBuffer[], notify = true): number {
    const dq = this.queues[q];
    const mem = this.ctx.memory;
    const head = dq.nextDesc;
    for (let i = 0; i < buffers.length; i++) {
      const idx = (head + i) % dq.size;
      const d = new DataView(mem.bytes.buffer, dq.desc + 16 * idx, 16);
      const b = buffers[i];
      d.setUint32(0, b.addr % 2 ** 32, true);
      d.setUint32(4, Math.floor(b.addr / 2 ** 32), true);
      d.setUint32(8, b.len, true);
      const last = i === buffers.length - 1;
      d.setUint16(
        12,
        (last ? 0 : VIRTQ.DESC_F_NEXT) | (b.write ? VIRTQ.DESC_F_WRITE : 0),
        true,
      );
      d.setUint16(14, last ? 0 : (head + i + 1) % dq.size, true);
    }
    dq.nextDesc = (head + buffers.length) % dq.size;
    const av = new DataView(mem.bytes.buffer, dq.avail);
    av.setUint16(4 + 2 * (dq.availIdx % dq.size), head, true);
    dq.availIdx = (dq.availIdx + 1) & 0xffff;
    av.setUint16(2, dq.availIdx, true);
    if (notify) this.notify(q);
    return head;
  }

  /** Write to the queue's notify address. */
  notify(q: number): void {
    this.mmioWrite(this.queues[q].notifyAddr, 2, q);
  }

  /** New used elements since the last call: [id, len][]. */
  takeUsed(q: number): [number, number][] {
    const dq = this.queues[q];
    const u = new DataView(this.ctx.memory.bytes.buffer, dq.used);
    const idx = u.getUint16(2, true);
    const out: [number, number][] = [];
    while (dq.lastUsed !== idx) {
      const s = dq.lastUsed % dq.size;
      out.push([u.getUint32(4 + 8 * s, true), u.getUint32(8 + 8 * s, true)]);
      dq.lastUsed = (dq.lastUsed + 1) & 0xffff;
    }
    return out;
  }

  /** MSI data values delivered so far (vector numbers 0x40 + v). */
  msiData(): number[] {
    return this.ctx.events.flatMap((e) => e.kind === "msi" ? [e.data] : []);
  }

  /** Device number and BAR base set by {@link GuestDriver.placeBar}. */
  get placed(): { device: number; bar: number } {
    return { device: this.#device, bar: this.#bar };
  }
}
