/**
 * virtio-rng, the entropy device (virtio 1.2 §5.4): one request queue;
 * every device-writable buffer is filled with random bytes.
 *
 * @module
 */
import type { GuestMemory } from "../../bus/types.ts";
import { DEVICE_ID } from "./constants.ts";
import type { VirtioDevice, VirtioDeviceHost } from "./virtio_device.ts";
import { VirtioPciFunction } from "./virtio_pci.ts";
import { forEachSpan, type SplitVirtqueue } from "./virtqueue.ts";

/** Largest chunk `crypto.getRandomValues` accepts (WebCrypto limit). */
const RANDOM_CHUNK = 65536;

/**
 * Options of {@link VirtioRng}.
 *
 * @example
 * ```ts
 * import type { VirtioRngOptions } from "./rng.ts";
 * const o: VirtioRngOptions = { queueSize: 64, maxBytesPerRequest: 4096 };
 * ```
 */
export interface VirtioRngOptions {
  /** Queue size (power of two), default 256. */
  readonly queueSize?: number;
  /** Bytes filled per request at most (default 64 KiB). */
  readonly maxBytesPerRequest?: number;
  /** Random source, default `crypto.getRandomValues` (tests inject one). */
  readonly random?: (buf: Uint8Array) => void;
}

/**
 * The virtio-rng device model.
 *
 * @example
 * ```ts
 * import { VirtioRng } from "./rng.ts";
 * const rng = new VirtioRng({ queueSize: 16 });
 * console.log(rng.deviceId); // 4
 * ```
 */
export class VirtioRng implements VirtioDevice {
  /** Name in logs. */
  readonly name = "virtio-rng";
  /** Virtio device ID 4 (entropy source). */
  readonly deviceId: number = DEVICE_ID.ENTROPY;
  /** No device-specific features (§5.4.3). */
  readonly features = 0n;
  /** One request queue (§5.4.2). */
  readonly queueSizes: readonly number[];
  /** No device configuration (§5.4.4). */
  readonly configSize = 0;
  /** Bytes handed to the guest so far. */
  bytesServed = 0;
  readonly #max: number;
  readonly #random: (buf: Uint8Array) => void;
  readonly #chunk = new Uint8Array(RANDOM_CHUNK);
  #memory: GuestMemory | null = null;

  /** Create the device. */
  constructor(options: VirtioRngOptions = {}) {
    this.queueSizes = [options.queueSize ?? 256];
    this.#max = options.maxBytesPerRequest ?? RANDOM_CHUNK;
    this.#random = options.random ?? ((b) => crypto.getRandomValues(b));
  }

  /** Keep guest memory. */
  attach(host: VirtioDeviceHost): void {
    this.#memory = host.memory;
  }
  /** No configuration: reads zero. */
  readConfig(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }
  /** No configuration: ignored. */
  writeConfig(): void {}
  /** Nothing to reset. */
  reset(): void {}

  /** Fill each available chain's writable buffers (bounded per request). */
  processQueue(_index: number, queue: SplitVirtqueue): void {
    const mem = this.#memory;
    if (!mem) return;
    for (let n = 0; n < queue.size; n++) {
      const chain = queue.pop();
      if (chain === null) return;
      const want = Math.min(chain.writableLength, this.#max);
      let written = 0;
      forEachSpan(chain.writable, 0, want, (addr, len) => {
        for (let done = 0; done < len;) {
          const k = Math.min(len - done, RANDOM_CHUNK);
          const part = this.#chunk.subarray(0, k);
          this.#random(part);
          mem.write(addr + done, part);
          done += k;
        }
        written += len;
      });
      this.bytesServed += written;
      queue.pushUsed(chain.head, written);
    }
  }
}

/**
 * A virtio-rng PCI function (vendor 0x1AF4, device 0x1044) for
 * {@link "../pci/pci_bus.ts".PciBus}.
 *
 * @example
 * ```ts
 * import { virtioRng } from "./rng.ts";
 * import { pciBusPlugin } from "../pci/pci_bus.ts";
 * const plugin = pciBusPlugin({ devices: [{ device: 1, function: virtioRng() }] });
 * ```
 */
export function virtioRng(
  options: VirtioRngOptions = {},
): VirtioPciFunction<VirtioRng> {
  return new VirtioPciFunction(new VirtioRng(options), { classCode: 0x00ff00 });
}
