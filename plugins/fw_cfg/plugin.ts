/**
 * Bus adapter for {@link FwCfg}: ports 0x510 (selector, 2-byte write) and
 * 0x511 (data, 1-byte read), as QEMU's `fw_cfg_comb_valid` accepts. Other
 * accesses are counted no-ops reading 0. Writes to the data port are
 * ignored (read-only since QEMU 2.4).
 *
 * @module
 */
import type { Access, Plugin, Region } from "../../bus/types.ts";
import {
  FW_CFG_PORT_SELECTOR,
  FwCfg,
  type FwCfgOptions,
  type FwCfgState,
} from "./fw_cfg.ts";

/** Offset of the selector within the region. */
const SELECTOR_OFFSET = 0;
/** Offset of the data port within the region. */
const DATA_OFFSET = 1;

/**
 * The fw_cfg plugin: the device and its selected-key state.
 *
 * @example
 * ```ts
 * import { fwCfgPlugin, type FwCfgPlugin } from "./plugin.ts";
 * const p: FwCfgPlugin = fwCfgPlugin({ ramSize: 1 << 20, cpus: 1 });
 * console.log(p.snapshot().key); // -1
 * ```
 */
export interface FwCfgPlugin extends Plugin {
  /** The device. */
  readonly device: FwCfg;
  /** The selected key and offset. */
  snapshot(): FwCfgState;
  /** Load a state (TypeError and no change when malformed). */
  restore(state: FwCfgState): void;
}

/**
 * Create the fw_cfg plugin.
 *
 * @example
 * ```ts
 * import { fwCfgPlugin } from "./plugin.ts";
 * const p = fwCfgPlugin({ ramSize: 1 << 30, cpus: 2, cmdline: "quiet" });
 * console.log(p.name); // "fw_cfg"
 * ```
 */
export function fwCfgPlugin(
  options: FwCfgOptions,
): FwCfgPlugin {
  const device = new FwCfg(options);
  return {
    name: "fw_cfg",
    device,
    setup(): readonly Region[] {
      return [{
        range: { space: "pio", base: FW_CFG_PORT_SELECTOR, length: 2 },
        read(a: Access, data: Uint8Array): void {
          if (a.offset === DATA_OFFSET && a.size === 1) {
            data[0] = device.readData();
          } else {
            device.stats.badAccesses++;
          }
        },
        write(a: Access, data: Uint8Array): void {
          if (a.offset === SELECTOR_OFFSET && a.size === 2) {
            device.select(data[0] | (data[1] << 8));
          } else {
            device.stats.badAccesses++;
          }
        },
      }];
    },
    reset(): void {
      device.select(0);
    },
    snapshot: () => device.snapshot(),
    restore: (state: FwCfgState) => device.restore(state),
  };
}
