/**
 * Host level sources routed to APs: the `level_smp` guest points the
 * source's IOAPIC pin at each CPU in turn and each must take exactly its
 * work items, one per EOI, in both irqchip modes with 2 and 4 vCPUs (in
 * split mode the EOI comes back through our IOAPIC from the AP's exit, and
 * the lost-message poll of `quirks.levelResignal` must look in the LAPIC
 * the message names). Asserts counts, never timing.
 */
import assert from "node:assert/strict";
import type { Plugin } from "../bus/types.ts";
import type { LevelSource } from "../vmm/vm.ts";
import { cpuTablePlugin } from "./cpu_table.ts";
import { bootGuest, failures, HAVE_KVM, passes } from "./kvm.ts";

const K = 20;
const GSI = 10;

/** Port 0x2F1: the guest says "ready"; the host then adds K work items. */
function starter(get: () => LevelSource): Plugin {
  return {
    name: "level-smp-starter",
    setup: () => [{
      range: { space: "pio", base: 0x2f1, length: 1 },
      read: (_a, d) => d.fill(0),
      write: () => get().add(K),
    }],
  };
}

Deno.test({
  name: "level_smp: a host level source delivers to each CPU it is routed to",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    for (const irqchip of ["kernel", "split"] as const) {
      for (const n of [2, 4]) {
        await t.step(`${n} vCPUs, ${irqchip} irqchip`, async () => {
          let src: LevelSource | undefined;
          const h = cpuTablePlugin();
          const { result, out, machine } = bootGuest(
            "level_smp",
            [n, GSI, 0x70, K],
            {
              irqchip,
              vcpus: n,
              plugins: [starter(() => src!), h],
              timeoutMs: 240_000,
            },
            (vm) => src = vm.createLevelSource(GSI),
          );
          using _ = machine;
          assert.deepEqual(failures(out), [], out);
          assert.deepEqual(passes(out), [
            "all_aps_started",
            "level_source_only_on_routed_cpu",
          ], out);
          assert.deepEqual(result, { reason: "exit", status: 1 }, out);
          // The device thread retires the last item when it reads the
          // resample eventfd, which can lag the guest's exit.
          let s = src!.stats();
          for (let i = 0; i < 200 && s.pending > 0; i++) {
            await new Promise((r) => setTimeout(r, 1));
            s = src!.stats();
          }
          let extra = 0;
          for (let cpu = 0; cpu < n; cpu++) {
            const row = h.table.get(cpu)!;
            assert.ok(row[cpu] >= K, `routed to CPU ${cpu}: ${row}`);
            extra += row[cpu] - K;
            row.forEach((v, i) =>
              assert.ok(i === cpu || v === 0, `routed to CPU ${cpu}: ${row}`)
            );
          }
          // Exactly K per CPU, but for the copies the host re-signalled
          // (split irqchip on a host with the lost-message quirk).
          assert.ok(
            extra <= s.reinjected,
            `${extra} extra, ${JSON.stringify(s)}`,
          );
          if (irqchip === "kernel") assert.equal(extra, 0);
          assert.ok(s.asserts >= n * K && s.pending <= 1, JSON.stringify(s));
        });
      }
    }
  },
});
