/**
 * Strict parsers for host-side option values (sizes, durations, guest
 * arguments, enumerations). Every error is a {@link OptionError} whose
 * message names the option and the offending value, so the CLI and the
 * library report the same words.
 *
 * @module
 */

import { AbiConst } from "../ffi/abi.ts";

/** A host option value that could not be parsed; the message names it. */
export class OptionError extends RangeError {
  /** Name of the option (e.g. `--memory`, `machine-config.mem_size_mib`). */
  readonly option: string;
  /** Create an error about `option`. */
  constructor(option: string, message: string) {
    super(`${option}: ${message}`);
    this.name = "OptionError";
    this.option = option;
  }
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  K: 2 ** 10,
  M: 2 ** 20,
  G: 2 ** 30,
  T: 2 ** 40,
};

/** Options of {@link parseSize}. */
export interface SizeOptions {
  /** Option name used in error messages (default `size`). */
  what?: string;
  /** Unit of a bare number: `""` bytes (default), `K`, `M`, `G`. */
  defaultUnit?: "" | "K" | "M" | "G";
  /** Smallest accepted size in bytes (default 1). */
  min?: number;
  /** Largest accepted size in bytes (default 2^53 - 1). */
  max?: number;
  /** The size must be a multiple of this many bytes. */
  multipleOf?: number;
}

function formatBytes(n: number): string {
  for (const [u, v] of [["G", 2 ** 30], ["M", 2 ** 20], ["K", 2 ** 10]]) {
    if (n >= (v as number) && n % (v as number) === 0) {
      return `${n / (v as number)}${u}`;
    }
  }
  return `${n} bytes`;
}

/**
 * Parse a size: a byte count, or a string `<integer>[K|M|G|T][i][B]`
 * (binary units, case-insensitive: `256M`, `1GiB`, `64k`). Fractions,
 * negatives, zero (unless `min` is 0), values past `max` and values that
 * are not a multiple of `multipleOf` are refused.
 *
 * @example
 * ```ts
 * import { parseSize } from "./options.ts";
 * console.log(parseSize("256M")); // 268435456
 * console.log(parseSize("64", { defaultUnit: "M" })); // 67108864
 * ```
 */
export function parseSize(
  value: number | string,
  options: SizeOptions = {},
): number {
  const what = options.what ?? "size";
  const min = options.min ?? 1;
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  let n: number;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new OptionError(what, `${value} is not a whole number of bytes`);
    }
    n = value;
  } else if (typeof value === "string") {
    const m = /^(\d+)\s*([KMGT]?)(i?B)?$/i.exec(value.trim());
    if (!m) {
      throw new OptionError(
        what,
        `"${value}" is not a size (use e.g. 256M, 1G, 65536)`,
      );
    }
    const unit = m[2] === "" && m[3] === undefined
      ? options.defaultUnit ?? ""
      : m[2].toUpperCase();
    n = Number(m[1]) * SIZE_UNITS[unit];
    if (!Number.isSafeInteger(n)) {
      throw new OptionError(what, `"${value}" is too large`);
    }
  } else {
    throw new OptionError(what, `expected a size, got ${typeof value}`);
  }
  if (n < min) {
    throw new OptionError(
      what,
      `${value} is below the minimum of ${formatBytes(min)}`,
    );
  }
  if (n > max) {
    throw new OptionError(
      what,
      `${value} is above the maximum of ${formatBytes(max)}`,
    );
  }
  if (options.multipleOf && n % options.multipleOf !== 0) {
    throw new OptionError(
      what,
      `${value} is not a multiple of ${formatBytes(options.multipleOf)}`,
    );
  }
  return n;
}

/**
 * Guest RAM bounds: whole 4 KiB pages, 2 MiB .. 1 TiB (the core's
 * `DV_MIN_MEM` / `DV_MAX_MEM`; RAM past the MMIO hole continues at 4 GiB).
 */
