/**
 * An Intel 82093AA I/O APIC (version 0x20, 24 pins) as a pure state
 * machine, for KVM split-irqchip mode: the LAPICs stay in the kernel and
 * this IOAPIC turns pin levels into MSI messages handed to an injected
 * {@link IoapicSink}.
 *
 * Sources: Intel 82093AA I/O Advanced Programmable Interrupt Controller
 * datasheet (order 290566), sections 3.0–3.2; Intel SDM Vol. 3A, 11.11
 * (MSI format); behaviour follows QEMU `hw/intc/ioapic.c` and Linux KVM
 * `arch/x86/kvm/ioapic.c` (Remote IRR, EOI retrigger, storm guard).
 *
 * Line levels passed to {@link Ioapic.setLevel} are logical ("asserted"),
 * as in QEMU and KVM: the polarity bit is stored and read back but never
 * inverts the level.
 *
 * @module
 */
import type { Clock, LogLevel, MsiMessage } from "../../bus/types.ts";

/** Number of redirection table entries (datasheet 3.2.2: 24 pins). */
export const IOAPIC_PINS = 24;
/** Default MMIO base (datasheet 3.0). */
export const IOAPIC_DEFAULT_BASE = 0xfec00000;
/** Length of the MMIO window claimed by the plugin. */
export const IOAPIC_MMIO_LENGTH = 0x100;

/** IOREGSEL, the register index (datasheet 3.1.1). */
export const IOAPIC_IOREGSEL = 0x00;
/** IOWIN, the data window for the selected register (datasheet 3.1.2). */
export const IOAPIC_IOWIN = 0x10;
/** EOI register, present from version 0x20 (QEMU `IOAPIC_EOI`). */
export const IOAPIC_EOI = 0x40;

/** Indirect register: IOAPICID (datasheet 3.2.1). */
export const IOAPIC_REG_ID = 0x00;
/** Indirect register: IOAPICVER (datasheet 3.2.2). */
export const IOAPIC_REG_VERSION = 0x01;
/** Indirect register: IOAPICARB (datasheet 3.2.3). */
export const IOAPIC_REG_ARB = 0x02;
/** First indirect register of the redirection table (datasheet 3.2.4). */
export const IOAPIC_REG_REDTBL = 0x10;

/** IOAPICID: writable ID field, bits 27:24 (datasheet 3.2.1). */
export const IOAPIC_ID_MASK = 0x0f000000;
/** IOAPICVER value: max redirection entry 23 (bits 23:16), version 0x20. */
export const IOAPIC_VERSION_VALUE = 0x00170020;

/** Redirection entry low half: vector, bits 7:0 (datasheet 3.2.4). */
export const REDIR_VECTOR_MASK = 0xff;
/** Redirection entry: delivery mode shift, bits 10:8. */
export const REDIR_DELIVERY_MODE_SHIFT = 8;
/** Redirection entry: delivery mode mask (after shift). */
export const REDIR_DELIVERY_MODE_MASK = 0x7;
/** Redirection entry: destination mode, bit 11 (1 = logical). */
export const REDIR_DEST_MODE = 1 << 11;
/** Redirection entry: delivery status, bit 12 (read-only). */
export const REDIR_DELIVERY_STATUS = 1 << 12;
/** Redirection entry: input pin polarity, bit 13 (1 = active low). */
export const REDIR_POLARITY = 1 << 13;
/** Redirection entry: Remote IRR, bit 14 (read-only). */
export const REDIR_REMOTE_IRR = 1 << 14;
/** Redirection entry: trigger mode, bit 15 (1 = level). */
export const REDIR_TRIGGER_LEVEL = 1 << 15;
/** Redirection entry: interrupt mask, bit 16. */
export const REDIR_MASKED = 1 << 16;
/** Read-only bits of the low half. */
export const REDIR_RO_BITS = REDIR_DELIVERY_STATUS | REDIR_REMOTE_IRR;
/** Redirection entry high half: destination, bits 63:56 (31:24 of hi). */
export const REDIR_DEST_SHIFT = 24;

