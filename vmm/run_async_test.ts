import assert from "node:assert/strict";
import type { RunResult } from "./vm_types.ts";
import { runAsync, type SliceRunnable } from "./run_async.ts";

/** A fake VM: each run spins for its timeout (or `work` ms left), then ends. */
function fakeVm(workMs: number, end: RunResult = { reason: "halt" }) {
  let left = workMs;
  const slices: number[] = [];
  const vm: SliceRunnable = {
    run({ timeoutMs }) {
      slices.push(timeoutMs!);
      const spin = Math.min(timeoutMs!, left);
      const t = performance.now();
      while (performance.now() - t < spin) { /* the guest runs */ }
      left -= spin;
      return left <= 0 ? end : { reason: "timeout" };
    },
  };
  return { vm, slices };
}

Deno.test("runAsync", async (t) => {
  await t.step("the guest's end is returned; every slice bounded", async () => {
    const { vm, slices } = fakeVm(60);
    const r = await runAsync(vm, { sliceMs: 10 });
    assert.deepEqual(r, { reason: "halt" });
    assert.ok(slices.length >= 6, `slices: ${slices.length}`);
    assert.ok(slices.every((s) => s > 0 && s <= 10));
  });
  await t.step("event-loop timers fire while the guest runs", async () => {
    const { vm } = fakeVm(200);
    let fired = 0;
    const id = setInterval(() => fired++, 5);
    const r = await runAsync(vm, { sliceMs: 5, timerTurnMs: 20 });
    clearInterval(id);
    assert.equal(r.reason, "halt");
    assert.ok(fired >= 3, `interval fired ${fired} times during a 200 ms run`);
  });
  await t.step("an AbortSignal stops the run at a slice boundary", async () => {
    const { vm, slices } = fakeVm(Infinity);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("user quit")), 20);
    const r = await runAsync(vm, { signal: ac.signal, sliceMs: 5 });
    assert.deepEqual(r, { reason: "stopped", detail: "user quit" });
    assert.ok(slices.length >= 2);
  });
  await t.step("an already-aborted signal runs nothing", async () => {
    const { vm, slices } = fakeVm(Infinity);
    const r = await runAsync(vm, { signal: AbortSignal.abort() });
    assert.equal(r.reason, "stopped");
    assert.equal(slices.length, 0);
  });
  await t.step(
    "the overall timeout ends with timeout; last slice trimmed",
    async () => {
      const { vm, slices } = fakeVm(Infinity);
      const r = await runAsync(vm, { timeoutMs: 30, sliceMs: 20 });
      assert.equal(r.reason, "timeout");
      assert.ok(slices.length >= 2);
      assert.ok(slices[1] <= 20 && slices[1] > 0);
    },
  );
  await t.step("bad options are refused", async () => {
    const { vm } = fakeVm(0);
    await assert.rejects(runAsync(vm, { sliceMs: 0 }), RangeError);
    await assert.rejects(runAsync(vm, { timeoutMs: -1 }), RangeError);
  });
});
