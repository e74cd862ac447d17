/**
 * virtio-blk (virtio 1.2 §5.2): one request queue; IN, OUT, FLUSH and
 * GET_ID requests against a {@link BlockBackend}, capacity in 512-byte
 * sectors, optional read-only mode and online resize.
 *
 * @module
 */
import type { GuestMemory, LogLevel } from "../../bus/types.ts";
import { type BlockBackend, FileBackend } from "./block_backend.ts";
import { DEVICE_ID } from "./constants.ts";
import type { VirtioDevice, VirtioDeviceHost } from "./virtio_device.ts";
import { VirtioPciFunction } from "./virtio_pci.ts";
import {
  type DescriptorChain,
  forEachSpan,
  readSegments,
  type SplitVirtqueue,
  writeSegments,
} from "./virtqueue.ts";

/**
 * virtio-blk constants (virtio 1.2 §5.2).
 *
 * @example
 * ```ts
 * import { BLK } from "./blk.ts";
 * console.log(BLK.T_GET_ID); // 8
 * ```
 */
export const BLK = {
  /** Sector size used by capacity and request sectors (§5.2.4). */
  SECTOR_SIZE: 512,
  /** VIRTIO_BLK_F_RO feature bit (§5.2.3). */
  F_RO: 5,
  /** VIRTIO_BLK_F_BLK_SIZE feature bit (§5.2.3). */
  F_BLK_SIZE: 6,
  /** VIRTIO_BLK_F_FLUSH feature bit (§5.2.3). */
  F_FLUSH: 9,
  /** Request type: read (§5.2.6). */
  T_IN: 0,
  /** Request type: write. */
  T_OUT: 1,
  /** Request type: flush. */
  T_FLUSH: 4,
  /** Request type: get device ID string. */
  T_GET_ID: 8,
  /** Status: success. */
  S_OK: 0,
  /** Status: I/O error. */
  S_IOERR: 1,
  /** Status: unsupported request. */
  S_UNSUPP: 2,
  /** Size of the request header: le32 type, le32 reserved, le64 sector. */
  HEADER_SIZE: 16,
  /** Length of the GET_ID string (VIRTIO_BLK_ID_BYTES). */
  ID_BYTES: 20,
  /** Config offset of le64 capacity (§5.2.4). */
  CFG_CAPACITY: 0,
  /** Config offset of le32 blk_size (§5.2.4). */
  CFG_BLK_SIZE: 20,
  /** Size of the config structure exposed (through blk_size). */
  CFG_SIZE: 24,
} as const;

/**
 * Options of {@link VirtioBlk}.
 *
 * @example
 * ```ts
 * import type { VirtioBlkOptions } from "./blk.ts";
 * import { MemoryBackend } from "./block_backend.ts";
 * const o: VirtioBlkOptions = { backend: new MemoryBackend(1 << 20), serial: "disk0" };
 * ```
 */
export interface VirtioBlkOptions {
  /** Storage; or give `path`. */
  readonly backend?: BlockBackend;
  /** Host file opened with {@link FileBackend.open} when no backend. */
  readonly path?: string;
  /** Offer VIRTIO_BLK_F_RO and fail writes (default false). */
  readonly readOnly?: boolean;
  /** GET_ID string (up to 20 bytes of UTF-8), default "denovmm". */
  readonly serial?: string;
  /** Queue size (power of two), default 256. */
  readonly queueSize?: number;
}

/**
 * Counters.
 *
 * @example
 * ```ts
 * import type { BlkCounters } from "./blk.ts";
 * const c: BlkCounters = { reads: 0, writes: 0, flushes: 0, errors: 0, malformed: 0 };
 * ```
 */
export interface BlkCounters {
  /** Completed IN requests. */
  reads: number;
  /** Completed OUT requests. */
  writes: number;
  /** Completed FLUSH requests. */
  flushes: number;
  /** Requests answered with IOERR or UNSUPP. */
  errors: number;
  /** Chains with no room for a header or status (dropped, used.len 0). */
  malformed: number;
}

/**
 * The virtio-blk device model.
 *
 * @example
 * ```ts
 * import { VirtioBlk } from "./blk.ts";
 * import { MemoryBackend } from "./block_backend.ts";
 * const blk = new VirtioBlk({ backend: new MemoryBackend(4096) });
 * console.log(blk.capacity); // 8 sectors
 * ```
 */