/** Delivery mode 000: fixed (datasheet 3.2.4). */
export const DM_FIXED = 0;
/** Delivery mode 001: lowest priority. */
export const DM_LOWEST_PRIORITY = 1;
/** Delivery mode 010: SMI. */
export const DM_SMI = 2;
/** Delivery mode 100: NMI. */
export const DM_NMI = 4;
/** Delivery mode 101: INIT. */
export const DM_INIT = 5;
/** Delivery mode 111: ExtINT (needs an 8259; unsupported here). */
export const DM_EXTINT = 7;

/** MSI address base (SDM 11.11.1). */
export const MSI_ADDRESS_BASE = 0xfee00000;
/** MSI address: destination ID, bits 19:12 (SDM 11.11.1). */
export const MSI_ADDRESS_DEST_SHIFT = 12;
/** MSI address: redirection hint, bit 3 (SDM 11.11.1). */
export const MSI_ADDRESS_REDIRECTION_HINT = 1 << 3;
/** MSI address: destination mode, bit 2 (1 = logical; SDM 11.11.1). */
export const MSI_ADDRESS_DEST_MODE_LOGICAL = 1 << 2;
/** MSI data: delivery mode shift, bits 10:8 (SDM 11.11.2). */
export const MSI_DATA_DELIVERY_MODE_SHIFT = 8;
/** MSI data: level assert, bit 14 (SDM 11.11.2). */
export const MSI_DATA_LEVEL_ASSERT = 1 << 14;
/** MSI data: trigger mode, bit 15 (1 = level; SDM 11.11.2). */
export const MSI_DATA_TRIGGER_LEVEL = 1 << 15;

/** Lowest vector a fixed/lowest-priority interrupt may use (SDM 6.2). */
export const MIN_VALID_VECTOR = 0x10;

/**
 * Where the IOAPIC sends its interrupts.
 *
 * @example
 * ```ts
 * import type { IoapicSink } from "./ioapic.ts";
 * const sink: IoapicSink = {
 *   deliver(msg, pin) { console.log(pin, msg.address, msg.data); },
 *   routeChanged(pin, msg) { console.log("route", pin, msg); },
 * };
 * ```
 */
export interface IoapicSink {
  /** Deliver `msg` now (the host calls KVM_SIGNAL_MSI). */
  deliver(msg: MsiMessage, pin: number): void;
  /**
   * The guest rewrote the entry of `pin`; `msg` is the MSI it now maps to,
   * or null when masked or undeliverable (so the host can update the KVM
   * GSI route used by irqfd-driven lines). Called only on a change.
   */
  routeChanged?(pin: number, msg: MsiMessage | null): void;
  /**
   * A level-triggered interrupt on `pin` was retired (an EOI for its
   * vector, broadcast or through the EOI register). Lines driven by a host
   * irqfd bypass this device's Remote IRR; the host uses this to signal
   * their resample eventfd, as the in-kernel IOAPIC would.
   */
  levelEoi?(pin: number): void;
}

/**
 * Options of {@link Ioapic}.
 *
 * @example
 * ```ts
 * import type { IoapicOptions } from "./ioapic.ts";
 * const o: IoapicOptions = {
 *   sink: { deliver() {} },
 *   clock: { now: () => 0 },
 *   stormThreshold: 1000,
 * };
 * ```
 */
export interface IoapicOptions {
  /** Interrupt output. */
  sink: IoapicSink;
  /** Monotonic clock (ns) for the storm guard. */
  clock: Clock;
  /** Log sink; defaults to dropping messages. */
  log?: (level: LogLevel, msg: string) => void;
  /**
   * Back-to-back EOI retriggers of one pin allowed inside `stormWindowNs`
   * before further retriggers are deferred. Default 1000.
   */
  stormThreshold?: number;
  /** Storm detection window in ns. Default 10 ms. */
  stormWindowNs?: number;
  /** Delay applied to a deferred retrigger, ns. Default 100 µs. */
  stormDelayNs?: number;
}

