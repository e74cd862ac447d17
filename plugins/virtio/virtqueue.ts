/**
 * Split virtqueues (virtio 1.2 §2.7) over guest memory, parsed
 * defensively: every guest-written index, address and length is checked
 * and malformed input raises {@link VirtqueueError}, which the transport
 * turns into DEVICE_NEEDS_RESET.
 *
 * @module
 */
import type { GuestMemory } from "../../bus/types.ts";
import { VIRTQ } from "./constants.ts";

/**
 * A guest error in a virtqueue (bad index, address, length or loop).
 *
 * @example
 * ```ts
 * import { VirtqueueError } from "./virtqueue.ts";
 * const e = new VirtqueueError("descriptor loop");
 * console.log(e.name); // "VirtqueueError"
 * ```
 */
export class VirtqueueError extends Error {
  /** Create an error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "VirtqueueError";
  }
}

/**
 * Guest-physical placement of a split virtqueue.
 *
 * @example
 * ```ts
 * import type { VirtqueueLayout } from "./virtqueue.ts";
 * const l: VirtqueueLayout = { size: 16, desc: 0x1000, driver: 0x2000, device: 0x3000 };
 * ```
 */
export interface VirtqueueLayout {
  /** Queue size: a power of two, 1..32768. */
  readonly size: number;
  /** Descriptor table address (16-byte aligned). */
  readonly desc: number;
  /** Available ring address (2-byte aligned). */
  readonly driver: number;
  /** Used ring address (4-byte aligned). */
  readonly device: number;
}

/**
 * A contiguous guest buffer of a chain (validated to lie inside RAM).
 *
 * @example
 * ```ts
 * import type { Segment } from "./virtqueue.ts";
 * const s: Segment = { addr: 0x4000, len: 512 };
 * ```
 */
export interface Segment {
  /** Guest-physical address. */
  readonly addr: number;
  /** Length in bytes. */
  readonly len: number;
}

/**
 * One available buffer: its head index and its readable then writable
 * segments.
 *
 * @example
 * ```ts
 * import type { DescriptorChain } from "./virtqueue.ts";
 * const total = (c: DescriptorChain) => c.readableLength + c.writableLength;
 * ```
 */
export interface DescriptorChain {
  /** Head descriptor index (the id returned in the used ring). */
  readonly head: number;
  /** Device-readable segments, in order. */
  readonly readable: readonly Segment[];
  /** Device-writable segments, in order. */
  readonly writable: readonly Segment[];
  /** Sum of readable lengths. */
  readonly readableLength: number;
  /** Sum of writable lengths. */
  readonly writableLength: number;
}

/**
 * Check a queue layout against guest memory; returns the reason it is
 * invalid, or null.
 *
 * @example
 * ```ts
 * import { validateLayout } from "./virtqueue.ts";
 * import { FakeMemory } from "../testing/fake_context.ts";
 * const m = new FakeMemory(0x10000);
 * console.log(validateLayout(m, { size: 8, desc: 0, driver: 0x100, device: 0x200 })); // null
 * ```
 */
export function validateLayout(
  memory: GuestMemory,
  l: VirtqueueLayout,
): string | null {
  const n = l.size;
  if (!Number.isInteger(n) || n < 1 || n > VIRTQ.MAX_SIZE || (n & (n - 1))) {
    return `queue size ${n} is not a power of two in 1..32768`;
  }
  const parts: [string, number, number, number][] = [
    ["descriptor table", l.desc, VIRTQ.DESC_SIZE * n, VIRTQ.DESC_ALIGN],
    ["available ring", l.driver, 6 + 2 * n, VIRTQ.AVAIL_ALIGN],
    ["used ring", l.device, 6 + VIRTQ.USED_ELEM_SIZE * n, VIRTQ.USED_ALIGN],
  ];
  for (const [what, addr, len, align] of parts) {
    if (!Number.isSafeInteger(addr) || addr % align !== 0) {
      return `${what} at 0x${addr.toString(16)} misaligned`;
    }
    if (!memory.contains(addr, len)) {
      return `${what} [0x${addr.toString(16)}, +${len}) outside RAM`;
    }
  }
  return null;
}

/**
 * A split virtqueue as seen by the device.
 *
 * @example
 * ```ts
 * import { SplitVirtqueue } from "./virtqueue.ts";
 * import { FakeMemory } from "../testing/fake_context.ts";
 * const m = new FakeMemory(0x10000);
 * const q = new SplitVirtqueue(m, { size: 8, desc: 0, driver: 0x100, device: 0x200 });
 * console.log(q.pop()); // null: nothing available
 * ```
 */
export class SplitVirtqueue {
  /** Queue size. */
  readonly size: number;
  /** Layout in guest memory. */
  readonly layout: VirtqueueLayout;
  /** Whether indirect descriptors were negotiated. */
  readonly indirect: boolean;
  /** Next available ring index the device will read (wraps at 2^16). */
  lastAvailIdx = 0;
  /** Next used ring index the device will write (wraps at 2^16). */
  usedIdx = 0;
  readonly #mem: GuestMemory;
  readonly #scratch = new Uint8Array(16);
  readonly #dv = new DataView(this.#scratch.buffer);