export class VirtioBlk implements VirtioDevice {
  /** Name in logs. */
  readonly name = "virtio-blk";
  /** Virtio device ID 2 (block). */
  readonly deviceId: number = DEVICE_ID.BLOCK;
  /** Offered features. */
  readonly features: bigint;
  /** One request queue. */
  readonly queueSizes: readonly number[];
  /** Device config size. */
  readonly configSize: number = BLK.CFG_SIZE;
  /** Counters. */
  readonly counters: BlkCounters = {
    reads: 0,
    writes: 0,
    flushes: 0,
    errors: 0,
    malformed: 0,
  };
  /** Read-only mode. */
  readonly readOnly: boolean;
  readonly #backend: BlockBackend;
  readonly #id: Uint8Array;
  #capacity: number;
  #host: VirtioDeviceHost | null = null;
  readonly #logged = new Set<string>();
  readonly #header = new Uint8Array(BLK.HEADER_SIZE);
  readonly #status = new Uint8Array(1);

  /** Create the device; opens `path` when no backend is given. */
  constructor(options: VirtioBlkOptions) {
    const backend = options.backend ??
      (options.path !== undefined
        ? FileBackend.open(options.path, { readOnly: options.readOnly })
        : undefined);
    if (!backend) throw new TypeError("virtio-blk needs a backend or a path");
    this.#backend = backend;
    this.readOnly = options.readOnly ?? false;
    this.features = (1n << BigInt(BLK.F_FLUSH)) |
      (1n << BigInt(BLK.F_BLK_SIZE)) |
      (this.readOnly ? 1n << BigInt(BLK.F_RO) : 0n);
    this.queueSizes = [options.queueSize ?? 256];
    const id = new TextEncoder().encode(options.serial ?? "denovmm");
    this.#id = id.subarray(0, BLK.ID_BYTES);
    this.#capacity = Math.floor(backend.size / BLK.SECTOR_SIZE);
  }

  /** Capacity in 512-byte sectors. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Keep host services. */
  attach(host: VirtioDeviceHost): void {
    this.#host = host;
  }

