import assert from "node:assert/strict";
import type { Region } from "../../bus/types.ts";
import { FakeContext, readValue, writeValue } from "../testing/fake_context.ts";
import { FakeIrqChipContext } from "../testing/fake_irqchip.ts";
import { PicPair } from "./pic_8259.ts";
import { picPlugin } from "./plugin.ts";

function setup(options: Parameters<typeof picPlugin>[0] = {}) {
  const plugin = picPlugin(options);
  const ctx = new FakeIrqChipContext();
  const [master, slave, elcr] = plugin.setup(ctx);
  const lines = ctx.lineControllers[0];
  const extint = ctx.extint!;
  return { plugin, ctx, lines, extint, pic: plugin.pic, master, slave, elcr };
}

function linuxInit(master: Region, slave: Region): void {
  for (
    const [r, base, icw3] of [[master, 0x20, 4], [slave, 0x28, 2]] as const
  ) {
    writeValue(r, 0, 1, 0x11);
    writeValue(r, 1, 1, base);
    writeValue(r, 1, 1, icw3);
    writeValue(r, 1, 1, 0x01);
  }
}

Deno.test("pic plugin", async (t) => {
  await t.step("claims master, slave and ELCR ports", () => {
    const { plugin, master, slave, elcr, pic, ctx } = setup();
    assert.equal(plugin.name, "pic");
    assert.deepEqual([master.range, slave.range, elcr.range], [
      { space: "pio", base: 0x20, length: 2 },
      { space: "pio", base: 0xa0, length: 2 },
      { space: "pio", base: 0x4d0, length: 2 },
    ]);
    assert.deepEqual(ctx.lineControllers, [pic]);
    assert.equal(ctx.extint, pic);
    assert.throws(() => picPlugin().setup(new FakeContext()), TypeError);
  });

  await t.step("uses a given pair", () => {
    const pair = new PicPair();
    assert.equal(picPlugin({ pic: pair }).pic, pair);
  });

  await t.step("guest programs the pair through the regions", () => {
    const { lines, extint, pic, master, slave, elcr } = setup();
    linuxInit(master, slave);
    writeValue(master, 1, 1, 0xf7); // OCW1: mask IRQ 0-2, 4-7
    assert.equal(readValue(master, 1, 1), 0xf7);
    writeValue(master, 1, 1, 0xfb); // unmask the cascade only
    writeValue(slave, 1, 1, 0xfb); // IRQ 10
    lines.setLevel(10, true);
    assert.equal(extint.interruptPending, true);
    assert.equal(extint.acknowledge(), 0x2a);
    writeValue(slave, 0, 1, 0x0b);
    assert.equal(readValue(slave, 0, 1), 0x04);
    writeValue(slave, 0, 1, 0x20);
    writeValue(master, 0, 1, 0x20);
    assert.equal(pic.master.isr | pic.slave.isr, 0);
    writeValue(elcr, 0, 1, 0xff);
    writeValue(elcr, 1, 1, 0xff);
    assert.equal(readValue(elcr, 0, 1), 0xf8);
    assert.equal(readValue(elcr, 1, 1), 0xde);
  });

  await t.step("wider accesses are counted no-ops reading 0xFF", () => {
    const { pic, master, elcr } = setup();
    writeValue(master, 1, 1, 0x12);
    writeValue(master, 0, 2, 0x0011);
    writeValue(elcr, 0, 2, 0xffff);
    assert.equal(readValue(master, 0, 2), 0xffff);
    assert.equal(readValue(elcr, 0, 4), 0xffffffff);
    assert.equal(pic.stats.badAccesses, 4);
    assert.equal(pic.stats.inits, 0);
    assert.equal(pic.elcr, 0);
    assert.equal(readValue(master, 1, 1), 0x12);
  });

  await t.step("onChange: own pair, and chained after a given pair's", () => {
    let calls = 0;
    const a = setup({ onChange: () => calls++ });
    linuxInit(a.master, a.slave);
    a.lines.setLevel(1, true);
    assert.equal(calls, 1);
    a.extint.acknowledge();
    assert.equal(calls, 2);

    const order: string[] = [];
    const pair = new PicPair({ onChange: () => order.push("own") });
    const b = setup({ pic: pair, onChange: () => order.push("host") });
    linuxInit(b.master, b.slave);
    pair.setLevel(4, true);
    assert.deepEqual(order, ["own", "host"]);
    const c = new PicPair();
    picPlugin({ pic: c, onChange: () => order.push("only") });
    c.write(0x20, 0x11);
    c.write(0x21, 0x20);
    c.write(0x21, 4);
    c.setLevel(3, true);
    assert.deepEqual(order, ["own", "host", "only"]);
  });

  await t.step("reset returns the pair to power-on", () => {
    const { plugin, pic, master, slave, elcr } = setup();
    linuxInit(master, slave);
    writeValue(elcr, 0, 1, 0x20);
    pic.setLevel(3, true);
    plugin.reset?.();
    assert.equal(pic.interruptPending, false);
    assert.equal(pic.elcr, 0);
    assert.equal(pic.master.vectorBase, 0);
  });

  await t.step(
    "snapshot -> restore into a fresh plugin: same registers",
    () => {
      const a = setup();
      linuxInit(a.master, a.slave);
      writeValue(a.master, 1, 1, 0xe5);
      writeValue(a.elcr, 1, 1, 0x0c);
      a.lines.setLevel(1, true);
      a.extint.acknowledge();
      writeValue(a.master, 0, 1, 0x0b); // read ISR next
      const state = JSON.parse(JSON.stringify(a.plugin.snapshot()));
      const b = setup();
      b.plugin.restore(state);
      assert.deepEqual(b.plugin.snapshot(), a.plugin.snapshot());
      for (const [r, s] of [[a.master, b.master], [a.slave, b.slave]]) {
        assert.equal(readValue(s, 0, 1), readValue(r, 0, 1));
        assert.equal(readValue(s, 1, 1), readValue(r, 1, 1));
      }
      assert.equal(readValue(b.elcr, 1, 1), readValue(a.elcr, 1, 1));
      assert.throws(
        () => b.plugin.restore({ ...state, version: 2 }),
        TypeError,
      );
    },
  );

  await t.step(
    "emptyEoiToLapic: an EOI with nothing in service goes on",
    () => {
      let timer = true;
      const { ctx, master, slave } = setup({ emptyEoiToLapic: () => timer });
      linuxInit(master, slave);
      writeValue(master, 0, 1, 0x20);
      assert.equal(ctx.lapicEois, 1);
      timer = false;
      writeValue(master, 0, 1, 0x20);
      assert.equal(ctx.lapicEois, 1);
    },
  );
});
