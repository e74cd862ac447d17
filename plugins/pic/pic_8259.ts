/**
 * An Intel 8259A Programmable Interrupt Controller pair (master at
 * 0x20/0x21, slave at 0xA0/0xA1 cascaded on master IR2, PIIX ELCR at
 * 0x4D0/0x4D1) as a pure state machine, for KVM split-irqchip mode: the
 * master's INT output is delivered by the VMM as an ExtINT (SDM 10.5.1),
 * and {@link PicPair.acknowledge} is the INTA cycle that supplies the
 * vector.
 *
 * Sources: Intel 8259A datasheet (order 231468), sections "Interrupt
 * Sequence", "Initialization Command Words" (figure 6), "Operation Command
 * Words" (figure 8, table 4), "Special Mask Mode", "Poll Command", "Edge
 * and Level Triggered Modes", "The Special Fully Nested Mode"; Intel 82371
 * PIIX datasheet, ELCR registers (IRQ 0, 1, 2, 8, 13 must be edge).
 * Behaviour follows QEMU `hw/intc/i8259.c` and Linux KVM
 * `arch/x86/kvm/i8259.c` (priority resolution, INTA order, cascade).
 *
 * Deliberate choices, as in QEMU and KVM:
 * - an edge-mode request stays latched in the IRR after its line falls
 *   (the datasheet requires the line to stay high until INTA; virtual
 *   devices pulse lines, so that rule would lose their interrupts);
 * - the slave's INT drives master IR2 with an edge-mode latch that is
 *   re-armed on every update while the slave's INT stays high (KVM), so a
 *   slave request is never lost behind a master INTA;
 * - the cascade is always on IR2: ICW3 and SNGL only shape the init
 *   sequence;
 * - ICW1 LTIM puts all eight inputs of that chip in level mode, in
 *   addition to the per-IRQ ELCR bits.
 *
 * @module
 */

// ---- ports ---------------------------------------------------------------

/** Master command port: ICW1, OCW2, OCW3; reads IRR/ISR/poll (PC/AT). */
export const I8259_MASTER_COMMAND = 0x20;
/** Master data port: ICW2–ICW4, OCW1 (IMR) (PC/AT). */
export const I8259_MASTER_DATA = 0x21;
/** Slave command port (PC/AT). */
export const I8259_SLAVE_COMMAND = 0xa0;
/** Slave data port (PC/AT). */
export const I8259_SLAVE_DATA = 0xa1;
/** Edge/Level Control Register for IRQ 0–7 (PIIX ELCR1). */
export const I8259_ELCR_MASTER = 0x4d0;
/** Edge/Level Control Register for IRQ 8–15 (PIIX ELCR2). */
export const I8259_ELCR_SLAVE = 0x4d1;

/** Offset of the command port inside a chip's two ports (A0 = 0). */
export const I8259_OFFSET_COMMAND = 0;
/** Offset of the data port inside a chip's two ports (A0 = 1). */
export const I8259_OFFSET_DATA = 1;

/** Master input wired to the slave's INT output (PC/AT cascade). */
export const I8259_CASCADE_IRQ = 2;
/** Input whose vector is returned by an INTA with no request (datasheet). */
export const I8259_SPURIOUS_IRQ = 7;
/** Number of interrupt lines of the pair (ISA IRQ 0–15). */
export const I8259_PAIR_LINES = 16;

/** Writable ELCR1 bits: IRQ 0, 1, 2 are read-only edge (PIIX). */
export const I8259_ELCR_MASTER_MASK = 0xf8;
/** Writable ELCR2 bits: IRQ 8 and 13 are read-only edge (PIIX). */
export const I8259_ELCR_SLAVE_MASK = 0xde;

// ---- ICW1 (datasheet figure 6) -------------------------------------------

/** ICW1: bit 4 set on the command port starts initialization. */
export const I8259_ICW1_INIT = 0x10;
/** ICW1 bit 0 (IC4): an ICW4 follows. */
export const I8259_ICW1_IC4 = 0x01;
/** ICW1 bit 1 (SNGL): single chip, no ICW3. */
export const I8259_ICW1_SNGL = 0x02;
/** ICW1 bit 3 (LTIM): level-triggered inputs. */
export const I8259_ICW1_LTIM = 0x08;
/** ICW2: vector base bits T7–T3 (the low 3 bits are ignored in 8086 mode). */
export const I8259_ICW2_VECTOR_MASK = 0xf8;
/** ICW4 bit 1 (AEOI): automatic end of interrupt. */
export const I8259_ICW4_AEOI = 0x02;
/** ICW4 bit 4 (SFNM): special fully nested mode. */
export const I8259_ICW4_SFNM = 0x10;

