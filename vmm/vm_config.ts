/**
 * The `--config FILE` JSON shape (modelled on Firecracker's `--config-file`)
 * and its validation. Every error names the file and the field
 * (`vm.json: machine-config.mem_size_mib: ...`); unknown fields are errors,
 * so a typo never silently falls back to a default. Relative paths are
 * resolved against the file's directory.
 *
 * ```json
 * {
 *   "boot-source": {
 *     "kernel_image_path": "guests/build/hello.elf",
 *     "boot_args": "console=ttyS0",
 *     "guest_args": [3],
 *     "modules": ["initrd.img"]
 *   },
 *   "machine-config": { "vcpu_count": 1, "mem_size_mib": 16, "irqchip": "kernel", "timer": "msi", "strict": false },
 *   "drives": [{ "drive_id": "root", "path_on_host": "disk.img", "is_read_only": true }],
 *   "entropy": {},
 *   "devices": [{ "module": "echo" }, { "module": "./my_device.ts", "options": { "base": 1536 } }],
 *   "logger": { "level": "warn" },
 *   "timeout": "10s"
 * }
 * ```
 *
 * @module
 */
import type { LogLevel } from "../bus/types.ts";
import {
  OptionError,
  parseDuration,
  parseEnum,
  parseGuestArg,
  parseMemorySize,
} from "./options.ts";

/** A disk: a host file behind virtio-blk. */
export interface DiskSpec {
  /** Host path. */
  path: string;
  /** Offer the disk read-only. */
  readOnly: boolean;
}

/** A device plugin to attach: a built-in name or a module path/URL. */
export interface DeviceSpec {
  /** Built-in device name (`echo`) or module path/URL. */
  module: string;
  /** Options handed to the factory (JSON). */
  options?: unknown;
}

/** Machine settings from a config file (every field optional). */
export interface MachineConfig {
  /** Guest image path. */
  guest?: string;
  /** Guest arguments (RDI, RSI, RDX, RCX). */
  args?: bigint[];
  /** Kernel command line. */
  cmdline?: string;
  /** Multiboot module paths. */
  modules?: string[];
  /** Guest RAM in bytes. */
  memory?: number;
  /** Irqchip mode. */
  irqchip?: "kernel" | "split";
  /** vCPUs (1..64). */
  vcpus?: number;
  /** PV timer delivery. */
  timer?: "msi" | "gsi";
  /** Fail on unclaimed accesses. */
  strict?: boolean;
  /** Disks. */
  disks?: DiskSpec[];
  /** Attach virtio-rng. */
  rng?: boolean;
  /** Device plugins. */
  devices?: DeviceSpec[];
  /** Log threshold. */
  logLevel?: LogLevel;
  /** Run timeout in ms (0: none). */
  timeoutMs?: number;
}

/** Log levels, most severe first. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;

type Json = Record<string, unknown>;

class Fields {
  constructor(readonly file: string, readonly prefix: string) {}
  name(key: string): string {
    return `${this.file}: ${this.prefix}${key}`;
  }
  fail(key: string, msg: string): never {
    throw new OptionError(this.name(key), msg);
  }
  object(v: unknown, key: string): Json {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      this.fail(key, `expected an object, got ${describe(v)}`);
    }
    return v as Json;
  }
  known(obj: Json, keys: readonly string[], key: string): void {
    for (const k of Object.keys(obj)) {
      if (!keys.includes(k)) {
        this.fail(
          key ? `${key}.${k}` : k,
          `unknown field (known: ${keys.join(", ")})`,
        );
      }
    }
  }
  string(v: unknown, key: string): string {
    if (typeof v !== "string" || v === "") {
      this.fail(key, `expected a non-empty string, got ${describe(v)}`);
    }
    return v;
  }
  bool(v: unknown, key: string): boolean {
    if (typeof v !== "boolean") {
      this.fail(key, `expected true or false, got ${describe(v)}`);
    }
    return v;
  }
  array(v: unknown, key: string): unknown[] {
    if (!Array.isArray(v)) {
      this.fail(key, `expected an array, got ${describe(v)}`);
    }
    return v;
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

function resolvePath(base: string, p: string): string {
  if (p.startsWith("/") || /^[a-z]+:\/\//i.test(p)) return p;
  return base === "" ? p : `${base}/${p}`;
}

/**
 * Parse and validate a config file's text. `file` names the file in
 * errors and gives the directory relative paths are resolved against.
 * Throws {@link OptionError} naming the field.
 *
 * @example
 * ```ts
 * import { parseVmConfig } from "./vm_config.ts";
 * const c = parseVmConfig('{"machine-config": {"mem_size_mib": 32}}', "vm.json");
 * console.log(c.memory); // 33554432
 * ```
 */
