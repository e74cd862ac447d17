/**
 * Virtio 1.x over PCI for denovmm: split virtqueues, the modern PCI
 * transport, virtio-rng and virtio-blk.
 *
 * @example
 * ```ts
 * import { virtioRng } from "./mod.ts";
 * import { pciBusPlugin } from "../pci/mod.ts";
 * const pci = pciBusPlugin({ devices: [{ device: 1, function: virtioRng() }] });
 * ```
 *
 * @module
 */
export * from "./constants.ts";
export * from "./virtqueue.ts";
export * from "./virtio_device.ts";
export * from "./virtio_pci.ts";
export * from "./rng.ts";
export * from "./block_backend.ts";
export * from "./blk.ts";
