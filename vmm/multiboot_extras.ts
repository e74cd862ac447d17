/**
 * The core's Multiboot extras blob (see `dv_vm_load_multiboot` in
 * `core/include/denovmm.h`).
 *
 * @module
 */
import { readHostFile } from "./host_file.ts";
import type { MultibootOptions } from "./vm_types.ts";

/**
 * The Multiboot command line the kernel sees: `"<image name> <args>"` as
 * GRUB and QEMU pass it (the name is `options.imageName`, else
 * `path`, else `kernel`), or the arguments alone with `imageName: false`.
 *
 * @example
 * ```ts
 * import { multibootCmdline } from "./multiboot_extras.ts";
 * console.log(multibootCmdline({ cmdline: "a=1" }, "k.elf")); // "k.elf a=1"
 * ```
 */
export function multibootCmdline(
  options: MultibootOptions,
  path = "",
): string {
  const args = options.cmdline ?? "";
  if (options.imageName === false) return args;
  const name = options.imageName || path || "kernel";
  return args ? `${name} ${args}` : name;
}

/**
 * The core's Multiboot extras blob: command line (see
 * {@link multibootCmdline}; `path` is the image's path, if any) and modules.
 */
export function encodeMultibootExtras(
  options: MultibootOptions,
  path = "",
): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const u32 = (n: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n, true);
    parts.push(b);
  };
  const str = (s: string) => {
    const b = enc.encode(s);
    u32(b.length);
    parts.push(b);
  };
  str(multibootCmdline(options, path));
  const modules = options.modules ?? [];
  u32(modules.length);
  for (const m of modules) {
    const b = typeof m.bytes === "string"
      ? readHostFile(m.bytes, { what: "multiboot module" })
      : m.bytes;
    u32(b.length);
    parts.push(b);
    str(m.cmdline ?? "");
  }
  const extras = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    extras.set(p, off);
    off += p.length;
  }
  return extras;
}
