/**
 * Tell an x86-64 ELF64 image from a Multiboot v1 kernel.
 *
 * @module
 */

/**
 * How to boot an image: `elf64` (direct long-mode entry) or `multiboot`
 * (a Multiboot v1 header in the first 8 KiB, for an image that is not an
 * x86-64 ELF64).
 *
 * @example
 * ```ts
 * import { imageKind } from "./image_kind.ts";
 * console.log(imageKind(new Uint8Array(16))); // "elf64" (the loader reports the error)
 * ```
 */
export function imageKind(bytes: Uint8Array): "elf64" | "multiboot" {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const isElf64 = bytes.length >= 20 && dv.getUint32(0, false) === 0x7f454c46 &&
    bytes[4] === 2 && dv.getUint16(18, true) === 62;
  if (isElf64) return "elf64";
  for (let o = 0; o + 12 <= Math.min(bytes.length, 8192); o += 4) {
    if (dv.getUint32(o, true) === 0x1badb002) return "multiboot";
  }
  return "elf64";
}
