import assert from "node:assert/strict";
import { ExitCode, exitCodeOf } from "./exit_codes.ts";

Deno.test("exit codes", async (t) => {
  await t.step(
    "guest success and halt are 0; other statuses pass through odd",
    () => {
      assert.equal(exitCodeOf({ reason: "exit", status: 1 }), 0);
      assert.equal(exitCodeOf({ reason: "halt" }), 0);
      assert.equal(exitCodeOf({ reason: "exit", status: 11 }), 11);
      assert.equal(exitCodeOf({ reason: "exit", status: 255 }), 255);
      // v = 128: (256 | 1) & 0xff = 1, still odd and not success
      assert.equal(exitCodeOf({ reason: "exit", status: 257 }), 1);
      assert.equal(exitCodeOf({ reason: "exit", status: 0x1ffffffff }), 255);
    },
  );
  await t.step("no guest status collides with a VMM code", () => {
    const vmm = new Set<number>(Object.values(ExitCode).filter((c) => c !== 0));
    for (let v = 1; v < 1024; v++) {
      const c = exitCodeOf({ reason: "exit", status: (v << 1) | 1 });
      assert.ok(c % 2 === 1 && !vmm.has(c), `v=${v} -> ${c}`);
    }
    for (const c of vmm) assert.equal(c % 2, 0, `VMM code ${c} must be even`);
  });
  await t.step("fixed codes", () => {
    assert.equal(exitCodeOf({ reason: "timeout" }), 124);
    assert.equal(exitCodeOf({ reason: "stopped" }), 130);
    assert.equal(exitCodeOf({ reason: "shutdown" }), 72);
    assert.equal(exitCodeOf({ reason: "internal-error" }), 72);
    assert.equal(exitCodeOf({ reason: "error", detail: "x" }), 70);
  });
});
