/**
 * A guest that programs the PV timer with garbage (0, 1, 0xFFFFFFFF, a
 * thousand rapid re-arms) cannot overload the host: clamps are counted and
 * logged once, no timer thread is left behind, and a sane period afterwards
 * still ticks at its rate.
 */
import assert from "node:assert/strict";
import { bootGuest, failures, HAVE_KVM, threadNames } from "./kvm.ts";

Deno.test({
  name: "timer: hostile PV-timer programming",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    for (const irqchip of ["kernel", "split"] as const) {
      await t.step(`${irqchip} irqchip`, () => {
        const logs: string[] = [];
        const t0 = performance.now();
        const { result, out, machine } = bootGuest("timer_garbage", [200, 50], {
          irqchip,
          log: (level, source, msg) => logs.push(`${level} ${source} ${msg}`),
        });
        using _ = machine;
        const ms = performance.now() - t0;
        assert.deepEqual(failures(out), [], out);
        assert.deepEqual(result, { reason: "halt" }, out);
        const st = machine.pvTimer.stats!;
        assert.ok(st.writes >= 1004, JSON.stringify(st));
        assert.ok(
          st.clamps >= 2,
          `1 µs and 0xFFFFFFFF µs are clamped: ${JSON.stringify(st)}`,
        );
        const clampLogs = logs.filter((l) => /clamp/i.test(l));
        assert.ok(
          clampLogs.length <= 2,
          `a clamp is logged once per direction:\n${clampLogs.join("\n")}`,
        );
        assert.equal(machine.vm.armedTimers(), 0);
        assert.ok(
          threadNames().filter((n) => n === "dv-events").length <= 1,
          "at most this VM's one event thread",
        );
        assert.ok(ms < 10_000, `run took ${ms} ms`);
      });
    }
  },
});