/**
 * Counters of notable events; guest errors are counted, never thrown.
 *
 * @example
 * ```ts
 * import type { IoapicStats } from "./ioapic.ts";
 * function errors(s: IoapicStats): number {
 *   return s.invalidEntries + s.badAccesses + s.badPins;
 * }
 * ```
 */
export interface IoapicStats {
  /** Messages handed to the sink. */
  deliveries: number;
  /** Level assertions not delivered because Remote IRR was set. */
  coalesced: number;
  /** EOIs that cleared at least one Remote IRR. */
  eois: number;
  /** EOIs whose vector matched no pin with Remote IRR set. */
  spuriousEois: number;
  /** Deliveries caused by an EOI of a still-asserted line. */
  retriggers: number;
  /** Retriggers deferred by the storm guard. */
  deferred: number;
  /** Edges lost because the entry was masked. */
  maskedEdges: number;
  /** Delivery attempts refused: vector < 0x10 or reserved/unsupported mode. */
  invalidEntries: number;
  /** `setLevel`/`pulse` calls with a bad pin number. */
  badPins: number;
  /** MMIO accesses of the wrong size or offset. */
  badAccesses: number;
  /** IOWIN accesses to a register index that does not exist. */
  badRegisters: number;
}

/**
 * A decoded redirection table entry (datasheet 3.2.4).
 *
 * @example
 * ```ts
 * import { Ioapic } from "./ioapic.ts";
 * const io = new Ioapic({ sink: { deliver() {} }, clock: { now: () => 0 } });
 * console.log(io.entry(0).masked); // true after reset
 * ```
 */
export interface RedirectionEntry {
  /** Bits 7:0. */
  readonly vector: number;
  /** Bits 10:8. */
  readonly deliveryMode: number;
  /** Bit 11. */
  readonly logical: boolean;
  /** Bit 12 (set while a delivery is deferred by the storm guard). */
  readonly deliveryStatus: boolean;
  /** Bit 13. */
  readonly activeLow: boolean;
  /** Bit 14. */
  readonly remoteIrr: boolean;
  /** Bit 15. */
  readonly levelTriggered: boolean;
  /** Bit 16. */
  readonly masked: boolean;
  /** Bits 63:56. */
  readonly destination: number;
}

/**
 * Plain-data state of an {@link Ioapic} (JSON-serializable).
 *
 * @example
 * ```ts
 * import { Ioapic } from "./ioapic.ts";
 * const io = new Ioapic({ sink: { deliver() {} }, clock: { now: () => 0 } });
 * const s = io.snapshot();
 * console.log(s.entries.length); // 24
 * ```
 */
export interface IoapicState {
  /** Format version, currently 1. */
  readonly version: 1;
  /** IOAPICID register value. */
  readonly id: number;
  /** IOREGSEL value. */
  readonly ioregsel: number;
  /** Redirection entries as `[low, high]` 32-bit halves. */
  readonly entries: readonly (readonly [number, number])[];
  /** Asserted line levels. */
  readonly levels: readonly boolean[];
  /** Pins with a retrigger deferred by the storm guard. */
  readonly deferred: readonly boolean[];
}

const DEFAULT_STORM_THRESHOLD = 1000;
const DEFAULT_STORM_WINDOW_NS = 10_000_000;
const DEFAULT_STORM_DELAY_NS = 100_000;

function isValidPin(pin: number): boolean {
  return Number.isInteger(pin) && pin >= 0 && pin < IOAPIC_PINS;
}

/**
 * The MSI message a redirection entry maps to (QEMU `ioapic_entry_parse`:
 * destination in address bits 19:12, destination mode in bit 2; plus the
 * SDM's redirection hint for lowest priority and level-assert bit 14 for
 * level-triggered messages), or null when the entry cannot be delivered
 * (vector < 0x10 for fixed/lowest priority; reserved or ExtINT mode).
 * The mask bit is not considered.
 *
 * @example
 * ```ts
 * import { entryToMsi } from "./ioapic.ts";
 * const msg = entryToMsi(0x30, 0x01000000);
 * console.log(msg); // { address: 0xfee01000, data: 0x30 }
 * ```
 */
