/**
 * PCI for denovmm: configuration spaces, MSI-X, the host bridge and the
 * bus plugin (mechanism #1 ports and ECAM, BAR mapping, INTx routing).
 *
 * @example
 * ```ts
 * import { pciBusPlugin } from "./mod.ts";
 * const pci = pciBusPlugin({ devices: [] });
 * ```
 *
 * @module
 */
export * from "./registers.ts";
export * from "./config_space.ts";
export * from "./msix.ts";
export * from "./pci_function.ts";
export * from "./host_bridge.ts";
export * from "./pci_bus.ts";
