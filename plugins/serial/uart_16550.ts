/**
 * A 16550A UART as a pure state machine (vm-superio style): register reads
 * and writes in, output bytes and interrupt line levels out.
 *
 * Sources: National Semiconductor PC16550D datasheet (register table 2,
 * sections 8.1–8.10); behaviour follows QEMU `hw/char/serial.c` and
 * rust-vmm `vm-superio` `serial.rs`. Output is synchronous, so the
 * transmitter is always empty (LSR THRE|TEMT). The interrupt output is not
 * gated by MCR OUT2 (as in QEMU and vm-superio).
 *
 * @module
 */
import type { LogLevel } from "../../bus/types.ts";
import { stateFields } from "../../bus/state.ts";

/** Number of I/O ports of the UART. */
export const UART_PORTS = 8;

/** Offset 0: RBR (read) / THR (write); DLL when LCR.DLAB (table 2). */
export const UART_RBR_THR = 0;
/** Offset 1: IER; DLM when LCR.DLAB (8.5). */
export const UART_IER = 1;
/** Offset 2: IIR (read) / FCR (write) (8.6, 8.7). */
export const UART_IIR_FCR = 2;
/** Offset 3: LCR (8.2). */
export const UART_LCR = 3;
/** Offset 4: MCR (8.8). */
export const UART_MCR = 4;
/** Offset 5: LSR (8.3). */
export const UART_LSR = 5;
/** Offset 6: MSR (8.9). */
export const UART_MSR = 6;
/** Offset 7: SCR (8.10). */
export const UART_SCR = 7;

/** IER bit 0: received data available interrupt (8.5). */
export const IER_RDA = 0x01;
/** IER bit 1: THR empty interrupt. */
export const IER_THRE = 0x02;
/** IER bit 2: receiver line status interrupt. */
export const IER_RLS = 0x04;
/** IER bit 3: modem status interrupt. */
export const IER_MSI = 0x08;
/** IER bits 7:4 are always zero. */
export const IER_MASK = 0x0f;

/** IIR: no interrupt pending (8.6, table 4). */
export const IIR_NONE = 0x01;
/** IIR: modem status (priority 4). */
export const IIR_MSI = 0x00;
/** IIR: THR empty (priority 3). */
export const IIR_THRE = 0x02;
/** IIR: received data available (priority 2). */
export const IIR_RDA = 0x04;
/** IIR: receiver line status (priority 1). */
export const IIR_RLS = 0x06;
/** IIR bits 7:6: FIFOs enabled. */
export const IIR_FIFO_ENABLED = 0xc0;

/** FCR bit 0: enable FIFOs (8.7). */
export const FCR_ENABLE = 0x01;
/** FCR bit 1: clear receive FIFO. */
export const FCR_CLEAR_RX = 0x02;
/** FCR bit 2: clear transmit FIFO. */
export const FCR_CLEAR_TX = 0x04;

/** LCR bit 7: divisor latch access (8.2). */
export const LCR_DLAB = 0x80;

/** MCR bit 0: DTR (8.8). */
export const MCR_DTR = 0x01;
/** MCR bit 1: RTS. */
export const MCR_RTS = 0x02;
/** MCR bit 2: OUT1. */
export const MCR_OUT1 = 0x04;
/** MCR bit 3: OUT2. */
export const MCR_OUT2 = 0x08;
/** MCR bit 4: loopback. */
export const MCR_LOOP = 0x10;
/** MCR bits 7:5 are always zero. */
export const MCR_MASK = 0x1f;

/** LSR bit 0: data ready (8.3). */
export const LSR_DR = 0x01;
/** LSR bit 1: overrun error. */
export const LSR_OE = 0x02;
/** LSR bit 5: THR empty. */
export const LSR_THRE = 0x20;
/** LSR bit 6: transmitter empty. */
export const LSR_TEMT = 0x40;

/** MSR bit 0: delta CTS (8.9). */
export const MSR_DCTS = 0x01;
/** MSR bit 1: delta DSR. */
export const MSR_DDSR = 0x02;
/** MSR bit 2: trailing edge ring indicator. */
export const MSR_TERI = 0x04;
/** MSR bit 3: delta DCD. */
export const MSR_DDCD = 0x08;
/** MSR bit 4: CTS. */
export const MSR_CTS = 0x10;
/** MSR bit 5: DSR. */
export const MSR_DSR = 0x20;
/** MSR bit 6: RI. */
export const MSR_RI = 0x40;
/** MSR bit 7: DCD. */
export const MSR_DCD = 0x80;
/** MSR delta bits 3:0. */
export const MSR_DELTAS = 0x0f;

