/**
 * The CLI's command line: parsing, `--config` merging (flags override the
 * file; a list given on the command line replaces the file's list) and
 * validation into one {@link CliConfig}. Pure apart from reading the
 * config file through the injected reader, so it is unit-tested without
 * a VM.
 *
 * @module
 */
import { host } from "../ffi/host.ts";
import { type CpuOption, cpuOptionFromArg } from "./cpu_spec.ts";
import type { LogLevel } from "../bus/types.ts";
import {
  OptionError,
  parseDuration,
  parseEnum,
  parseGuestArg,
  parseMemorySize,
} from "./options.ts";
import {
  type DeviceSpec,
  type DiskSpec,
  LOG_LEVELS,
  type MachineConfig,
  parseVmConfig,
} from "./vm_config.ts";

/** The usage text of `--help`. */
export const USAGE =
  `usage: deno run --allow-ffi --allow-read cli.ts [options] <guest.elf>
       deno run --allow-ffi --allow-read --allow-write cli.ts [options] --restore FILE

Boots an x86-64 ELF64 guest (or a Multiboot v1 kernel) with the standard
devices; COM1 output goes to stdout and stdin goes to COM1.

machine:
  -m, --memory SIZE        guest RAM, e.g. 256M, 1G; a bare number is MiB (default 16M)
  --irqchip kernel|split   interrupt controllers (default kernel)
  --vcpus N                vCPUs, 1..64 (default 1; the guest starts APs with INIT/SIPI)
  --timer msi|gsi          PV timer delivery (default msi)
  --strict                 fail on accesses no device claims
  --cpu SPEC               CPU model: host (default) or baseline, then
                           +feature/-feature, vendor=, family=, model=,
                           stepping=, brand=, kvm=off, tsc-leaves=off
                           (comma-separated), or a .json file
  --disk PATH[,ro]         virtio-blk disk backed by a host file, repeatable
  --rng                    virtio-rng device
  --device SPEC            attach a device: a built-in name (echo) or a plugin
                           module path, optionally MODULE:{json options}; repeatable
  --config FILE            machine from a JSON file (Firecracker-like); flags override it
boot:
  --arg N                  guest argument (RDI, RSI, RDX, RCX), up to 4, repeatable
  --cmdline STRING         kernel command line (multiboot info and fw_cfg)
  --module PATH            multiboot module, repeatable
run:
  --timeout DURATION       stop after e.g. 10s, 500ms, 2m; 0 for none (default 10s)
  --snapshot-on-exit FILE  save a snapshot (mode 0600) when the run ends by
                           timeout, Ctrl-A x or SIGINT; resume it with --restore
  --restore FILE           resume a snapshot instead of booting an image (RAM
                           size and irqchip come from it; devices from the flags)
  --no-stdin               do not connect stdin to COM1
  --stats[=json|text]      print run statistics to stderr at exit (default json)
  -v, --verbose            more log output (repeat for debug)
  --log-level LEVEL        error, warn (default), info or debug
  -V, --version            print the version
  -h, --help               show this help

On a terminal stdin is in raw mode: Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A.
An image that is not an x86-64 ELF64 but has a Multiboot v1 header boots as a
Multiboot kernel (32-bit protected-mode entry).

exit codes: 0 guest success (debug-exit v = 0, or PV halt); odd codes are the
guest's debug-exit status (v << 1) | 1; 2 usage error; 66 host file error;
70 VMM failure; 72 guest crashed; 124 timeout; 130 interrupted.`;

/** Everything needed to boot, after defaults. */
export interface CliConfig {
  /** Guest image path ("" when resuming a snapshot). */
  guest: string;
  /** Snapshot to resume instead of booting `guest`. */
  restore?: string;
  /** Where to save a snapshot when the run ends by timeout or interrupt. */
  snapshotOnExit?: string;
  /** Guest arguments. */
  args: bigint[];
  /** Kernel command line. */
  cmdline?: string;
  /** Multiboot modules. */
  modules: string[];
  /** Guest RAM in bytes. */
  memory: number;
  /** Irqchip mode. */
  irqchip: "kernel" | "split";
  /** vCPUs (1..64). */
  vcpus: number;
  /** PV timer delivery. */
  timer: "msi" | "gsi";
  /** Strict bus. */
  strict: boolean;
  /** CPU model (`--cpu`). */
  cpu?: CpuOption;
  /** Disks. */
  disks: DiskSpec[];
  /** virtio-rng. */
  rng: boolean;
  /** Device plugins. */
  devices: DeviceSpec[];
  /** Log threshold. */
  logLevel: LogLevel;
  /** Run timeout in ms; undefined for none. */
  timeoutMs?: number;
  /** Stats format at exit, or null. */
  stats: "json" | "text" | null;
  /** Connect stdin to COM1. */
  stdin: boolean;
}

