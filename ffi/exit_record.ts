/**
 * Layout of the exit record the core fills on every return from `run()`
 * (mirrors `core/src/exit.rs`), and the reasons it reports.
 *
 * @module
 */

import { AbiConst, RecordOffset } from "./abi.ts";

export { ExitReason, RecordOffset } from "./abi.ts";

/** Size of the data area. */
export const RECORD_DATA_LEN: number = AbiConst.DV_EXIT_DATA_LEN;
/** Total record size. */
export const RECORD_LEN: number = RecordOffset.data + RECORD_DATA_LEN;

/**
 * A zero-allocation reader over the record: a `DataView` and a byte view
 * created once per vCPU.
 *
 * @example
 * ```ts
 * import { ExitRecordView, RECORD_LEN } from "./exit_record.ts";
 * const view = new ExitRecordView(new ArrayBuffer(RECORD_LEN));
 * console.log(view.reason);
 * ```
 */
export class ExitRecordView {
  /** DataView over the whole record. */
  readonly view: DataView;
  /** Byte view over the whole record. */
  readonly bytes: Uint8Array;
  readonly #dataViews: Uint8Array[] = [];

  /** Wrap a record buffer of at least {@link RECORD_LEN} bytes. */
  constructor(buffer: ArrayBuffer) {
    if (buffer.byteLength < RECORD_LEN) {
      throw new RangeError(`exit record needs ${RECORD_LEN} bytes`);
    }
    this.view = new DataView(buffer);
    this.bytes = new Uint8Array(buffer);
    for (const n of [0, 1, 2, 3, 4, 5, 6, 7, 8]) {
      this.#dataViews[n] = this.bytes.subarray(
        RecordOffset.data,
        RecordOffset.data + n,
      );
    }
  }
  /** Exit reason. */
  get reason(): number {
    return this.view.getUint32(RecordOffset.reason, true);
  }
  /** vCPU index. */
  get vcpu(): number {
    return this.view.getUint32(RecordOffset.vcpu, true);
  }
  /** Port or guest-physical address (exact below 2^53). */
  get address(): number {
    return this.view.getUint32(RecordOffset.address, true) +
      this.view.getUint32(RecordOffset.address + 4, true) * 0x1_0000_0000;
  }
  /** Bytes per element. */
  get size(): number {
    return this.view.getUint32(RecordOffset.size, true);
  }
  /** Element count (string I/O). */
  get count(): number {
    return this.view.getUint32(RecordOffset.count, true);
  }
  /** True for writes. */
  get isWrite(): boolean {
    return this.view.getUint32(RecordOffset.is_write, true) !== 0;
  }
  /** 0 = pio, 1 = mmio. */
  get space(): number {
    return this.view.getUint32(RecordOffset.space, true);
  }
  /** Reason-specific argument (low 53 bits). */
  get arg(): number {
    return this.view.getUint32(RecordOffset.arg, true) +
      this.view.getUint32(RecordOffset.arg + 4, true) * 0x1_0000_0000;
  }
  /** Tag of the bus region of a forwarded access. */
  get region(): number {
    return this.view.getUint32(RecordOffset.region, true);
  }
  /** The data bytes of element `i` of `size` bytes (cached for i = 0). */
  data(size: number, i = 0): Uint8Array {
    if (i === 0 && size <= 8) return this.#dataViews[size];
    const start = RecordOffset.data + i * size;
    return this.bytes.subarray(start, start + size);
  }
}
