/**
 * Checks for restoring a {@link DeviceState}: each reads one field of an
 * untrusted plain-data state and throws `TypeError` naming the device and
 * field when it is missing or out of range, so a device validates the
 * whole state before changing anything.
 *
 * @example
 * ```ts
 * import { stateFields } from "./state.ts";
 * const f = stateFields({ version: 1, reg: 7 }, 1, "mydev");
 * console.log(f.int("reg", 0, 255)); // 7
 * ```
 *
 * @module
 */
import type { DeviceState } from "./types.ts";

/**
 * Typed readers over one state object.
 *
 * @example
 * ```ts
 * import { stateFields, type StateFields } from "./state.ts";
 * const f: StateFields = stateFields({ version: 1, on: true }, 1, "dev");
 * console.log(f.bool("on")); // true
 * ```
 */
export interface StateFields {
  /** An integer in `[min, max]`. */
  int(key: string, min: number, max: number): number;
  /** A boolean. */
  bool(key: string): boolean;
  /** An array of integers in `[min, max]`, of `length` when given. */
  ints(key: string, min: number, max: number, length?: number): number[];
  /** A nested object (checked by the caller). */
  object(key: string): Record<string, unknown>;
  /** A string. */
  string(key: string): string;
}

/**
 * Check that `state` is an object with `version === version` and return
 * readers for its fields (TypeError naming `what` otherwise).
 *
 * @example
 * ```ts
 * import { stateFields } from "./state.ts";
 * try {
 *   stateFields({ version: 2 }, 1, "uart");
 * } catch (e) {
 *   console.log((e as Error).message); // uart state: version 2 is not 1
 * }
 * ```
 */
export function stateFields(
  state: DeviceState | unknown,
  version: number,
  what: string,
): StateFields {
  if (typeof state !== "object" || state === null || Array.isArray(state)) {
    throw new TypeError(`${what} state: not an object`);
  }
  const s = state as Record<string, unknown>;
  if (s.version !== version) {
    throw new TypeError(
      `${what} state: version ${String(s.version)} is not ${version}`,
    );
  }
  return fields(s, what);
}

function fields(s: Record<string, unknown>, what: string): StateFields {
  const bad = (key: string, want: string): never => {
    throw new TypeError(`${what} state: ${key} must be ${want}`);
  };
  const isInt = (v: unknown, min: number, max: number): v is number =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
  return {
    int(key, min, max) {
      const v = s[key];
      return isInt(v, min, max) ? v : bad(key, `an integer in ${min}..${max}`);
    },
    bool(key) {
      const v = s[key];
      return typeof v === "boolean" ? v : bad(key, "a boolean");
    },
    ints(key, min, max, length) {
      const v = s[key];
      if (
        !Array.isArray(v) || (length !== undefined && v.length !== length) ||
        !v.every((x) => isInt(x, min, max))
      ) {
        return bad(
          key,
          `${length ?? "an array of"} integers in ${min}..${max}`,
        );
      }
      return [...v];
    },
    object(key) {
      const v = s[key];
      return typeof v === "object" && v !== null && !Array.isArray(v)
        ? v as Record<string, unknown>
        : bad(key, "an object");
    },
    string(key) {
      const v = s[key];
      return typeof v === "string" ? v : bad(key, "a string");
    },
  };
}
