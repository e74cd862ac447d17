import assert from "node:assert/strict";
import { Bus, UnclaimedAccessError } from "./bus.ts";
import type { Range, Region } from "./types.ts";

function store(range: Range): Region & { bytes: Uint8Array } {
  const bytes = new Uint8Array(range.length);
  return {
    range,
    bytes,
    read(a, d) {
      d.set(bytes.subarray(a.offset, a.offset + a.size));
    },
    write(a, d) {
      bytes.set(d, a.offset);
    },
  };
}

Deno.test("bus", async (t) => {
  await t.step("dispatches by address with offsets", () => {
    const bus = new Bus();
    const a = store({ space: "pio", base: 0x100, length: 8 });
    const b = store({ space: "mmio", base: 0x100, length: 8 });
    bus.add(a, "a");
    bus.add(b, "b");
    assert.equal(
      bus.dispatch("pio", 0x104, 2, true, new Uint8Array([1, 2]), 0),
      true,
    );
    assert.deepEqual([...a.bytes], [0, 0, 0, 0, 1, 2, 0, 0]);
    assert.deepEqual([...b.bytes], [0, 0, 0, 0, 0, 0, 0, 0]);
    const d = new Uint8Array(2);
    bus.dispatch("pio", 0x104, 2, false, d, 0);
    assert.deepEqual([...d], [1, 2]);
    assert.equal(bus.stats.dispatched, 2);
  });

  await t.step("overlap is a RangeError naming both owners", () => {
    const bus = new Bus();
    bus.add(store({ space: "pio", base: 0x3f8, length: 8 }), "uart");
    for (const [base, length] of [[0x3f8, 1], [0x3f0, 9], [0x3ff, 4]]) {
      assert.throws(
        () => bus.add(store({ space: "pio", base, length }), "x"),
        (e: unknown) => e instanceof RangeError && /uart/.test(e.message),
      );
    }
    bus.add(store({ space: "pio", base: 0x3f0, length: 8 }), "below");
    bus.add(store({ space: "pio", base: 0x400, length: 1 }), "above");
    assert.equal(bus.ranges("pio").length, 3);
  });

  await t.step("invalid ranges are rejected", () => {
    const bus = new Bus();
    for (
      const r of [
        { space: "pio", base: 0xffff, length: 2 },
        { space: "pio", base: 0, length: 0 },
        { space: "mmio", base: -1, length: 1 },
        { space: "mmio", base: 1.5, length: 1 },
      ] as Range[]
    ) assert.throws(() => bus.add(store(r), "x"), RangeError);
  });

  await t.step("unclaimed reads are all-ones and counted", () => {
    const bus = new Bus();
    const d = new Uint8Array(4);
    assert.equal(bus.dispatch("pio", 0x60, 4, false, d, 0), false);
    assert.deepEqual([...d], [0xff, 0xff, 0xff, 0xff]);
    bus.dispatch("pio", 0x60, 1, true, d, 0);
    assert.deepEqual(bus.stats, {
      dispatched: 0,
      unclaimedReads: 1,
      unclaimedWrites: 1,
    });
  });

  await t.step("ports decode by first port; MMIO must fit", () => {
    const bus = new Bus();
    let seen = 0;
    bus.add({
      range: { space: "pio", base: 0x6b, length: 1 },
      read: () => {},
      write: (a) => void (seen = a.size),
    }, "period");
    assert.equal(
      bus.dispatch("pio", 0x6b, 4, true, new Uint8Array(4), 0),
      true,
    );
    assert.equal(seen, 4);
    bus.add(store({ space: "mmio", base: 0x10, length: 2 }), "s");
    assert.equal(
      bus.dispatch("mmio", 0x11, 2, false, new Uint8Array(2), 0),
      false,
    );
  });

  await t.step("strict mode throws on unclaimed access", () => {
    const bus = new Bus({ strict: true });
    assert.throws(
      () => bus.dispatch("mmio", 0xdead0000, 4, true, new Uint8Array(4), 0),
      UnclaimedAccessError,
    );
  });

  await t.step("async handlers are rejected", () => {
    const bus = new Bus();
    bus.add({
      range: { space: "pio", base: 1, length: 1 },
      read: () => {},
      write: (async () => {}) as unknown as Region["write"],
    }, "async");
    assert.throws(
      () => bus.dispatch("pio", 1, 1, true, new Uint8Array(1), 0),
      /synchronous/,
    );
  });

  await t.step("listener mirrors adds and removes", () => {
    const log: string[] = [];
    const bus = new Bus({
      listener: {
        added: (r) => log.push(`+${r.base}`),
        removed: (r) => log.push(`-${r.base}`),
      },
    });
    const r = store({ space: "mmio", base: 0x1000, length: 16 });
    bus.add(r, "r");
    assert.equal(bus.remove(r), true);
    assert.equal(bus.remove(r), false);
    assert.deepEqual(log, ["+4096", "-4096"]);
    assert.equal(
      bus.dispatch("mmio", 0x1000, 4, false, new Uint8Array(4), 0),
      false,
    );
  });
});