// ---- OCW2 / OCW3 (datasheet figure 8, table 4) ---------------------------

/** Command-port bit 3: with bit 4 clear, 1 selects OCW3, 0 selects OCW2. */
export const I8259_OCW3_SELECT = 0x08;
/** OCW2: R/SL/EOI command field, bits 7:5. */
export const I8259_OCW2_COMMAND_MASK = 0xe0;
/** OCW2: level field L2–L0, bits 2:0. */
export const I8259_OCW2_LEVEL_MASK = 0x07;
/** OCW2 000: rotate in automatic EOI mode (clear). */
export const I8259_OCW2_ROTATE_AEOI_CLEAR = 0x00;
/** OCW2 001: non-specific EOI. */
export const I8259_OCW2_EOI = 0x20;
/** OCW2 010: no operation. */
export const I8259_OCW2_NOP = 0x40;
/** OCW2 011: specific EOI (OR the level). */
export const I8259_OCW2_SPECIFIC_EOI = 0x60;
/** OCW2 100: rotate in automatic EOI mode (set). */
export const I8259_OCW2_ROTATE_AEOI_SET = 0x80;
/** OCW2 101: rotate on non-specific EOI. */
export const I8259_OCW2_ROTATE_EOI = 0xa0;
/** OCW2 110: set priority (OR the level that becomes lowest). */
export const I8259_OCW2_SET_PRIORITY = 0xc0;
/** OCW2 111: rotate on specific EOI (OR the level). */
export const I8259_OCW2_ROTATE_SPECIFIC_EOI = 0xe0;
/** OCW3 bit 0 (RIS): read ISR (1) or IRR (0), when RR is set. */
export const I8259_OCW3_RIS = 0x01;
/** OCW3 bit 1 (RR): apply RIS. */
export const I8259_OCW3_RR = 0x02;
/** OCW3 bit 2 (P): poll command. */
export const I8259_OCW3_POLL = 0x04;
/** OCW3 bit 5 (SMM): special mask mode value, when ESMM is set. */
export const I8259_OCW3_SMM = 0x20;
/** OCW3 bit 6 (ESMM): apply SMM. */
export const I8259_OCW3_ESMM = 0x40;
/** OCW3 0x0A: read IRR on the next command-port read. */
export const I8259_OCW3_READ_IRR = I8259_OCW3_SELECT | I8259_OCW3_RR;
/** OCW3 0x0B: read ISR on the next command-port read. */
export const I8259_OCW3_READ_ISR = I8259_OCW3_READ_IRR | I8259_OCW3_RIS;
/** Poll word bit 7 (I): an interrupt was pending; bits 2:0 its level. */
export const I8259_POLL_INTERRUPT = 0x80;

/** Value read from a port or size the pair does not decode (open bus). */
export const I8259_OPEN_BUS = 0xff;

/** Init sequence states: 0 = ready (data port is OCW1). */
const INIT_READY = 0;
/** Next data write is ICW2. */
const INIT_ICW2 = 1;
/** Next data write is ICW3. */
const INIT_ICW3 = 2;
/** Next data write is ICW4. */
const INIT_ICW4 = 3;

/**
 * Counters of notable events; guest errors are counted, never thrown.
 * A {@link PicPair} shares one object between its two chips.
 *
 * @example
 * ```ts
 * import { PicPair } from "./pic_8259.ts";
 * const pic = new PicPair();
 * pic.write(0x20, 0x11);
 * console.log(pic.stats.inits); // 1
 * ```
 */
export interface PicStats {
  /** ICW1 writes (initialization sequences started). */
  inits: number;
  /** EOI commands (OCW2) that retired an in-service level. */
  eois: number;
  /** EOI commands that found nothing (or not that level) in service. */
  emptyEois: number;
  /** INTA cycles that returned the vector of a real request. */
  acks: number;
  /** INTA cycles that returned a spurious vector (IRQ 7 or IRQ 15). */
  spurious: number;
  /** Reads answered by the poll command. */
  polls: number;
  /** OCW2 "no operation" commands (R SL EOI = 010). */
  nopCommands: number;
  /** Accesses to ports the device does not decode, or of the wrong size. */
  badAccesses: number;
  /** `setLevel` calls with an invalid line number. */
  badLines: number;
  /** `setLevel` calls on valid GSIs the pair has no input for (2, >= 16). */
  ignoredLines: number;
}

