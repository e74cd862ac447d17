/**
 * A type-0 PCI function configuration space: 256 bytes with per-bit
 * writable and write-1-to-clear masks, BARs with the sizing protocol and a
 * capability list builder.
 *
 * References: PCI Local Bus Specification 3.0 chapter 6.
 *
 * @module
 */
import { readLe, writeLe } from "../../bus/le.ts";
import { stateFields } from "../../bus/state.ts";
import { BAR_BITS, CFG, COMMAND, STATUS } from "./registers.ts";

/**
 * Plain-data state of a {@link ConfigSpace}.
 *
 * @example
 * ```ts
 * import type { ConfigSpaceState } from "./config_space.ts";
 * const s: ConfigSpaceState = { version: 1, bytes: new Array(256).fill(0) };
 * ```
 */
export interface ConfigSpaceState {
  /** Format version, currently 1. */
  readonly version: 1;
  /** The 256 configuration bytes. */
  readonly bytes: readonly number[];
}

/** Kind of a base address register (PCI 3.0 §6.2.5.1). */
export type BarKind = "io" | "mem32" | "mem64";

/**
 * Definition of one BAR.
 *
 * @example
 * ```ts
 * import type { BarDefinition } from "./config_space.ts";
 * const bar: BarDefinition = { kind: "mem64", size: 0x4000 };
 * ```
 */
export interface BarDefinition {
  /** Space and width. */
  readonly kind: BarKind;
  /** Size in bytes, a power of two (memory >= 16, I/O 4..256). */
  readonly size: number;
  /** Prefetchable bit for memory BARs (PCI 3.0 §6.2.5.1). */
  readonly prefetchable?: boolean;
}

/**
 * Identity of a function, written into the read-only header fields.
 *
 * @example
 * ```ts
 * import type { PciIds } from "./config_space.ts";
 * const ids: PciIds = { vendorId: 0x1af4, deviceId: 0x1044, classCode: 0xff0000 };
 * ```
 */
export interface PciIds {
  /** Vendor ID (§6.2.1). */
  readonly vendorId: number;
  /** Device ID (§6.2.1). */
  readonly deviceId: number;
  /** 24-bit class code: base class, sub-class, programming interface. */
  readonly classCode: number;
  /** Revision ID, default 0. */
  readonly revision?: number;
  /** Subsystem vendor ID, default 0. */
  readonly subsystemVendorId?: number;
  /** Subsystem ID, default 0. */
  readonly subsystemId?: number;
  /** Interrupt pin: 0 none (default), 1..4 INTA#..INTD#. */
  readonly interruptPin?: number;
}

/** A callback run after a guest write touched a watched byte range. */
export type ConfigWriteListener = () => void;

interface Watch {
  start: number;
  end: number;
  fn: ConfigWriteListener;
}

/**
 * One function's configuration space.
 *
 * Guest accesses go through {@link ConfigSpace.read} and
 * {@link ConfigSpace.write} (masks applied); the device model uses the
 * `get*`/`set*` methods, which bypass the masks.
 *
 * @example
 * ```ts
 * import { ConfigSpace } from "./config_space.ts";
 * const cs = new ConfigSpace({ vendorId: 0x1af4, deviceId: 0x1044, classCode: 0xff0000 });
 * cs.defineBar(0, { kind: "mem32", size: 0x1000 });
 * cs.write(0x10, 4, 0xffffffff);
 * console.log(cs.read(0x10, 4).toString(16)); // "fffff000"
 * ```
 */
export class ConfigSpace {
  /** The raw bytes (what the guest reads). */
  readonly bytes: Uint8Array = new Uint8Array(CFG.SIZE);
  readonly #wmask = new Uint8Array(CFG.SIZE);
  readonly #w1c = new Uint8Array(CFG.SIZE);
  readonly #bars: (BarDefinition | undefined)[] = new Array(CFG.BAR_COUNT);
  readonly #upper = new Set<number>();
  readonly #watches: Watch[] = [];
  readonly #readWatches: Watch[] = [];
  #lastCap = 0;
  #nextCap: number = CFG.HEADER_END;

