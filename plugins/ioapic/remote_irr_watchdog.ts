/**
 * A Remote-IRR watchdog for the split-irqchip IOAPIC on hosts that lose
 * `KVM_EXIT_IOAPIC_EOI` (the nested KVM this project runs on: a level
 * interrupt raised under `cli`, then taken after `sti; hlt`, is handled and
 * EOI'd in the LAPIC, but the EOI exit never comes, so Remote IRR stays set
 * and the line can never interrupt again).
 *
 * Every `periodNs` while some level pin has Remote IRR set, it asks the
 * LAPIC whether the pin's vector is in service (ISR) or requested (IRR).
 * A pin found idle in the LAPIC at two consecutive checks with the same
 * vector and no IOAPIC delivery in between has lost its EOI: the watchdog completes it (`Ioapic.eoi`, which
 * re-delivers a line still asserted) and counts it. A vector in service or
 * pending is never touched, so a slow handler is never cut short. Driven
 * from the plugin's `service()` (the VM's wake-up alarm), never a JS timer;
 * with no level interrupt outstanding it schedules nothing.
 *
 * @module
 */
import { type Ioapic, IOAPIC_PINS } from "./ioapic.ts";

/** Options of {@link RemoteIrrWatchdog}. */
export interface RemoteIrrWatchdogOptions {
  /** The IOAPIC watched. */
  readonly ioapic: Ioapic;
  /** True when `vector` is in the LAPIC's ISR or IRR. */
  readonly lapicHasVector: (vector: number) => boolean;
  /** Time between checks (ns); default 100 ms. */
  readonly periodNs?: number;
}

/** Counters. */
export interface RemoteIrrWatchdogStats {
  /** Checks that looked at the LAPIC. */
  checks: number;
  /** Lost EOIs the watchdog completed. */
  completedEois: number;
}

/**
 * The watchdog.
 *
 * @example
 * ```ts
 * import { Ioapic } from "./ioapic.ts";
 * import { RemoteIrrWatchdog } from "./remote_irr_watchdog.ts";
 * const ioapic = new Ioapic({ sink: { deliver() {} }, clock: { now: () => 0 } });
 * const w = new RemoteIrrWatchdog({ ioapic, lapicHasVector: () => false });
 * console.log(w.service(0)); // null: nothing outstanding
 * ```
 */
export class RemoteIrrWatchdog {
  readonly #ioapic: Ioapic;
  readonly #lapic: (vector: number) => boolean;
  readonly #period: number;
  /** Vector seen idle with Remote IRR at the last check, per pin (-1: none). */
  readonly #suspect = new Int16Array(IOAPIC_PINS).fill(-1);
  #nextCheck: number | null = null;
  #deliveries = -1;
  /** Counters. */
  readonly stats: RemoteIrrWatchdogStats = { checks: 0, completedEois: 0 };

  /** Create a watchdog over `options.ioapic`. */
  constructor(options: RemoteIrrWatchdogOptions) {
    this.#ioapic = options.ioapic;
    this.#lapic = options.lapicHasVector;
    this.#period = options.periodNs ?? 100_000_000;
    if (!(this.#period > 0)) {
      throw new RangeError(`watchdog period ${this.#period} ns must be > 0`);
    }
  }

  #outstanding(): boolean {
    return this.#ioapic.remoteIrrPins() !== 0;
  }

  /** Check if due; returns when to check next, or null (nothing outstanding). */
  service(now: number): number | null {
    if (this.#nextCheck === null) {
      if (!this.#outstanding()) return null;
      this.#nextCheck = now + this.#period;
      return this.#nextCheck;
    }
    if (now < this.#nextCheck) return this.#nextCheck;
    this.#check();
    this.#nextCheck = this.#outstanding() ? now + this.#period : null;
    return this.#nextCheck;
  }

  #check(): void {
    this.stats.checks++;
    // A delivery since the last check means an EOI did arrive (or the pin
    // was re-armed): start over rather than complete a fresh interrupt.
    const deliveries = this.#ioapic.stats.deliveries;
    if (deliveries !== this.#deliveries) {
      this.#deliveries = deliveries;
      this.#suspect.fill(-1);
    }
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const e = this.#ioapic.entry(pin);
      if (!e.levelTriggered || !e.remoteIrr || this.#lapic(e.vector)) {
        this.#suspect[pin] = -1;
        continue;
      }
      if (this.#suspect[pin] !== e.vector) {
        this.#suspect[pin] = e.vector; // idle once: look again next time
        continue;
      }
      this.#suspect[pin] = -1;
      this.stats.completedEois++;
      this.#ioapic.eoi(e.vector);
    }
  }

  /** Forget suspects and the schedule (IOAPIC reset). */
  reset(): void {
    this.#suspect.fill(-1);
    this.#nextCheck = null;
  }
}
