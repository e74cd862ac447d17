/**
 * QEMU fw_cfg, legacy (traditional, non-DMA) I/O interface: a 16-bit
 * selector port and a byte-wide data port whose offset advances on each
 * read.
 *
 * Sources: QEMU `docs/specs/fw_cfg.rst` ("Selector (Control) Register",
 * "Data Register", "Well-known selectors", "File Directory") and
 * `include/standard-headers/linux/qemu_fw_cfg.h` for key numbers; QEMU
 * `hw/nvram/fw_cfg.c` (`fw_cfg_select`, `fw_cfg_data_read`: unknown keys
 * and reads past the end return 0) and `hw/i386/fw_cfg.c` /
 * `hw/i386/x86.c` (`FW_CFG_RAM_SIZE` u64, `FW_CFG_NB_CPUS` and
 * `FW_CFG_MAX_CPUS` u16, `FW_CFG_CMDLINE_SIZE` = strlen + 1 as u32, all
 * little-endian). The file directory is big-endian.
 *
 * @module
 */
import { writeLe } from "../../bus/le.ts";
import { stateFields } from "../../bus/state.ts";

/** Selector port (16-bit write). */
export const FW_CFG_PORT_SELECTOR = 0x510;
/** Data port (8-bit read). */
export const FW_CFG_PORT_DATA = 0x511;

/** Key 0x00: signature "QEMU". */
export const FW_CFG_SIGNATURE = 0x00;
/** Key 0x01: interface ID (bit 0 traditional, bit 1 DMA), u32 LE. */
export const FW_CFG_ID = 0x01;
/** Key 0x03: RAM size in bytes, u64 LE. */
export const FW_CFG_RAM_SIZE = 0x03;
/** Key 0x05: number of boot CPUs, u16 LE. */
export const FW_CFG_NB_CPUS = 0x05;
/** Key 0x0F: maximum CPUs, u16 LE. */
export const FW_CFG_MAX_CPUS = 0x0f;
/** Key 0x14: kernel command line size including the NUL, u32 LE. */
export const FW_CFG_CMDLINE_SIZE = 0x14;
/** Key 0x15: kernel command line bytes, NUL-terminated. */
export const FW_CFG_CMDLINE_DATA = 0x15;
/** Key 0x19: file directory (u32 BE count, then 64-byte entries). */
export const FW_CFG_FILE_DIR = 0x19;
/** First key used for named files. */
export const FW_CFG_FILE_FIRST = 0x20;
/** Selector bit 14: write channel (ignored when selecting for read). */
export const FW_CFG_WRITE_CHANNEL = 0x4000;
/** FW_CFG_ID bit 0: traditional I/O interface. */
export const FW_CFG_VERSION = 0x01;
/** Bytes of a file name field in a directory entry, NUL included. */
export const FW_CFG_MAX_FILE_PATH = 56;

/**
 * A named fw_cfg file.
 *
 * @example
 * ```ts
 * import type { FwCfgFile } from "./fw_cfg.ts";
 * const f: FwCfgFile = { name: "etc/test", data: new Uint8Array([1]) };
 * ```
 */
export interface FwCfgFile {
  /** Name, at most 55 bytes of UTF-8. */
  readonly name: string;
  /** Contents. */
  readonly data: Uint8Array;
}

/**
 * Contents of the fw_cfg device.
 *
 * @example
 * ```ts
 * import type { FwCfgOptions } from "./fw_cfg.ts";
 * const o: FwCfgOptions = { ramSize: 256 * 2 ** 20, cpus: 1, cmdline: "console=ttyS0" };
 * ```
 */
export interface FwCfgOptions {
  /** Guest RAM size in bytes (safe integer ≥ 0). */
  readonly ramSize: number;
  /** Number of CPUs, 1..65535; also reported as max CPUs. */
  readonly cpus: number;
  /** Kernel command line; keys 0x14/0x15 are absent when undefined. */
  readonly cmdline?: string;
  /** Named files, listed in the directory from key 0x20 on. */
  readonly files?: readonly FwCfgFile[];
}

function u16le(v: number): Uint8Array {
  const b = new Uint8Array(2);
  writeLe(b, v);
  return b;
}

function u32le(v: number): Uint8Array {
  const b = new Uint8Array(4);
  writeLe(b, v);
  return b;
}

function u64le(v: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
}

/**
 * Plain-data state of {@link FwCfg}: the selected key and read offset (the
 * items themselves come from the options).
 *
 * @example
 * ```ts
 * import type { FwCfgState } from "./fw_cfg.ts";
 * const s: FwCfgState = { version: 1, key: 0, offset: 2 };
 * ```
 */
