/**
 * Little-endian helpers for the byte buffers a region handler receives.
 *
 * A guest access arrives as `size` bytes (1, 2, 4 or 8), least significant
 * first. Every device decodes and encodes them with these functions instead
 * of its own loop.
 *
 * @example
 * ```ts
 * import { readLe, writeLe } from "./le.ts";
 * const data = new Uint8Array(4);
 * writeLe(data, 0x12345678);
 * console.log(data, readLe(data)); // Uint8Array [0x78, 0x56, 0x34, 0x12] 305419896
 * ```
 *
 * @module
 */

function span(bytes: Uint8Array, offset: number, width: number): void {
  if (
    !Number.isInteger(offset) || !Number.isInteger(width) || offset < 0 ||
    width < 0 || offset + width > bytes.length
  ) {
    throw new RangeError(
      `little-endian access [${offset}, +${width}) outside ${bytes.length} bytes`,
    );
  }
}

/**
 * The unsigned little-endian number in `width` bytes of `bytes` at
 * `offset` (default: all bytes from `offset`). Exact up to 2^53; use
 * {@link readLeBig} for full 64-bit values.
 *
 * @example
 * ```ts
 * import { readLe } from "./le.ts";
 * console.log(readLe(new Uint8Array([0x34, 0x12]))); // 4660
 * console.log(readLe(new Uint8Array([0, 0xff, 0x01]), 1, 2)); // 511
 * ```
 */
export function readLe(
  bytes: Uint8Array,
  offset = 0,
  width: number = bytes.length - offset,
): number {
  span(bytes, offset, width);
  let v = 0;
  for (let i = offset + width - 1; i >= offset; i--) v = v * 256 + bytes[i];
  return v;
}

/**
 * Store the low `width` bytes of `value` (an integer, two's complement when
 * negative) little-endian into `bytes` at `offset` (default: all bytes from
 * `offset`).
 *
 * @example
 * ```ts
 * import { writeLe } from "./le.ts";
 * const d = new Uint8Array(2);
 * writeLe(d, 0x1234);
 * console.log(d); // Uint8Array [0x34, 0x12]
 * ```
 */
export function writeLe(
  bytes: Uint8Array,
  value: number,
  offset = 0,
  width: number = bytes.length - offset,
): void {
  span(bytes, offset, width);
  let v = Math.trunc(value);
  for (let i = offset; i < offset + width; i++) {
    bytes[i] = v & 0xff;
    v = Math.floor(v / 256);
  }
}

/**
 * The unsigned little-endian value of up to 8 bytes as a bigint (exact for
 * every u64).
 *
 * @example
 * ```ts
 * import { readLeBig } from "./le.ts";
 * console.log(readLeBig(new Uint8Array(8).fill(0xff))); // 18446744073709551615n
 * ```
 */
export function readLeBig(
  bytes: Uint8Array,
  offset = 0,
  width: number = bytes.length - offset,
): bigint {
  span(bytes, offset, width);
  let v = 0n;
  for (let i = offset + width - 1; i >= offset; i--) {
    v = (v << 8n) | BigInt(bytes[i]);
  }
  return v;
}

/**
 * Store the low `width` bytes of a bigint little-endian (two's complement
 * when negative).
 *
 * @example
 * ```ts
 * import { writeLeBig } from "./le.ts";
 * const d = new Uint8Array(8);
 * writeLeBig(d, 0x0102030405060708n);
 * console.log(d[0], d[7]); // 8 1
 * ```
 */
export function writeLeBig(
  bytes: Uint8Array,
  value: bigint,
  offset = 0,
  width: number = bytes.length - offset,
): void {
  span(bytes, offset, width);
  let v = BigInt.asUintN(64, value);
  for (let i = offset; i < offset + width; i++) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
}