/**
 * A fresh zeroed {@link PicStats}.
 *
 * @example
 * ```ts
 * import { newPicStats } from "./pic_8259.ts";
 * console.log(newPicStats().acks); // 0
 * ```
 */
export function newPicStats(): PicStats {
  return {
    inits: 0,
    eois: 0,
    emptyEois: 0,
    acks: 0,
    spurious: 0,
    polls: 0,
    nopCommands: 0,
    badAccesses: 0,
    badLines: 0,
    ignoredLines: 0,
  };
}

/**
 * Options of {@link Pic8259}.
 *
 * @example
 * ```ts
 * import type { Pic8259Options } from "./pic_8259.ts";
 * const slave: Pic8259Options = { master: false };
 * ```
 */
export interface Pic8259Options {
  /**
   * True (default) for a master (the /SP pin): in special fully nested
   * mode its cascade input's in-service bit does not block the slave.
   */
  readonly master?: boolean;
  /**
   * Writable ELCR bits; default {@link I8259_ELCR_MASTER_MASK} for a
   * master, {@link I8259_ELCR_SLAVE_MASK} for a slave.
   */
  readonly elcrMask?: number;
  /** Counters to add to (default: a fresh object). */
  readonly stats?: PicStats;
}

/**
 * Plain-data state of one {@link Pic8259} (JSON-serializable).
 *
 * @example
 * ```ts
 * import { Pic8259 } from "./pic_8259.ts";
 * const s = new Pic8259().snapshot();
 * console.log(s.imr); // 0
 * ```
 */
export interface Pic8259State {
  /** Input line levels, bit n = IRn. */
  readonly lines: number;
  /** Interrupt request register. */
  readonly irr: number;
  /** Interrupt mask register (OCW1). */
  readonly imr: number;
  /** In-service register. */
  readonly isr: number;
  /** IR level with the highest priority (0 unless rotated). */
  readonly highestPriority: number;
  /** Vector base from ICW2 (multiple of 8). */
  readonly vectorBase: number;
  /** OCW3 RIS: command-port reads return the ISR. */
  readonly readIsr: boolean;
  /** A poll command waits for the next read. */
  readonly poll: boolean;
  /** Special mask mode. */
  readonly specialMask: boolean;
  /** Init sequence: 0 ready, 1 expects ICW2, 2 ICW3, 3 ICW4. */
  readonly initState: number;
  /** ICW1 IC4 of the current sequence. */
  readonly icw4Needed: boolean;
  /** ICW1 SNGL. */
  readonly single: boolean;
  /** ICW1 LTIM: all inputs level-triggered. */
  readonly levelTriggered: boolean;
  /** ICW4 AEOI. */
  readonly autoEoi: boolean;
  /** OCW2 rotate in automatic EOI mode. */
  readonly rotateOnAutoEoi: boolean;
  /** ICW4 SFNM. */
  readonly specialFullyNested: boolean;
  /** ELCR value. */
  readonly elcr: number;
}

/**
 * Plain-data state of a {@link PicPair} (JSON-serializable).
 *
 * @example
 * ```ts
 * import { PicPair } from "./pic_8259.ts";
 * const s = new PicPair().snapshot();
 * console.log(s.version); // 1
 * ```
 */
export interface PicPairState {
  /** Format version, currently 1. */
  readonly version: 1;
  /** The master chip. */
  readonly master: Pic8259State;
  /** The slave chip. */
  readonly slave: Pic8259State;
}

function bit(irq: number): number {
  return 1 << irq;
}

/**
 * One 8259A chip, addressed by offset (0 = command port, A0 = 0; 1 = data
 * port). A chip has no callbacks: a {@link PicPair} drives the cascade
 * and reports its output. Mutating a chip of a pair directly bypasses the
 * pair's cascade and change notification; read its getters instead.
 *
 * @example
 * ```ts
 * import { Pic8259 } from "./pic_8259.ts";
 * const pic = new Pic8259();
 * pic.write(0, 0x13); // ICW1: single, ICW4 follows
 * pic.write(1, 0x20); // ICW2: vectors 0x20..0x27
 * pic.write(1, 0x01); // ICW4: 8086 mode
 * pic.setLevel(3, true);
 * console.log(pic.output, pic.pendingIrq()); // true 3
 * pic.acknowledgeIrq(3);
 * console.log(pic.isr); // 8
 * ```
 */