export function entryToMsi(low: number, high: number): MsiMessage | null {
  const vector = low & REDIR_VECTOR_MASK;
  const mode = (low >>> REDIR_DELIVERY_MODE_SHIFT) & REDIR_DELIVERY_MODE_MASK;
  switch (mode) {
    case DM_FIXED:
    case DM_LOWEST_PRIORITY:
      if (vector < MIN_VALID_VECTOR) return null;
      break;
    case DM_SMI:
    case DM_NMI:
    case DM_INIT:
      break;
    default: // 3 and 6 reserved; 7 ExtINT needs an 8259 we do not have.
      return null;
  }
  const dest = (high >>> REDIR_DEST_SHIFT) & 0xff;
  let address = MSI_ADDRESS_BASE + dest * (1 << MSI_ADDRESS_DEST_SHIFT);
  if (low & REDIR_DEST_MODE) address += MSI_ADDRESS_DEST_MODE_LOGICAL;
  if (mode === DM_LOWEST_PRIORITY) address += MSI_ADDRESS_REDIRECTION_HINT;
  let data = vector | (mode << MSI_DATA_DELIVERY_MODE_SHIFT);
  if (low & REDIR_TRIGGER_LEVEL) {
    data |= MSI_DATA_TRIGGER_LEVEL | MSI_DATA_LEVEL_ASSERT;
  }
  return { address, data };
}

function sameMsi(a: MsiMessage | null, b: MsiMessage | null): boolean {
  if (a === null || b === null) return a === b;
  return a.address === b.address && a.data === b.data;
}

/**
 * The IOAPIC state machine. MMIO handlers are synchronous; deliveries go
 * to the sink synchronously; deferred retriggers wait for the host to call
 * {@link Ioapic.service} at {@link Ioapic.nextDeadline}.
 *
 * @example
 * ```ts
 * import { Ioapic, IOAPIC_IOREGSEL, IOAPIC_IOWIN } from "./ioapic.ts";
 * const sent: number[] = [];
 * const io = new Ioapic({
 *   sink: { deliver: (m) => sent.push(m.data) },
 *   clock: { now: () => 0 },
 * });
 * io.write(IOAPIC_IOREGSEL, 4, 0x10 + 2 * 4); // entry 4, low half
 * io.write(IOAPIC_IOWIN, 4, 0x34); // vector 0x34, edge, unmasked
 * io.pulse(4);
 * console.log(sent); // [0x34]
 * ```
 */
export class Ioapic {
  readonly #sink: IoapicSink;
  readonly #clock: Clock;
  readonly #log: (level: LogLevel, msg: string) => void;
  readonly #stormThreshold: number;
  readonly #stormWindowNs: number;
  readonly #stormDelayNs: number;

  #id = 0;
  #ioregsel = 0;
  readonly #lo = new Uint32Array(IOAPIC_PINS);
  readonly #hi = new Uint32Array(IOAPIC_PINS);
  readonly #levels: boolean[] = new Array(IOAPIC_PINS).fill(false);
  readonly #routes: (MsiMessage | null)[] = new Array(IOAPIC_PINS).fill(null);
  readonly #invalidLogged: boolean[] = new Array(IOAPIC_PINS).fill(false);
  /** Route updates held back until the in-service level interrupt's EOI. */
  readonly #routePending: boolean[] = new Array(IOAPIC_PINS).fill(false);
  readonly #stormStart: number[] = new Array(IOAPIC_PINS).fill(0);
  readonly #stormCount: number[] = new Array(IOAPIC_PINS).fill(0);
  /** Deadline (ns) of a deferred retrigger per pin, or null. */
  readonly #deferredAt: (number | null)[] = new Array(IOAPIC_PINS).fill(null);

