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
});
