/**
 * The testing kit: a recording {@link DeviceContext} with fake interrupt
 * sources, a RAM-backed guest memory, a fake clock and fake tick sources,
 * plus helpers that drive a region like a guest. Nothing here touches KVM.
 * The interrupt sources are the VM's own implementation (wired OR,
 * masking, pending), recording what reaches the irqchip.
 *
 * @module
 */
import type {
  Access,
  Clock,
  DeviceContext,
  GuestMemory,
  InterruptLine,
  LogLevel,
  Mapping,
  MsiInterrupt,
  MsiMessage,
  Region,
  TickSource,
  TickTarget,
  TriggerMode,
} from "../../bus/types.ts";
import { readLe, writeLe } from "../../bus/le.ts";
import {
  LineSource,
  MsiSource,
  type Wire,
} from "../../bus/interrupt_sources.ts";
import { RamView } from "../../vmm/guest_memory.ts";

/**
 * A clock that only moves when told to.
 *
 * @example
 * ```ts
 * import { FakeClock } from "./fake_context.ts";
 * const c = new FakeClock();
 * c.advance(1_000);
 * console.log(c.now()); // 1000
 * ```
 */
export class FakeClock implements Clock {
  #now = 0;
  /** Current fake time in ns. */
  now(): number {
    return this.#now;
  }
  /** Move time forward by `ns`. */
  advance(ns: number): void {
    this.#now += ns;
  }
}

/**
 * Guest RAM backed by a plain `Uint8Array`, with the bounds checks of the
 * VM's own guest memory (it delegates to the same implementation).
 *
 * @example
 * ```ts
 * import { FakeMemory } from "./fake_context.ts";
 * const m = new FakeMemory(4096);
 * m.write(16, new Uint8Array([1, 2]));
 * console.log(m.bytes[17]); // 2
 * ```
 */
export class FakeMemory implements GuestMemory {
  /** The backing bytes (GPA 0 at index 0). */
  readonly bytes: Uint8Array;
  readonly #ram: RamView;
  /** Create `size` bytes of zeroed RAM. */
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.#ram = new RamView(this.bytes);
  }
  /** RAM size in bytes. */
  get size(): number {
    return this.bytes.length;
  }
  /** True when `[gpa, gpa+length)` is inside RAM. */
  contains(gpa: number, length: number): boolean {
    return this.#ram.contains(gpa, length);
  }
  /** Copy guest bytes into `dst`; RangeError outside RAM. */
  read(gpa: number, dst: Uint8Array): void {
    this.#ram.read(gpa, dst);
  }
  /** Copy `src` into guest RAM; RangeError outside RAM. */
  write(gpa: number, src: Uint8Array): void {
    this.#ram.write(gpa, src);
  }
  /** A live view of guest bytes; RangeError outside RAM. */
  view(gpa: number, length: number): Uint8Array {
    return this.#ram.view(gpa, length);
  }
}

/** One recorded interrupt event. */
export type IrqEvent =
  | { kind: "level"; gsi: number; level: boolean }
  | { kind: "pulse"; gsi: number }
  | { kind: "msi"; address: number; data: number };

/**
 * A tick source that records what it was asked to do and ticks only when
 * the test calls {@link FakeTickSource.tick}.
 *
 * @example
 * ```ts
 * import { FakeTickSource } from "./fake_context.ts";
 * const t = new FakeTickSource({ kind: "msi", vector: 0x20, destination: 0 });
 * t.arm(1_000_000);
 * t.tick();
 * ```
 */
export class FakeTickSource implements TickSource {
  /** Periods passed to `arm`, in order. */
  readonly arms: number[] = [];
  /** Number of `disarm` calls. */
  disarms = 0;
  #armed = false;
  #ticks = 0;
  /** Missed ticks the test wants reported. */
  missedTicks = 0;
  /** Create a fake for `target`. */
  constructor(readonly target: TickTarget) {}
  /** Record an arm. */
  arm(periodNs: number): void {
    if (!(periodNs > 0)) throw new RangeError(`bad period ${periodNs}`);
    this.arms.push(periodNs);
    this.#armed = true;
  }
  /** Record a disarm. */
  disarm(): void {
    this.disarms++;
    this.#armed = false;
  }
  /** True while armed. */
  get armed(): boolean {
    return this.#armed;
  }
  /** Ticks so far. */
  get ticks(): number {
    return this.#ticks;
  }
  /** Simulate one expiration (only counts while armed). */
  tick(): void {
    if (this.#armed) this.#ticks++;
  }
}

/**
 * A recording {@link DeviceContext}: what a device's interrupt sources do
 * to the irqchip lines lands in `events` and `levels`, MSIs in `events`,
 * logs in `logs`, tick sources in `tickSources`; `clock` is a
 * {@link FakeClock} and `memory` a {@link FakeMemory}.
 *
 * @example
 * ```ts
 * import { FakeContext } from "./fake_context.ts";
 * const ctx = new FakeContext();
 * ctx.interruptLine(4, "edge").trigger();
 * console.log(ctx.events); // [{ kind: "pulse", gsi: 4 }]
 * ```
 */
export class FakeContext implements DeviceContext {
  /** What reached the irqchip, in order. */
  readonly events: IrqEvent[] = [];
  /** Current level per line (the wired OR of its sources). */
  readonly levels: Map<number, boolean> = new Map();
  /** Log lines, `level: message`. */
  readonly logs: string[] = [];
  /** Regions mapped at run time and still mapped. */
  readonly mapped: Region[] = [];
  /** Tick sources created so far. */
  readonly tickSources: FakeTickSource[] = [];
  /** Line sources handed out, per line (several devices may share one). */
  readonly lines: Map<number, InterruptLine> = new Map();
  /** MSI sources handed out. */
  readonly msis: MsiInterrupt[] = [];
  /** Exit status passed to `exit`, if any. */
  exitStatus: number | null = null;
  /** Number of `halt` calls. */
  halts = 0;
  /** States passed to `sleep`, in order. */
  readonly sleeps: number[] = [];
  /** Guest memory. */
  readonly memory: FakeMemory;
  /** Clock. */
  readonly clock: FakeClock = new FakeClock();
  readonly #wires = new Map<number, Wire>();

