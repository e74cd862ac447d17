/**
 * The `cpu` option of `createVm` / `createMachine` and `--cpu` of the CLI:
 * a spec string (`"host,-x2apic,+tsc-deadline"`, `"baseline"`) or an
 * object, turned into the core's spec text (one item per line), which the
 * core validates against `KVM_GET_SUPPORTED_CPUID`.
 *
 * @module
 */

import { host } from "../ffi/host.ts";

/** A CPU model as an object (the JSON form of `--cpu file.json`). */
export interface CpuSpec {
  /** `host` (default): KVM's supported set; `baseline`: the portable set. */
  template?: "host" | "baseline";
  /**
   * Features on/off by name: `{ x2apic: false, pcid: false }` or
   * `["-x2apic", "+tsc-deadline"]`, applied in order after the template.
   */
  features?: Readonly<Record<string, boolean>> | readonly string[];
  /** Vendor: `intel`, `amd`, or a 12-character string. */
  vendor?: string;
  /** Display family. */
  family?: number;
  /** Display model. */
  model?: number;
  /** Stepping. */
  stepping?: number;
  /** Brand string (at most 47 ASCII characters). */
  brand?: string;
  /** Show the KVM paravirt leaves 0x40000000.. (default true). */
  kvm?: boolean;
  /** Fill the TSC frequency leaves 0x15 / 0x40000010 (default true). */
  tscLeaves?: boolean;
}

/** A spec string or a {@link CpuSpec}. */
export type CpuOption = string | CpuSpec;

const KEYS = new Set([
  "template",
  "features",
  "vendor",
  "family",
  "model",
  "stepping",
  "brand",
  "kvm",
  "tscLeaves",
]);

function line(key: string, v: string): string {
  if (/[\n\r]/.test(v)) throw new RangeError(`cpu: ${key} has a line break`);
  return v;
}

function int(key: string, v: unknown): string {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new RangeError(`cpu: ${key} must be a non-negative integer`);
  }
  return `${key}=${v}`;
}

/**
 * The core's spec text for a `cpu` option. Throws `RangeError` naming a
 * malformed part; the core reports unknown or unsupported features.
 *
 * @example
 * ```ts
 * import { cpuSpecText } from "./cpu_spec.ts";
 * console.log(cpuSpecText("host,-x2apic")); // "host\n-x2apic"
 * console.log(cpuSpecText({ template: "baseline", features: { pcid: false } }));
 * ```
 */
export function cpuSpecText(option: CpuOption): string {
  if (typeof option === "string") {
    return line("spec", option).split(",").map((s) => s.trim()).filter((s) => s)
      .join("\n");
  }
  if (typeof option !== "object" || option === null) {
    throw new TypeError("cpu: expected a spec string or an object");
  }
  for (const k of Object.keys(option)) {
    if (!KEYS.has(k)) {
      throw new RangeError(
        `cpu: unknown key "${k}" (${[...KEYS].join(", ")})`,
      );
    }
  }
  const items: string[] = [];
  if (option.template !== undefined) {
    if (option.template !== "host" && option.template !== "baseline") {
      throw new RangeError(
        `cpu: template must be host or baseline, not "${option.template}"`,
      );
    }
    items.push(option.template);
  }
  const f = option.features;
  if (Array.isArray(f)) {
    for (const s of f as readonly string[]) {
      if (typeof s !== "string" || !/^[+-]/.test(s)) {
        throw new RangeError(`cpu: feature "${s}" must start with + or -`);
      }
      items.push(line("feature", s));
    }
  } else if (f !== undefined) {
    for (const [name, on] of Object.entries(f)) {
      if (typeof on !== "boolean") {
        throw new RangeError(`cpu: feature ${name} must be true or false`);
      }
      items.push(`${on ? "+" : "-"}${line("feature", name)}`);
    }
  }
  if (option.vendor !== undefined) {
    items.push(`vendor=${line("vendor", String(option.vendor))}`);
  }
  for (const k of ["family", "model", "stepping"] as const) {
    if (option[k] !== undefined) items.push(int(k, option[k]));
  }
  if (option.brand !== undefined) {
    items.push(`brand=${line("brand", String(option.brand))}`);
  }
  for (
    const [k, key] of [["kvm", "kvm"], ["tscLeaves", "tsc-leaves"]] as const
  ) {
    const v = option[k];
    if (v === undefined) continue;
    if (typeof v !== "boolean") {
      throw new RangeError(
        `cpu: ${k} must be true or false`,
      );
    }
    items.push(`${key}=${v ? "on" : "off"}`);
  }
  return items.join("\n");
}

/**
 * The CLI's `--cpu` value: a path ending in `.json` is read as a
 * {@link CpuSpec}; anything else is a spec string.
 *
 * @example
 * ```ts
 * import { cpuOptionFromArg } from "./cpu_spec.ts";
 * console.log(cpuOptionFromArg("baseline,-x2apic")); // "baseline,-x2apic"
 * ```
 */
export function cpuOptionFromArg(arg: string): CpuOption {
  if (!arg.endsWith(".json")) return arg;
  let text: string;
  try {
    text = host.readTextFile(arg);
  } catch (e) {
    throw new Error(`--cpu ${arg}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as CpuSpec;
  } catch (e) {
    throw new Error(`--cpu ${arg}: not JSON (${(e as Error).message})`);
  }
}
