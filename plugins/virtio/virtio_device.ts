/**
 * The contract between the virtio PCI transport and a device model
 * (virtio-rng, virtio-blk, ...).
 *
 * @module
 */
import type { GuestMemory, LogLevel } from "../../bus/types.ts";
import type { SplitVirtqueue } from "./virtqueue.ts";

/**
 * Services the transport gives a device.
 *
 * @example
 * ```ts
 * import type { VirtioDeviceHost } from "./virtio_device.ts";
 * function grew(host: VirtioDeviceHost) { host.configChanged(); }
 * ```
 */
export interface VirtioDeviceHost {
  /** Guest RAM (bounds-checked). */
  readonly memory: GuestMemory;
  /** Log a message attributed to the device. */
  log(level: LogLevel, msg: string): void;
  /**
   * The device configuration changed: bump config_generation and send a
   * configuration change notification (virtio 1.2 §2.5, §4.1.5.3).
   */
  configChanged(): void;
}

/**
 * A virtio device model behind a transport.
 *
 * @example
 * ```ts
 * import type { VirtioDevice } from "./virtio_device.ts";
 * const nothing: VirtioDevice = {
 *   name: "nothing", deviceId: 0x3f, features: 0n, queueSizes: [8], configSize: 0,
 *   attach() {}, readConfig(_o, d) { d.fill(0); }, writeConfig() {},
 *   processQueue() {}, reset() {},
 * };
 * ```
 */
export interface VirtioDevice {
  /** Name used in logs. */
  readonly name: string;
  /** Virtio device ID (virtio 1.2 §5). */
  readonly deviceId: number;
  /** Device-specific feature bits offered (the transport adds its own). */
  readonly features: bigint;
  /** Maximum size of each queue (powers of two). */
  readonly queueSizes: readonly number[];
  /** Size of the device-specific configuration structure in bytes. */
  readonly configSize: number;
  /** Receive transport services; called once. */
  attach(host: VirtioDeviceHost): void;
  /** Guest read of device config at `offset` (within configSize). */
  readConfig(offset: number, data: Uint8Array): void;
  /** Guest write of device config at `offset` (within configSize). */
  writeConfig(offset: number, data: Uint8Array): void;
  /** The driver set DRIVER_OK with `features` negotiated. */
  activate?(features: bigint): void;
  /**
   * Consume available buffers of queue `index`. Throwing (a
   * VirtqueueError for malformed guest input) makes the transport set
   * DEVICE_NEEDS_RESET; it never reaches the guest.
   */
  processQueue(index: number, queue: SplitVirtqueue): void;
  /** Device reset (status 0 or PCI reset). */
  reset(): void;
  /** Release host resources. */
  close?(): void;
}
