import assert from "node:assert/strict";
import { virtioRng } from "../rng.ts";
import { GuestDriver } from "./guest_driver.ts";

Deno.test("GuestDriver enumerates and initialises a device", () => {
  const g = new GuestDriver([{ device: 1, function: virtioRng() }]);
  assert.equal(g.cfgRead(1, 0), 0x10441af4);
  g.placeBar(1, 0xc0000000);
  assert.deepEqual(g.placed, { device: 1, bar: 0xc0000000 });
  assert.equal(g.initVirtio(1), 0x0f);
  assert.equal(g.queues.length, 1);
});
