/**
 * The snapshot file format (version 1), encoded and decoded here without
 * touching a VM, so the parser can be fuzzed on its own.
 *
 * ```
 * 0   "DNVMSNAP"        magic (8 bytes)
 * 8   u32 version       FORMAT_VERSION
 * 12  u32 flags         bit 0: diff snapshot (memory holds only DIRT pages)
 * 16  u32 sections      number of section table entries
 * 20  u32 header CRC    CRC32 of bytes [0, 64 + 24 * sections), this field 0
 * 24  u64 memory offset page-aligned start of the memory image
 * 32  u64 memory size   RAM bytes (the image's length)
 * 40  u32 memory CRC    see `dv_memory_file_crc` (checked on request)
 * 44  u32 memory pages  pages the CRC covers
 * 48  16 bytes reserved (0)
 * 64  section table: per section tag (4 ASCII bytes), u32 CRC32 of its
 *     bytes, u64 offset, u64 length
 * ... sections: META (JSON: ids, host CPU, layout, devices, timers),
 *     CPUS (the core's machine-state blob), DEVS (JSON device states by
 *     plugin name), DIRT (diff only: u64 page bitmap)
 * memory offset: RAM in host-mapping page order (GPA 0.. then 4 GiB..),
 *     a sparse image (zero pages are holes), mmap-able MAP_PRIVATE.
 * ```
 * All integers little-endian. The file is exactly memory offset + memory
 * size bytes long. Every error is a {@link SnapshotError} naming what is
 * wrong.
 *
 * @module
 */
import { host, type HostFile } from "../ffi/host.ts";

/** First 8 bytes of a snapshot file. */
export const MAGIC = "DNVMSNAP";
/** Version of this file format. */
export const FORMAT_VERSION = 1;
/** Bytes of the fixed header. */
export const HEADER_LEN = 64;
/** Bytes of one section table entry. */
export const ENTRY_LEN = 24;
/** Alignment of the memory image. */
export const PAGE = 4096;
/** Header flag: a diff snapshot. */
export const FLAG_DIFF = 1;

/** What went wrong reading a snapshot. */
export type SnapshotErrorKind =
  | "not-a-snapshot"
  | "version"
  | "truncated"
  | "corrupt"
  | "mismatch";

/**
 * A snapshot that cannot be read or does not fit: `kind` says which.
 *
 * @example
 * ```ts
 * import { SnapshotError } from "./snapshot_format.ts";
 * const e = new SnapshotError("truncated", "x.snap: 10 bytes");
 * console.log(e.kind); // "truncated"
 * ```
 */
export class SnapshotError extends Error {
  /** Category of the failure. */
  readonly kind: SnapshotErrorKind;
  /** Create an error of `kind`. */
  constructor(kind: SnapshotErrorKind, message: string) {
    super(message);
    this.name = "SnapshotError";
    this.kind = kind;
  }
}

/** The header fields of a snapshot file. */
export interface SnapshotHeader {
  /** Flags (see {@link FLAG_DIFF}). */
  flags: number;
  /** Page-aligned offset of the memory image. */
  memoryOffset: number;
  /** RAM size in bytes. */
  memorySize: number;
  /** CRC32 of the memory image's counted pages. */
  memoryCrc: number;
  /** Pages counted by the CRC. */
  memoryPages: number;
}

/** A decoded file: header and sections by tag. */
export interface SnapshotContainer {
  /** Header fields. */
  header: SnapshotHeader;
  /** Section bytes by 4-letter tag. */
  sections: Map<string, Uint8Array>;
}

// CRC-32 (IEEE, zlib's) in TS: `node:zlib` would make Deno initialise its
// Node layer (~20-30 ms) in every process importing the VM; sections are
// small (state, a page bitmap), never the RAM image.
let crcTable: Uint32Array | undefined;

