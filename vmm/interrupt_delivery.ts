/**
 * How device interrupts reach KVM: GSI lines (KVM_IRQ_LINE in kernel mode,
 * our line controllers in split mode), MSIs and MSI routes. Everything
 * here carries guest-programmed data (an IOAPIC entry, an MSI-X table), so
 * what KVM refuses is a counted, rate-limited drop, never a failed run.
 *
 * @module
 */
import type { LineController } from "../bus/irqchip.ts";
import type { MsiMessage } from "../bus/types.ts";
import type { CoreVm } from "../ffi/core_vm.ts";
import type { IrqchipMode, Logger, VmStats } from "./vm_types.ts";

/** A VM's interrupt delivery. */
export class InterruptDelivery {
  readonly #core: CoreVm;
  readonly #irqchip: IrqchipMode;
  readonly #stats: VmStats;
  readonly #log: Logger;
  readonly #closed: () => boolean;
  /** Split mode: who hears GSI levels (the IOAPIC, the PIC). */
  readonly lineControllers: LineController[] = [];

  /** Deliver into `core`; drops count in `stats.droppedInterrupts`. */
  constructor(
    core: CoreVm,
    irqchip: IrqchipMode,
    stats: VmStats,
    log: Logger,
    closed: () => boolean,
  ) {
    this.#core = core;
    this.#irqchip = irqchip;
    this.#stats = stats;
    this.#log = log;
    this.#closed = closed;
  }

  /** Set the level of `gsi`. */
  setLine(gsi: number, level: boolean): void {
    if (this.#irqchip === "kernel") {
      this.#core.irqLine(gsi, level);
    } else if (this.lineControllers.length > 0) {
      for (const c of this.lineControllers) c.setLevel(gsi, level);
    } else {
      this.#log(
        "warn",
        "vm",
        `GSI ${gsi} raised but no IOAPIC plugin is attached`,
      );
    }
  }

  /** Deliver a device's MSI; false when blocked or dropped. */
  deliver(msg: MsiMessage): boolean {
    if (this.#closed()) return false;
    const rc = this.#core.signalMsi(msg.address, msg.data);
    if (rc >= 0) return rc > 0;
    try {
      this.#core.check(rc, "signal MSI");
    } catch (e) {
      this.#drop(
        `MSI 0x${msg.address.toString(16)}/0x${msg.data.toString(16)}`,
        e,
      );
    }
    return false;
  }

  /** Set (or with null clear) the MSI route of `gsi`. */
  routeMsi(gsi: number, msg: MsiMessage | null): void {
    try {
      if (msg === null) this.#core.routeClear(gsi);
      else this.#core.routeSetMsi(gsi, msg.address, msg.data);
    } catch (e) {
      this.#drop(`route of GSI ${gsi}`, e);
    }
  }

  #drop(what: string, e: unknown): void {
    this.#stats.droppedInterrupts++;
    this.#log("warn", "vm", `${what} dropped: ${(e as Error).message}`);
  }
}