/** Receive FIFO depth accepted by {@link Uart16550.enqueueInput}. */
export const UART_INPUT_CAPACITY = 64;

/** Power-on LCR: 8 data bits, 1 stop bit, no parity (vm-superio). */
const DEFAULT_LCR = 0x03;
/** Power-on MCR: OUT2 (vm-superio). */
const DEFAULT_MCR = MCR_OUT2;
/** Power-on MSR: CTS, DSR and DCD asserted (vm-superio). */
const DEFAULT_MSR = MSR_CTS | MSR_DSR | MSR_DCD;
/** Power-on divisor 12: 9600 baud from 1.8432 MHz. */
const DEFAULT_DIVISOR = 12;

/**
 * Options of {@link Uart16550}.
 *
 * @example
 * ```ts
 * import type { UartOptions } from "./uart_16550.ts";
 * const o: UartOptions = { output: (b) => console.log(b) };
 * ```
 */
export interface UartOptions {
  /** Called with each transmitted byte (not in loopback mode). */
  output?: (byte: number) => void;
  /** Called with the new interrupt line level whenever it changes. */
  interrupt?: (level: boolean) => void;
  /** Log sink. */
  log?: (level: LogLevel, msg: string) => void;
  /** Receive queue capacity; default 64. */
  inputCapacity?: number;
}

/**
 * Counters.
 *
 * @example
 * ```ts
 * import { Uart16550 } from "./uart_16550.ts";
 * const u = new Uart16550();
 * console.log(u.stats.transmitted); // 0
 * ```
 */
export interface UartStats {
  /** Bytes sent to `output`. */
  transmitted: number;
  /** Bytes accepted into the receive queue. */
  received: number;
  /** Input bytes dropped because the receive queue was full. */
  overruns: number;
  /** Accesses with a bad offset or size. */
  badAccesses: number;
}

/**
 * Plain-data state of a {@link Uart16550} (JSON-serialisable), like
 * vm-superio's `SerialState`.
 *
 * @example
 * ```ts
 * import { Uart16550 } from "./uart_16550.ts";
 * console.log(new Uart16550().snapshot().divisor); // 12
 * ```
 */
export interface UartState {
  /** Format version, currently 1. */
  readonly version: 1;
  /** Interrupt enable register. */
  readonly ier: number;
  /** Line control register. */
  readonly lcr: number;
  /** Modem control register. */
  readonly mcr: number;
  /** Sticky line-status error bits. */
  readonly lsrErrors: number;
  /** Modem status register. */
  readonly msr: number;
  /** Scratch register. */
  readonly scr: number;
  /** Baud divisor. */
  readonly divisor: number;
  /** FIFOs enabled (FCR bit 0). */
  readonly fifoEnabled: boolean;
  /** A THR-empty interrupt is pending. */
  readonly threPending: boolean;
  /** Receive queue, oldest first. */
  readonly rx: readonly number[];
}

/**
 * The UART. Offsets are relative to the base port (0..7).
 *
 * @example
 * ```ts
 * import { Uart16550, UART_RBR_THR } from "./uart_16550.ts";
 * const out: number[] = [];
 * const uart = new Uart16550({ output: (b) => out.push(b) });
 * uart.write(UART_RBR_THR, 0x41);
 * console.log(out); // [0x41]
 * ```
 */
export class Uart16550 {
  readonly #output: (byte: number) => void;
  readonly #interrupt: (level: boolean) => void;
  readonly #log: (level: LogLevel, msg: string) => void;
  readonly #capacity: number;

  #ier = 0;
  #lcr = DEFAULT_LCR;
  #mcr = DEFAULT_MCR;
  #lsrErrors = 0;
  #msr = DEFAULT_MSR;
  #scr = 0;
  #divisor = DEFAULT_DIVISOR;
  #fifoEnabled = false;
  #threPending = false;
  #rx: number[] = [];
  #irqLevel = false;
  #overrunLogged = false;

  /** Counters. */
  readonly stats: UartStats = {
    transmitted: 0,
    received: 0,
    overruns: 0,
    badAccesses: 0,
  };