export interface FwCfgState {
  /** Format version, currently 1. */
  readonly version: 1;
  /** Selected key, -1 before the first select. */
  readonly key: number;
  /** Bytes of the selected item already read. */
  readonly offset: number;
}

/**
 * The fw_cfg state machine: `select(key)` then `readData()` per byte.
 *
 * @example
 * ```ts
 * import { FwCfg } from "./fw_cfg.ts";
 * const fw = new FwCfg({ ramSize: 1 << 20, cpus: 1 });
 * fw.select(0);
 * const sig = [0, 1, 2, 3].map(() => String.fromCharCode(fw.readData()));
 * console.log(sig.join("")); // "QEMU"
 * ```
 */
export class FwCfg {
  readonly #items = new Map<number, Uint8Array>();
  #current: Uint8Array | null = null;
  #key = -1;
  #offset = 0;
  /** Counters. */
  readonly stats = { selects: 0, unknownKeys: 0, reads: 0, badAccesses: 0 };

  /** Build the items; throws RangeError/TypeError on bad host options. */
  constructor(options: FwCfgOptions) {
    const { ramSize, cpus, cmdline, files = [] } = options;
    if (!Number.isSafeInteger(ramSize) || ramSize < 0) {
      throw new RangeError(`fw_cfg: bad ramSize ${ramSize}`);
    }
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 0xffff) {
      throw new RangeError(`fw_cfg: bad cpus ${cpus}`);
    }
    const enc = new TextEncoder();
    this.#items.set(FW_CFG_SIGNATURE, enc.encode("QEMU"));
    this.#items.set(FW_CFG_ID, u32le(FW_CFG_VERSION));
    this.#items.set(FW_CFG_RAM_SIZE, u64le(ramSize));
    this.#items.set(FW_CFG_NB_CPUS, u16le(cpus));
    this.#items.set(FW_CFG_MAX_CPUS, u16le(cpus));
    if (cmdline !== undefined) {
      const text = enc.encode(cmdline);
      if (text.includes(0)) throw new TypeError("fw_cfg: NUL in cmdline");
      const data = new Uint8Array(text.length + 1);
      data.set(text);
      this.#items.set(FW_CFG_CMDLINE_SIZE, u32le(data.length));
      this.#items.set(FW_CFG_CMDLINE_DATA, data);
    }
    const dir = new Uint8Array(4 + 64 * files.length);
    const view = new DataView(dir.buffer);
    view.setUint32(0, files.length, false);
    const seen = new Set<string>();
    files.forEach((f, i) => {
      const name = enc.encode(f.name);
      if (name.length === 0 || name.length >= FW_CFG_MAX_FILE_PATH) {
        throw new RangeError(`fw_cfg: bad file name "${f.name}"`);
      }
      if (seen.has(f.name)) throw new RangeError(`fw_cfg: dup "${f.name}"`);
      seen.add(f.name);
      const key = FW_CFG_FILE_FIRST + i;
      const at = 4 + 64 * i;
      view.setUint32(at, f.data.length, false);
      view.setUint16(at + 4, key, false);
      dir.set(name, at + 8);
      this.#items.set(key, f.data.slice());
    });
    this.#items.set(FW_CFG_FILE_DIR, dir);
  }

  /** Select `key` (the write-channel bit is ignored) and rewind. */
  select(key: number): void {
    this.stats.selects++;
    const k = (key & 0xffff) & ~FW_CFG_WRITE_CHANNEL;
    this.#key = k;
    this.#current = this.#items.get(k) ?? null;
    if (this.#current === null) this.stats.unknownKeys++;
    this.#offset = 0;
  }

  /** Next byte of the selected item; 0 past its end or for unknown keys. */
  readData(): number {
    this.stats.reads++;
    const item = this.#current;
    if (item === null || this.#offset >= item.length) return 0;
    return item[this.#offset++];
  }

  /** The bytes of `key`, or undefined (for tests and debugging). */
  item(key: number): Uint8Array | undefined {
    return this.#items.get(key);
  }

  /** The selected key and read offset. */
  snapshot(): FwCfgState {
    return { version: 1, key: this.#key, offset: this.#offset };
  }

  /**
   * Load a state from {@link snapshot}; a malformed one throws TypeError
   * and changes nothing.
   */
  restore(state: FwCfgState): void {
    const f = stateFields(state, 1, "fw_cfg");
    const key = f.int("key", -1, 0xffff);
    const offset = f.int("offset", 0, 2 ** 32);
    this.#key = key;
    this.#current = key < 0 ? null : this.#items.get(key) ?? null;
    this.#offset = offset;
  }
}