  /** Device config: capacity and blk_size (§5.2.4). */
  readConfig(offset: number, data: Uint8Array): void {
    const cfg = new Uint8Array(BLK.CFG_SIZE);
    const dv = new DataView(cfg.buffer);
    dv.setUint32(BLK.CFG_CAPACITY, this.#capacity % 2 ** 32, true);
    dv.setUint32(
      BLK.CFG_CAPACITY + 4,
      Math.floor(this.#capacity / 2 ** 32),
      true,
    );
    dv.setUint32(BLK.CFG_BLK_SIZE, BLK.SECTOR_SIZE, true);
    for (let i = 0; i < data.length; i++) {
      const o = offset + i;
      data[i] = o < BLK.CFG_SIZE ? cfg[o] : 0;
    }
  }

  /** Config is read-only here (no writeback feature). */
  writeConfig(): void {}

  /** Nothing to reset: requests complete synchronously. */
  reset(): void {}

  /** Close the backend. */
  close(): void {
    this.#backend.close?.();
  }

  /**
   * Resize the disk to `newBytes`: resize the backend, update capacity and
   * raise a configuration change notification.
   */
  resize(newBytes: number): void {
    if (!Number.isSafeInteger(newBytes) || newBytes < 0) {
      throw new RangeError(`bad disk size ${newBytes}`);
    }
    this.#backend.resize?.(newBytes);
    this.#capacity = Math.floor(newBytes / BLK.SECTOR_SIZE);
    this.#host?.configChanged();
  }

  /** Serve every available request (bounded by the queue size). */
  processQueue(_index: number, queue: SplitVirtqueue): void {
    const host = this.#host;
    if (!host) return;
    for (let n = 0; n < queue.size; n++) {
      const chain = queue.pop();
      if (chain === null) return;
      queue.pushUsed(chain.head, this.#request(host.memory, chain));
    }
  }

  /** Handle one request; returns used.len. */
  #request(mem: GuestMemory, chain: DescriptorChain): number {
    if (chain.readableLength < BLK.HEADER_SIZE || chain.writableLength < 1) {
      this.counters.malformed++;
      this.#logOnce(
        "malformed",
        "warn",
        "request without header or status byte",
      );
      return 0;
    }
    readSegments(mem, chain.readable, 0, this.#header);
    const hv = new DataView(this.#header.buffer);
    const type = hv.getUint32(0, true);
    const sectorLo = hv.getUint32(8, true);
    const sectorHi = hv.getUint32(12, true);
    const statusAt = chain.writableLength - 1;
    let status: number = BLK.S_OK;
    let len = 1;
    switch (type) {
      case BLK.T_IN: {
        const bytes = statusAt;
        status = this.#io(mem, sectorLo, sectorHi, bytes, chain, false);
        if (status === BLK.S_OK) {
          len = bytes + 1;
          this.counters.reads++;
        }
        break;
      }
      case BLK.T_OUT: {
        const bytes = chain.readableLength - BLK.HEADER_SIZE;
        status = this.readOnly
          ? BLK.S_IOERR
          : this.#io(mem, sectorLo, sectorHi, bytes, chain, true);
        if (status === BLK.S_OK) this.counters.writes++;
        break;
      }
      case BLK.T_FLUSH:
        try {
          this.#backend.flush();
          this.counters.flushes++;
        } catch (e) {
          this.#logOnce("flush", "error", `flush failed: ${e}`);
          status = BLK.S_IOERR;
        }
        break;
      case BLK.T_GET_ID: {
        const n = Math.min(statusAt, BLK.ID_BYTES);
        const id = new Uint8Array(n);
        id.set(this.#id.subarray(0, n));
        writeSegments(mem, chain.writable, 0, id);
        len = n + 1;
        break;
      }
      default:
        status = BLK.S_UNSUPP;
    }
    if (status !== BLK.S_OK) this.counters.errors++;
    this.#status[0] = status;
    writeSegments(mem, chain.writable, statusAt, this.#status);
    return len;
  }

  /** IN/OUT data transfer with range checks. */
  #io(
    mem: GuestMemory,
    sectorLo: number,
    sectorHi: number,
    bytes: number,
    chain: DescriptorChain,
    write: boolean,
  ): number {
    const sector = sectorHi * 2 ** 32 + sectorLo;
    if (
      bytes % BLK.SECTOR_SIZE !== 0 || sectorHi >= 0x200000 ||
      sector + bytes / BLK.SECTOR_SIZE > this.#capacity
    ) {
      this.#logOnce(
        "range",
        "warn",
        `request sector ${sector} +${bytes} bytes outside ${this.#capacity} sectors`,
      );
      return BLK.S_IOERR;
    }
    const base = sector * BLK.SECTOR_SIZE;
    try {
      if (write) {
        forEachSpan(
          chain.readable,
          BLK.HEADER_SIZE,
          bytes,
          (addr, len, pos) => {
            this.#backend.write(base + pos, mem.view(addr, len));
          },
        );
      } else {
        forEachSpan(chain.writable, 0, bytes, (addr, len, pos) => {
          this.#backend.read(base + pos, mem.view(addr, len));
        });
      }
    } catch (e) {
      this.#logOnce(
        "io",
        "error",
        `backend ${write ? "write" : "read"} failed: ${e}`,
      );
      return BLK.S_IOERR;
    }
    return BLK.S_OK;
  }

  #logOnce(key: string, level: LogLevel, msg: string): void {
    if (this.#logged.has(key)) return;
    this.#logged.add(key);
    this.#host?.log(level, msg);
  }
}

/**
 * A virtio-blk PCI function (vendor 0x1AF4, device 0x1042, class 0x018000)
 * for {@link "../pci/pci_bus.ts".PciBus}; `fn.device.resize(bytes)`
 * resizes the disk.
 *
 * @example
 * ```ts
 * import { virtioBlk } from "./blk.ts";
 * import { MemoryBackend } from "./block_backend.ts";
 * import { pciBusPlugin } from "../pci/pci_bus.ts";
 * const disk = virtioBlk({ backend: new MemoryBackend(1 << 20) });
 * const plugin = pciBusPlugin({ devices: [{ device: 2, function: disk }] });
 * ```
 */
export function virtioBlk(
  options: VirtioBlkOptions,
): VirtioPciFunction<VirtioBlk> {
  return new VirtioPciFunction(new VirtioBlk(options), { classCode: 0x018000 });
}
