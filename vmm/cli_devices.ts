/**
 * The CLI's optional devices, imported only when asked for (a plain boot
 * loads no PCI, virtio or echo code): `--disk` and `--rng` (virtio over
 * the PCI bus plugin), and `--device` (built-in names or plugin modules).
 *
 * A device module's default export is a factory:
 *
 * ```ts ignore
 * // my_device.ts — attach with `--device ./my_device.ts:{"base":1536}`
 * import type { Plugin } from "@denovmm/vmm";
 * import type { DeviceEnv } from "@denovmm/vmm/cli";
 * export default function (options: { base: number }, env: DeviceEnv): Plugin {
 *   return {
 *     name: "scratch",
 *     setup: () => [{
 *       range: { space: "pio", base: options.base, length: 1 },
 *       read: (_a, data) => data.fill(0x42),
 *       write: () => {},
 *     }],
 *   };
 * }
 * ```
 *
 * It may return one plugin, an array of plugins, or a Promise of either.
 *
 * @module
 */
import { host } from "../ffi/host.ts";
import { importUrl } from "./dynamic_import.ts";
import type { Plugin } from "../bus/types.ts";
import { checkHostFile, HostFileError, hostFileError } from "./host_file.ts";
import { OptionError } from "./options.ts";
import type { DeviceSpec, DiskSpec } from "./vm_config.ts";

/** What a device factory gets besides its options. */
export interface DeviceEnv {
  /** The VM's irqchip mode. */
  readonly irqchip: "kernel" | "split";
  /** Guest RAM in bytes. */
  readonly memory: number;
}

/** A device module's default export. */
export type DeviceFactory = (
  options: unknown,
  env: DeviceEnv,
) => Plugin | Plugin[] | Promise<Plugin | Plugin[]>;

/** Built-in `--device` names and what they attach. */
export const BUILTIN_DEVICES: Record<string, string> = {
  echo:
    "16-byte echo stores at PIO 0x600 and MMIO 0xD0000000 (the ports guest); " +
    'options {"space":"pio"|"mmio","base":N} attach one',
};

function toNumber(v: unknown, what: string): number {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === "string" && /^(0x[0-9a-f]+|\d+)$/i.test(v)) return Number(v);
  throw new OptionError(what, `expected an address, got ${JSON.stringify(v)}`);
}

async function builtinEcho(options: unknown): Promise<Plugin[]> {
  const { echoPlugin } = await import("../plugins/echo/plugin.ts");
  if (options === undefined) {
    return [
      echoPlugin({ space: "pio", base: 0x600 }),
      echoPlugin({ space: "mmio", base: 0xd0000000 }),
    ];
  }
  if (typeof options !== "object" || options === null) {
    throw new OptionError("--device echo", "options must be an object");
  }
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== "space" && k !== "base") {
      throw new OptionError(
        `--device echo: ${k}`,
        "unknown option (known: space, base)",
      );
    }
  }
  const space = o.space ?? "pio";
  if (space !== "pio" && space !== "mmio") {
    throw new OptionError("--device echo: space", `must be pio or mmio`);
  }
  return [echoPlugin({ space, base: toNumber(o.base, "--device echo: base") })];
}

function moduleUrl(spec: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) return spec;
  const abs = spec.startsWith("/") ? spec : `${host.cwd()}/${spec}`;
  return new URL(`file://${abs.split("/").map(encodeURIComponent).join("/")}`)
    .href;
}

function checkPlugins(value: unknown, spec: string): Plugin[] {
  const list = Array.isArray(value) ? value : [value];
  for (const p of list) {
    const ok = typeof p === "object" && p !== null &&
      typeof (p as Plugin).name === "string" &&
      typeof (p as Plugin).setup === "function";
    if (!ok) {
      throw new OptionError(
        `--device ${spec}`,
        "the factory must return a plugin ({ name, setup }) or an array of them",
      );
    }
  }
  return list as Plugin[];
}

async function moduleDevice(d: DeviceSpec, env: DeviceEnv): Promise<Plugin[]> {
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(d.module);
  if (!isUrl) checkHostFile(d.module, { what: "--device module" });
  let mod: { default?: unknown };
  try {
    mod = await importUrl(moduleUrl(d.module));
  } catch (e) {
    throw new HostFileError(
      "--device module",
      d.module,
      "io",
      `failed to load: ${(e as Error).message.split("\n")[0]}`,
      { cause: e },
    );
  }
  if (typeof mod.default !== "function") {
    throw new OptionError(
      `--device ${d.module}`,
      "not a device module: its default export must be a factory (options, env) => Plugin | Plugin[]",
    );
  }
  let made: unknown;
  try {
    made = await (mod.default as DeviceFactory)(d.options, env);
  } catch (e) {
    throw new OptionError(`--device ${d.module}`, (e as Error).message);
  }
  return checkPlugins(made, d.module);
}

/** The plugins for `--device` specs, in order. */
export async function devicePlugins(
  devices: readonly DeviceSpec[],
  env: DeviceEnv,
): Promise<Plugin[]> {
  const out: Plugin[] = [];
  for (const d of devices) {
    if (d.module === "echo") out.push(...await builtinEcho(d.options));
    else if (d.module.includes("/") || /\.(ts|js|mjs)$/.test(d.module)) {
      out.push(...await moduleDevice(d, env));
    } else {
      throw new OptionError(
        `--device ${d.module}`,
        `not a built-in device (${
          Object.keys(BUILTIN_DEVICES).join(", ")
        }) nor a module path (e.g. ./my_device.ts)`,
      );
    }
  }
  return out;
}

/** A PCI bus with virtio-rng at 00:01.0 and disks from 00:02.0, or null. */
export async function virtioPlugins(
  disks: readonly DiskSpec[],
  rng: boolean,
): Promise<Plugin | null> {
  if (disks.length === 0 && !rng) return null;
  if (disks.length > 29) {
    throw new OptionError("--disk", `at most 29 disks, got ${disks.length}`);
  }
  for (const d of disks) {
    checkHostFile(d.path, { what: "--disk", write: !d.readOnly });
  }
  const [{ pciBusPlugin }, { virtioBlk }, { virtioRng }] = await Promise.all([
    import("../plugins/pci/pci_bus.ts"),
    import("../plugins/virtio/blk.ts"),
    import("../plugins/virtio/rng.ts"),
  ]);
  const devices = [];
  if (rng) devices.push({ device: 1, function: virtioRng() });
  for (const [i, d] of disks.entries()) {
    try {
      devices.push({
        device: 2 + i,
        function: virtioBlk({ path: d.path, readOnly: d.readOnly }),
      });
    } catch (e) {
      throw hostFileError(e, "--disk", d.path, !d.readOnly);
    }
  }
  return pciBusPlugin({ devices });
}
