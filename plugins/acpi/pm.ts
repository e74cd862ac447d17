/** The ACPI PM block's state (`AcpiPm.snapshot`): format version 1. */
export interface AcpiPmState extends DeviceState {
  /** Format version. */
  version: 1;
  /** PM1_STS. */
  sts: number;
  /** PM1_EN. */
  en: number;
  /** PM1_CNT. */
  cnt: number;
  /** PM timer ticks at the snapshot. */
  ticks: number;
  /** Timer value at which the next bit-31 toggle sets TMR_STS. */
  nextCarry: number;
}

/**
 * ACPI fixed-hardware power management registers (ACPI 6.4, 4.8.3): the
 * PM1a event block (PM1_STS, PM1_EN), the PM1a control block (SCI_EN,
 * SLP_TYP, SLP_EN) and the 32-bit 3.579545 MHz PM timer. A pure state
 * machine over register reads/writes and an injected clock: the timer is
 * computed from the clock when read, `TMR_STS` from the timer's bit-31
 * toggles, and the SCI level from `STS & EN`.
 *
 * @module
 */
import { stateFields } from "../../bus/state.ts";
import type { Clock, DeviceState } from "../../bus/types.ts";

/** PM timer frequency in Hz. */
export const PM_TIMER_HZ = 3_579_545;

/** PM1_STS / PM1_EN bits. */
export const PM1 = {
  /** Timer carry (bit 31 of the 32-bit timer toggled). */
  TMR: 1 << 0,
  /** Global (BIOS lock release). */
  GBL: 1 << 5,
  /** Power button. */
  PWRBTN: 1 << 8,
  /** RTC alarm. */
  RTC: 1 << 10,
  /** Wake (status only). */
  WAK: 1 << 15,
} as const;

/** PM1_CNT bits. */
export const PM1_CNT = {
  SCI_EN: 1 << 0,
  SLP_TYP_SHIFT: 10,
  SLP_TYP_MASK: 0x7 << 10,
  SLP_EN: 1 << 13,
} as const;

const STS_WRITABLE = PM1.TMR | PM1.GBL | PM1.PWRBTN | PM1.RTC | PM1.WAK;
const EN_WRITABLE = PM1.TMR | PM1.GBL | PM1.PWRBTN | PM1.RTC;

/** PM timer ticks in `ns` nanoseconds, exact for any safe `ns`. */
export function pmTicks(ns: number): number {
  const s = Math.floor(ns / 1e9);
  const r = ns - s * 1e9;
  return s * PM_TIMER_HZ + Math.floor(r * PM_TIMER_HZ / 1e9);
}

/** Nanoseconds until tick `ticks` (the first instant the timer reaches it). */
export function pmTicksToNs(ticks: number): number {
  const s = Math.floor(ticks / PM_TIMER_HZ);
  const r = ticks - s * PM_TIMER_HZ;
  return s * 1e9 + Math.ceil(r * 1e9 / PM_TIMER_HZ);
}

/** Options of {@link AcpiPm}. */
export interface AcpiPmOptions {
  /** Clock (ns). */
  readonly clock: Clock;
  /** Drive the SCI line. */
  readonly sci: (level: boolean) => void;
  /** The guest wrote SLP_EN with this SLP_TYP. */
  readonly sleep: (slpTyp: number) => void;
}

/** Counters. */
export interface AcpiPmStats {
  /** SLP_EN writes. */
  sleeps: number;
  /** Accesses of a width or offset the block does not have. */
  badAccesses: number;
}

/**
 * The PM1a blocks and the PM timer.
 *
 * @example
 * ```ts
 * import { AcpiPm } from "./pm.ts";
 * let t = 0;
 * const pm = new AcpiPm({ clock: { now: () => t }, sci: () => {}, sleep: () => {} });
 * t = 1e9;
 * console.log(pm.readTimer()); // 3579545
 * ```
 */
export class AcpiPm {
  readonly #clock: Clock;
  readonly #sci: (level: boolean) => void;
  readonly #sleep: (slpTyp: number) => void;
  #t0: number;
  #sts = 0;
  #en = 0;
  #cnt: number = PM1_CNT.SCI_EN;
  /** Timer value at which the next bit-31 toggle sets TMR_STS. */
  #nextCarry = 2 ** 31;
  #sciLevel = false;
  /** Counters. */
  readonly stats: AcpiPmStats = { sleeps: 0, badAccesses: 0 };

