import assert from "node:assert/strict";
import { median, quantile, spread, table } from "./report.ts";

Deno.test("median of odd and even lengths, input untouched", () => {
  const xs = [3, 1, 2];
  assert.equal(median(xs), 2);
  assert.deepEqual(xs, [3, 1, 2]);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

Deno.test("quantile interpolates between order statistics (type 7)", () => {
  assert.equal(quantile([1, 2, 3, 4], 0.25), 1.75);
  assert.equal(quantile([1, 2, 3, 4], 0.75), 3.25);
  assert.equal(quantile([10], 0.5), 10);
  assert.equal(quantile([5, 1], 0), 1);
  assert.equal(quantile([5, 1], 1), 5);
  assert.throws(() => quantile([], 0.5), RangeError);
  assert.throws(() => quantile([1], 1.5), RangeError);
  assert.throws(() => quantile([1], NaN), RangeError);
});

Deno.test("spread gives median, quartiles and extremes", () => {
  assert.deepEqual(spread([5, 1, 3]), {
    median: 3,
    p25: 2,
    p75: 4,
    min: 1,
    max: 5,
  });
});

Deno.test("table pads and aligns columns", () => {
  const t = table(["m", "ns"], [["abc", "1"], ["d", "100"]]).split("\n");
  assert.deepEqual(t, [
    "| m   |  ns |",
    "| --- | --: |",
    "| abc |   1 |",
    "| d   | 100 |",
  ]);
});
