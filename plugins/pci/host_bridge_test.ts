import assert from "node:assert/strict";
import { hostBridge } from "./host_bridge.ts";

Deno.test("host bridge identity", () => {
  const hb = hostBridge();
  assert.equal(hb.config.read(0, 4), 0x29c08086);
  assert.equal(hb.config.read(0x08, 4) >>> 8, 0x060000);
  assert.equal(hb.config.read(0x0e, 1), 0);
  assert.equal(hb.config.interruptPin, 0);
  const d = new Uint8Array(4);
  hb.barRead(0, 0, d);
  assert.deepEqual([...d], [0xff, 0xff, 0xff, 0xff]);
});