  /** Create a queue; throws VirtqueueError when the layout is invalid. */
  constructor(
    memory: GuestMemory,
    layout: VirtqueueLayout,
    options: { readonly indirect?: boolean } = {},
  ) {
    const bad = validateLayout(memory, layout);
    if (bad) throw new VirtqueueError(bad);
    this.#mem = memory;
    this.layout = layout;
    this.size = layout.size;
    this.indirect = options.indirect ?? false;
  }

  /** The driver's available ring index. */
  availIdx(): number {
    return this.#u16(this.layout.driver + 2);
  }

  /** True when the driver asked for no used-buffer notifications. */
  interruptSuppressed(): boolean {
    return (this.#u16(this.layout.driver) & VIRTQ.AVAIL_F_NO_INTERRUPT) !== 0;
  }

  /**
   * Take the next available chain, or null when there is none. Throws
   * VirtqueueError on malformed rings or descriptors.
   */
  pop(): DescriptorChain | null {
    const avail = this.availIdx();
    const pending = (avail - this.lastAvailIdx) & 0xffff;
    if (pending === 0) return null;
    if (pending > this.size) {
      throw new VirtqueueError(
        `available index jumped by ${pending} (queue size ${this.size})`,
      );
    }
    const slot = this.lastAvailIdx % this.size;
    const head = this.#u16(this.layout.driver + 4 + 2 * slot);
    this.lastAvailIdx = (this.lastAvailIdx + 1) & 0xffff;
    return this.#walk(head);
  }

  /** Return chain `head` to the driver with `len` bytes written. */
  pushUsed(head: number, len: number): void {
    const slot = this.usedIdx % this.size;
    const e = this.layout.device + 4 + VIRTQ.USED_ELEM_SIZE * slot;
    const dv = this.#dv;
    dv.setUint32(0, head, true);
    dv.setUint32(4, len >>> 0, true);
    this.#mem.write(e, this.#scratch.subarray(0, 8));
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    dv.setUint16(0, this.usedIdx, true);
    this.#mem.write(this.layout.device + 2, this.#scratch.subarray(0, 2));
  }

  #u16(gpa: number): number {
    this.#mem.read(gpa, this.#scratch.subarray(0, 2));
    return this.#dv.getUint16(0, true);
  }

