/**
 * The host bridge at 00:00.0.
 *
 * @module
 */
import { ConfigSpace, type PciIds } from "./config_space.ts";
import type { PciFunction } from "./pci_function.ts";

/**
 * Default host bridge identity: Intel Q35 MCH (8086:29c0), class 0x060000
 * (bridge, host bridge; PCI Code and ID Assignment §1.7).
 *
 * @example
 * ```ts
 * import { HOST_BRIDGE_IDS } from "./host_bridge.ts";
 * console.log(HOST_BRIDGE_IDS.deviceId.toString(16)); // "29c0"
 * ```
 */
export const HOST_BRIDGE_IDS: PciIds = {
  vendorId: 0x8086,
  deviceId: 0x29c0,
  classCode: 0x060000,
};

/**
 * A host bridge function: identity only, no BARs, no interrupts.
 *
 * @example
 * ```ts
 * import { hostBridge } from "./host_bridge.ts";
 * const hb = hostBridge();
 * console.log(hb.config.read(0, 4).toString(16)); // "29c08086"
 * ```
 */
export function hostBridge(ids: PciIds = HOST_BRIDGE_IDS): PciFunction {
  return {
    name: "host-bridge",
    config: new ConfigSpace(ids),
    attach() {},
    barRead(_bar, _offset, data) {
      data.fill(0xff);
    },
    barWrite() {},
  };
}