export function parseVmConfig(text: string, file: string): MachineConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new OptionError(file, `not valid JSON: ${(e as Error).message}`);
  }
  const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : "";
  const top = new Fields(file, "");
  const root = top.object(json, "(top level)");
  top.known(root, [
    "boot-source",
    "machine-config",
    "drives",
    "entropy",
    "devices",
    "logger",
    "timeout",
  ], "");
  const out: MachineConfig = {};

  if (root["boot-source"] !== undefined) {
    const f = new Fields(file, "boot-source.");
    const b = top.object(root["boot-source"], "boot-source");
    top.known(b, [
      "kernel_image_path",
      "boot_args",
      "guest_args",
      "modules",
    ], "boot-source");
    if (b.kernel_image_path !== undefined) {
      out.guest = resolvePath(
        dir,
        f.string(b.kernel_image_path, "kernel_image_path"),
      );
    }
    if (b.boot_args !== undefined) {
      if (typeof b.boot_args !== "string") {
        f.fail("boot_args", `expected a string, got ${describe(b.boot_args)}`);
      }
      out.cmdline = b.boot_args as string;
    }
    if (b.guest_args !== undefined) {
      const a = f.array(b.guest_args, "guest_args");
      if (a.length > 4) {
        f.fail("guest_args", `at most 4 arguments, got ${a.length}`);
      }
      out.args = a.map((v, i) => {
        if (typeof v !== "number" && typeof v !== "string") {
          f.fail(`guest_args[${i}]`, `expected an integer, got ${describe(v)}`);
        }
        return parseGuestArg(v as number | string, f.name(`guest_args[${i}]`));
      });
    }
    if (b.modules !== undefined) {
      out.modules = f.array(b.modules, "modules").map((m, i) =>
        resolvePath(dir, f.string(m, `modules[${i}]`))
      );
    }
  }

  if (root["machine-config"] !== undefined) {
    const f = new Fields(file, "machine-config.");
    const m = top.object(root["machine-config"], "machine-config");
    top.known(m, [
      "vcpu_count",
      "mem_size_mib",
      "irqchip",
      "timer",
      "strict",
    ], "machine-config");
    if (m.vcpu_count !== undefined) {
      const n = m.vcpu_count;
      if (
        typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 64
      ) {
        f.fail("vcpu_count", `expected an integer 1..64, got ${describe(n)}`);
      }
      out.vcpus = n as number;
    }
    if (m.mem_size_mib !== undefined) {
      if (
        typeof m.mem_size_mib !== "number" || !Number.isInteger(m.mem_size_mib)
      ) {
        f.fail(
          "mem_size_mib",
          `expected an integer, got ${describe(m.mem_size_mib)}`,
        );
      }
      out.memory = parseMemorySize((m.mem_size_mib as number) * 2 ** 20, {
        what: f.name("mem_size_mib"),
      });
    }
    if (m.irqchip !== undefined) {
      out.irqchip = parseEnum(
        m.irqchip,
        ["kernel", "split"] as const,
        f.name("irqchip"),
      );
    }
    if (m.timer !== undefined) {
      out.timer = parseEnum(m.timer, ["msi", "gsi"] as const, f.name("timer"));
    }
    if (m.strict !== undefined) out.strict = f.bool(m.strict, "strict");
  }

  if (root.drives !== undefined) {
    out.disks = top.array(root.drives, "drives").map((d, i) => {
      const key = `drives[${i}]`;
      const f = new Fields(file, `${key}.`);
      const o = top.object(d, key);
      top.known(o, [
        "drive_id",
        "path_on_host",
        "is_read_only",
        "is_root_device",
      ], key);
      if (o.drive_id !== undefined) f.string(o.drive_id, "drive_id");
      if (o.is_root_device !== undefined) {
        f.bool(o.is_root_device, "is_root_device");
      }
      if (o.path_on_host === undefined) f.fail("path_on_host", "missing");
      return {
        path: resolvePath(dir, f.string(o.path_on_host, "path_on_host")),
        readOnly: o.is_read_only === undefined
          ? false
          : f.bool(o.is_read_only, "is_read_only"),
      };
    });
  }

  if (root.entropy !== undefined) {
    const e = top.object(root.entropy, "entropy");
    top.known(e, [], "entropy");
    out.rng = true;
  }

  if (root.devices !== undefined) {
    out.devices = top.array(root.devices, "devices").map((d, i) => {
      const key = `devices[${i}]`;
      const f = new Fields(file, `${key}.`);
      const o = top.object(d, key);
      top.known(o, ["module", "options"], key);
      if (o.module === undefined) f.fail("module", "missing");
      const mod = f.string(o.module, "module");
      const isPath = mod.includes("/") || /\.(ts|js|mjs)$/.test(mod);
      const spec: DeviceSpec = { module: isPath ? resolvePath(dir, mod) : mod };
      if (o.options !== undefined) spec.options = o.options;
      return spec;
    });
  }

  if (root.logger !== undefined) {
    const l = top.object(root.logger, "logger");
    top.known(l, ["level"], "logger");
    if (l.level !== undefined) {
      out.logLevel = parseEnum(
        typeof l.level === "string" ? l.level.toLowerCase() : l.level,
        LOG_LEVELS,
        `${file}: logger.level`,
      );
    }
  }

  if (root.timeout !== undefined) {
    if (typeof root.timeout !== "string" && typeof root.timeout !== "number") {
      top.fail(
        "timeout",
        `expected a duration like "10s", got ${describe(root.timeout)}`,
      );
    }
    out.timeoutMs = parseDuration(
      root.timeout as string | number,
      `${file}: timeout`,
    );
  }
  return out;
}
