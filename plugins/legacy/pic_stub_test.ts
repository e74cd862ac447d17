import assert from "node:assert/strict";
import { PicStub } from "./pic_stub.ts";

function make(active: boolean) {
  let eois = 0;
  const state = { active };
  const pic = new PicStub({
    timerActive: () => state.active,
    lapicEoi: () => eois++,
  });
  return { pic, state, eois: () => eois };
}

Deno.test("pic stub", async (t) => {
  await t.step("reads: data 0xFF, command 0", () => {
    const { pic } = make(false);
    assert.equal(pic.read(0x21), 0xff);
    assert.equal(pic.read(0xa1), 0xff);
    assert.equal(pic.read(0x20), 0);
    assert.equal(pic.read(0xa0), 0);
  });
  await t.step("init sequence writes are accepted and counted", () => {
    const { pic, eois } = make(true);
    for (
      const [port, v] of [[0x20, 0x11], [0x21, 0x20], [0x21, 4], [0x21, 1]]
    ) {
      pic.write(port, v);
    }
    pic.write(0x21, 0xff);
    assert.equal(pic.stats.writes, 5);
    assert.equal(eois(), 0);
    assert.equal(pic.read(0x21), 0xff);
  });
  await t.step("non-specific EOI forwarded only while timer active", () => {
    const { pic, state, eois } = make(false);
    pic.write(0x20, 0x20);
    assert.equal(eois(), 0);
    assert.equal(pic.stats.eoisIgnored, 1);
    state.active = true;
    pic.write(0x20, 0x20);
    assert.equal(eois(), 1);
    assert.equal(pic.stats.eoisForwarded, 1);
  });
  await t.step("other EOI forms and ports do not forward", () => {
    const { pic, eois } = make(true);
    pic.write(0x20, 0x60); // specific EOI for IRQ0
    pic.write(0xa0, 0x20); // slave EOI
    pic.write(0x21, 0x20);
    pic.write(0x20, 0x0b); // OCW3 read ISR
    assert.equal(eois(), 0);
  });
  await t.step("foreign ports are counted no-ops", () => {
    const { pic } = make(true);
    assert.equal(pic.read(0x22), 0xff);
    pic.write(0x22, 0);
    assert.equal(pic.stats.badAccesses, 2);
  });
});
