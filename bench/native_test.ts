import assert from "node:assert/strict";
import { parseCLoop } from "./native.ts";

Deno.test("parseCLoop reads one round per line and skips blank lines", () => {
  const r = parseCLoop(
    '{"mode":"out","ns":100,"exits":3,"status":1}\n\n' +
      '{"mode":"msi","ns":200,"exits":4,"status":1,"gap_ns":7}\n',
  );
  assert.equal(r.length, 2);
  assert.equal(r[0].mode, "out");
  assert.equal(r[1].gap_ns, 7);
});

Deno.test("parseCLoop names the bad line", () => {
  assert.throws(
    () => parseCLoop('{"ns":1,"exits":1,"status":1}\nnope'),
    /line 2/,
  );
  assert.throws(() => parseCLoop('{"ns":"1","exits":1,"status":1}'), /line 1/);
  assert.throws(() => parseCLoop("null"), /line 1/);
});