  /** Event counters. */
  readonly stats: IoapicStats = {
    deliveries: 0,
    coalesced: 0,
    eois: 0,
    spuriousEois: 0,
    retriggers: 0,
    deferred: 0,
    maskedEdges: 0,
    invalidEntries: 0,
    badPins: 0,
    badAccesses: 0,
    badRegisters: 0,
  };

  /** Create an IOAPIC in its power-on state (all entries masked). */
  constructor(options: IoapicOptions) {
    this.#sink = options.sink;
    this.#clock = options.clock;
    this.#log = options.log ?? (() => {});
    this.#stormThreshold = positiveOr(
      options.stormThreshold,
      DEFAULT_STORM_THRESHOLD,
    );
    this.#stormWindowNs = positiveOr(
      options.stormWindowNs,
      DEFAULT_STORM_WINDOW_NS,
    );
    this.#stormDelayNs = positiveOr(
      options.stormDelayNs,
      DEFAULT_STORM_DELAY_NS,
    );
    this.#lo.fill(REDIR_MASKED);
  }

  /** Return to the power-on state (levels and stats are kept). */
  reset(): void {
    this.#id = 0;
    this.#ioregsel = 0;
    this.#lo.fill(REDIR_MASKED);
    this.#hi.fill(0);
    this.#deferredAt.fill(null);
    this.#stormCount.fill(0);
    this.#invalidLogged.fill(false);
    this.#routePending.fill(false);
    for (let pin = 0; pin < IOAPIC_PINS; pin++) this.#updateRoute(pin);
  }

  // ---- MMIO -------------------------------------------------------------

  /**
   * Guest MMIO read of `size` bytes at `offset` from the base. Only
   * 4-byte accesses to IOREGSEL, IOWIN and EOI are valid; others read 0
   * and are counted in `stats.badAccesses`.
   */
  read(offset: number, size: number): number {
    if (size !== 4) {
      this.stats.badAccesses++;
      return 0;
    }
    switch (offset) {
      case IOAPIC_IOREGSEL:
        return this.#ioregsel;
      case IOAPIC_IOWIN:
        return this.#readRegister(this.#ioregsel);
      case IOAPIC_EOI:
        return 0;
      default:
        this.stats.badAccesses++;
        return 0;
    }
  }

  /**
   * Guest MMIO write of `size` bytes (`value` as an unsigned number) at
   * `offset`. Invalid sizes and offsets are counted no-ops.
   */
  write(offset: number, size: number, value: number): void {
    if (size !== 4) {
      this.stats.badAccesses++;
      return;
    }
    const v = value >>> 0;
    switch (offset) {
      case IOAPIC_IOREGSEL:
        this.#ioregsel = v & 0xff;
        return;
      case IOAPIC_IOWIN:
        this.#writeRegister(this.#ioregsel, v);
        return;
      case IOAPIC_EOI:
        this.eoi(v & 0xff);
        return;
      default:
        this.stats.badAccesses++;
    }
  }

  #readRegister(index: number): number {
    if (index === IOAPIC_REG_ID) return this.#id;
    if (index === IOAPIC_REG_VERSION) return IOAPIC_VERSION_VALUE;
    if (index === IOAPIC_REG_ARB) return this.#id;
    const pin = (index - IOAPIC_REG_REDTBL) >> 1;
    if (index >= IOAPIC_REG_REDTBL && pin < IOAPIC_PINS) {
      if (index & 1) return this.#hi[pin];
      let lo = this.#lo[pin];
      if (this.#deferredAt[pin] !== null) lo |= REDIR_DELIVERY_STATUS;
      return lo >>> 0;
    }
    this.stats.badRegisters++;
    return 0;
  }

  #writeRegister(index: number, value: number): void {
    if (index === IOAPIC_REG_ID) {
      this.#id = value & IOAPIC_ID_MASK;
      return;
    }
    if (index === IOAPIC_REG_VERSION || index === IOAPIC_REG_ARB) return;
    const pin = (index - IOAPIC_REG_REDTBL) >> 1;
    if (index < IOAPIC_REG_REDTBL || pin >= IOAPIC_PINS) {
      this.stats.badRegisters++;
      return;
    }
    if (index & 1) {
      this.#hi[pin] = value;
    } else {
      const old = this.#lo[pin];
      let lo = (value & ~REDIR_RO_BITS) | (old & REDIR_RO_BITS);
      // KVM/QEMU: an entry written as edge-triggered loses Remote IRR.
      if (!(lo & REDIR_TRIGGER_LEVEL)) {
        lo &= ~REDIR_REMOTE_IRR;
        this.#deferredAt[pin] = null;
      }
      this.#lo[pin] = lo >>> 0;
    }
    this.#invalidLogged[pin] = false;
    this.#updateRoute(pin);
    // KVM `ioapic_write_indirect`: an unmasked level entry whose line is
    // asserted and whose Remote IRR is clear is serviced now.
    const lo = this.#lo[pin];
    if (
      (lo & REDIR_TRIGGER_LEVEL) && !(lo & REDIR_MASKED) &&
      !(lo & REDIR_REMOTE_IRR) && this.#levels[pin] &&
      this.#deferredAt[pin] === null
    ) {
      this.#deliver(pin);
    }
  }

  #updateRoute(pin: number): void {
    const lo = this.#lo[pin];
    const msg = lo & REDIR_MASKED ? null : entryToMsi(lo, this.#hi[pin]);
    // A level interrupt still in service keeps its route until its EOI:
    // with KVM's split irqchip the route is what puts the vector in the
    // EOI-exit bitmap, and without it the guest's EOI would never reach us
    // (Remote IRR would stay set forever). The masked route is applied on
    // EOI.
    if (msg === null && this.#routes[pin] !== null && lo & REDIR_REMOTE_IRR) {
      this.#routePending[pin] = true;
      return;
    }
    this.#routePending[pin] = false;
    if (sameMsi(msg, this.#routes[pin])) return;
    this.#routes[pin] = msg;
    this.#sink.routeChanged?.(pin, msg);
  }

  // ---- lines and EOI ----------------------------------------------------

  /**
   * Drive the (logical, asserted-high) level of `pin`. An out-of-range pin
   * is a counted no-op. Edge entries fire on a rising edge while unmasked;
   * level entries fire while asserted, unmasked and Remote IRR is clear.
   */
  setLevel(pin: number, level: boolean): void {
    if (!isValidPin(pin)) {
      this.stats.badPins++;
      return;
    }
    const prev = this.#levels[pin];
    this.#levels[pin] = level;
    if (!level) return;
    const lo = this.#lo[pin];
    if (lo & REDIR_TRIGGER_LEVEL) {
      if (lo & REDIR_MASKED) return;
      if (lo & REDIR_REMOTE_IRR || this.#deferredAt[pin] !== null) {
        this.stats.coalesced++;
        return;
      }
      this.#deliver(pin);
    } else if (!prev) {
      if (lo & REDIR_MASKED) {
        this.stats.maskedEdges++;
        return;
      }
      this.#deliver(pin);
    }
  }

  /** Raise and lower `pin` (an edge). */
  pulse(pin: number): void {
    this.setLevel(pin, true);
    this.setLevel(pin, false);
  }

  /**
   * End of interrupt for `vector` (KVM_EXIT_IOAPIC_EOI or the EOI
   * register): clears Remote IRR of every level entry with that vector,
   * then re-delivers a still-asserted, unmasked line (subject to the storm
   * guard). Invalid vectors are ignored.
   */
  eoi(vector: number): void {
    if (!Number.isInteger(vector) || vector < 0 || vector > 0xff) {
      this.stats.spuriousEois++;
      return;
    }
    let matched = false;
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const lo = this.#lo[pin];
      if (
        (lo & REDIR_VECTOR_MASK) !== vector || !(lo & REDIR_TRIGGER_LEVEL)
      ) continue;
      this.#sink.levelEoi?.(pin);
      if (!(lo & REDIR_REMOTE_IRR)) continue;
      matched = true;
      this.#lo[pin] = (lo & ~REDIR_REMOTE_IRR) >>> 0;
      if (this.#routePending[pin]) this.#updateRoute(pin);
      if (lo & REDIR_MASKED || !this.#levels[pin]) {
        this.#stormCount[pin] = 0;
        continue;
      }
      this.#retrigger(pin);
    }
    if (matched) this.stats.eois++;
    else this.stats.spuriousEois++;
  }

  #retrigger(pin: number): void {
    const now = this.#clock.now();
    if (now - this.#stormStart[pin] > this.#stormWindowNs) {
      this.#stormStart[pin] = now;
      this.#stormCount[pin] = 0;
    }
    this.#stormCount[pin]++;
    if (this.#stormCount[pin] > this.#stormThreshold) {
      this.stats.deferred++;
      if (this.#stormCount[pin] === this.#stormThreshold + 1) {
        this.#log(
          "warn",
          `ioapic: interrupt storm on pin ${pin}, deferring retriggers`,
        );
      }
      this.#deferredAt[pin] = now + this.#stormDelayNs;
      return;
    }
    this.stats.retriggers++;
    this.#deliver(pin);
  }

  /**
   * Earliest time (ns, on the injected clock) at which {@link service}
   * has deferred work, or null when none is pending.
   */
  nextDeadline(): number | null {
    let next: number | null = null;
    for (const t of this.#deferredAt) {
      if (t !== null && (next === null || t < next)) next = t;
    }
    return next;
  }

  /**
   * Perform deferred retriggers due at `now` (ns). A deferred pin is
   * delivered only if it is still level-triggered, asserted, unmasked and
   * without Remote IRR.
   */
  service(now: number): void {
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const t = this.#deferredAt[pin];
      if (t === null || t > now) continue;
      this.#deferredAt[pin] = null;
      const lo = this.#lo[pin];
      if (
        (lo & REDIR_TRIGGER_LEVEL) && !(lo & REDIR_MASKED) &&
        !(lo & REDIR_REMOTE_IRR) && this.#levels[pin]
      ) {
        this.stats.retriggers++;
        this.#deliver(pin);
      }
    }
  }

  #deliver(pin: number): void {
    const lo = this.#lo[pin];
    const msg = entryToMsi(lo, this.#hi[pin]);
    if (msg === null) {
      this.stats.invalidEntries++;
      if (!this.#invalidLogged[pin]) {
        this.#invalidLogged[pin] = true;
        this.#log(
          "warn",
          `ioapic: pin ${pin} entry 0x${
            lo.toString(16)
          } has an invalid vector or delivery mode; not delivered`,
        );
      }
      return;
    }
    if (lo & REDIR_TRIGGER_LEVEL) {
      this.#lo[pin] = (lo | REDIR_REMOTE_IRR) >>> 0;
    }
    this.stats.deliveries++;
    this.#sink.deliver(msg, pin);
  }

  // ---- introspection ----------------------------------------------------

  /** Current asserted level of `pin` (false for a bad pin). */
  level(pin: number): boolean {
    return isValidPin(pin) && this.#levels[pin];
  }

  /** Decoded redirection entry of `pin`; throws RangeError on a bad pin. */
  entry(pin: number): RedirectionEntry {
    if (!isValidPin(pin)) throw new RangeError(`bad IOAPIC pin ${pin}`);
    const lo = this.#lo[pin];
    return {
      vector: lo & REDIR_VECTOR_MASK,
      deliveryMode: (lo >>> REDIR_DELIVERY_MODE_SHIFT) &
        REDIR_DELIVERY_MODE_MASK,
      logical: (lo & REDIR_DEST_MODE) !== 0,
      deliveryStatus: this.#deferredAt[pin] !== null,
      activeLow: (lo & REDIR_POLARITY) !== 0,
      remoteIrr: (lo & REDIR_REMOTE_IRR) !== 0,
      levelTriggered: (lo & REDIR_TRIGGER_LEVEL) !== 0,
      masked: (lo & REDIR_MASKED) !== 0,
      destination: this.#hi[pin] >>> REDIR_DEST_SHIFT,
    };
  }

  /** The MSI route of `pin` as last reported to `routeChanged`. */
  route(pin: number): MsiMessage | null {
    return isValidPin(pin) ? this.#routes[pin] : null;
  }

  /** Bit n set when pin n is level-triggered with Remote IRR set. */
  remoteIrrPins(): number {
    let bits = 0;
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const lo = this.#lo[pin];
      if ((lo & REDIR_TRIGGER_LEVEL) && (lo & REDIR_REMOTE_IRR)) {
        bits |= 1 << pin;
      }
    }
    return bits;
  }

  /** Trigger mode register: bit n set when pin n is level-triggered. */
  tmr(): number {
    let bits = 0;
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      if (this.#lo[pin] & REDIR_TRIGGER_LEVEL) bits |= 1 << pin;
    }
    return bits;
  }

  // ---- snapshot ---------------------------------------------------------

  /** Plain-data copy of the device state. */
  snapshot(): IoapicState {
    const entries: [number, number][] = [];
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      entries.push([this.#lo[pin], this.#hi[pin]]);
    }
    return {
      version: 1,
      id: this.#id,
      ioregsel: this.#ioregsel,
      entries,
      levels: [...this.#levels],
      deferred: this.#deferredAt.map((t) => t !== null),
    };
  }

  /**
   * Load a state produced by {@link snapshot}. The whole state is checked
   * first: a malformed state throws TypeError and changes nothing.
   * Deferred retriggers become due immediately. Every pin's route is
   * reported to `routeChanged` so the host can resynchronize.
   */
  restore(state: IoapicState): void {
    validateState(state);
    this.#id = state.id & IOAPIC_ID_MASK;
    this.#ioregsel = state.ioregsel;
    const now = this.#clock.now();
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const [lo, hi] = state.entries[pin];
      this.#lo[pin] = (lo & ~REDIR_DELIVERY_STATUS) >>> 0;
      this.#hi[pin] = hi >>> 0;
      this.#levels[pin] = state.levels[pin];
      this.#deferredAt[pin] = state.deferred[pin] ? now : null;
      this.#stormCount[pin] = 0;
      this.#invalidLogged[pin] = false;
      const route = lo & REDIR_MASKED ? null : entryToMsi(lo, hi);
      this.#routes[pin] = route;
      this.#sink.routeChanged?.(pin, route);
    }
  }
}

