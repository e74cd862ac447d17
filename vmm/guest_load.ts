/**
 * Loading a guest image into a core VM: ELF64 with four u64 arguments, or
 * a Multiboot kernel with its command line and modules. Images given by
 * path are read as host files (errors name the file and the cause).
 *
 * @module
 */
import type { CoreVm } from "../ffi/core_vm.ts";
import { readHostFile } from "./host_file.ts";
import { encodeMultibootExtras } from "./multiboot_extras.ts";
import type { MultibootOptions } from "./vm_types.ts";

/** A guest argument as a u64: whole numbers only, never silently cut. */
function guestArg(v: number | bigint, i: number): bigint {
  if (typeof v === "number" && !Number.isSafeInteger(v)) {
    throw new RangeError(
      `guest argument ${i}: ${v} is not a whole number below 2^53 (pass a bigint)`,
    );
  }
  const b = BigInt(v);
  if (b < -(2n ** 63n) || b >= 2n ** 64n) {
    throw new RangeError(`guest argument ${i}: ${b} does not fit 64 bits`);
  }
  return BigInt.asUintN(64, b);
}

/** Load an ELF64 image with up to four arguments (RDI, RSI, RDX, RCX). */
export function loadElf(
  core: CoreVm,
  image: Uint8Array | string,
  args: readonly (number | bigint)[],
): void {
  const bytes = typeof image === "string"
    ? readHostFile(image, { what: "guest image" })
    : image;
  if (args.length > 4) throw new RangeError("at most 4 guest arguments");
  const a = new BigUint64Array(4);
  args.forEach((v, i) => a[i] = guestArg(v, i));
  core.loadElf(bytes, a);
}

/** Load a Multiboot v1 kernel with its command line and modules. */
export function loadMultibootKernel(
  core: CoreVm,
  image: Uint8Array | string,
  options: MultibootOptions,
): void {
  const bytes = typeof image === "string"
    ? readHostFile(image, { what: "multiboot kernel" })
    : image;
  core.loadMultiboot(
    bytes,
    encodeMultibootExtras(options, typeof image === "string" ? image : ""),
  );
}
