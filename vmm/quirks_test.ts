import assert from "node:assert/strict";
import { detectHostQuirks, resolveQuirks } from "./quirks.ts";

Deno.test("quirks: detected from the host's CPU flags, overridable", () => {
  const nested = /^flags\s*:.*\bhypervisor\b/m.test(
    Deno.readTextFileSync("/proc/cpuinfo"),
  );
  assert.equal(detectHostQuirks().levelResignal, nested);
  assert.equal(detectHostQuirks().remoteIrrWatchdog, nested);
  assert.equal(
    resolveQuirks({ remoteIrrWatchdog: false }).remoteIrrWatchdog,
    false,
  );
  assert.deepEqual(resolveQuirks("auto"), detectHostQuirks());
  assert.equal(resolveQuirks({ levelResignal: false }).levelResignal, false);
  assert.equal(resolveQuirks({ levelResignal: true }).levelResignal, true);
});
