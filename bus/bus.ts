/**
 * The I/O-port and MMIO bus: a range map from addresses to plugin regions,
 * with synchronous dispatch.
 *
 * @module
 */
import type { Access, Range, Region, Space } from "./types.ts";

/** Listener told about every range added to or removed from the bus. */
export interface BusListener {
  /**
   * A range was claimed; `tag` is its index on this bus (see
   * {@link Bus.dispatchTagged}), stable while the range stays claimed.
   */
  added(range: Range, tag: number): void;
  /** A range was released. */
  removed(range: Range): void;
}

/** Options of a {@link Bus}. */
export interface BusOptions {
  /** Throw on an unclaimed access instead of reading all-ones. */
  strict?: boolean;
  /** Told about range changes (the VM mirrors them into the core). */
  listener?: BusListener;
}

/** Counters of a bus. */
export interface BusStats {
  /** Accesses dispatched to a region. */
  dispatched: number;
  /** Reads nobody claimed (answered with all-ones). */
  unclaimedReads: number;
  /** Writes nobody claimed (ignored). */
  unclaimedWrites: number;
}

interface Entry {
  readonly base: number;
  readonly end: number;
  readonly region: Region;
  readonly owner: string;
  readonly tag: number;
}

interface MutableAccess {
  offset: number;
  address: number;
  size: 1 | 2 | 4 | 8;
  vcpu: number;
}

/**
 * An unclaimed access in strict mode.
 *
 * @example
 * ```ts
 * import { UnclaimedAccessError } from "./bus.ts";
 * const e = new UnclaimedAccessError("pio", 0x1234, 1, true);
 * console.log(e.message);
 * ```
 */
export class UnclaimedAccessError extends Error {
  /** Create the error. */
  constructor(
    readonly space: Space,
    readonly address: number,
    readonly size: number,
    readonly isWrite: boolean,
  ) {
    super(
      `unclaimed ${size}-byte ${isWrite ? "write" : "read"} at ${space} 0x${
        address.toString(16)
      }`,
    );
    this.name = "UnclaimedAccessError";
  }
}

/** Describe a range for messages, e.g. `pio 0x3f8+8`. */
export function formatRange(r: Range): string {
  return `${r.space} 0x${r.base.toString(16)}+${r.length}`;
}

function validate(r: Range): void {
  const limit = r.space === "pio" ? 0x10000 : 2 ** 52;
  if (
    !Number.isSafeInteger(r.base) || !Number.isSafeInteger(r.length) ||
    r.base < 0 || r.length <= 0 || r.base + r.length > limit
  ) {
    throw new RangeError(`invalid range ${formatRange(r)}`);
  }
}

/**
 * The bus.
 *
 * @example
 * ```ts
 * import { Bus } from "./bus.ts";
 * const bus = new Bus();
 * bus.add({
 *   range: { space: "pio", base: 0x80, length: 1 },
 *   read: (_a, d) => d.fill(0x42),
 *   write: () => {},
 * }, "post");
 * const data = new Uint8Array(1);
 * bus.dispatch("pio", 0x80, 1, false, data, 0);
 * console.log(data[0]); // 0x42
 * ```
 */
export class Bus {
  readonly #lists: Record<Space, Entry[]> = { pio: [], mmio: [] };
  /** Entries by tag; freed tags are reused, lowest first. */
  readonly #byTag: (Entry | undefined)[] = [];
  readonly #strict: boolean;
  readonly #listener?: BusListener;
  readonly #access: MutableAccess = { offset: 0, address: 0, size: 1, vcpu: 0 };
  /** Counters. */
  readonly stats: BusStats = {
    dispatched: 0,
    unclaimedReads: 0,
    unclaimedWrites: 0,
  };

  /** Create an empty bus. */
  constructor(options: BusOptions = {}) {
    this.#strict = options.strict ?? false;
    this.#listener = options.listener;
  }