function positiveOr(v: number | undefined, dflt: number): number {
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : dflt;
}

function isU32(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 &&
    v <= 0xffffffff;
}

function boolArray(v: unknown, what: string): void {
  if (
    !Array.isArray(v) || v.length !== IOAPIC_PINS ||
    !v.every((b) => typeof b === "boolean")
  ) {
    throw new TypeError(
      `ioapic state: ${what} must be ${IOAPIC_PINS} booleans`,
    );
  }
}

function validateState(state: unknown): asserts state is IoapicState {
  if (typeof state !== "object" || state === null) {
    throw new TypeError("ioapic state: not an object");
  }
  const s = state as Record<string, unknown>;
  if (s.version !== 1) throw new TypeError("ioapic state: unknown version");
  if (!isU32(s.id) || (s.id & ~IOAPIC_ID_MASK) !== 0) {
    throw new TypeError("ioapic state: bad id");
  }
  if (!isU32(s.ioregsel) || s.ioregsel > 0xff) {
    throw new TypeError("ioapic state: bad ioregsel");
  }
  const e = s.entries;
  if (
    !Array.isArray(e) || e.length !== IOAPIC_PINS ||
    !e.every((x) =>
      Array.isArray(x) && x.length === 2 && isU32(x[0]) && isU32(x[1])
    )
  ) {
    throw new TypeError(
      `ioapic state: entries must be ${IOAPIC_PINS} [u32, u32] pairs`,
    );
  }
  boolArray(s.levels, "levels");
  boolArray(s.deferred, "deferred");
}