function crc(b: Uint8Array): number {
  const t = crcTable ??= (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c >>> 0;
    }
    return t;
  })();
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = t[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Encode the part of a file before the memory image (header, table,
 * sections), padded to the memory offset. The memory CRC fields may be
 * patched later with {@link patchMemoryCrc}.
 */
export function encodeContainer(
  header: Omit<SnapshotHeader, "memoryOffset">,
  sections: ReadonlyMap<string, Uint8Array>,
): Uint8Array {
  const tags = [...sections.keys()];
  for (const t of tags) {
    if (!/^[A-Z]{4}$/.test(t)) throw new RangeError(`bad section tag "${t}"`);
  }
  const table = HEADER_LEN + ENTRY_LEN * tags.length;
  let off = table;
  const placed: [string, number, Uint8Array][] = [];
  for (const t of tags) {
    const body = sections.get(t)!;
    placed.push([t, off, body]);
    off += Math.ceil(body.length / 8) * 8;
  }
  const memoryOffset = Math.ceil(off / PAGE) * PAGE;
  const out = new Uint8Array(memoryOffset);
  const dv = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  dv.setUint32(8, FORMAT_VERSION, true);
  dv.setUint32(12, header.flags, true);
  dv.setUint32(16, tags.length, true);
  dv.setBigUint64(24, BigInt(memoryOffset), true);
  dv.setBigUint64(32, BigInt(header.memorySize), true);
  dv.setUint32(40, header.memoryCrc >>> 0, true);
  dv.setUint32(44, header.memoryPages >>> 0, true);
  placed.forEach(([t, o, body], i) => {
    const e = HEADER_LEN + ENTRY_LEN * i;
    out.set(new TextEncoder().encode(t), e);
    dv.setUint32(e + 4, crc(body), true);
    dv.setBigUint64(e + 8, BigInt(o), true);
    dv.setBigUint64(e + 16, BigInt(body.length), true);
    out.set(body, o);
  });
  sealHeader(out);
  return out;
}

function sealHeader(out: Uint8Array): void {
  const dv = new DataView(out.buffer, out.byteOffset);
  const n = dv.getUint32(16, true);
  dv.setUint32(20, 0, true);
  dv.setUint32(20, crc(out.subarray(0, HEADER_LEN + ENTRY_LEN * n)), true);
}

/** Set the memory CRC fields of an encoded container and re-seal it. */
export function patchMemoryCrc(
  out: Uint8Array,
  memoryCrc: number,
  memoryPages: number,
): void {
  const dv = new DataView(out.buffer, out.byteOffset);
  dv.setUint32(40, memoryCrc >>> 0, true);
  dv.setUint32(44, memoryPages >>> 0, true);
  sealHeader(out);
}

/**
 * Decode the bytes before the memory image. `fileLength` (when known) is
 * checked against the header's memory offset + size; `what` names the
 * source in errors.
 */
export function decodeContainer(
  b: Uint8Array,
  fileLength: number | null = null,
  what = "snapshot",
): SnapshotContainer {
  const fail = (k: SnapshotErrorKind, m: string): never => {
    throw new SnapshotError(k, `${what}: ${m}`);
  };
  if (b.length < 8 || new TextDecoder().decode(b.subarray(0, 8)) !== MAGIC) {
    fail(
      b.length < 8 ? "truncated" : "not-a-snapshot",
      b.length < 8
        ? `${b.length} bytes is shorter than the magic`
        : `not a denovmm snapshot (magic is not "${MAGIC}")`,
    );
  }
  if (b.length < HEADER_LEN) {
    fail("truncated", `${b.length} bytes is shorter than the header`);
  }
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const version = dv.getUint32(8, true);
  const n = dv.getUint32(16, true);
  const tableEnd = HEADER_LEN + ENTRY_LEN * n;
  if (n > 64) fail("corrupt", `${n} sections (header corrupt)`);
  if (b.length < tableEnd) {
    fail("truncated", `${b.length} bytes, the section table needs ${tableEnd}`);
  }
  const copy = b.slice(0, tableEnd);
  new DataView(copy.buffer).setUint32(20, 0, true);
  if (crc(copy) !== dv.getUint32(20, true)) {
    fail("corrupt", "header checksum mismatch (header or table corrupt)");
  }
  if (version !== FORMAT_VERSION) {
    fail(
      "version",
      `format version ${version}, this denovmm reads version ${FORMAT_VERSION}`,
    );
  }
  const header: SnapshotHeader = {
    flags: dv.getUint32(12, true),
    memoryOffset: Number(dv.getBigUint64(24, true)),
    memorySize: Number(dv.getBigUint64(32, true)),
    memoryCrc: dv.getUint32(40, true),
    memoryPages: dv.getUint32(44, true),
  };
  if (header.memoryOffset % PAGE !== 0 || header.memorySize % PAGE !== 0) {
    fail("corrupt", "memory offset or size is not page-aligned");
  }
  if (fileLength !== null) {
    const need = header.memoryOffset + header.memorySize;
    if (fileLength < need) {
      fail(
        "truncated",
        `${fileLength} bytes, the memory image ends at ${need}`,
      );
    }
    if (fileLength > need) {
      fail("corrupt", `${fileLength} bytes, ${fileLength - need} past the end`);
    }
  }
  const sections = new Map<string, Uint8Array>();
  for (let i = 0; i < n; i++) {
    const e = HEADER_LEN + ENTRY_LEN * i;
    const tag = new TextDecoder().decode(b.subarray(e, e + 4));
    const off = Number(dv.getBigUint64(e + 8, true));
    const len = Number(dv.getBigUint64(e + 16, true));
    if (off < tableEnd || off + len > header.memoryOffset) {
      fail("corrupt", `section ${tag} lies outside the header area`);
    }
    if (off + len > b.length) {
      fail(
        "truncated",
        `section ${tag} ends at ${off + len}, have ${b.length}`,
      );
    }
    const body = b.subarray(off, off + len);
    if (crc(body) !== dv.getUint32(e + 4, true)) {
      fail("corrupt", `section ${tag} checksum mismatch`);
    }
    sections.set(tag, body);
  }
  return { header, sections };
}

/** Read a file's container (header + sections; not the memory image). */
export function readContainer(path: string): SnapshotContainer {
  let f: HostFile;
  try {
    f = host.open(path, { read: true });
  } catch (e) {
    throw new SnapshotError(
      "not-a-snapshot",
      `${path}: cannot open (${(e as Error).message})`,
    );
  }
  try {
    const size = f.stat().size;
    const head = new Uint8Array(Math.min(size, HEADER_LEN));
    readFull(f, head);
    const probe = decodeHeaderLength(head, path);
    const all = new Uint8Array(Math.min(size, probe));
    readFull(f, all);
    return decodeContainer(all, size, path);
  } finally {
    f.close();
  }
}

/** The memory offset the header claims (bytes to read), checked loosely. */
function decodeHeaderLength(head: Uint8Array, what: string): number {
  if (head.length < HEADER_LEN) return head.length;
  const dv = new DataView(head.buffer);
  const off = Number(dv.getBigUint64(24, true));
  const n = dv.getUint32(16, true);
  // A corrupt offset must not make us read gigabytes: cap it, and let the
  // checksums decide.
  const cap = Math.max(HEADER_LEN + ENTRY_LEN * Math.min(n, 64), 1 << 24);
  if (!Number.isSafeInteger(off) || off > cap) {
    throw new SnapshotError(
      "corrupt",
      `${what}: memory offset ${off} is implausible (header corrupt)`,
    );
  }
  return Math.max(off, HEADER_LEN + ENTRY_LEN * Math.min(n, 64));
}

function readFull(f: HostFile, buf: Uint8Array): void {
  let o = 0;
  while (o < buf.length) {
    const n = f.readAt(buf.subarray(o), o);
    if (n === 0) break;
    o += n;
  }
}
