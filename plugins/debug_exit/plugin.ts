/**
 * Bus adapter for {@link DebugExit}: the guest's write ends the run via
 * `ctx.exit`.
 *
 * @module
 */
import type { Access, DeviceContext, Plugin, Region } from "../../bus/types.ts";
import { readLe } from "../../bus/le.ts";
import {
  DEBUG_EXIT_DEFAULT_BASE,
  DEBUG_EXIT_DEFAULT_SIZE,
  DebugExit,
} from "./debug_exit.ts";

/**
 * Options of {@link debugExitPlugin}.
 *
 * @example
 * ```ts
 * import type { DebugExitOptions } from "./plugin.ts";
 * const o: DebugExitOptions = { base: 0x501, iosize: 2 };
 * ```
 */
export interface DebugExitOptions {
  /** I/O port; default 0xF4. */
  readonly base?: number;
  /** Number of ports (1, 2 or 4); default 4. */
  readonly iosize?: 1 | 2 | 4;
}

/**
 * Create an isa-debug-exit plugin. Accesses crossing the end of the port
 * range are counted no-ops.
 *
 * @example
 * ```ts
 * import { debugExitPlugin } from "./plugin.ts";
 * const p = debugExitPlugin({});
 * console.log(p.name); // "debug-exit"
 * ```
 */
export function debugExitPlugin(
  options: DebugExitOptions = {},
): Plugin & { readonly device: () => DebugExit | null } {
  const base = options.base ?? DEBUG_EXIT_DEFAULT_BASE;
  const iosize = options.iosize ?? DEBUG_EXIT_DEFAULT_SIZE;
  let dev: DebugExit | null = null;
  return {
    name: "debug-exit",
    device: () => dev,
    setup(ctx: DeviceContext): readonly Region[] {
      const d = new DebugExit((status) => ctx.exit(status));
      dev = d;
      return [{
        range: { space: "pio", base, length: iosize },
        read(_access: Access, data: Uint8Array): void {
          data.fill(d.read());
        },
        write(access: Access, data: Uint8Array): void {
          if (access.offset + access.size > iosize) {
            d.stats.badAccesses++;
            return;
          }
          d.write(access.size, readLe(data));
        },
      }];
    },
  };
}
