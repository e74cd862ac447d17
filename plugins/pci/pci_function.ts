/**
 * The interface between the PCI bus plugin and the functions plugged
 * into it.
 *
 * @module
 */
import type {
  DeviceState,
  GuestMemory,
  LogLevel,
  MsiMessage,
} from "../../bus/types.ts";
import type { ConfigSpace } from "./config_space.ts";

/**
 * Host services the bus hands to each function in
 * {@link PciFunction.attach}.
 *
 * @example
 * ```ts
 * import type { PciHost } from "./pci_function.ts";
 * function raise(host: PciHost) { host.setIntx(true); }
 * ```
 */
export interface PciHost {
  /** Guest RAM (bounds-checked; throws RangeError outside RAM). */
  readonly memory: GuestMemory;
  /** Log a message attributed to the function. */
  log(level: LogLevel, msg: string): void;
  /**
   * Deliver an MSI now. `vector` (the function's MSI-X vector) lets the
   * bus deliver through that vector's irqfd when it uses irqfds.
   */
  signalMsi(msg: MsiMessage, vector?: number): void;
  /**
   * Set the function's INTx pending state. The bus mirrors it in status
   * bit 3 and drives the routed GSI while command bit 10 is clear.
   */
  setIntx(level: boolean): void;
  /** Forwarded MSI-X route change (irqfd GSI routes in the host). */
  msixRouteChanged(vector: number, msg: MsiMessage | null): void;
  /**
   * Forwarded MSI-X effective mask change; on unmask, true means a message
   * was held for the vector while masked (the MSI-X `vectorMask` option).
   */
  msixVectorMask?(vector: number, masked: boolean): boolean;
}

/**
 * A PCI function: a configuration space plus handlers for its BARs.
 * Functions are pure state machines; the bus maps their BARs and routes
 * their interrupts.
 *
 * @example
 * ```ts
 * import { ConfigSpace } from "./config_space.ts";
 * import type { PciFunction } from "./pci_function.ts";
 * const dummy: PciFunction = {
 *   name: "dummy",
 *   config: new ConfigSpace({ vendorId: 0x1234, deviceId: 1, classCode: 0xff0000 }),
 *   attach() {},
 *   barRead(_bar, _offset, data) { data.fill(0); },
 *   barWrite() {},
 * };
 * ```
 */
export interface PciFunction {
  /** Name used in logs. */
  readonly name: string;
  /** The function's configuration space. */
  readonly config: ConfigSpace;
  /** Receive host services; called once from the bus plugin's setup. */
  attach(host: PciHost): void;
  /** Guest read of BAR `bar` at `offset` from its base; fill `data`. */
  barRead(bar: number, offset: number, data: Uint8Array): void;
  /** Guest write of BAR `bar` at `offset` from its base. */
  barWrite(bar: number, offset: number, data: Uint8Array): void;
  /** Power-on reset (the bus resets the config space first). */
  reset?(): void;
  /** Release host resources. */
  close?(): void;
  /**
   * State beyond the configuration space (which the bus saves): MSI-X
   * table, device registers. Versioned plain data.
   */
  snapshot?(): DeviceState;
  /**
   * Load a state from `snapshot`, after the bus restored the config
   * space; TypeError and no change when malformed.
   */
  restore?(state: DeviceState): void;
}