export class Pic8259 {
  readonly #master: boolean;
  readonly #elcrMask: number;
  /** Event counters (shared with the other chip of a pair). */
  readonly stats: PicStats;

  #lines = 0;
  #irr = 0;
  #imr = 0;
  #isr = 0;
  #priorityAdd = 0;
  #vectorBase = 0;
  #readIsr = false;
  #poll = false;
  #specialMask = false;
  #initState = INIT_READY;
  #init4 = false;
  #single = false;
  #ltim = false;
  #autoEoi = false;
  #rotateOnAutoEoi = false;
  #sfnm = false;
  #elcr = 0;

  /** Create a chip in its power-on state. */
  constructor(options: Pic8259Options = {}) {
    this.#master = options.master ?? true;
    this.#elcrMask = (options.elcrMask ??
      (this.#master ? I8259_ELCR_MASTER_MASK : I8259_ELCR_SLAVE_MASK)) & 0xff;
    this.stats = options.stats ?? newPicStats();
  }

  // ---- inspection -------------------------------------------------------

  /** True for a master chip. */
  get isMaster(): boolean {
    return this.#master;
  }
  /** Input line levels, bit n = IRn. */
  get lines(): number {
    return this.#lines;
  }
  /** Interrupt request register. */
  get irr(): number {
    return this.#irr;
  }
  /** Interrupt mask register. */
  get imr(): number {
    return this.#imr;
  }
  /** In-service register. */
  get isr(): number {
    return this.#isr;
  }
  /** Vector base (ICW2 & 0xF8). */
  get vectorBase(): number {
    return this.#vectorBase;
  }
  /** The IR level that currently has the highest priority. */
  get highestPriority(): number {
    return this.#priorityAdd;
  }
  /** True in automatic EOI mode (ICW4 AEOI). */
  get autoEoi(): boolean {
    return this.#autoEoi;
  }
  /** True in special mask mode (OCW3). */
  get specialMask(): boolean {
    return this.#specialMask;
  }
  /** True while an init sequence waits for ICW2–ICW4. */
  get initializing(): boolean {
    return this.#initState !== INIT_READY;
  }
  /** Edge/Level Control Register. */
  get elcr(): number {
    return this.#elcr;
  }
  /** Bits of the inputs in level mode (LTIM: all; otherwise the ELCR). */
  get levelMask(): number {
    return this.#ltim ? 0xff : this.#elcr;
  }
  /** The INT output pin. */
  get output(): boolean {
    return this.pendingIrq() >= 0;
  }

  // ---- lines ------------------------------------------------------------

  /**
   * Drive input IR`irq` (0..7). Edge mode latches the IRR on a rising
   * edge (the latch survives the line falling); level mode makes the IRR
   * bit follow the line. A bad `irq` is counted in `stats.badLines`.
   */
  setLevel(irq: number, level: boolean): void {
    if (!Number.isInteger(irq) || irq < 0 || irq > 7) {
      this.stats.badLines++;
      return;
    }
    const m = bit(irq);
    if (level) {
      if ((this.levelMask & m) !== 0 || (this.#lines & m) === 0) {
        this.#irr |= m;
      }
      this.#lines |= m;
    } else {
      this.#lines &= ~m;
      if ((this.levelMask & m) !== 0) this.#irr &= ~m;
    }
  }

  // ---- priority ---------------------------------------------------------

  /** Priority rank (0 = highest) of the best bit in `mask`; 8 if none. */
  #priority(mask: number): number {
    if ((mask & 0xff) === 0) return 8;
    let p = 0;
    while ((mask & bit((p + this.#priorityAdd) & 7)) === 0) p++;
    return p;
  }

  /**
   * The IR level the chip would deliver now: the highest-priority
   * unmasked request whose priority is above every level in service
   * (special mask mode ignores masked in-service levels; special fully
   * nested mode on a master ignores the cascade input's), or -1.
   */
  pendingIrq(): number {
    const p = this.#priority(this.#irr & ~this.#imr);
    if (p === 8) return -1;
    let inService = this.#isr;
    if (this.#specialMask) inService &= ~this.#imr;
    if (this.#sfnm && this.#master) inService &= ~bit(I8259_CASCADE_IRQ);
    return p < this.#priority(inService) ? (p + this.#priorityAdd) & 7 : -1;
  }

  /**
   * The chip's part of an INTA cycle for level `irq` (0..7): sets its ISR
   * bit (or, in AEOI mode, rotates if asked to) and clears an edge-mode
   * request. Out-of-range values are ignored.
   */
  acknowledgeIrq(irq: number): void {
    if (!Number.isInteger(irq) || irq < 0 || irq > 7) return;
    const m = bit(irq);
    if (this.#autoEoi) {
      if (this.#rotateOnAutoEoi) this.#priorityAdd = (irq + 1) & 7;
    } else {
      this.#isr |= m;
    }
    if ((this.levelMask & m) === 0) this.#irr &= ~m;
  }

  // ---- ports ------------------------------------------------------------

  /**
   * Guest read at `offset` (0 command, 1 data). A pending poll command
   * answers (either port, as the datasheet's "next RD pulse"); otherwise
   * the command port gives IRR or ISR (OCW3) and the data port the IMR.
   */
  read(offset: number): number {
    if (offset !== I8259_OFFSET_COMMAND && offset !== I8259_OFFSET_DATA) {
      this.stats.badAccesses++;
      return I8259_OPEN_BUS;
    }
    if (this.#poll) {
      this.#poll = false;
      this.stats.polls++;
      const irq = this.pendingIrq();
      if (irq < 0) return 0;
      this.acknowledgeIrq(irq);
      return I8259_POLL_INTERRUPT | irq;
    }
    if (offset === I8259_OFFSET_DATA) return this.#imr;
    return this.#readIsr ? this.#isr : this.#irr;
  }

  /** Guest write of byte `value` at `offset` (0 command, 1 data). */
  write(offset: number, value: number): void {
    const v = value & 0xff;
    if (offset === I8259_OFFSET_COMMAND) this.#writeCommand(v);
    else if (offset === I8259_OFFSET_DATA) this.#writeData(v);
    else this.stats.badAccesses++;
  }

  /** Guest write of the ELCR; read-only bits stay 0. */
  writeElcr(value: number): void {
    this.#elcr = value & this.#elcrMask;
    this.#syncLevelInputs();
  }

  /** Level-mode inputs: the IRR follows the line. */
  #syncLevelInputs(): void {
    const lm = this.levelMask;
    this.#irr = (this.#irr & ~lm) | (this.#lines & lm);
  }

  #writeCommand(v: number): void {
    if ((v & I8259_ICW1_INIT) !== 0) {
      this.stats.inits++;
      this.#initReset();
      this.#initState = INIT_ICW2;
      this.#init4 = (v & I8259_ICW1_IC4) !== 0;
      this.#single = (v & I8259_ICW1_SNGL) !== 0;
      this.#ltim = (v & I8259_ICW1_LTIM) !== 0;
      this.#syncLevelInputs();
    } else if ((v & I8259_OCW3_SELECT) !== 0) {
      if ((v & I8259_OCW3_POLL) !== 0) this.#poll = true;
      if ((v & I8259_OCW3_RR) !== 0) {
        this.#readIsr = (v & I8259_OCW3_RIS) !== 0;
      }
      if ((v & I8259_OCW3_ESMM) !== 0) {
        this.#specialMask = (v & I8259_OCW3_SMM) !== 0;
      }
    } else {
      this.#writeOcw2(v);
    }
  }

  #writeOcw2(v: number): void {
    const level = v & I8259_OCW2_LEVEL_MASK;
    switch (v & I8259_OCW2_COMMAND_MASK) {
      case I8259_OCW2_ROTATE_AEOI_CLEAR:
        this.#rotateOnAutoEoi = false;
        return;
      case I8259_OCW2_ROTATE_AEOI_SET:
        this.#rotateOnAutoEoi = true;
        return;
      case I8259_OCW2_EOI:
      case I8259_OCW2_ROTATE_EOI: {
        const p = this.#priority(this.#isr);
        if (p === 8) {
          this.stats.emptyEois++;
          return;
        }
        const irq = (p + this.#priorityAdd) & 7;
        this.#isr &= ~bit(irq);
        this.stats.eois++;
        if ((v & I8259_OCW2_COMMAND_MASK) === I8259_OCW2_ROTATE_EOI) {
          this.#priorityAdd = (irq + 1) & 7;
        }
        return;
      }
      case I8259_OCW2_SPECIFIC_EOI:
      case I8259_OCW2_ROTATE_SPECIFIC_EOI:
        if ((this.#isr & bit(level)) !== 0) this.stats.eois++;
        else this.stats.emptyEois++;
        this.#isr &= ~bit(level);
        if ((v & I8259_OCW2_COMMAND_MASK) === I8259_OCW2_ROTATE_SPECIFIC_EOI) {
          this.#priorityAdd = (level + 1) & 7;
        }
        return;
      case I8259_OCW2_SET_PRIORITY:
        this.#priorityAdd = (level + 1) & 7;
        return;
      default: // I8259_OCW2_NOP
        this.stats.nopCommands++;
    }
  }

  #writeData(v: number): void {
    switch (this.#initState) {
      case INIT_ICW2:
        this.#vectorBase = v & I8259_ICW2_VECTOR_MASK;
        this.#initState = this.#single
          ? (this.#init4 ? INIT_ICW4 : INIT_READY)
          : INIT_ICW3;
        return;
      case INIT_ICW3: // cascade wiring is fixed (IR2); the value is unused
        this.#initState = this.#init4 ? INIT_ICW4 : INIT_READY;
        return;
      case INIT_ICW4:
        this.#autoEoi = (v & I8259_ICW4_AEOI) !== 0;
        this.#sfnm = (v & I8259_ICW4_SFNM) !== 0;
        this.#initState = INIT_READY;
        return;
      default: // OCW1
        this.#imr = v;
    }
  }

  /**
   * ICW1 side effects (datasheet "Initialization Command Words"): edge
   * sense reset (an edge-mode input must rise again), IMR, ISR, priority
   * rotation, special mask mode and the read selection cleared; ICW4
   * functions zero until an ICW4 sets them. Line levels and ELCR stay.
   */
  #initReset(): void {
    this.#irr = 0;
    this.#imr = 0;
    this.#isr = 0;
    this.#priorityAdd = 0;
    this.#vectorBase = 0;
    this.#readIsr = false;
    this.#poll = false;
    this.#specialMask = false;
    this.#initState = INIT_READY;
    this.#init4 = false;
    this.#single = false;
    this.#ltim = false;
    this.#autoEoi = false;
    this.#rotateOnAutoEoi = false;
    this.#sfnm = false;
  }

  /** Power-on state: as after ICW1, plus ELCR = 0 (line levels are kept). */
  reset(): void {
    this.#initReset();
    this.#elcr = 0;
    this.#syncLevelInputs();
  }

  // ---- snapshot ---------------------------------------------------------

  /** Plain-data copy of the chip state. */
  snapshot(): Pic8259State {
    return {
      lines: this.#lines,
      irr: this.#irr,
      imr: this.#imr,
      isr: this.#isr,
      highestPriority: this.#priorityAdd,
      vectorBase: this.#vectorBase,
      readIsr: this.#readIsr,
      poll: this.#poll,
      specialMask: this.#specialMask,
      initState: this.#initState,
      icw4Needed: this.#init4,
      single: this.#single,
      levelTriggered: this.#ltim,
      autoEoi: this.#autoEoi,
      rotateOnAutoEoi: this.#rotateOnAutoEoi,
      specialFullyNested: this.#sfnm,
      elcr: this.#elcr,
    };
  }

  /**
   * Load a state produced by {@link Pic8259.snapshot}. The state is checked
   * first: a malformed one throws TypeError and changes nothing. Level-mode
   * IRR bits are resynchronized with the line levels.
   */
  restore(state: Pic8259State): void {
    validateChipState(state, this.#elcrMask, "pic state");
    this.#lines = state.lines;
    this.#irr = state.irr;
    this.#imr = state.imr;
    this.#isr = state.isr;
    this.#priorityAdd = state.highestPriority;
    this.#vectorBase = state.vectorBase;
    this.#readIsr = state.readIsr;
    this.#poll = state.poll;
    this.#specialMask = state.specialMask;
    this.#initState = state.initState;
    this.#init4 = state.icw4Needed;
    this.#single = state.single;
    this.#ltim = state.levelTriggered;
    this.#autoEoi = state.autoEoi;
    this.#rotateOnAutoEoi = state.rotateOnAutoEoi;
    this.#sfnm = state.specialFullyNested;
    this.#elcr = state.elcr;
    this.#syncLevelInputs();
  }
}

function isU8(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xff;
}

const U8_FIELDS = ["lines", "irr", "imr", "isr", "vectorBase", "elcr"] as const;
const BOOL_FIELDS = [
  "readIsr",
  "poll",
  "specialMask",
  "icw4Needed",
  "single",
  "levelTriggered",
  "autoEoi",
  "rotateOnAutoEoi",
  "specialFullyNested",
] as const;

function validateChipState(
  state: unknown,
  elcrMask: number,
  what: string,
): asserts state is Pic8259State {
  if (typeof state !== "object" || state === null) {
    throw new TypeError(`${what}: not an object`);
  }
  const s = state as Record<string, unknown>;
  for (const f of U8_FIELDS) {
    if (!isU8(s[f])) throw new TypeError(`${what}: ${f} must be a byte`);
  }
  for (const f of BOOL_FIELDS) {
    if (typeof s[f] !== "boolean") {
      throw new TypeError(`${what}: ${f} must be a boolean`);
    }
  }
  if (!isU8(s.highestPriority) || s.highestPriority > 7) {
    throw new TypeError(`${what}: highestPriority must be 0..7`);
  }
  if (!isU8(s.initState) || s.initState > INIT_ICW4) {
    throw new TypeError(`${what}: initState must be 0..3`);
  }
  if (((s.vectorBase as number) & ~I8259_ICW2_VECTOR_MASK) !== 0) {
    throw new TypeError(`${what}: vectorBase must be a multiple of 8`);
  }
  if (((s.elcr as number) & ~elcrMask) !== 0) {
    throw new TypeError(`${what}: elcr sets read-only bits`);
  }
}

/**
 * Options of {@link PicPair}.
 *
 * @example
 * ```ts
 * import type { PicPairOptions } from "./pic_8259.ts";
 * let kicks = 0;
 * const o: PicPairOptions = { onChange: () => kicks++ };
 * ```
 */
export interface PicPairOptions {
  /**
   * Called whenever {@link PicPair.interruptPending} changed (both
   * directions), after the state is consistent; the host uses it to
   * request an interrupt window or kick the vCPU. It may call back into
   * the pair.
   */
  readonly onChange?: () => void;
}

/**
 * The PC/AT PIC pair: master (0x20/0x21) and slave (0xA0/0xA1, INT wired
 * to master IR2) plus the PIIX ELCR (0x4D0/0x4D1). Ports are absolute.
 * Lines 0..15 are ISA IRQs; GSI 2 (the cascade input) and GSIs >= 16 are
 * accepted and ignored, as every GSI reaches every line controller.
 *
 * @example
 * ```ts
 * import { PicPair } from "./pic_8259.ts";
 * const pic = new PicPair();
 * for (const [port, v] of [[0x20, 0x11], [0x21, 0x20], [0x21, 4], [0x21, 1],
 *   [0xa0, 0x11], [0xa1, 0x28], [0xa1, 2], [0xa1, 1]]) pic.write(port, v);
 * pic.setLevel(10, true);
 * console.log(pic.interruptPending); // true
 * console.log(pic.acknowledge().toString(16)); // "2a"
 * pic.write(0xa0, 0x20); // EOI slave
 * pic.write(0x20, 0x20); // EOI master
 * ```
 */
export class PicPair {
  /** Event counters of both chips and the INTA cycle. */
  readonly stats: PicStats = newPicStats();
  /** The master chip (inspect only; mutate through the pair). */
  readonly master: Pic8259;
  /** The slave chip (inspect only; mutate through the pair). */
  readonly slave: Pic8259;
  /** Output-change callback (see {@link PicPairOptions.onChange}). */
  onChange: (() => void) | undefined;
  #lastPending = false;

  /** Create the pair in its power-on state. */
  constructor(options: PicPairOptions = {}) {
    this.master = new Pic8259({ master: true, stats: this.stats });
    this.slave = new Pic8259({ master: false, stats: this.stats });
    this.onChange = options.onChange;
  }

  /** The master's INT pin: an unmasked request above every level in service. */
  get interruptPending(): boolean {
    return this.master.output;
  }

  /** ELCR of both chips, bit n = IRQ n. */
  get elcr(): number {
    return this.master.elcr | (this.slave.elcr << 8);
  }

  /**
   * Drive ISA IRQ `gsi` (0..15) to `level`. IRQ 2 (the cascade input) and
   * GSIs >= 16 are counted in `stats.ignoredLines`; non-integer or
   * negative values in `stats.badLines`.
   */
  setLevel(gsi: number, level: boolean): void {
    if (!Number.isInteger(gsi) || gsi < 0) {
      this.stats.badLines++;
      return;
    }
    if (gsi === I8259_CASCADE_IRQ || gsi >= I8259_PAIR_LINES) {
      this.stats.ignoredLines++;
      return;
    }
    if (gsi < 8) this.master.setLevel(gsi, level);
    else this.slave.setLevel(gsi - 8, level);
    this.#update();
  }

  /**
   * The INTA cycle (datasheet "Interrupt Sequence"): returns the vector of
   * the highest-priority request, moves it from IRR to ISR (unless AEOI)
   * on the master and, for IR2, on the slave. With no request it returns
   * the spurious vector: master base + 7, or slave base + 7 when the
   * master took IR2 but the slave has nothing (master ISR bit 2 is set).
   */
  acknowledge(): number {
    const irq = this.master.pendingIrq();
    let vector: number;
    if (irq < 0) {
      this.stats.spurious++;
      vector = this.master.vectorBase + I8259_SPURIOUS_IRQ;
    } else {
      this.master.acknowledgeIrq(irq);
      if (irq === I8259_CASCADE_IRQ) {
        const irq2 = this.slave.pendingIrq();
        if (irq2 >= 0) {
          this.slave.acknowledgeIrq(irq2);
          this.stats.acks++;
          vector = this.slave.vectorBase + irq2;
        } else {
          this.stats.spurious++;
          vector = this.slave.vectorBase + I8259_SPURIOUS_IRQ;
        }
      } else {
        this.stats.acks++;
        vector = this.master.vectorBase + irq;
      }
    }
    this.#update();
    return vector;
  }

  /** Guest byte read of `port`; undecoded ports read 0xFF (counted). */
  read(port: number): number {
    let v: number;
    switch (port) {
      case I8259_MASTER_COMMAND:
      case I8259_MASTER_DATA:
        v = this.master.read(port - I8259_MASTER_COMMAND);
        break;
      case I8259_SLAVE_COMMAND:
      case I8259_SLAVE_DATA:
        v = this.slave.read(port - I8259_SLAVE_COMMAND);
        break;
      case I8259_ELCR_MASTER:
        return this.master.elcr;
      case I8259_ELCR_SLAVE:
        return this.slave.elcr;
      default:
        this.stats.badAccesses++;
        return I8259_OPEN_BUS;
    }
    this.#update(); // a poll read acknowledges
    return v;
  }

  /** Guest byte write of `value` to `port`; undecoded ports are counted. */
  write(port: number, value: number): void {
    switch (port) {
      case I8259_MASTER_COMMAND:
      case I8259_MASTER_DATA:
        this.master.write(port - I8259_MASTER_COMMAND, value);
        break;
      case I8259_SLAVE_COMMAND:
      case I8259_SLAVE_DATA:
        this.slave.write(port - I8259_SLAVE_COMMAND, value);
        break;
      case I8259_ELCR_MASTER:
        this.master.writeElcr(value);
        break;
      case I8259_ELCR_SLAVE:
        this.slave.writeElcr(value);
        break;
      default:
        this.stats.badAccesses++;
        return;
    }
    this.#update();
  }

  /** Power-on state of both chips (ELCR 0; line levels and stats kept). */
  reset(): void {
    this.master.reset();
    this.slave.reset();
    this.#update();
  }

  /** Plain-data copy of the pair state. */
  snapshot(): PicPairState {
    return {
      version: 1,
      master: this.master.snapshot(),
      slave: this.slave.snapshot(),
    };
  }

  /**
   * Load a state produced by {@link PicPair.snapshot}. The whole state is
   * checked first: a malformed one throws TypeError and changes nothing.
   * `onChange` fires if the output differs from before.
   */
  restore(state: PicPairState): void {
    if (typeof state !== "object" || state === null) {
      throw new TypeError("pic state: not an object");
    }
    if (state.version !== 1) throw new TypeError("pic state: unknown version");
    validateChipState(state.master, I8259_ELCR_MASTER_MASK, "pic master");
    validateChipState(state.slave, I8259_ELCR_SLAVE_MASK, "pic slave");
    this.master.restore(state.master);
    this.slave.restore(state.slave);
    this.#update();
  }

  /**
   * Drive master IR2 from the slave's INT and report output changes. While
   * the slave's INT is high the master's edge latch is re-armed (KVM
   * `pic_update_irq`), so a request is not lost behind a master INTA.
   */
  #update(): void {
    if (this.slave.output) {
      this.master.setLevel(I8259_CASCADE_IRQ, false);
      this.master.setLevel(I8259_CASCADE_IRQ, true);
    } else {
      this.master.setLevel(I8259_CASCADE_IRQ, false);
    }
    const pending = this.master.output;
    if (pending !== this.#lastPending) {
      this.#lastPending = pending;
      this.onChange?.();
    }
  }
}
