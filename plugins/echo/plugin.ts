/**
 * Bus adapter for {@link EchoDevice}, in port or MMIO space.
 *
 * @module
 */
import type { Plugin, Region, Space } from "../../bus/types.ts";
import { ECHO_SIZE, EchoDevice } from "./echo_device.ts";

/**
 * Options of {@link echoPlugin}.
 *
 * @example
 * ```ts
 * import type { EchoOptions } from "./plugin.ts";
 * const o: EchoOptions = { space: "mmio", base: 0xd0000000 };
 * ```
 */
export interface EchoOptions {
  /** Address space. */
  readonly space: Space;
  /** First address. */
  readonly base: number;
  /** Plugin name; default `echo-<space>@<base hex>`. */
  readonly name?: string;
}

/**
 * Create an echo device plugin claiming 16 addresses at `base`.
 *
 * @example
 * ```ts
 * import { echoPlugin } from "./plugin.ts";
 * const p = echoPlugin({ space: "pio", base: 0x500 });
 * console.log(p.name); // "echo-pio@500"
 * ```
 */
export function echoPlugin(
  options: EchoOptions,
): Plugin & { readonly device: EchoDevice } {
  const { space, base } = options;
  const device = new EchoDevice();
  return {
    name: options.name ?? `echo-${space}@${base.toString(16)}`,
    device,
    setup(): readonly Region[] {
      return [{
        range: { space, base, length: ECHO_SIZE },
        read: (access, data) => device.read(access.offset, data),
        write: (access, data) => device.write(access.offset, data),
      }];
    },
    reset: () => device.reset(),
  };
}
