import assert from "node:assert/strict";
import { FakeTickSource } from "../testing/fake_context.ts";
import { PvTimer, type PvTimerOptions } from "./pv_timer.ts";

function make(extra: Partial<PvTimerOptions> = {}) {
  const source = new FakeTickSource({
    kind: "msi",
    vector: 0x20,
    destination: 0,
  });
  const logs: string[] = [];
  let halts = 0;
  const timer = new PvTimer({
    source,
    halt: () => halts++,
    log: (l, m) => logs.push(`${l}: ${m}`),
    ...extra,
  });
  return { timer, source, logs, halts: () => halts };
}

Deno.test("pv timer", async (t) => {
  await t.step("arms with the period in ns", () => {
    const { timer, source } = make();
    timer.writePeriod(4, 1000);
    assert.deepEqual(source.arms, [1_000_000]);
    assert.equal(timer.armed, true);
    assert.equal(timer.active, true);
    assert.equal(timer.periodUs, 1000);
    assert.equal(timer.readPeriod(), 1000);
  });
  await t.step("clamp rules: below min, above max, logged once each", () => {
    const { timer, source, logs } = make();
    timer.writePeriod(4, 1);
    timer.writePeriod(4, 49);
    timer.writePeriod(4, 1000);
    timer.writePeriod(4, 2);
    timer.writePeriod(4, 0xffffffff);
    timer.writePeriod(4, 10_000_001);
    timer.writePeriod(4, 10_000_000);
    assert.deepEqual(source.arms, [50_000, 1_000_000, 50_000, 10e9]);
    assert.equal(timer.stats.clamps, 5);
    assert.equal(logs.length, 2);
    assert.match(logs[0], /minimum 50/);
    assert.match(logs[1], /maximum 10000000/);
    assert.equal(timer.stats.ignored, 3); // 49, 10_000_001, 10_000_000
  });
  await t.step("boundaries are not clamped", () => {
    const { timer } = make();
    timer.writePeriod(4, 50);
    timer.writePeriod(4, 10_000_000);
    assert.equal(timer.stats.clamps, 0);
  });
  await t.step("custom range and bad ranges", () => {
    const { timer, source } = make({ minUs: 1000, maxUs: 2000 });
    timer.writePeriod(4, 500);
    timer.writePeriod(4, 5000);
    assert.deepEqual(source.arms, [1_000_000, 2_000_000]);
    for (const [minUs, maxUs] of [[0, 10], [10, 5], [1.5, 10], [1, 2 ** 32]]) {
      assert.throws(() => make({ minUs, maxUs }), RangeError);
    }
  });
  await t.step("0 stops; 0 while stopped is ignored", () => {
    const { timer, source } = make();
    timer.writePeriod(4, 0);
    assert.equal(source.disarms, 0);
    assert.equal(timer.stats.ignored, 1);
    timer.writePeriod(4, 100);
    timer.writePeriod(4, 0);
    assert.equal(source.armed, false);
    assert.equal(timer.active, false);
    assert.equal(timer.periodUs, 0);
    assert.equal(timer.stats.stops, 1);
    timer.writePeriod(4, 100);
    assert.deepEqual(source.arms, [100_000, 100_000]);
    assert.equal(timer.stats.rearms, 0);
  });
  await t.step("new period re-arms; same period does not", () => {
    const { timer, source } = make();
    for (let i = 0; i < 1000; i++) timer.writePeriod(4, 100);
    timer.writePeriod(4, 200);
    timer.writePeriod(4, 200);
    assert.deepEqual(source.arms, [100_000, 200_000]);
    assert.equal(timer.stats.ignored, 1000);
    assert.equal(timer.stats.rearms, 1);
    assert.equal(timer.stats.arms, 2);
    assert.equal(timer.stats.writes, 1002);
  });
  await t.step("1- and 2-byte writes are counted no-ops", () => {
    const { timer, source } = make();
    timer.writePeriod(1, 100);
    timer.writePeriod(2, 100);
    timer.writePeriod(8, 100);
    assert.deepEqual(source.arms, []);
    assert.equal(timer.stats.badWrites, 3);
    assert.equal(timer.stats.writes, 0);
  });
  await t.step("halt stops the timer and halts", () => {
    const { timer, source, halts } = make();
    timer.writePeriod(4, 100);
    timer.writeHalt();
    assert.equal(source.armed, false);
    assert.equal(halts(), 1);
    timer.writeHalt();
    assert.equal(halts(), 2);
    assert.equal(timer.stats.halts, 2);
  });
  await t.step("missed ticks come from the source", () => {
    const { timer, source } = make();
    source.missedTicks = 7;
    assert.equal(timer.missedTicks, 7);
  });
  await t.step("lifecycle: reset and close disarm", () => {
    const { timer, source } = make();
    timer.writePeriod(4, 100);
    timer.reset();
    assert.equal(source.armed, false);
    assert.equal(timer.periodUs, 0);
    timer.writePeriod(4, 100);
    timer.close();
    timer.close();
    assert.equal(source.armed, false);
    assert.equal(timer.active, false);
  });
});

Deno.test("pv_timer: tick counters come from the source when it keeps them", () => {
  const plain = new FakeTickSource({ kind: "gsi", gsi: 0 });
  assert.equal(
    new PvTimer({ source: plain, halt: () => {} }).tickCounters(),
    null,
  );
  const counters = {
    policy: "catchup" as const,
    owed: 7,
    delivered: 5,
    coalesced: 0,
    droppedOverCap: 1,
    cleared: 0,
    backlog: 1,
    acks: 5,
    reinjected: 0,
  };
  const source = Object.assign(new FakeTickSource({ kind: "gsi", gsi: 0 }), {
    counters: () => counters,
  });
  const t = new PvTimer({ source, halt: () => {} });
  assert.deepEqual(t.tickCounters(), counters);
});
