/**
 * The PV timer's `catchup` policy on /dev/kvm: the test stalls the vCPU
 * thread from the host (a plugin's `service()` blocks the thread that
 * runs KVM_RUN for several periods, three times) and checks counts, never
 * timing:
 *
 * - at every check (the vCPU paused inside `service()`), the guest has
 *   counted every tick the host sent but at most two: the one in flight
 *   and, because this host's KVM retires an interrupt when the guest
 *   accepts it (README, host quirks), the one accepted but not yet counted
 *   by its handler. No tick is lost in KVM (LAPIC coalescing, lost
 *   messages): a loss would grow that gap with every stall;
 * - once the backlog has drained, the guest's tick count equals the
 *   periods elapsed since the arm (by the host clock) within 1 tick;
 * - the counters conserve: owed = delivered + backlog + dropped + cleared;
 * - under `coalesce`, the same stall loses ticks (the test has teeth).
 */
import assert from "node:assert/strict";
import type { Plugin, TickCounters } from "../bus/types.ts";
import { createMachine, type MachineOptions } from "../vmm/machine.ts";
import { guestPath, HAVE_KVM, RESULTS_GPA } from "./kvm.ts";

/** What one stalled run saw. */
interface StallRun {
  /** Checks made with the vCPU paused: [guest count, counters]. */
  checks: [number, TickCounters][];
  /**
   * Quiet checks (backlog drained): [guest count, host-elapsed periods,
   * ticks delivered].
   */
  quiet: [number, number, number][];
  /** Counters at the end. */
  end: TickCounters;
  /** Guest ticks at the end. */
  guestTicks: number;
  /** Periods the stalls lasted, in total. */
  stalledPeriods: number;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Block the calling (vCPU) thread for `ms` without spinning. */
const block = (ms: number) => Atomics.wait(sleeper, 0, 0, ms);

/** `timer` guest arg3: IOAPIC pin 0, level-triggered. */
const LEVEL_PIN0 = 0x10000;

/**
 * Boot the `timer` guest (GSI 0 delivery; `pinArg`: its arg3, pin 0 edge
 * by default) and stall its vCPU thread `stalls` times for `stallPeriods`
 * periods, then look for quiet moments until `quietWanted` were seen or
 * `budgetPeriods` elapsed.
 */
function stalledRun(
  options: MachineOptions,
  periodUs: number,
  stallPeriods: number,
  budgetPeriods: number,
  pinArg = 0,
): StallRun {
  const periodNs = periodUs * 1000;
  const stalls = 3;
  const quietWanted = 3;
  let m: ReturnType<typeof createMachine> | null = null;
  const counters = () => m!.pvTimer.tickCounters()!;
  const guestCount = () =>
    Number(
      new DataView(m!.vm.memory.view(RESULTS_GPA + 8, 8).slice().buffer)
        .getBigUint64(0, true),
    );
  let armedAt = 0;
  let stallsDone = 0;
  let stalledNs = 0;
  let nextAt = 0;
  const checks: [number, TickCounters][] = [];
  const quiet: [number, number, number][] = [];
  const lags: number[] = [];
  const stallPlugin: Plugin = {
    name: "stall",
    setup: () => [],
    service(now: number): number | null {
      if (!m?.pvTimer.active) return now + periodNs;
      if (armedAt === 0) {
        // Called right after the exit of the guest's arming write.
        armedAt = now;
        nextAt = now + 20 * periodNs;
        return nextAt;
      }
      if (now < nextAt) return nextAt;
      if (stallsDone < stalls) {
        const t0 = performance.now();
        block(stallPeriods * periodUs / 1000);
        stalledNs += (performance.now() - t0) * 1e6;
        stallsDone++;
        nextAt = now + (stallPeriods + 30) * periodNs;
        return nextAt;
      }
      // Checks, with the vCPU paused here.
      const c = counters();
      const g = guestCount();
      checks.push([g, c]);
      const elapsed = Math.floor((now - armedAt) / periodNs);
      lags.push(c.owed - elapsed);
      if (c.backlog === 0 && Math.abs(c.owed - elapsed) <= 1) {
        quiet.push([g, elapsed, c.delivered]);
      }
      if (
        quiet.length >= quietWanted ||
        now - armedAt > budgetPeriods * periodNs
      ) {
        m!.vm.stop();
        return null;
      }
      nextAt = now + 7 * periodNs;
      return nextAt;
    },
  };
  m = createMachine({
    ...options,
    timerDelivery: "gsi",
    plugins: [stallPlugin],
  });
  try {
    m.vm.load(guestPath("timer"), [periodUs, 4000, 0x20, pinArg]);
    const r = m.vm.run({ timeoutMs: 30_000 });
    assert.equal(r.reason, "stopped", JSON.stringify(r));
    assert.equal(stallsDone, stalls, "every stall happened");
    const lagInfo = lags.slice(0, 20).join(" ");
    console.log(`    owed - host-elapsed periods at the checks: ${lagInfo}`);
    return {
      checks,
      quiet,
      end: counters(),
      guestTicks: guestCount(),
      stalledPeriods: stalledNs / periodNs,
    };
  } finally {
    m.vm.close();
  }
}

function conserved(c: TickCounters): void {
  assert.equal(
    c.owed,
    c.delivered + c.backlog + c.droppedOverCap + c.cleared,
    `owed = delivered + backlog + dropped + cleared: ${JSON.stringify(c)}`,
  );
}

/** The catch-up invariants of one stalled run (see the module doc). */
function checkCatchup(r: StallRun, stallPeriods: number): void {
  const info =
    `quiet [guest, elapsed, delivered] ${JSON.stringify(r.quiet)}; ` +
    `end ${JSON.stringify(r.end)}; stalled ${
      r.stalledPeriods.toFixed(1)
    } periods`;
  console.log(`    ${info}`);
  assert.equal(r.end.policy, "catchup");
  conserved(r.end);
  assert.equal(r.end.droppedOverCap, 0, "nothing over the 1 s cap");
  assert.equal(r.end.coalesced, 0);
  assert.ok(r.stalledPeriods >= 3 * stallPeriods, info);
  assert.ok(r.checks.length > 0, info);
  for (const [g, c] of r.checks) {
    conserved(c);
    // The guest counted every tick sent but the one in flight and
    // one accepted (acknowledged, on this host) but not yet counted.
    assert.ok(
      c.delivered - g >= 0 && c.delivered - g <= 2,
      `guest ${g} vs delivered ${c.delivered}: ${info}`,
    );
  }
  // Count invariant: whenever the backlog had drained, the guest's
  // count is the number of elapsed periods, within 1 tick. A loaded
  // host may never let it drain during the run (seen at 1 ms in a
  // clean-checkout CI run while the build ran), so whether a quiet
  // moment occurs is timing, not asserted; the owed ticks are then
  // still all accounted for above. The ticks in flight at that moment
  // (delivered, not yet counted by the paused guest: at most 2, checked
  // above) are the guest's only excuse (seen at 100 µs: guest 1504,
  // 1506 elapsed, one in flight and the next expiration not yet read).
  for (const [g, elapsed, delivered] of r.quiet) {
    const inFlight = delivered - g;
    assert.ok(
      Math.abs(g - elapsed) <= 1 + inFlight,
      `${g} (+${inFlight} in flight) vs ${elapsed}: ${info}`,
    );
  }
}

Deno.test({
  name: "timer catch-up: a host-side stall loses no tick",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    for (
      const [periodUs, stallPeriods, budget] of [[1000, 10, 2000], [
        100,
        30,
        3500,
      ]]
    ) {
      await t.step(`kernel irqchip, GSI, ${periodUs} µs`, () => {
        checkCatchup(
          stalledRun(
            { irqchip: "kernel", timerPolicy: "catchup" },
            periodUs,
            stallPeriods,
            budget,
          ),
          stallPeriods,
        );
      });
    }

    // Catch-up ticks are KVM_IRQ_LINE pulses: a level-programmed pin must
    // take each one once (no re-delivery at the EOI) and acknowledge it.
    await t.step("kernel irqchip, GSI level-programmed, 1000 µs", () => {
      checkCatchup(
        stalledRun(
          { irqchip: "kernel", timerPolicy: "catchup" },
          1000,
          10,
          2000,
          LEVEL_PIN0,
        ),
        10,
      );
    });

    await t.step("coalesce loses the stalled periods (control)", () => {
      const r = stalledRun(
        { irqchip: "kernel", timerPolicy: "coalesce" },
        1000,
        10,
        300,
      );
      assert.equal(r.end.policy, "coalesce");
      const lost = r.end.delivered - r.guestTicks;
      console.log(
        `    coalesce: guest ${r.guestTicks} of ${r.end.owed} owed, ` +
          `irqfd writes ${r.end.delivered}, coalesced in the LAPIC ${lost}`,
      );
      // Each stall of 10 periods leaves one tick pending; the other
      // irqfd writes of the stall merge with it.
      assert.ok(r.end.owed - r.guestTicks >= 3 * (10 - 2), JSON.stringify(r));
    });

    await t.step(
      "split irqchip, edge-programmed pin: coalesces (no EOI exit)",
      () => {
        const r = stalledRun(
          { irqchip: "split", timerPolicy: "catchup" },
          1000,
          10,
          300,
        );
        assert.equal(r.end.policy, "coalesce");
        assert.equal(r.end.acks, 0);
      },
    );
  },
});
