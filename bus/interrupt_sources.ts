/**
 * The implementations of {@link InterruptLine} and {@link MsiInterrupt}
 * shared by the VM's contexts and the testing kit's fakes, so a unit test
 * exercises the same wired-OR, masking and pending rules as a VM.
 *
 * @module
 */
import type {
  InterruptLine,
  MsiInterrupt,
  MsiMessage,
  TriggerMode,
} from "./types.ts";

/**
 * One irqchip input: how many unmasked sources hold it high.
 *
 * @example
 * ```ts
 * import type { Wire } from "./interrupt_sources.ts";
 * const w: Wire = { high: 0 };
 * ```
 */
export interface Wire {
  /** Unmasked sources whose level is high. */
  high: number;
}

/**
 * Where a line source's effect goes: the wire's new level, or one pulse
 * (a rising and falling edge while no other source holds the wire high).
 *
 * @example
 * ```ts
 * import type { LineOutput } from "./interrupt_sources.ts";
 * const out: LineOutput = { level: () => {}, pulse: () => {} };
 * ```
 */
export interface LineOutput {
  /** The wire changed level. */
  level(high: boolean): void;
  /** One edge on an otherwise low wire. */
  pulse(): void;
}

/**
 * A device's source on one line: its level counts in the wire's OR while
 * unmasked; an edge while masked is held (one at most) until unmask.
 *
 * @example
 * ```ts
 * import { LineSource } from "./interrupt_sources.ts";
 * const seen: string[] = [];
 * const wire = { high: 0 };
 * const out = { level: (h: boolean) => seen.push(`${h}`), pulse: () => seen.push("pulse") };
 * const a = new LineSource(5, "level", wire, out);
 * const b = new LineSource(5, "level", wire, out);
 * a.set(true); b.set(true); a.set(false); // the wire stays high
 * console.log(seen); // ["true"]
 * ```
 */
export class LineSource implements InterruptLine {
  #level = false;
  #masked = false;
  #heldEdge = false;
  /** A source on `line` sharing `wire`, reporting to `out`. */
  constructor(
    readonly line: number,
    readonly mode: TriggerMode,
    readonly wire: Wire,
    readonly out: LineOutput,
  ) {}
  /** This source's own output level. */
  get level(): boolean {
    return this.#level;
  }
  /** True while masked. */
  get masked(): boolean {
    return this.#masked;
  }
  #contribute(on: boolean): void {
    const before = this.wire.high;
    this.wire.high += on ? 1 : -1;
    if ((before > 0) !== (this.wire.high > 0)) {
      this.out.level(this.wire.high > 0);
    }
  }
  #edge(): void {
    if (this.wire.high === 0) this.out.pulse();
  }
  /** Drive this source's level. */
  set(level: boolean): void {
    level = !!level;
    if (level === this.#level) return;
    this.#level = level;
    if (this.#masked) {
      if (level && this.mode === "edge") this.#heldEdge = true;
      return;
    }
    this.#contribute(level);
  }
  /** Edge: one pulse; level: assert. */
  trigger(): void {
    if (this.mode === "level") {
      this.set(true);
      return;
    }
    if (this.#level) return; // already high: no edge
    if (this.#masked) {
      this.#heldEdge = true;
      return;
    }
    this.#edge();
  }
  /** Stop counting on the wire; hold edges. */
  mask(): void {
    if (this.#masked) return;
    this.#masked = true;
    if (this.#level) this.#contribute(false);
  }
  /** Count again; deliver a held edge. */
  unmask(): void {
    if (!this.#masked) return;
    this.#masked = false;
    if (this.#level) this.#contribute(true);
    else if (this.#heldEdge) this.#edge();
    this.#heldEdge = false;
  }
  /** Power-on: low, unmasked, nothing held (the owner resets the wire). */
  forget(): void {
    this.#level = false;
    this.#masked = false;
    this.#heldEdge = false;
  }
}

/**
 * A device's MSI source: a trigger while masked is held as pending and
 * delivered at unmask; with no message a trigger is dropped.
 *
 * @example
 * ```ts
 * import { MsiSource } from "./interrupt_sources.ts";
 * const sent: number[] = [];
 * const m = new MsiSource((msg) => sent.push(msg.data));
 * m.modify({ address: 0xfee00000, data: 0x41 });
 * m.mask(); m.trigger(); m.unmask();
 * console.log(sent); // [65]
 * ```
 */
export class MsiSource implements MsiInterrupt {
  #message: MsiMessage | null = null;
  #masked = false;
  #pending = false;
  /** A source that hands its messages to `deliver`. */
  constructor(readonly deliver: (msg: MsiMessage) => void) {}
  /** The current message. */
  get message(): MsiMessage | null {
    return this.#message;
  }
  /** True while masked. */
  get masked(): boolean {
    return this.#masked;
  }
  /** True when a trigger is held. */
  get pending(): boolean {
    return this.#pending;
  }
  /** Set or clear the message. */
  modify(message: MsiMessage | null): void {
    this.#message = message === null
      ? null
      : { address: message.address, data: message.data };
  }
  /** Deliver now, or hold while masked. */
  trigger(): void {
    if (this.#masked) this.#pending = true;
    else if (this.#message) this.deliver(this.#message);
  }
  /** Hold triggers. */
  mask(): void {
    this.#masked = true;
  }
  /** Deliver a held trigger and signal normally again. */
  unmask(): void {
    this.#masked = false;
    if (this.#pending) {
      this.#pending = false;
      if (this.#message) this.deliver(this.#message);
    }
  }
  /** Power-on: unmasked, nothing pending (the message is kept). */
  forget(): void {
    this.#masked = false;
    this.#pending = false;
  }
}