  /** Create a space with the read-only identity fields of `ids`. */
  constructor(ids: PciIds) {
    this.set16(CFG.VENDOR_ID, ids.vendorId);
    this.set16(CFG.DEVICE_ID, ids.deviceId);
    this.set8(CFG.REVISION_ID, ids.revision ?? 0);
    this.set8(CFG.PROG_IF, ids.classCode & 0xff);
    this.set8(CFG.SUBCLASS, (ids.classCode >>> 8) & 0xff);
    this.set8(CFG.CLASS, (ids.classCode >>> 16) & 0xff);
    this.set16(CFG.SUBSYSTEM_VENDOR_ID, ids.subsystemVendorId ?? 0);
    this.set16(CFG.SUBSYSTEM_ID, ids.subsystemId ?? 0);
    const pin = ids.interruptPin ?? 0;
    if (!Number.isInteger(pin) || pin < 0 || pin > 4) {
      throw new RangeError(`interrupt pin ${pin} not in 0..4`);
    }
    this.set8(CFG.INTERRUPT_PIN, pin);
    this.setWritable(
      CFG.COMMAND,
      2,
      COMMAND.IO | COMMAND.MEMORY | COMMAND.BUS_MASTER |
        COMMAND.PARITY_ERROR_RESPONSE | COMMAND.SERR | COMMAND.INTX_DISABLE,
    );
    this.setWriteOneToClear(CFG.STATUS, 2, STATUS.W1C_MASK);
    this.setWritable(CFG.CACHE_LINE_SIZE, 1, 0xff);
    this.setWritable(CFG.LATENCY_TIMER, 1, 0xff);
    this.setWritable(CFG.INTERRUPT_LINE, 1, 0xff);
  }

  // ---- raw (device-side) accessors ----

  /** Raw byte at `offset`. */
  get8(offset: number): number {
    return this.bytes[offset];
  }
  /** Raw little-endian 16-bit value at `offset`. */
  get16(offset: number): number {
    return this.bytes[offset] | (this.bytes[offset + 1] << 8);
  }
  /** Raw little-endian 32-bit value at `offset`. */
  get32(offset: number): number {
    return (this.get16(offset) | (this.get16(offset + 2) << 16)) >>> 0;
  }
  /** Set a raw byte, ignoring masks. */
  set8(offset: number, value: number): void {
    this.bytes[offset] = value & 0xff;
  }
  /** Set a raw 16-bit value, ignoring masks. */
  set16(offset: number, value: number): void {
    this.bytes[offset] = value & 0xff;
    this.bytes[offset + 1] = (value >>> 8) & 0xff;
  }
  /** Set a raw 32-bit value, ignoring masks. */
  set32(offset: number, value: number): void {
    this.set16(offset, value & 0xffff);
    this.set16(offset + 2, (value >>> 16) & 0xffff);
  }
  /** Make the bits of `mask` (little-endian, `size` bytes) guest-writable. */
  setWritable(offset: number, size: number, mask: number): void {
    for (let i = 0; i < size; i++) {
      this.#wmask[offset + i] = Math.floor(mask / 2 ** (8 * i)) & 0xff;
    }
  }
  /** Make the bits of `mask` write-1-to-clear (and not otherwise writable). */
  setWriteOneToClear(offset: number, size: number, mask: number): void {
    for (let i = 0; i < size; i++) {
      const m = Math.floor(mask / 2 ** (8 * i)) & 0xff;
      this.#w1c[offset + i] = m;
      this.#wmask[offset + i] &= ~m;
    }
  }

  /**
   * Call `fn` after every guest write that touches a byte in
   * `[offset, offset + length)`.
   */
  onWrite(offset: number, length: number, fn: ConfigWriteListener): void {
    this.#watches.push({ start: offset, end: offset + length, fn });
  }

  /**
   * Call `fn` before every guest read that touches a byte in
   * `[offset, offset + length)` (to refresh computed registers).
   */
  onRead(offset: number, length: number, fn: ConfigWriteListener): void {
    this.#readWatches.push({ start: offset, end: offset + length, fn });
  }

  // ---- guest accesses ----

  /**
   * Guest read of `data.length` bytes at `offset`; bytes past the 256-byte
   * space (PCIe extended space) read as zero.
   */
  readBytes(offset: number, data: Uint8Array): void {
    for (const w of this.#readWatches) {
      if (w.start < offset + data.length && offset < w.end) w.fn();
    }
    for (let i = 0; i < data.length; i++) {
      const o = offset + i;
      data[i] = o >= 0 && o < CFG.SIZE ? this.bytes[o] : 0;
    }
  }

