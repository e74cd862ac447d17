/**
 * Bus adapter for {@link Ioapic}: one MMIO region of 0x100 bytes at the
 * IOAPIC base; `eoi(vector)` (KVM_EXIT_IOAPIC_EOI) forwards to the device.
 *
 * @module
 */
import type { Access, Plugin, Region } from "../../bus/types.ts";
import {
  type Ioapic,
  IOAPIC_DEFAULT_BASE,
  IOAPIC_MMIO_LENGTH,
} from "./ioapic.ts";

/**
 * Options of {@link ioapicPlugin}.
 *
 * @example
 * ```ts
 * import { Ioapic } from "./ioapic.ts";
 * import type { IoapicPluginOptions } from "./plugin.ts";
 * const ioapic = new Ioapic({ sink: { deliver() {} }, clock: { now: () => 0 } });
 * const o: IoapicPluginOptions = { ioapic, base: 0xfec00000 };
 * ```
 */
export interface IoapicPluginOptions {
  /** The device, constructed by the host (it is also the split irqchip). */
  readonly ioapic: Ioapic;
  /** MMIO base; default 0xFEC00000. */
  readonly base?: number;
}

function readLe(data: Uint8Array): number {
  let v = 0;
  for (let i = data.length - 1; i >= 0; i--) v = v * 256 + data[i];
  return v;
}

/**
 * Adapt an {@link Ioapic} to the bus. Only 4-byte accesses reach the
 * device registers; other sizes read 0 and are counted in
 * `ioapic.stats.badAccesses`.
 *
 * @example
 * ```ts
 * import { Ioapic } from "./ioapic.ts";
 * import { ioapicPlugin } from "./plugin.ts";
 * const ioapic = new Ioapic({ sink: { deliver() {} }, clock: { now: () => 0 } });
 * const plugin = ioapicPlugin({ ioapic });
 * console.log(plugin.name); // "ioapic"
 * ```
 */
export function ioapicPlugin(options: IoapicPluginOptions): Plugin {
  const { ioapic } = options;
  const base = options.base ?? IOAPIC_DEFAULT_BASE;
  return {
    name: "ioapic",
    setup(): readonly Region[] {
      return [{
        range: { space: "mmio", base, length: IOAPIC_MMIO_LENGTH },
        read(access: Access, data: Uint8Array): void {
          const v = ioapic.read(access.offset, access.size);
          if (access.size !== 4) return; // counted by the device; reads 0
          new DataView(data.buffer, data.byteOffset, 4).setUint32(0, v, true);
        },
        write(access: Access, data: Uint8Array): void {
          ioapic.write(
            access.offset,
            access.size,
            access.size === 4 ? readLe(data) : 0,
          );
        },
      }];
    },
    eoi(vector: number): void {
      ioapic.eoi(vector);
    },
    reset(): void {
      ioapic.reset();
    },
  };
}