export const MEMORY_LIMITS = {
  min: AbiConst.DV_MIN_MEM,
  max: AbiConst.DV_MAX_MEM,
  multipleOf: 4096,
} as const;

/**
 * Parse a guest RAM size ({@link parseSize} within {@link MEMORY_LIMITS}).
 *
 * @example
 * ```ts
 * import { parseMemorySize } from "./options.ts";
 * console.log(parseMemorySize("16M")); // 16777216
 * ```
 */
export function parseMemorySize(
  value: number | string,
  options: Omit<SizeOptions, "min" | "max" | "multipleOf"> = {},
): number {
  return parseSize(value, {
    what: "memory",
    ...options,
    ...MEMORY_LIMITS,
  });
}

const DURATION_UNITS: Record<string, number> = {
  us: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parse a duration into milliseconds: `<number><unit>` with unit `us`,
 * `ms`, `s`, `m` or `h` (`1.5s`, `500ms`, `2m`); a bare number is seconds.
 * Negative, non-finite and unit-less garbage values are refused; `0` is
 * returned as 0 (callers decide whether it means "none").
 *
 * @example
 * ```ts
 * import { parseDuration } from "./options.ts";
 * console.log(parseDuration("1.5s")); // 1500
 * console.log(parseDuration("250ms")); // 250
 * ```
 */
export function parseDuration(
  value: string | number,
  what = "duration",
): number {
  if (typeof value === "number") {
    if (!(value >= 0) || !Number.isFinite(value)) {
      throw new OptionError(what, `${value} is not a duration`);
    }
    return value * 1000;
  }
  const m = /^(\d+(?:\.\d+)?)\s*(us|ms|s|m|h)?$/.exec(String(value).trim());
  if (!m) {
    throw new OptionError(
      what,
      `"${value}" is not a duration (use e.g. 10s, 500ms, 2m)`,
    );
  }
  const ms = Number(m[1]) * DURATION_UNITS[m[2] ?? "s"];
  if (!Number.isFinite(ms)) {
    throw new OptionError(what, `"${value}" is too large`);
  }
  return ms;
}

const U64_MAX = (1n << 64n) - 1n;

/**
 * Parse a 64-bit guest argument: decimal, `0x` hex, `0o` octal or `0b`
 * binary, `_` separators allowed, 0 .. 2^64 - 1.
 *
 * @example
 * ```ts
 * import { parseGuestArg } from "./options.ts";
 * console.log(parseGuestArg("0xff")); // 255n
 * ```
 */
export function parseGuestArg(
  value: string | number | bigint,
  what = "guest argument",
): bigint {
  let v: bigint;
  if (typeof value === "bigint") {
    v = value;
  } else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new OptionError(what, `${value} is not an integer`);
    }
    v = BigInt(value);
  } else {
    const s = String(value).trim().replaceAll("_", "");
    if (!/^(0x[0-9a-f]+|0o[0-7]+|0b[01]+|\d+)$/i.test(s)) {
      throw new OptionError(
        what,
        `"${value}" is not an unsigned integer (decimal or 0x hex)`,
      );
    }
    v = BigInt(
      s.replace(/^0X/, "0x").replace(/^0O/, "0o").replace(/^0B/, "0b"),
    );
  }
  if (v < 0n || v > U64_MAX) {
    throw new OptionError(what, `${value} does not fit in 64 bits`);
  }
  return v;
}

/**
 * Check that `value` is one of `allowed`.
 *
 * @example
 * ```ts
 * import { parseEnum } from "./options.ts";
 * const mode = parseEnum("split", ["kernel", "split"] as const, "--irqchip");
 * console.log(mode); // "split"
 * ```
 */
export function parseEnum<T extends string>(
  value: unknown,
  allowed: readonly T[],
  what: string,
): T {
  if (
    typeof value === "string" && (allowed as readonly string[]).includes(value)
  ) {
    return value as T;
  }
  const shown = typeof value === "string" ? `"${value}"` : String(value);
  throw new OptionError(what, `${shown} is not one of ${allowed.join(", ")}`);
}
