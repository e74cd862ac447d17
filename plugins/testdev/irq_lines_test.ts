import assert from "node:assert/strict";
import { TestDevIrqLines } from "./irq_lines.ts";

Deno.test("testdev irq lines", async (t) => {
  await t.step("write sets the level; read returns it", () => {
    const calls: [number, boolean][] = [];
    const d = new TestDevIrqLines(24, (n, l) => calls.push([n, l]));
    d.write(0, 1);
    d.write(23, 0xff);
    d.write(0, 0);
    assert.deepEqual(calls, [[0, true], [23, true], [0, false]]);
    assert.equal(d.read(0), 0);
    assert.equal(d.read(23), 1);
  });
  await t.step("out-of-range line is a counted no-op", () => {
    const calls: [number, boolean][] = [];
    const d = new TestDevIrqLines(8, (n, l) => calls.push([n, l]));
    d.write(8, 1);
    d.write(-1, 1);
    assert.equal(d.read(8), 0);
    assert.deepEqual(calls, []);
    assert.equal(d.stats.badAccesses, 3);
  });
  await t.step("bad line counts throw at construction", () => {
    assert.throws(() => new TestDevIrqLines(-1, () => {}), RangeError);
    assert.throws(() => new TestDevIrqLines(1.5, () => {}), RangeError);
  });
  await t.step("snapshot round trip drives changed lines", () => {
    const d = new TestDevIrqLines(4, () => {});
    d.write(1, 1);
    d.write(3, 1);
    const calls: [number, boolean][] = [];
    const e = new TestDevIrqLines(4, (n, l) => calls.push([n, l]));
    e.write(0, 1);
    calls.length = 0;
    e.restore(JSON.parse(JSON.stringify(d.snapshot())));
    assert.deepEqual(calls, [[0, false], [1, true], [3, true]]);
    assert.deepEqual([0, 1, 2, 3].map((n) => e.read(n)), [0, 1, 0, 1]);
    assert.throws(
      () => e.restore({ version: 1, levels: [true] }),
      TypeError,
    );
  });
});