  /** Create a UART in its power-on state. */
  constructor(options: UartOptions = {}) {
    this.#output = options.output ?? (() => {});
    this.#interrupt = options.interrupt ?? (() => {});
    this.#log = options.log ?? (() => {});
    const cap = options.inputCapacity;
    this.#capacity = cap !== undefined && Number.isInteger(cap) && cap > 0
      ? cap
      : UART_INPUT_CAPACITY;
  }

  /** Current interrupt line level. */
  get interruptLevel(): boolean {
    return this.#irqLevel;
  }

  /** Bytes waiting in the receive queue. */
  get pendingInput(): number {
    return this.#rx.length;
  }

  /** Bytes the receive queue takes now without an overrun. */
  get inputRoom(): number {
    return this.#capacity - this.#rx.length;
  }

  /** The 16-bit baud divisor (DLM:DLL). */
  get divisor(): number {
    return this.#divisor;
  }

  /** Return to the power-on state (the receive queue is emptied). */
  reset(): void {
    this.#ier = 0;
    this.#lcr = DEFAULT_LCR;
    this.#mcr = DEFAULT_MCR;
    this.#lsrErrors = 0;
    this.#msr = DEFAULT_MSR;
    this.#scr = 0;
    this.#divisor = DEFAULT_DIVISOR;
    this.#fifoEnabled = false;
    this.#threPending = false;
    this.#rx = [];
    this.#update();
  }

  /**
   * Queue bytes from the host side (keyboard, socket). Bytes beyond the
   * queue capacity are dropped, counted and flag an overrun (LSR.OE).
   * Returns the number of bytes accepted.
   */
  enqueueInput(bytes: Uint8Array | readonly number[]): number {
    let accepted = 0;
    for (const b of bytes) {
      if (this.#receive(b & 0xff)) accepted++;
    }
    this.#update();
    return accepted;
  }

  #receive(byte: number): boolean {
    if (this.#rx.length >= this.#capacity) {
      this.stats.overruns++;
      this.#lsrErrors |= LSR_OE;
      if (!this.#overrunLogged) {
        this.#overrunLogged = true;
        this.#log("warn", "uart: receive queue full, input dropped");
      }
      return false;
    }
    this.#rx.push(byte);
    this.stats.received++;
    return true;
  }

  /** Guest read of one byte at `offset` (0..7); bad offsets read 0xFF. */
  read(offset: number): number {
    const dlab = (this.#lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case UART_RBR_THR: {
        if (dlab) return this.#divisor & 0xff;
        const b = this.#rx.shift() ?? 0;
        this.#update();
        return b;
      }
      case UART_IER:
        return dlab ? this.#divisor >>> 8 : this.#ier;
      case UART_IIR_FCR: {
        const iir = this.#iir();
        // Reading IIR while THRE is the reported source clears it (8.6).
        if (iir === IIR_THRE) {
          this.#threPending = false;
          this.#update();
        }
        return iir | (this.#fifoEnabled ? IIR_FIFO_ENABLED : 0);
      }
      case UART_LCR:
        return this.#lcr;
      case UART_MCR:
        return this.#mcr;
      case UART_LSR: {
        const lsr = this.#lsr();
        this.#lsrErrors = 0; // error bits clear on read (8.3)
        this.#update();
        return lsr;
      }
      case UART_MSR: {
        const msr = this.#modemStatus();
        this.#msr &= ~MSR_DELTAS; // deltas clear on read (8.9)
        this.#update();
        return msr;
      }
      case UART_SCR:
        return this.#scr;
      default:
        this.stats.badAccesses++;
        return 0xff;
    }
  }

