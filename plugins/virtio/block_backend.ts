/**
 * Storage behind virtio-blk: a host file (synchronous I/O) or memory.
 *
 * @module
 */

import { host, type HostFile } from "../../ffi/host.ts";

/**
 * Byte-addressed storage. Methods are synchronous and may throw on host
 * I/O errors (the device reports VIRTIO_BLK_S_IOERR).
 *
 * @example
 * ```ts
 * import type { BlockBackend } from "./block_backend.ts";
 * function firstSector(b: BlockBackend): Uint8Array {
 *   const s = new Uint8Array(512);
 *   b.read(0, s);
 *   return s;
 * }
 * ```
 */
export interface BlockBackend {
  /** Size in bytes. */
  readonly size: number;
  /** Fill `buf` from byte `offset` (bytes past the end read as zero). */
  read(offset: number, buf: Uint8Array): void;
  /** Write `buf` at byte `offset`. */
  write(offset: number, buf: Uint8Array): void;
  /** Make written data durable (fdatasync for files). */
  flush(): void;
  /** Change the size (truncate or extend with zeros). */
  resize?(newSize: number): void;
  /** Release host resources. */
  close?(): void;
}

/**
 * A backend held in memory (tests, scratch disks).
 *
 * @example
 * ```ts
 * import { MemoryBackend } from "./block_backend.ts";
 * const disk = new MemoryBackend(1 << 20);
 * disk.write(512, new Uint8Array([1, 2, 3]));
 * ```
 */
export class MemoryBackend implements BlockBackend {
  #bytes: Uint8Array;
  /** Number of `flush` calls. */
  flushes = 0;
  /** Create a zeroed disk of `size` bytes, or wrap `bytes`. */
  constructor(sizeOrBytes: number | Uint8Array) {
    this.#bytes = typeof sizeOrBytes === "number"
      ? new Uint8Array(sizeOrBytes)
      : sizeOrBytes;
  }
  /** The contents. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }
  /** Size in bytes. */
  get size(): number {
    return this.#bytes.length;
  }
  /** Copy out. */
  read(offset: number, buf: Uint8Array): void {
    buf.fill(0);
    if (offset < this.#bytes.length) {
      buf.set(this.#bytes.subarray(offset, offset + buf.length));
    }
  }
  /** Copy in; throws RangeError past the end. */
  write(offset: number, buf: Uint8Array): void {
    if (offset + buf.length > this.#bytes.length) {
      throw new RangeError("write past the end of the disk");
    }
    this.#bytes.set(buf, offset);
  }
  /** Count the flush. */
  flush(): void {
    this.flushes++;
  }
  /** Reallocate, keeping the common prefix. */
  resize(newSize: number): void {
    const b = new Uint8Array(newSize);
    b.set(this.#bytes.subarray(0, Math.min(newSize, this.#bytes.length)));
    this.#bytes = b;
  }
}

/**
 * A backend on a host file with synchronous I/O.
 *
 * @example
 * ```ts
 * import { FileBackend } from "./block_backend.ts";
 * // const disk = FileBackend.open("disk.img", { readOnly: true });
 * ```
 */
export class FileBackend implements BlockBackend {
  readonly #file: HostFile;
  #size: number;

  /** Wrap an open file of `size` bytes. */
  constructor(file: HostFile, size: number) {
    this.#file = file;
    this.#size = size;
  }

  /** Open `path` (read-write unless `readOnly`). */
  static open(path: string, options: { readOnly?: boolean } = {}): FileBackend {
    const file = host.open(path, { read: true, write: !options.readOnly });
    return new FileBackend(file, file.stat().size);
  }

  /** Size in bytes. */
  get size(): number {
    return this.#size;
  }

  /** Read; bytes past end of file read as zero. */
  read(offset: number, buf: Uint8Array): void {
    let done = 0;
    while (done < buf.length) {
      const n = this.#file.readAt(buf.subarray(done), offset + done);
      if (n === 0) break;
      done += n;
    }
    buf.fill(0, done);
  }

  /** Write all of `buf`. */
  write(offset: number, buf: Uint8Array): void {
    let done = 0;
    while (done < buf.length) {
      const n = this.#file.writeAt(buf.subarray(done), offset + done);
      if (n <= 0) throw new Error("short write");
      done += n;
    }
  }

  /** fdatasync. */
  flush(): void {
    this.#file.syncData();
  }

  /** Truncate or extend the file. */
  resize(newSize: number): void {
    this.#file.truncate(newSize);
    this.#size = newSize;
  }

  /** Close the file. */
  close(): void {
    this.#file.close();
  }
}
