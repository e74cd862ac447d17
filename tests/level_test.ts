/**
 * Level-triggered lines driven by a host thread through irqfd +
 * resamplefd, in both irqchip modes: KVM signals the resample eventfd
 * itself with the in-kernel IOAPIC; with the split irqchip our userspace
 * IOAPIC does, from its EOI path.
 */
import assert from "node:assert/strict";
import type { Plugin } from "../bus/types.ts";
import type { LevelSource } from "../vmm/vm.ts";
import { bootGuest, HAVE_KVM } from "./kvm.ts";

/** Port 0x2F1: the guest says "ready"; the host then adds `n` work items. */
function starter(get: () => LevelSource, n: number): Plugin {
  return {
    name: "level-starter",
    setup: () => [{
      range: { space: "pio", base: 0x2f1, length: 1 },
      read: () => {},
      write: () => get().add(n),
    }],
  };
}

Deno.test({
  name: "level: irqfd + resamplefd device thread",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    for (const irqchip of ["kernel", "split"] as const) {
      await t.step(
        `${irqchip} irqchip: 50 level interrupts, one per EOI`,
        async () => {
          const n = 50;
          const gsi = 10;
          let src: LevelSource | undefined;
          const { result, out, machine } = bootGuest("level_irq", [
            gsi,
            0x70,
            n,
          ], {
            irqchip,
            plugins: [starter(() => src!, n)],
            timeoutMs: 20_000,
          }, (vm) => src = vm.createLevelSource(gsi));
          using _ = machine;
          assert.deepEqual(result, { reason: "exit", status: 1 }, out);
          assert.match(out, new RegExp(`count=${n} n=${n}`));
          // the device thread retires the last item when it reads the
          // resample eventfd, which can lag the guest's exit a little
          let s = src!.stats();
          for (let i = 0; i < 200 && s.pending > 0; i++) {
            await new Promise((r) => setTimeout(r, 1));
            s = src!.stats();
          }
          if (irqchip === "kernel") {
            assert.equal(s.eois, n, JSON.stringify(s));
            assert.equal(s.asserts, n, JSON.stringify(s));
            assert.equal(s.pending, 0);
          } else {
            // On this nested host a level MSI from an irqfd may reach the
            // guest without its EOI exit reaching us; the vCPU then
            // re-signals it, and that copy can land after the guest stopped
            // taking interrupts. The guest's exact count is what matters.
            assert.ok(
              s.asserts >= n && s.eois >= n - 1 && s.pending <= 1,
              JSON.stringify(s),
            );
            if (s.eois < n) assert.ok(s.reinjected >= 1, JSON.stringify(s));
          }
          assert.ok(s.meanRttNs > 0 && s.minRttNs <= s.maxRttNs);
          src!.close();
        },
      );
    }
  },
});