  /** Guest write of one byte at `offset` (0..7); bad offsets are ignored. */
  write(offset: number, value: number): void {
    const v = value & 0xff;
    const dlab = (this.#lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case UART_RBR_THR:
        if (dlab) {
          this.#divisor = (this.#divisor & 0xff00) | v;
          return;
        }
        if (this.#mcr & MCR_LOOP) {
          this.#receive(v);
        } else {
          this.stats.transmitted++;
          this.#output(v);
        }
        // Transmission is instant: THR is empty again at once.
        this.#threPending = true;
        break;
      case UART_IER:
        if (dlab) {
          this.#divisor = (this.#divisor & 0xff) | (v << 8);
          return;
        }
        // Enabling THRE with an empty THR raises it (QEMU serial.c).
        if ((v & IER_THRE) && !(this.#ier & IER_THRE)) {
          this.#threPending = true;
        }
        this.#ier = v & IER_MASK;
        break;
      case UART_IIR_FCR:
        if (v & FCR_CLEAR_RX) this.#rx = [];
        this.#fifoEnabled = (v & FCR_ENABLE) !== 0;
        break;
      case UART_LCR:
        this.#lcr = v;
        return;
      case UART_MCR: {
        const before = this.#modemStatus();
        this.#mcr = v & MCR_MASK;
        this.#noteModemChange(before, this.#modemStatus());
        break;
      }
      case UART_LSR:
      case UART_MSR:
        return; // read-only in practice; writes ignored
      case UART_SCR:
        this.#scr = v;
        return;
      default:
        this.stats.badAccesses++;
        return;
    }
    this.#update();
  }

  /** MSR status bits, looped back from MCR in loopback mode (8.8). */
  #modemStatus(): number {
    if (!(this.#mcr & MCR_LOOP)) return this.#msr;
    let s = this.#msr & MSR_DELTAS;
    if (this.#mcr & MCR_RTS) s |= MSR_CTS;
    if (this.#mcr & MCR_DTR) s |= MSR_DSR;
    if (this.#mcr & MCR_OUT1) s |= MSR_RI;
    if (this.#mcr & MCR_OUT2) s |= MSR_DCD;
    return s;
  }

  #noteModemChange(before: number, after: number): void {
    const changed = before ^ after;
    let d = 0;
    if (changed & MSR_CTS) d |= MSR_DCTS;
    if (changed & MSR_DSR) d |= MSR_DDSR;
    if ((before & MSR_RI) && !(after & MSR_RI)) d |= MSR_TERI;
    if (changed & MSR_DCD) d |= MSR_DDCD;
    this.#msr |= d;
  }

  #lsr(): number {
    return LSR_THRE | LSR_TEMT | this.#lsrErrors |
      (this.#rx.length > 0 ? LSR_DR : 0);
  }

  /** Highest-priority pending interrupt (8.6, table 4). */
  /** Plain-data copy of the register state and receive queue. */
  snapshot(): UartState {
    return {
      version: 1,
      ier: this.#ier,
      lcr: this.#lcr,
      mcr: this.#mcr,
      lsrErrors: this.#lsrErrors,
      msr: this.#msr,
      scr: this.#scr,
      divisor: this.#divisor,
      fifoEnabled: this.#fifoEnabled,
      threPending: this.#threPending,
      rx: [...this.#rx],
    };
  }

  /**
   * Load a state from {@link snapshot}. A malformed state (or one whose
   * queue exceeds this UART's capacity) throws TypeError and changes
   * nothing; the interrupt line follows the restored registers.
   */
  restore(state: UartState): void {
    const f = stateFields(state, 1, "uart");
    const v = {
      ier: f.int("ier", 0, IER_MASK),
      lcr: f.int("lcr", 0, 0xff),
      mcr: f.int("mcr", 0, MCR_MASK),
      lsrErrors: f.int("lsrErrors", 0, 0xff),
      msr: f.int("msr", 0, 0xff),
      scr: f.int("scr", 0, 0xff),
      divisor: f.int("divisor", 0, 0xffff),
      fifoEnabled: f.bool("fifoEnabled"),
      threPending: f.bool("threPending"),
      rx: f.ints("rx", 0, 0xff),
    };
    if (v.rx.length > this.#capacity) {
      throw new TypeError(
        `uart state: rx holds ${v.rx.length} bytes, capacity ${this.#capacity}`,
      );
    }
    this.#ier = v.ier;
    this.#lcr = v.lcr;
    this.#mcr = v.mcr;
    this.#lsrErrors = v.lsrErrors;
    this.#msr = v.msr;
    this.#scr = v.scr;
    this.#divisor = v.divisor;
    this.#fifoEnabled = v.fifoEnabled;
    this.#threPending = v.threPending;
    this.#rx = v.rx;
    this.#update();
  }

  #iir(): number {
    if ((this.#ier & IER_RLS) && (this.#lsrErrors & LSR_OE)) return IIR_RLS;
    if ((this.#ier & IER_RDA) && this.#rx.length > 0) return IIR_RDA;
    if ((this.#ier & IER_THRE) && this.#threPending) return IIR_THRE;
    if ((this.#ier & IER_MSI) && (this.#msr & MSR_DELTAS)) return IIR_MSI;
    return IIR_NONE;
  }

  #update(): void {
    const level = this.#iir() !== IIR_NONE;
    if (level !== this.#irqLevel) {
      this.#irqLevel = level;
      this.#interrupt(level);
    }
  }
}
