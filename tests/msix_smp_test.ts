/**
 * MSI-X across CPUs on /dev/kvm: the `msix_smp` guest rewrites a real PCI
 * function's (virtio-rng's) MSI-X table entry to name each CPU in turn,
 * broadcast, and a masked entry that is unmasked later, and reports per CPU
 * which completions it took. Both irqchip modes, both MSI-X paths
 * (KVM_SIGNAL_MSI and an irqfd per entry, re-routed on each rewrite), 2 and
 * 4 vCPUs. Asserts counts, never timing.
 */
import assert from "node:assert/strict";
import { pciBusPlugin } from "../plugins/pci/pci_bus.ts";
import { virtioRng } from "../plugins/virtio/rng.ts";
import { cpuTablePlugin } from "./cpu_table.ts";
import { bootGuest, failures, HAVE_KVM, passes } from "./kvm.ts";

const MAX_CPUS = 16;

Deno.test({
  name: "msix_smp: MSI-X table entries deliver to the CPU they name",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    const runs = [
      ["kernel", false, 2],
      ["split", false, 2],
      ["kernel", true, 2],
      ["split", true, 2],
      ["kernel", false, 4],
      ["split", true, 4],
    ] as const;
    for (const [irqchip, msixIrqfd, n] of runs) {
      const via = msixIrqfd ? "irqfd" : "KVM_SIGNAL_MSI";
      await t.step(`${n} vCPUs, ${irqchip} irqchip, ${via}`, () => {
        const pci = pciBusPlugin({
          msixIrqfd,
          devices: [{ device: 1, function: virtioRng() }],
        });
        const tab = cpuTablePlugin();
        const { result, out, machine } = bootGuest("msix_smp", [n], {
          irqchip,
          vcpus: n,
          plugins: [pci, tab],
          timeoutMs: 240_000,
        });
        using _ = machine;
        assert.deepEqual(failures(out), [], out);
        assert.deepEqual(passes(out), [
          "all_aps_started",
          "rng_found",
          "rng_msix_driver_ok",
          "msix_physical_each_cpu",
          "msix_physical_broadcast",
          "msix_masked_entry_pending_bit",
          "msix_unmask_delivers_to_its_cpu",
          "msix_no_config_interrupt",
        ], out);
        assert.deepEqual(result, { reason: "exit", status: 1 }, out);
        // The host's view of the same counts.
        const one = (i: number) =>
          Array.from({ length: n }, (_, k) => k === i ? 1 : 0);
        for (let i = 0; i < n; i++) {
          assert.deepEqual(tab.table.get(i), one(i), `to CPU ${i}`);
        }
        assert.deepEqual(
          tab.table.get(MAX_CPUS),
          Array(n).fill(1),
          "broadcast",
        );
        assert.deepEqual(tab.table.get(MAX_CPUS + 1), one(n - 1), "unmasked");
        if (msixIrqfd) {
          assert.ok(pci.irqfdCount >= 1, `irqfds ${pci.irqfdCount}`);
        }
      });
    }
  },
});