  /**
   * Guest write of `data` at `offset`: writable bits change, RW1C bits
   * written with 1 clear, everything else is ignored; watchers run after.
   */
  writeBytes(offset: number, data: Uint8Array): void {
    let touchedStart: number = CFG.SIZE;
    let touchedEnd = 0;
    for (let i = 0; i < data.length; i++) {
      const o = offset + i;
      if (o < 0 || o >= CFG.SIZE) continue;
      const old = this.bytes[o];
      const w = this.#wmask[o];
      let v = (old & ~w) | (data[i] & w);
      v &= ~(data[i] & this.#w1c[o]);
      this.bytes[o] = v;
      if (o < touchedStart) touchedStart = o;
      if (o + 1 > touchedEnd) touchedEnd = o + 1;
    }
    if (touchedStart >= touchedEnd) return;
    for (const w of this.#watches) {
      if (w.start < touchedEnd && touchedStart < w.end) w.fn();
    }
  }

  /** Guest read of 1, 2 or 4 bytes at `offset`, as a number. */
  read(offset: number, size: 1 | 2 | 4): number {
    const d = new Uint8Array(size);
    this.readBytes(offset, d);
    return readLe(d);
  }

  /** Guest write of 1, 2 or 4 bytes at `offset`. */
  write(offset: number, size: 1 | 2 | 4, value: number): void {
    const d = new Uint8Array(size);
    writeLe(d, value >>> 0);
    this.writeBytes(offset, d);
  }

  // ---- command / status ----

  /** Current command register. */
  get command(): number {
    return this.get16(CFG.COMMAND);
  }
  /** Memory space decoding enabled (command bit 1). */
  get memoryEnabled(): boolean {
    return (this.command & COMMAND.MEMORY) !== 0;
  }
  /** I/O space decoding enabled (command bit 0). */
  get ioEnabled(): boolean {
    return (this.command & COMMAND.IO) !== 0;
  }
  /** Bus mastering (DMA) enabled (command bit 2). */
  get busMaster(): boolean {
    return (this.command & COMMAND.BUS_MASTER) !== 0;
  }
  /** INTx emulation disabled (command bit 10). */
  get intxDisabled(): boolean {
    return (this.command & COMMAND.INTX_DISABLE) !== 0;
  }
  /** Set or clear status bit 3 (interrupt status). */
  setInterruptStatus(pending: boolean): void {
    const s = this.get16(CFG.STATUS);
    this.set16(
      CFG.STATUS,
      pending ? s | STATUS.INTERRUPT : s & ~STATUS.INTERRUPT,
    );
  }
  /** The interrupt pin (0 = none, 1..4 = INTA#..INTD#). */
  get interruptPin(): number {
    return this.get8(CFG.INTERRUPT_PIN);
  }

  // ---- BARs ----

  /**
   * Define BAR `index` (a 64-bit BAR also takes `index + 1`). Host-side
   * configuration error (bad index, size) throws.
   */
  defineBar(index: number, def: BarDefinition): void {
    const wide = def.kind === "mem64";
    if (
      !Number.isInteger(index) || index < 0 ||
      index + (wide ? 1 : 0) >= CFG.BAR_COUNT
    ) {
      throw new RangeError(`BAR index ${index} out of range for ${def.kind}`);
    }
    if (
      this.#bars[index] !== undefined || this.#upper.has(index) ||
      (wide && this.#bars[index + 1] !== undefined)
    ) {
      throw new RangeError(`BAR ${index} already defined`);
    }
    const s = def.size;
    const min = def.kind === "io" ? 4 : 16;
    const max = def.kind === "io"
      ? 256
      : def.kind === "mem32"
      ? 2 ** 31
      : 2 ** 52;
    if (!Number.isSafeInteger(s) || s < min || s > max || !isPowerOfTwo(s)) {
      throw new RangeError(`bad BAR size ${s} for ${def.kind}`);
    }
    const off = CFG.BAR0 + 4 * index;
    if (def.kind === "io") {
      this.set32(off, BAR_BITS.IO_SPACE);
      this.setWritable(off, 4, ~(s - 1) & BAR_BITS.IO_ADDRESS_MASK);
    } else {
      const flags = (wide ? BAR_BITS.MEM_TYPE_64 : BAR_BITS.MEM_TYPE_32) |
        (def.prefetchable ? BAR_BITS.MEM_PREFETCHABLE : 0);
      this.set32(off, flags);
      const lowMask = s >= 2 ** 32
        ? 0
        : (~(s - 1) & BAR_BITS.MEM_ADDRESS_MASK) >>> 0;
      this.setWritable(off, 4, lowMask);
      if (wide) {
        const hiMask = s > 2 ** 32 ? (~(s / 2 ** 32 - 1)) >>> 0 : 0xffffffff;
        this.set32(off + 4, 0);
        this.setWritable(off + 4, 4, hiMask);
      }
    }
    this.#bars[index] = def;
    if (wide) this.#upper.add(index + 1);
  }

  /** The definition of BAR `index`, if any. */
  bar(index: number): BarDefinition | undefined {
    return this.#bars[index];
  }

  /**
   * The address BAR `index` decodes at, or `null` when it is undefined,
   * zero, or mid-sizing (every writable address bit of a dword set).
   */
  barAddress(index: number): number | null {
    const def = this.#bars[index];
    if (def === undefined) return null;
    const off = CFG.BAR0 + 4 * index;
    if (def.kind === "io") {
      const lo = (this.get32(off) & BAR_BITS.IO_ADDRESS_MASK) >>> 0;
      const m = this.#mask32(off);
      if (lo === 0 || lo === m) return null;
      return lo >>> 0;
    }
    const lo = (this.get32(off) & BAR_BITS.MEM_ADDRESS_MASK) >>> 0;
    const mLo = this.#mask32(off);
    if (def.kind === "mem32") {
      if (lo === 0 || lo === mLo) return null;
      return lo;
    }
    const hi = this.get32(off + 4);
    const mHi = this.#mask32(off + 4);
    if (lo === 0 && hi === 0) return null;
    if ((mLo !== 0 && lo === mLo) || hi === mHi) return null;
    const addr = hi * 2 ** 32 + lo;
    return addr + def.size <= Number.MAX_SAFE_INTEGER ? addr : null;
  }

  #mask32(off: number): number {
    const m = this.#wmask;
    return (m[off] | (m[off + 1] << 8) | (m[off + 2] << 16) |
      (m[off + 3] << 24)) >>> 0;
  }

  // ---- capabilities ----

  /**
   * Append a capability of `length` bytes (header included) with ID `id`
   * to the list and return its offset. Throws when the space is full.
   */
  addCapability(id: number, length: number): number {
    const off = this.#nextCap;
    if (length < 2 || off + length > CFG.SIZE) {
      throw new RangeError(`no room for capability 0x${id.toString(16)}`);
    }
    this.set8(off, id);
    this.set8(off + 1, 0);
    if (this.#lastCap === 0) this.set8(CFG.CAPABILITIES_POINTER, off);
    else this.set8(this.#lastCap + 1, off);
    this.#lastCap = off;
    this.#nextCap = (off + length + 3) & ~3;
    this.set16(CFG.STATUS, this.get16(CFG.STATUS) | STATUS.CAPABILITIES);
    return off;
  }

  /** Offsets of the capabilities with ID `id`, in list order. */
  findCapabilities(id: number): number[] {
    const out: number[] = [];
    let p = this.get8(CFG.CAPABILITIES_POINTER);
    for (let n = 0; p !== 0 && n < 64; n++) {
      if (this.get8(p) === id) out.push(p);
      p = this.get8(p + 1);
    }
    return out;
  }

  /**
   * Power-on reset of the guest-visible state: every writable and RW1C bit
   * returns to 0 (command, BAR addresses, interrupt line, capability
   * control bits) and status bit 3 is cleared. Watchers are not called.
   */
  reset(): void {
    for (let i = 0; i < CFG.SIZE; i++) {
      this.bytes[i] &= ~(this.#wmask[i] | this.#w1c[i]);
    }
    this.setInterruptStatus(false);
  }

  /** The 256 bytes as plain data (identity bits included). */
  snapshot(): ConfigSpaceState {
    return { version: 1, bytes: [...this.bytes] };
  }

  /**
   * Load the guest-programmed bits (writable and RW1C bits, status bit 3)
   * of a state from {@link snapshot}; read-only identity bits stay this
   * space's own. A malformed state throws TypeError and changes nothing.
   * Watchers are not called: the owner resynchronizes.
   */
  restore(state: ConfigSpaceState): void {
    const bytes = stateFields(state, 1, "pci config").ints(
      "bytes",
      0,
      0xff,
      CFG.SIZE,
    );
    for (let i = 0; i < CFG.SIZE; i++) {
      let m = this.#wmask[i] | this.#w1c[i];
      if (i === CFG.STATUS) m |= STATUS.INTERRUPT;
      this.bytes[i] = (this.bytes[i] & ~m) | (bytes[i] & m);
    }
  }
}

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && Number.isInteger(Math.log2(n));
}