  /** Create a context with `memorySize` bytes of RAM. */
  constructor(memorySize = 1 << 20) {
    this.memory = new FakeMemory(memorySize);
  }
  /** This device's source on `line` (one per line, as in a VM). */
  interruptLine(line: number, mode: TriggerMode): InterruptLine {
    if (!Number.isInteger(line) || line < 0 || line > 1023) {
      throw new RangeError(`bad interrupt line ${line}`);
    }
    const have = this.lines.get(line);
    if (have) {
      if (have.mode !== mode) {
        throw new RangeError(`line ${line} is already an ${have.mode} source`);
      }
      return have;
    }
    const s = new LineSource(line, mode, this.#wire(line), {
      level: (high) => {
        this.levels.set(line, high);
        this.events.push({ kind: "level", gsi: line, level: high });
      },
      pulse: () => this.events.push({ kind: "pulse", gsi: line }),
    });
    this.lines.set(line, s);
    return s;
  }
  /**
   * A second device's source on `line` sharing the wire with this
   * context's own (for wired-OR tests).
   */
  sharedLine(line: number, mode: TriggerMode): InterruptLine {
    return new LineSource(line, mode, this.#wire(line), {
      level: (high) => {
        this.levels.set(line, high);
        this.events.push({ kind: "level", gsi: line, level: high });
      },
      pulse: () => this.events.push({ kind: "pulse", gsi: line }),
    });
  }
  #wire(line: number): Wire {
    let w = this.#wires.get(line);
    if (!w) {
      w = { high: 0 };
      this.#wires.set(line, w);
    }
    return w;
  }
  /** A recording MSI source. */
  msiInterrupt(): MsiInterrupt {
    const m = new MsiSource((msg) => this.recordMsi(msg));
    this.msis.push(m);
    return m;
  }
  /** Record a delivered MSI in `events`. */
  recordMsi(msg: MsiMessage): void {
    this.events.push({ kind: "msi", address: msg.address, data: msg.data });
  }
  /** Record a log line. */
  log(level: LogLevel, msg: string): void {
    this.logs.push(`${level}: ${msg}`);
  }
  /** Map a region; throws RangeError on overlap with another mapped one. */
  map(region: Region): Mapping {
    const r = region.range;
    for (const o of this.mapped) {
      const q = o.range;
      if (
        q.space === r.space && r.base < q.base + q.length &&
        q.base < r.base + r.length
      ) {
        throw new RangeError(`overlap with mapped region at ${q.base}`);
      }
    }
    this.mapped.push(region);
    return {
      range: r,
      unmap: () => {
        const i = this.mapped.indexOf(region);
        if (i >= 0) this.mapped.splice(i, 1);
      },
    };
  }
  /** Record the exit status. */
  exit(status: number): void {
    this.exitStatus = status;
  }
  /** Count a halt. */
  halt(): void {
    this.halts++;
  }
  /** Record a sleep state. */
  sleep(state: number): void {
    this.sleeps.push(state);
  }
  /** Create a fake tick source. */
  createTickSource(target: TickTarget): TickSource {
    const t = new FakeTickSource(target);
    this.tickSources.push(t);
    return t;
  }
}

/**
 * Drive a region like a guest would: build the access and data buffer.
 *
 * @example
 * ```ts
 * import { access } from "./fake_context.ts";
 * const a = access(0x3f8, 0, 1);
 * ```
 */
export function access(
  address: number,
  offset: number,
  size: 1 | 2 | 4 | 8,
): Access {
  return { address, offset, size, vcpu: 0 };
}

/**
 * Read `size` bytes from `region` at `offset` and return them as a number
 * (little-endian) — what a guest `in`/load would see.
 *
 * @example
 * ```ts
 * import { readValue } from "./fake_context.ts";
 * // const lsr = readValue(uartRegion, 5, 1);
 * ```
 */
export function readValue(
  region: Region,
  offset: number,
  size: 1 | 2 | 4 | 8,
): number {
  const data = new Uint8Array(size);
  region.read(access(region.range.base + offset, offset, size), data);
  return readLe(data);
}

/**
 * Write a little-endian value of `size` bytes to `region` at `offset`.
 *
 * @example
 * ```ts
 * import { writeValue } from "./fake_context.ts";
 * // writeValue(uartRegion, 0, 1, 0x41);
 * ```
 */
export function writeValue(
  region: Region,
  offset: number,
  size: 1 | 2 | 4 | 8,
  value: number,
): void {
  const data = new Uint8Array(size);
  writeLe(data, value);
  region.write(access(region.range.base + offset, offset, size), data);
}