  /** Claim `region.range` for `owner`; throws `RangeError` on overlap. */
  add(region: Region, owner: string): void {
    const r = region.range;
    validate(r);
    const list = this.#lists[r.space];
    const end = r.base + r.length;
    let i = 0;
    while (i < list.length && list[i].base < r.base) i++;
    const prev = list[i - 1];
    const next = list[i];
    const clash = (prev && prev.end > r.base)
      ? prev
      : (next && next.base < end)
      ? next
      : undefined;
    if (clash) {
      throw new RangeError(
        `${owner}: ${formatRange(r)} overlaps ${
          formatRange(clash.region.range)
        } of ${clash.owner}`,
      );
    }
    let tag = this.#byTag.indexOf(undefined);
    if (tag < 0) tag = this.#byTag.length;
    const entry = { base: r.base, end, region, owner, tag };
    this.#listener?.added(r, tag);
    this.#byTag[tag] = entry;
    list.splice(i, 0, entry);
  }

  /** Release a region added before. Returns false if it was not on the bus. */
  remove(region: Region): boolean {
    const list = this.#lists[region.range.space];
    const i = list.findIndex((e) => e.region === region);
    if (i < 0) return false;
    this.#byTag[list[i].tag] = undefined;
    list.splice(i, 1);
    this.#listener?.removed(region.range);
    return true;
  }

  /**
   * The owner and region an access belongs to: by first port for `pio`,
   * wholly contained for `mmio`.
   */
  find(
    space: Space,
    address: number,
    size: number,
  ): { region: Region; owner: string } | undefined {
    const e = this.#lookup(space, address, size);
    return e && { region: e.region, owner: e.owner };
  }

  #lookup(space: Space, address: number, size: number): Entry | undefined {
    const list = this.#lists[space];
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid].base <= address) lo = mid + 1;
      else hi = mid;
    }
    const e = list[lo - 1];
    // Ports decode by their first port (ISA semantics: the device sees the
    // width); MMIO accesses must lie wholly inside the region.
    const last = space === "pio" ? address + 1 : address + size;
    return e && last <= e.end ? e : undefined;
  }

  /** All claimed ranges of a space, sorted, with owners. */
  ranges(space: Space): { range: Range; owner: string }[] {
    return this.#lists[space].map((e) => ({
      range: e.region.range,
      owner: e.owner,
    }));
  }

  /**
   * Dispatch one access whose region the caller already knows by `tag`
   * (the core reports it in the exit record), without a search. A tag
   * that no longer covers the address (a range re-mapped since) falls
   * back to {@link Bus.dispatch}.
   */
  dispatchTagged(
    tag: number,
    space: Space,
    address: number,
    size: number,
    isWrite: boolean,
    data: Uint8Array,
    vcpu: number,
  ): boolean {
    const e = this.#byTag[tag];
    if (
      e === undefined || e.region.range.space !== space || address < e.base ||
      (space === "pio" ? address + 1 : address + size) > e.end
    ) {
      return this.dispatch(space, address, size, isWrite, data, vcpu);
    }
    this.#deliver(e, address, size, isWrite, data, vcpu);
    return true;
  }

  /**
   * Dispatch one access. `data` has `size` bytes: filled for reads, read
   * for writes. Returns true when a region handled it.
   */
  dispatch(
    space: Space,
    address: number,
    size: number,
    isWrite: boolean,
    data: Uint8Array,
    vcpu: number,
  ): boolean {
    const e = this.#lookup(space, address, size);
    if (e === undefined) {
      if (this.#strict) {
        throw new UnclaimedAccessError(space, address, size, isWrite);
      }
      if (isWrite) this.stats.unclaimedWrites++;
      else {
        this.stats.unclaimedReads++;
        data.fill(0xff);
      }
      return false;
    }
    this.#deliver(e, address, size, isWrite, data, vcpu);
    return true;
  }

  #deliver(
    e: Entry,
    address: number,
    size: number,
    isWrite: boolean,
    data: Uint8Array,
    vcpu: number,
  ): void {
    const a = this.#access;
    a.offset = address - e.base;
    a.address = address;
    a.size = size as 1 | 2 | 4 | 8;
    a.vcpu = vcpu;
    this.stats.dispatched++;
    const result: unknown = isWrite
      ? e.region.write(a as Access, data)
      : e.region.read(a as Access, data);
    if (result !== undefined) rejectAsync(result, e.owner);
  }
}

function rejectAsync(result: unknown, owner: string): void {
  if (
    result !== null && typeof result === "object" &&
    typeof (result as { then?: unknown }).then === "function"
  ) {
    (result as Promise<unknown>).then(() => {}, () => {});
    throw new TypeError(
      `${owner}: region handlers must be synchronous (a handler returned a Promise)`,
    );
  }
}
