/**
 * The MSI-X capability (PCI 3.0 §6.8.2, PCIe §7.7.2): message control in
 * configuration space, a vector table and a pending-bit array (PBA) in
 * BAR memory.
 *
 * @module
 */
import type { LogLevel, MsiMessage } from "../../bus/types.ts";
import { readLe, writeLe } from "../../bus/le.ts";
import { stateFields } from "../../bus/state.ts";
import type { ConfigSpace } from "./config_space.ts";
import { CAP_ID, MSIX } from "./registers.ts";

/** Where deliverable MSI-X messages go (the plugin uses `ctx.signalMsi`). */
export type MsiSink = (msg: MsiMessage, vector: number) => void;

/**
 * Options of {@link MsixCapability}.
 *
 * @example
 * ```ts
 * import type { MsixOptions } from "./msix.ts";
 * const o: MsixOptions = {
 *   vectors: 4, tableBar: 0, tableOffset: 0x4000, pbaBar: 0, pbaOffset: 0x5000,
 *   sink: () => {},
 * };
 * ```
 */
export interface MsixOptions {
  /** Number of table entries, 1..2048. */
  readonly vectors: number;
  /** BAR holding the table. */
  readonly tableBar: number;
  /** Offset of the table in its BAR (8-byte aligned). */
  readonly tableOffset: number;
  /** BAR holding the PBA. */
  readonly pbaBar: number;
  /** Offset of the PBA in its BAR (8-byte aligned). */
  readonly pbaOffset: number;
  /** Delivery of unmasked, valid messages. */
  readonly sink: MsiSink;
  /** Called when the enable bit changes (the function drops INTx on enable). */
  readonly onEnableChange?: (enabled: boolean) => void;
  /**
   * Called when the guest rewrites an entry's address or data (never on
   * mask/unmask); `msg` is `null` when the new address is not deliverable.
   */
  readonly routeChanged?: (vector: number, msg: MsiMessage | null) => void;
  /**
   * Called when a vector's effective mask changes (MSI-X disabled, function
   * mask or entry mask), so a host irqfd can be detached while masked. On
   * unmask, returning true means the host held a message for the vector
   * (it becomes pending and is delivered now).
   */
  readonly vectorMask?: (vector: number, masked: boolean) => boolean;
  /** Log sink. */
  readonly log?: (level: LogLevel, msg: string) => void;
}

/**
 * Plain-data state of an {@link MsixCapability}: the table as 32-bit words
 * (4 per vector) and one pending flag per vector.
 *
 * @example
 * ```ts
 * import type { MsixState } from "./msix.ts";
 * const s: MsixState = { version: 1, table: [0, 0, 0, 1], pending: [0] };
 * ```
 */
export interface MsixState {
  /** Format version, currently 1. */
  readonly version: 1;
  /** Table words: address low, address high, data, vector control. */
  readonly table: readonly number[];
  /** Pending bit per vector (0/1). */
  readonly pending: readonly number[];
}

/**
 * Counters of ignored guest actions.
 *
 * @example
 * ```ts
 * import type { MsixCounters } from "./msix.ts";
 * const c: MsixCounters = { badAccess: 0, badVector: 0, badAddress: 0, delivered: 0 };
 * ```
 */
export interface MsixCounters {
  /** Misaligned or odd-sized table/PBA accesses, writes to the PBA. */
  badAccess: number;
  /** `trigger` with a vector outside the table. */
  badVector: number;
  /** Triggers of entries whose address is not in 0xFEE00000..0xFEEFFFFF. */
  badAddress: number;
  /** Messages delivered to the sink. */
  delivered: number;
}

/**
 * MSI-X state of one function.
 *
 * @example
 * ```ts
 * import { ConfigSpace } from "./config_space.ts";
 * import { MsixCapability } from "./msix.ts";
 * const cs = new ConfigSpace({ vendorId: 1, deviceId: 2, classCode: 0 });
 * cs.defineBar(0, { kind: "mem32", size: 0x2000 });
 * const msix = new MsixCapability(cs, {
 *   vectors: 2, tableBar: 0, tableOffset: 0, pbaBar: 0, pbaOffset: 0x1000,
 *   sink: (msg, v) => console.log(v, msg),
 * });
 * console.log(msix.trigger(0)); // false: MSI-X is disabled
 * ```
 */
