/**
 * A stub for the two 8259A PICs when the irqchip is split (the IOAPIC
 * delivers everything; the PICs stay fully masked). Data ports read 0xFF
 * (every IRQ masked in the IMR), command ports read 0 (no IRR/ISR bits);
 * writes are accepted and counted.
 *
 * One stateful rule: a non-specific EOI (OCW2 = 0x20, 8259A datasheet,
 * "Operation Command Words", table 4) written to the master command port
 * while `timerActive()` is true is forwarded as a LAPIC EOI, because the
 * guest thinks the PV timer tick came through the PIC.
 *
 * @module
 */

/** Master PIC command port (ICW1, OCW2, OCW3). */
export const PIC_MASTER_COMMAND = 0x20;
/** Master PIC data port (ICW2–4, OCW1 = IMR). */
export const PIC_MASTER_DATA = 0x21;
/** Slave PIC command port. */
export const PIC_SLAVE_COMMAND = 0xa0;
/** Slave PIC data port. */
export const PIC_SLAVE_DATA = 0xa1;
/** OCW2 non-specific EOI (R=0, SL=0, EOI=1; bit 4:3 = 00 selects OCW2). */
export const OCW2_NONSPECIFIC_EOI = 0x20;
/** Value read from a data port: IMR with every line masked. */
export const PIC_DATA_READ_VALUE = 0xff;
/** Value read from a command port: IRR/ISR empty. */
export const PIC_COMMAND_READ_VALUE = 0x00;

/**
 * Counters of the PIC stub.
 *
 * @example
 * ```ts
 * import { PicStub } from "./pic_stub.ts";
 * const p = new PicStub({ timerActive: () => false, lapicEoi: () => {} });
 * console.log(p.stats.writes); // 0
 * ```
 */
export interface PicStubStats {
  /** Writes to any PIC port. */
  writes: number;
  /** Non-specific EOIs forwarded to the LAPIC. */
  eoisForwarded: number;
  /** Non-specific EOIs ignored because the timer was not active. */
  eoisIgnored: number;
  /** Accesses to ports that are not PIC ports. */
  badAccesses: number;
}

/**
 * Callbacks of {@link PicStub}.
 *
 * @example
 * ```ts
 * import type { PicStubOptions } from "./pic_stub.ts";
 * const o: PicStubOptions = { timerActive: () => true, lapicEoi: () => {} };
 * ```
 */
export interface PicStubOptions {
  /** True while the PV timer is ticking. */
  timerActive: () => boolean;
  /** Retire the current LAPIC in-service interrupt. */
  lapicEoi: () => void;
}

/**
 * The PIC stub; addressed by absolute port number.
 *
 * @example
 * ```ts
 * import { PicStub } from "./pic_stub.ts";
 * let eois = 0;
 * const pic = new PicStub({ timerActive: () => true, lapicEoi: () => eois++ });
 * pic.write(0x20, 0x20);
 * console.log(eois); // 1
 * ```
 */
export class PicStub {
  readonly #options: PicStubOptions;
  /** Counters. */
  readonly stats: PicStubStats = {
    writes: 0,
    eoisForwarded: 0,
    eoisIgnored: 0,
    badAccesses: 0,
  };

  /** Create the stub. */
  constructor(options: PicStubOptions) {
    this.#options = options;
  }

  /** Guest read of one byte from `port`. */
  read(port: number): number {
    switch (port) {
      case PIC_MASTER_DATA:
      case PIC_SLAVE_DATA:
        return PIC_DATA_READ_VALUE;
      case PIC_MASTER_COMMAND:
      case PIC_SLAVE_COMMAND:
        return PIC_COMMAND_READ_VALUE;
      default:
        this.stats.badAccesses++;
        return 0xff;
    }
  }

  /** Guest write of one byte to `port`. */
  write(port: number, value: number): void {
    switch (port) {
      case PIC_MASTER_COMMAND:
        this.stats.writes++;
        if ((value & 0xff) === OCW2_NONSPECIFIC_EOI) {
          if (this.#options.timerActive()) {
            this.stats.eoisForwarded++;
            this.#options.lapicEoi();
          } else {
            this.stats.eoisIgnored++;
          }
        }
        return;
      case PIC_MASTER_DATA:
      case PIC_SLAVE_COMMAND:
      case PIC_SLAVE_DATA:
        this.stats.writes++;
        return;
      default:
        this.stats.badAccesses++;
    }
  }
}