  #walk(head: number): DescriptorChain {
    if (head >= this.size) {
      throw new VirtqueueError(`head index ${head} >= queue size ${this.size}`);
    }
    const readable: Segment[] = [];
    const writable: Segment[] = [];
    let readableLength = 0;
    let writableLength = 0;
    let table = this.layout.desc;
    let count = this.size;
    let inIndirect = false;
    let idx = head;
    let steps = 0;
    const dv = this.#dv;
    for (;;) {
      if (idx >= count) {
        throw new VirtqueueError(`descriptor index ${idx} >= ${count}`);
      }
      if (++steps > count) {
        throw new VirtqueueError(
          `descriptor chain longer than ${count} (loop?)`,
        );
      }
      this.#mem.read(table + VIRTQ.DESC_SIZE * idx, this.#scratch);
      const lo = dv.getUint32(0, true);
      const hi = dv.getUint32(4, true);
      const len = dv.getUint32(8, true);
      const flags = dv.getUint16(12, true);
      const next = dv.getUint16(14, true);
      if (hi >= 0x200000) {
        throw new VirtqueueError(
          `descriptor address 0x${hi.toString(16)}_${
            lo.toString(16)
          } too large`,
        );
      }
      const addr = hi * 2 ** 32 + lo;
      if (flags & VIRTQ.DESC_F_INDIRECT) {
        if (!this.indirect) {
          throw new VirtqueueError("indirect descriptor not negotiated");
        }
        if (inIndirect) throw new VirtqueueError("nested indirect descriptor");
        if (flags & VIRTQ.DESC_F_NEXT) {
          // §2.7.5.3.1: the driver MUST NOT set both INDIRECT and NEXT.
          throw new VirtqueueError("indirect descriptor with NEXT");
        }
        if (
          len === 0 || len % VIRTQ.DESC_SIZE !== 0 ||
          len / VIRTQ.DESC_SIZE > VIRTQ.MAX_SIZE
        ) {
          throw new VirtqueueError(`indirect table length ${len} invalid`);
        }
        if (!this.#mem.contains(addr, len)) {
          throw new VirtqueueError(
            `indirect table [0x${addr.toString(16)}, +${len}) outside RAM`,
          );
        }
        table = addr;
        count = len / VIRTQ.DESC_SIZE;
        inIndirect = true;
        idx = 0;
        steps = 0;
        continue;
      }
      if (!this.#mem.contains(addr, len)) {
        throw new VirtqueueError(
          `descriptor buffer [0x${addr.toString(16)}, +${len}) outside RAM`,
        );
      }
      if (flags & VIRTQ.DESC_F_WRITE) {
        writable.push({ addr, len });
        writableLength += len;
      } else {
        if (writable.length > 0) {
          throw new VirtqueueError("readable descriptor after a writable one");
        }
        readable.push({ addr, len });
        readableLength += len;
      }
      if (!(flags & VIRTQ.DESC_F_NEXT)) break;
      idx = next;
    }
    return { head, readable, writable, readableLength, writableLength };
  }
}

/**
 * Copy chain bytes `[offset, offset + dst.length)` of `segments` into
 * `dst`; returns the number of bytes copied (less at the end of the chain).
 *
 * @example
 * ```ts
 * import { readSegments } from "./virtqueue.ts";
 * import { FakeMemory } from "../testing/fake_context.ts";
 * const m = new FakeMemory(64);
 * const n = readSegments(m, [{ addr: 0, len: 8 }], 0, new Uint8Array(16)); // 8
 * ```
 */
export function readSegments(
  memory: GuestMemory,
  segments: readonly Segment[],
  offset: number,
  dst: Uint8Array,
): number {
  let done = 0;
  forEachSpan(segments, offset, dst.length, (addr, len) => {
    memory.read(addr, dst.subarray(done, done + len));
    done += len;
  });
  return done;
}

/**
 * Copy `src` into chain bytes starting at `offset` of `segments`; returns
 * the number of bytes written (less at the end of the chain).
 *
 * @example
 * ```ts
 * import { writeSegments } from "./virtqueue.ts";
 * import { FakeMemory } from "../testing/fake_context.ts";
 * const m = new FakeMemory(64);
 * writeSegments(m, [{ addr: 0, len: 4 }, { addr: 32, len: 4 }], 2, new Uint8Array(4));
 * ```
 */
export function writeSegments(
  memory: GuestMemory,
  segments: readonly Segment[],
  offset: number,
  src: Uint8Array,
): number {
  let done = 0;
  forEachSpan(segments, offset, src.length, (addr, len) => {
    memory.write(addr, src.subarray(done, done + len));
    done += len;
  });
  return done;
}

/**
 * Call `fn(addr, len, position)` for each guest span covering chain bytes
 * `[offset, offset + length)`; stops at the end of the segments.
 *
 * @example
 * ```ts
 * import { forEachSpan } from "./virtqueue.ts";
 * forEachSpan([{ addr: 100, len: 10 }], 4, 3, (a, l) => console.log(a, l)); // 104 3
 * ```
 */
export function forEachSpan(
  segments: readonly Segment[],
  offset: number,
  length: number,
  fn: (addr: number, len: number, position: number) => void,
): void {
  let skip = offset;
  let left = length;
  let pos = 0;
  for (const s of segments) {
    if (left <= 0) break;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    const n = Math.min(s.len - skip, left);
    if (n > 0) fn(s.addr + skip, n, pos);
    pos += n;
    left -= n;
    skip = 0;
  }
}
