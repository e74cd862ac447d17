/**
 * Test doubles for plugins: a recording {@link PluginContext} with fake
 * interrupt lines, an MSI sink, a RAM-backed guest memory, a fake clock and
 * fake tick sources. Nothing here touches KVM.
 *
 * @module
 */
import type {
  Access,
  Clock,
  GuestMemory,
  IrqLine,
  LogLevel,
  Mapping,
  MsiIrqfd,
  MsiMessage,
  PluginContext,
  Region,
  TickSource,
  TickTarget,
} from "../../bus/types.ts";

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
 * Guest RAM backed by a plain `Uint8Array`, with the same bounds checks as
 * the real one.
 *
 * @example
 * ```ts
 * import { ArrayMemory } from "./fake_context.ts";
 * const m = new ArrayMemory(4096);
 * m.write(16, new Uint8Array([1, 2]));
 * ```
 */
export class ArrayMemory implements GuestMemory {
  /** The backing bytes. */
  readonly bytes: Uint8Array;
  /** Create `size` bytes of zeroed RAM. */
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
  }
  /** RAM size in bytes. */
  get size(): number {
    return this.bytes.length;
  }
  /** True when `[gpa, gpa+length)` is inside RAM. */
  contains(gpa: number, length: number): boolean {
    return Number.isSafeInteger(gpa) && Number.isSafeInteger(length) &&
      gpa >= 0 && length >= 0 && gpa + length <= this.bytes.length;
  }
  #check(gpa: number, length: number): void {
    if (!this.contains(gpa, length)) {
      throw new RangeError(
        `guest memory access [${gpa}, +${length}) outside RAM of ${this.bytes.length} bytes`,
      );
    }
  }
  /** Copy guest bytes into `dst`. */
  read(gpa: number, dst: Uint8Array): void {
    this.#check(gpa, dst.length);
    dst.set(this.bytes.subarray(gpa, gpa + dst.length));
  }
  /** Copy `src` into guest RAM. */
  write(gpa: number, src: Uint8Array): void {
    this.#check(gpa, src.length);
    this.bytes.set(src, gpa);
  }
  /** A live view of guest bytes. */
  view(gpa: number, length: number): Uint8Array {
    this.#check(gpa, length);
    return this.bytes.subarray(gpa, gpa + length);
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
 * A recording {@link PluginContext}.
 *
 * @example
 * ```ts
 * import { FakeContext } from "./fake_context.ts";
 * const ctx = new FakeContext();
 * ctx.irqLine(4).pulse();
 * console.log(ctx.events); // [{ kind: "pulse", gsi: 4 }]
 * ```
 */
export class FakeContext implements PluginContext {
  /** Every interrupt event, in order. */
  readonly events: IrqEvent[] = [];
  /** Current level per GSI. */
  readonly levels: Map<number, boolean> = new Map();
  /** Log lines, `level: message`. */
  readonly logs: string[] = [];
  /** Regions mapped at run time and still mapped. */
  readonly mapped: Region[] = [];
  /** Tick sources created so far. */
  readonly tickSources: FakeTickSource[] = [];
  /** Exit status passed to `exit`, if any. */
  exitStatus: number | null = null;
  /** Number of `halt` calls. */
  halts = 0;
  /** States passed to `sleep`, in order. */
  readonly sleeps: number[] = [];
  /** Number of `lapicEoi` calls. */
  lapicEois = 0;
  /** Guest memory. */
  readonly memory: ArrayMemory;
  /** Clock. */
  readonly clock: FakeClock = new FakeClock();

  /** Create a context with `memorySize` bytes of RAM. */
  constructor(memorySize = 1 << 20) {
    this.memory = new ArrayMemory(memorySize);
  }
  /** A recording line. */
  irqLine(gsi: number): IrqLine {
    return {
      gsi,
      set: (level: boolean) => {
        this.levels.set(gsi, level);
        this.events.push({ kind: "level", gsi, level });
      },
      pulse: () => {
        this.events.push({ kind: "pulse", gsi });
      },
    };
  }
  /** Record an MSI. */
  signalMsi(msg: MsiMessage): void {
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
  /** Vectors `lapicHasVector` reports as in service or requested. */
  readonly lapicVectors: Set<number> = new Set();
  /** True when `vector` is in {@link FakeContext.lapicVectors}. */
  lapicHasVector(vector: number): boolean {
    return this.lapicVectors.has(vector);
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
  /** Count a LAPIC EOI. */
  lapicEoi(): void {
    this.lapicEois++;
  }
  /** Current MSI routes set through `routeMsi`. */
  readonly routes: Map<number, MsiMessage> = new Map();
  /** Irqfds created through `msiIrqfd`. */
  readonly irqfds: FakeMsiIrqfd[] = [];
  /** Create a recording irqfd on the next free GSI (from 24). */
  msiIrqfd(): MsiIrqfd {
    const q = new FakeMsiIrqfd(24 + this.irqfds.length, this);
    this.irqfds.push(q);
    return q;
  }
  /** GSIs passed to `resample`, in order. */
  readonly resamples: number[] = [];
  /** Record a resample. */
  resample(gsi: number): void {
    this.resamples.push(gsi);
  }
  /** Record a route change. */
  routeMsi(gsi: number, msg: MsiMessage | null): void {
    if (msg) this.routes.set(gsi, msg);
    else this.routes.delete(gsi);
  }
}

/**
 * A recording {@link MsiIrqfd}: a fire while attached is recorded as an MSI
 * to the current route; while masked it is held.
 *
 * @example
 * ```ts
 * import { FakeContext } from "./fake_context.ts";
 * const ctx = new FakeContext();
 * const q = ctx.msiIrqfd();
 * q.route({ address: 0xfee00000, data: 0x41 });
 * q.fire();
 * ```
 */
export class FakeMsiIrqfd implements MsiIrqfd {
  /** Current route. */
  msg: MsiMessage | null = null;
  /** True while detached. */
  masked = false;
  /** A fire happened while masked. */
  held = false;
  /** Number of route changes. */
  routeChanges = 0;
  /** True once closed. */
  closed = false;
  /** Create on `gsi`, recording into `ctx`. */
  constructor(readonly gsi: number, readonly ctx: FakeContext) {}
  /** Set the route. */
  route(msg: MsiMessage | null): void {
    this.msg = msg;
    this.routeChanges++;
  }
  /** Deliver to the route, or hold while masked. */
  fire(): void {
    if (this.masked) this.held = true;
    else if (this.msg) this.ctx.signalMsi(this.msg);
  }
  /** Detach. */
  mask(): void {
    this.masked = true;
  }
  /** Re-attach; report a held fire. */
  unmask(): boolean {
    this.masked = false;
    const h = this.held;
    this.held = false;
    return h;
  }
  /** Close. */
  close(): void {
    this.closed = true;
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
 * (little-endian; sizes up to 4) — what a guest `in`/load would see.
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
  size: 1 | 2 | 4,
): number {
  const data = new Uint8Array(size);
  region.read(access(region.range.base + offset, offset, size), data);
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + data[i];
  return v;
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
  size: 1 | 2 | 4,
  value: number,
): void {
  const data = new Uint8Array(size);
  let v = value >>> 0;
  for (let i = 0; i < size; i++) {
    data[i] = v & 0xff;
    v = Math.floor(v / 256);
  }
  region.write(access(region.range.base + offset, offset, size), data);
}
