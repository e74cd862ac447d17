import assert from "node:assert/strict";
import { nsToTicks, PIT_FREQ_HZ, ticksToNs } from "./pit_clock.ts";

Deno.test("pit clock conversions", async (t) => {
  await t.step("one second is PIT_FREQ_HZ ticks", () => {
    assert.equal(nsToTicks(1e9), PIT_FREQ_HZ);
    assert.equal(ticksToNs(PIT_FREQ_HZ), 1e9);
    assert.equal(nsToTicks(838), 0);
    assert.equal(nsToTicks(839), 1);
    assert.equal(nsToTicks(-5), 0);
  });
  await t.step("exact inverse, also past 2^53 / freq (days of uptime)", () => {
    for (const k of [1, 2, 1193, 65536, 1e9 + 7, 5e12 + 3]) {
      const ns = ticksToNs(k);
      assert.equal(nsToTicks(ns), k, `k=${k}`);
      assert.equal(nsToTicks(ns - 1), k - 1, `k=${k}`);
    }
  });
});