  /** Create the device at power-on state (timer 0 now). */
  constructor(options: AcpiPmOptions) {
    this.#clock = options.clock;
    this.#sci = options.sci;
    this.#sleep = options.sleep;
    this.#t0 = options.clock.now();
  }

  /** Power-on state. */
  reset(): void {
    this.#t0 = this.#clock.now();
    this.#sts = 0;
    this.#en = 0;
    this.#cnt = PM1_CNT.SCI_EN;
    this.#nextCarry = 2 ** 31;
    this.#update();
  }

  /** The device state (the PM timer as it stands now). */
  snapshot(): AcpiPmState {
    return {
      version: 1,
      sts: this.#sts,
      en: this.#en,
      cnt: this.#cnt,
      ticks: this.#ticks(),
      nextCarry: this.#nextCarry,
    };
  }

  /**
   * Load a state from {@link AcpiPm.snapshot}: the PM timer continues from
   * the saved value. A malformed state throws `TypeError`, changing
   * nothing.
   */
  restore(state: AcpiPmState): void {
    const f = stateFields(state, 1, "acpi-pm");
    const sts = f.int("sts", 0, 0xffff);
    const en = f.int("en", 0, 0xffff);
    const cnt = f.int("cnt", 0, 0xffff);
    const ticks = f.int("ticks", 0, Number.MAX_SAFE_INTEGER);
    const nextCarry = f.int("nextCarry", 0, Number.MAX_SAFE_INTEGER);
    this.#sts = sts;
    this.#en = en;
    this.#cnt = cnt;
    this.#nextCarry = nextCarry;
    // The timer runs on from `ticks`: move its origin back by that long.
    this.#t0 = this.#clock.now() - pmTicksToNs(ticks);
    this.#update();
  }

  #ticks(now = this.#clock.now()): number {
    return pmTicks(Math.max(0, now - this.#t0));
  }

  /** The 32-bit PM timer now. */
  readTimer(): number {
    this.service(this.#clock.now());
    return this.#ticks() % 2 ** 32;
  }

  /** PM1_STS. */
  readStatus(): number {
    this.service(this.#clock.now());
    return this.#sts;
  }

  /** PM1_EN. */
  readEnable(): number {
    return this.#en;
  }

  /** PM1_CNT (SLP_EN reads 0). */
  readControl(): number {
    return this.#cnt;
  }

  /** PM1_STS write: 1 clears. */
  writeStatus(v: number): void {
    this.service(this.#clock.now());
    this.#sts &= ~(v & STS_WRITABLE);
    this.#update();
  }

  /** PM1_EN write. */
  writeEnable(v: number): void {
    this.#en = v & EN_WRITABLE;
    this.#update();
  }

  /** PM1_CNT write: SLP_EN enters the sleep state SLP_TYP; SCI_EN stays set. */
  writeControl(v: number): void {
    this.#cnt = (v & ~PM1_CNT.SLP_EN) | PM1_CNT.SCI_EN;
    if (v & PM1_CNT.SLP_EN) {
      this.stats.sleeps++;
      this.#sts |= PM1.WAK; // set on wake; the host resumes the guest awake
      this.#sleep((v & PM1_CNT.SLP_TYP_MASK) >> PM1_CNT.SLP_TYP_SHIFT);
    }
  }

  /** Bring TMR_STS up to date; returns the next carry's time (ns) if TMR_EN. */
  service(now: number): number | null {
    const t = this.#ticks(now);
    if (t >= this.#nextCarry) {
      this.#sts |= PM1.TMR;
      this.#nextCarry = (Math.floor(t / 2 ** 31) + 1) * 2 ** 31;
      this.#update();
    }
    return (this.#en & PM1.TMR) !== 0
      ? this.#t0 + pmTicksToNs(this.#nextCarry)
      : null;
  }

  #update(): void {
    const level = (this.#sts & this.#en) !== 0 &&
      (this.#cnt & PM1_CNT.SCI_EN) !== 0;
    if (level !== this.#sciLevel) {
      this.#sciLevel = level;
      this.#sci(level);
    }
  }

  /** True while the SCI is asserted. */
  get sciLevel(): boolean {
    return this.#sciLevel;
  }
}