export class MsixCapability {
  /** Offset of the capability in configuration space. */
  readonly capOffset: number;
  /** Number of vectors. */
  readonly vectors: number;
  /** Table BAR index. */
  readonly tableBar: number;
  /** Table offset in its BAR. */
  readonly tableOffset: number;
  /** Table size in bytes. */
  readonly tableSize: number;
  /** PBA BAR index. */
  readonly pbaBar: number;
  /** PBA offset in its BAR. */
  readonly pbaOffset: number;
  /** PBA size in bytes (a whole number of qwords). */
  readonly pbaSize: number;
  /** Counters of ignored or dropped events. */
  readonly counters: MsixCounters = {
    badAccess: 0,
    badVector: 0,
    badAddress: 0,
    delivered: 0,
  };
  readonly #config: ConfigSpace;
  readonly #table: Uint32Array;
  readonly #pending: Uint8Array;
  readonly #opts: MsixOptions;
  #wasEnabled = false;
  #wasFunctionMasked = false;
  /** Effective mask last reported to `vectorMask` (1 = masked). */
  readonly #reportedMask: Uint8Array;
  #loggedBadAddress = false;
  #loggedBadAccess = false;

  /** Add the capability to `config` and create the table. */
  constructor(config: ConfigSpace, options: MsixOptions) {
    const n = options.vectors;
    if (!Number.isInteger(n) || n < 1 || n > MSIX.MAX_VECTORS) {
      throw new RangeError(`MSI-X vector count ${n} not in 1..2048`);
    }
    for (
      const [bir, off] of [
        [options.tableBar, options.tableOffset],
        [options.pbaBar, options.pbaOffset],
      ]
    ) {
      if (!Number.isInteger(bir) || bir < 0 || bir > 5 || off % 8 !== 0) {
        throw new RangeError(`bad MSI-X BIR ${bir} / offset ${off}`);
      }
    }
    this.#config = config;
    this.#opts = options;
    this.vectors = n;
    this.tableBar = options.tableBar;
    this.tableOffset = options.tableOffset;
    this.tableSize = n * MSIX.ENTRY_SIZE;
    this.pbaBar = options.pbaBar;
    this.pbaOffset = options.pbaOffset;
    this.pbaSize = Math.ceil(n / 64) * 8;
    this.#table = new Uint32Array(n * 4);
    this.#pending = new Uint8Array(n);
    this.#reportedMask = new Uint8Array(n).fill(1);
    const cap = config.addCapability(CAP_ID.MSIX, MSIX.CAP_LENGTH);
    this.capOffset = cap;
    config.set16(cap + MSIX.CONTROL, n - 1);
    config.setWritable(
      cap + MSIX.CONTROL,
      2,
      MSIX.CONTROL_ENABLE | MSIX.CONTROL_FUNCTION_MASK,
    );
    config.set32(cap + MSIX.TABLE, options.tableOffset | options.tableBar);
    config.set32(cap + MSIX.PBA, options.pbaOffset | options.pbaBar);
    config.onWrite(cap + MSIX.CONTROL, 2, () => this.#controlWritten());
    this.reset();
  }

  /** MSI-X enable bit (message control bit 15). */
  get enabled(): boolean {
    return (this.#control() & MSIX.CONTROL_ENABLE) !== 0;
  }
  /** Function mask bit (message control bit 14). */
  get functionMasked(): boolean {
    return (this.#control() & MSIX.CONTROL_FUNCTION_MASK) !== 0;
  }
  /** True when entry `vector` is masked (vector control bit 0). */
  isMasked(vector: number): boolean {
    return (this.#table[vector * 4 + 3] & MSIX.VECTOR_CONTROL_MASK) !== 0;
  }
  /** True when `vector`'s pending bit is set. */
  isPending(vector: number): boolean {
    return this.#pending[vector] !== 0;
  }
  /** The message programmed in entry `vector`. */
  message(vector: number): MsiMessage {
    const t = this.#table;
    return {
      address: t[vector * 4 + 1] * 2 ** 32 + t[vector * 4],
      data: t[vector * 4 + 2],
    };
  }

  /**
   * Signal `vector`. Returns false when MSI-X is disabled (the caller
   * falls back to INTx); true otherwise, whether the message was
   * delivered, made pending (masked) or dropped (bad vector or address).
   */
  trigger(vector: number): boolean {
    if (!this.enabled) return false;
    if (!Number.isInteger(vector) || vector < 0 || vector >= this.vectors) {
      this.counters.badVector++;
      return true;
    }
    if (this.functionMasked || this.isMasked(vector)) {
      this.#pending[vector] = 1;
      return true;
    }
    this.#deliver(vector);
    return true;
  }

  /** Guest read of the table at `offset` (relative to the table start). */
  tableRead(offset: number, data: Uint8Array): void {
    if (!this.#checkAccess(offset, data.length, this.tableSize)) return;
    const t = this.#table;
    const i = offset >>> 2;
    writeLe(data, t[i], 0, 4);
    if (data.length === 8) writeLe(data, t[i + 1], 4, 4);
  }

  /** Guest write of the table at `offset` (relative to the table start). */
  tableWrite(offset: number, data: Uint8Array): void {
    if (!this.#checkAccess(offset, data.length, this.tableSize)) return;
    const vector = offset >>> 4;
    const first = offset >>> 2;
    let routeTouched = false;
    const base = vector * 4;
    const oldLo = this.#table[base];
    const oldHi = this.#table[base + 1];
    const oldData = this.#table[base + 2];
    const wasMasked = this.isMasked(vector);
    for (let k = 0; k < data.length / 4; k++) {
      const idx = first + k;
      let v = readLe(data, 4 * k, 4);
      switch (idx & 3) {
        case MSIX.ENTRY_ADDRESS_LO >> 2:
          v = (v & ~3) >>> 0; // bits 1:0 are reserved, read as zero
          routeTouched = true;
          break;
        case MSIX.ENTRY_ADDRESS_HI >> 2:
        case MSIX.ENTRY_DATA >> 2:
          routeTouched = true;
          break;
        case MSIX.ENTRY_VECTOR_CONTROL >> 2:
          v &= MSIX.VECTOR_CONTROL_MASK; // other bits reserved
          break;
      }
      this.#table[idx] = v;
    }
    if (
      routeTouched &&
      (oldLo !== this.#table[base] || oldHi !== this.#table[base + 1] ||
        oldData !== this.#table[base + 2])
    ) {
      const msg = this.message(vector);
      this.#opts.routeChanged?.(vector, isDeliverable(msg) ? msg : null);
    }
    this.#syncMask(vector);
    if (wasMasked && !this.isMasked(vector)) this.#flush(vector);
  }

  /** Report a change of `vector`'s effective mask to the host. */
  #syncMask(vector: number): void {
    if (!this.#opts.vectorMask) return;
    const masked = !this.enabled || this.functionMasked ||
      this.isMasked(vector);
    if ((this.#reportedMask[vector] === 1) === masked) return;
    this.#reportedMask[vector] = masked ? 1 : 0;
    if (this.#opts.vectorMask(vector, masked) && !masked) {
      this.#pending[vector] = 1;
    }
  }

  /** Guest read of the PBA at `offset` (relative to the PBA start). */
  pbaRead(offset: number, data: Uint8Array): void {
    if (!this.#checkAccess(offset, data.length, this.pbaSize)) return;
    for (let b = 0; b < data.length; b++) {
      let byte = 0;
      for (let bit = 0; bit < 8; bit++) {
        const v = (offset + b) * 8 + bit;
        if (v < this.vectors && this.#pending[v]) byte |= 1 << bit;
      }
      data[b] = byte;
    }
  }

  /** The table and pending bits as plain data. */
  snapshot(): MsixState {
    return {
      version: 1,
      table: [...this.#table],
      pending: [...this.#pending],
    };
  }

  /**
   * Load a state from {@link snapshot} (same vector count), after the
   * config space (message control) was restored. Every entry's route and
   * effective mask is reported to the host again; deliverable pending
   * vectors are delivered. A malformed state throws TypeError and changes
   * nothing.
   */
  restore(state: MsixState): void {
    const f = stateFields(state, 1, "msix");
    const table = f.ints("table", 0, 0xffffffff, this.vectors * 4);
    const pending = f.ints("pending", 0, 1, this.vectors);
    this.#table.set(table);
    this.#pending.set(pending);
    this.#wasEnabled = this.enabled;
    this.#wasFunctionMasked = this.functionMasked;
    for (let v = 0; v < this.vectors; v++) {
      const msg = this.message(v);
      this.#opts.routeChanged?.(v, isDeliverable(msg) ? msg : null);
      this.#syncMask(v);
      this.#flush(v);
    }
  }

  /** Guest write of the PBA: read-only, counted and ignored. */
  pbaWrite(_offset: number, _data: Uint8Array): void {
    this.counters.badAccess++;
  }

  /**
   * Reset the table (all entries masked, zero address/data) and the PBA.
   * Message control is reset by {@link ConfigSpace.reset}.
   */
  reset(): void {
    this.#table.fill(0);
    for (let v = 0; v < this.vectors; v++) {
      this.#table[v * 4 + 3] = MSIX.VECTOR_CONTROL_MASK;
    }
    this.#pending.fill(0);
    this.#wasEnabled = this.enabled;
    this.#wasFunctionMasked = this.functionMasked;
    for (let v = 0; v < this.vectors; v++) this.#syncMask(v);
  }

  #control(): number {
    return this.#config.get16(this.capOffset + MSIX.CONTROL);
  }

  #controlWritten(): void {
    const en = this.enabled;
    const fm = this.functionMasked;
    const enableChanged = en !== this.#wasEnabled;
    const unmasked = (this.#wasFunctionMasked && !fm) || (enableChanged && en);
    this.#wasEnabled = en;
    this.#wasFunctionMasked = fm;
    if (enableChanged) this.#opts.onEnableChange?.(en);
    for (let v = 0; v < this.vectors; v++) this.#syncMask(v);
    if (unmasked && en && !fm) {
      for (let v = 0; v < this.vectors; v++) this.#flush(v);
    }
  }

  /** Deliver `vector` if it is pending and deliverable now. */
  #flush(vector: number): void {
    if (
      !this.#pending[vector] || !this.enabled || this.functionMasked ||
      this.isMasked(vector)
    ) return;
    this.#pending[vector] = 0;
    this.#deliver(vector);
  }

  #deliver(vector: number): void {
    const msg = this.message(vector);
    if (!isDeliverable(msg)) {
      this.counters.badAddress++;
      if (!this.#loggedBadAddress) {
        this.#loggedBadAddress = true;
        this.#opts.log?.(
          "warn",
          `MSI-X vector ${vector}: address 0x${
            msg.address.toString(16)
          } outside 0xFEE00000..0xFEEFFFFF, not delivered`,
        );
      }
      return;
    }
    this.counters.delivered++;
    this.#opts.sink(msg, vector);
  }

  #checkAccess(offset: number, size: number, limit: number): boolean {
    if (
      (size === 4 || size === 8) && offset % size === 0 && offset >= 0 &&
      offset + size <= limit
    ) return true;
    this.counters.badAccess++;
    if (!this.#loggedBadAccess) {
      this.#loggedBadAccess = true;
      this.#opts.log?.(
        "warn",
        `MSI-X: ignored ${size}-byte access at offset 0x${offset.toString(16)}`,
      );
    }
    return false;
  }
}

/**
 * True when `msg` targets the LAPIC window 0xFEE00000..0xFEEFFFFF.
 *
 * @example
 * ```ts
 * import { isDeliverable } from "./msix.ts";
 * console.log(isDeliverable({ address: 0xfee00000, data: 0x30 })); // true
 * ```
 */
export function isDeliverable(msg: MsiMessage): boolean {
  return msg.address >= MSIX.ADDRESS_BASE && msg.address <= MSIX.ADDRESS_LAST;
}