/** What the command line asks for. */
export type CliRequest =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "run"; config: CliConfig };

/** A bad command line; the CLI exits with the usage code. */
export class UsageError extends Error {
  /** Create a usage error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Defaults of {@link CliConfig}. */
export const CLI_DEFAULTS = {
  memory: 16 * 2 ** 20,
  irqchip: "kernel",
  timer: "msi",
  timeoutMs: 10_000,
  logLevel: "warn",
} as const;

/**
 * Parse `--disk PATH[,ro]` (also `,readonly`, `,rw`).
 *
 * @example
 * ```ts
 * import { parseDiskSpec } from "./cli_options.ts";
 * console.log(parseDiskSpec("disk.img,ro")); // { path: "disk.img", readOnly: true }
 * ```
 */
export function parseDiskSpec(spec: string): DiskSpec {
  const parts = spec.split(",");
  const path = parts[0];
  if (path === "") throw new UsageError(`--disk "${spec}": missing path`);
  let readOnly = false;
  for (const flag of parts.slice(1)) {
    if (flag === "ro" || flag === "readonly") readOnly = true;
    else if (flag === "rw") readOnly = false;
    else {
      throw new UsageError(
        `--disk "${spec}": unknown flag "${flag}" (use PATH or PATH,ro)`,
      );
    }
  }
  return { path, readOnly };
}

/**
 * Parse `--device NAME_OR_MODULE[:JSON]`.
 *
 * @example
 * ```ts
 * import { parseDeviceSpec } from "./cli_options.ts";
 * console.log(parseDeviceSpec('./dev.ts:{"base":1536}').options); // { base: 1536 }
 * ```
 */
export function parseDeviceSpec(spec: string): DeviceSpec {
  const m = /^(.+?):([{[].*)$/s.exec(spec);
  if (!m) {
    if (spec === "") throw new UsageError(`--device: missing module`);
    return { module: spec };
  }
  try {
    return { module: m[1], options: JSON.parse(m[2]) };
  } catch (e) {
    throw new UsageError(
      `--device "${spec}": options are not valid JSON: ${(e as Error).message}`,
    );
  }
}

/** Reads a config file's text (throws a host-file error). */
export type ConfigReader = (path: string) => string;

/** One option of {@link parseArgv}. */
export interface ArgSpec {
  /** `string` takes a value, `boolean` does not. */
  type: "string" | "boolean";
  /** One-letter alias (`-m`). */
  short?: string;
  /** May be repeated (values collected in order). */
  multiple?: boolean;
}

/** Result of {@link parseArgv}. */
export interface ParsedArgv {
  /** Option values by long name: string, true, or arrays for `multiple`. */
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  /** Non-option arguments. */
  positionals: string[];
}

/**
 * A strict GNU-style argv parser (`--name value`, `--name=value`, `-m
 * VALUE`, `-mVALUE`, clustered short booleans `-vv`, `--` ends options),
 * with messages for people: unknown options, missing values, values given
 * to flags and single options given twice are {@link UsageError}s. (Small
 * on purpose: `node:util`'s `parseArgs` costs ~10 ms of CLI start-up.)
 *
 * @example
 * ```ts
 * import { parseArgv } from "./cli_options.ts";
 * const r = parseArgv(["-vv", "--memory=32M", "a.elf"], {
 *   verbose: { type: "boolean", short: "v", multiple: true },
 *   memory: { type: "string", short: "m" },
 * });
 * console.log(r.values.memory, r.positionals); // 32M [ "a.elf" ]
 * ```
 */
export function parseArgv(
  argv: readonly string[],
  specs: Record<string, ArgSpec>,
): ParsedArgv {
  const values: ParsedArgv["values"] = {};
  const positionals: string[] = [];
  const byShort = new Map<string, string>();
  for (const [name, s] of Object.entries(specs)) {
    if (s.short) byShort.set(s.short, name);
  }
  const set = (name: string, value: string | boolean, shown: string) => {
    const spec = specs[name];
    if (spec.multiple) {
      ((values[name] ??= []) as (string | boolean)[]).push(value);
    } else if (values[name] !== undefined && spec.type === "string") {
      throw new UsageError(`option ${shown} given twice`);
    } else {
      values[name] = value;
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const spec = specs[name];
      if (!spec) throw new UsageError(`unknown option --${name}`);
      if (spec.type === "boolean") {
        if (eq >= 0) throw new UsageError(`option --${name} takes no value`);
        set(name, true, `--${name}`);
      } else if (eq >= 0) {
        set(name, arg.slice(eq + 1), `--${name}`);
      } else {
        if (i + 1 >= argv.length) {
          throw new UsageError(`option --${name} needs a value`);
        }
        set(name, argv[++i], `--${name}`);
      }
    } else if (arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const name = byShort.get(arg[j]);
        if (!name) throw new UsageError(`unknown option -${arg[j]}`);
        if (specs[name].type === "boolean") {
          set(name, true, `-${arg[j]}`);
          continue;
        }
        const rest = arg.slice(j + 1);
        if (rest !== "") set(name, rest, `-${arg[j]}`);
        else if (i + 1 < argv.length) set(name, argv[++i], `-${arg[j]}`);
        else throw new UsageError(`option -${arg[j]} needs a value`);
        break;
      }
    } else {
      positionals.push(arg);
    }
  }
  return { values, positionals };
}

type Str = string | undefined;
type Flag = boolean | undefined;
/** Typed view of the parsed CLI values (shapes fixed by CLI_SPECS). */
interface CliValues {
  memory: Str;
  mem: Str;
  irqchip: Str;
  vcpus: Str;
  timer: Str;
  strict: Flag;
  cpu: Str;
  disk?: string[];
  rng: Flag;
  device?: string[];
  config: Str;
  arg?: string[];
  cmdline: Str;
  module?: string[];
  timeout: Str;
  "no-stdin": Flag;
  stats: Str;
  "snapshot-on-exit": Str;
  restore: Str;
  verbose?: boolean[];
  "log-level": Str;
  version: Flag;
  help: Flag;
}

/** The CLI's options. */
const CLI_SPECS: Record<string, ArgSpec> = {
  memory: { type: "string", short: "m" },
  mem: { type: "string" },
  irqchip: { type: "string" },
  vcpus: { type: "string" },
  timer: { type: "string" },
  strict: { type: "boolean" },
  cpu: { type: "string" },
  disk: { type: "string", multiple: true },
  rng: { type: "boolean" },
  device: { type: "string", multiple: true },
  config: { type: "string" },
  arg: { type: "string", multiple: true },
  cmdline: { type: "string" },
  module: { type: "string", multiple: true },
  timeout: { type: "string" },
  "no-stdin": { type: "boolean" },
  stats: { type: "string" },
  "snapshot-on-exit": { type: "string" },
  restore: { type: "string" },
  verbose: { type: "boolean", short: "v", multiple: true },
  "log-level": { type: "string" },
  version: { type: "boolean", short: "V" },
  help: { type: "boolean", short: "h" },
};

/**
 * Turn `argv` into a {@link CliRequest}. Throws {@link UsageError} for a
 * bad command line, `OptionError` (also a usage error) for a bad value or
 * config field, and whatever `readConfig` throws for an unreadable file.
 *
 * @example
 * ```ts
 * import { parseCli } from "./cli_options.ts";
 * const r = parseCli(["--memory", "32M", "--arg", "3", "guest.elf"]);
 * if (r.kind === "run") console.log(r.config.memory, r.config.args); // 33554432 [ 3n ]
 * ```
 */
export function parseCli(
  argv: readonly string[],
  readConfig: ConfigReader = (p) => host.readTextFile(p),
): CliRequest {
  // `--stats` takes an optional value: a bare one means json.
  const args = argv.map((a) => a === "--stats" ? "--stats=json" : a);
  const parsed = parseArgv(args, CLI_SPECS);
  const v = parsed.values as unknown as CliValues;
  if (v.help) return { kind: "help" };
  if (v.version) return { kind: "version" };

  let file: MachineConfig = {};
  if (v.config !== undefined) {
    file = parseVmConfig(readConfig(v.config), v.config);
  }
  if (parsed.positionals.length > 1) {
    throw new UsageError(
      `expected one guest image, got ${parsed.positionals.length}: ${
        parsed.positionals.join(" ")
      }`,
    );
  }
  const restore = v.restore;
  if (restore !== undefined && parsed.positionals.length > 0) {
    throw new UsageError(
      "--restore resumes a snapshot: give no guest image with it",
    );
  }
  const guest = restore !== undefined
    ? ""
    : parsed.positionals[0] ?? file.guest;
  if (guest === undefined) {
    throw new UsageError(
      "no guest image (give a path, or boot-source.kernel_image_path in --config)",
    );
  }
  if (v.memory !== undefined && v.mem !== undefined) {
    throw new UsageError("give --memory or --mem, not both");
  }
  const memText = v.memory ?? v.mem;
  const memory = memText !== undefined
    ? parseMemorySize(memText, {
      what: v.memory !== undefined ? "--memory" : "--mem",
      defaultUnit: "M",
    })
    : file.memory ?? CLI_DEFAULTS.memory;

  if (v.arg !== undefined && v.arg.length > 4) {
    throw new UsageError(
      `--arg: at most 4 guest arguments, got ${v.arg.length}`,
    );
  }
  const guestArgs = v.arg?.map((a) => parseGuestArg(a, "--arg")) ?? file.args ??
    [];

  let timeoutMs = file.timeoutMs ?? CLI_DEFAULTS.timeoutMs;
  if (v.timeout !== undefined) {
    timeoutMs = parseDuration(v.timeout, "--timeout");
  }

  let logLevel: LogLevel = file.logLevel ?? CLI_DEFAULTS.logLevel;
  if (v["log-level"] !== undefined) {
    logLevel = parseEnum(v["log-level"], LOG_LEVELS, "--log-level");
  }
  if (v.verbose !== undefined) {
    if (v["log-level"] !== undefined) {
      throw new UsageError("give -v or --log-level, not both");
    }
    logLevel = v.verbose.length >= 2 ? "debug" : "info";
  }

  return {
    kind: "run",
    config: {
      guest,
      ...(restore === undefined ? {} : { restore }),
      ...(v["snapshot-on-exit"] === undefined
        ? {}
        : { snapshotOnExit: v["snapshot-on-exit"] }),
      args: guestArgs,
      cmdline: v.cmdline ?? file.cmdline,
      modules: v.module ?? file.modules ?? [],
      memory,
      irqchip: v.irqchip !== undefined
        ? parseEnum(v.irqchip, ["kernel", "split"] as const, "--irqchip")
        : file.irqchip ?? CLI_DEFAULTS.irqchip,
      vcpus: v.vcpus !== undefined ? parseVcpus(v.vcpus) : file.vcpus ?? 1,
      timer: v.timer !== undefined
        ? parseEnum(v.timer, ["msi", "gsi"] as const, "--timer")
        : file.timer ?? CLI_DEFAULTS.timer,
      strict: v.strict ?? file.strict ?? false,
      ...(v.cpu === undefined ? {} : { cpu: cpuOptionFromArg(v.cpu) }),
      disks: v.disk?.map(parseDiskSpec) ?? file.disks ?? [],
      rng: v.rng ?? file.rng ?? false,
      devices: v.device?.map(parseDeviceSpec) ?? file.devices ?? [],
      logLevel,
      timeoutMs: timeoutMs > 0 ? timeoutMs : undefined,
      stats: v.stats === undefined
        ? null
        : parseEnum(v.stats, ["json", "text"] as const, "--stats"),
      stdin: !v["no-stdin"],
    },
  };
}

/** Parse `--vcpus N`: an integer 1..64. */
function parseVcpus(text: string): number {
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 64)) {
    throw new UsageError(`--vcpus: expected an integer 1..64, got "${text}"`);
  }
  return n;
}

/** True for errors that mean "bad command line or config" (exit 2). */
export function isUsageError(e: unknown): boolean {
  return e instanceof UsageError || e instanceof OptionError;
}
