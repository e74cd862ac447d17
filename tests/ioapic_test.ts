/**
 * End-to-end tests of the split irqchip: our userspace IOAPIC (TypeScript)
 * with KVM's in-kernel LAPIC, checked by the `ioapic` guest, and the same
 * guest on KVM's in-kernel IOAPIC for comparison.
 */
import assert from "node:assert/strict";
import { bootGuest, failures, HAVE_KVM, passes } from "./kvm.ts";

/** Checks the guest makes in every mode (broadcast or directed EOI). */
const CORE_CHECKS = [
  "ioapic_max_redir_entry_23",
  "ioapic_version_readonly",
  "ioapic_arb_readonly",
  "ioapic_id_readback",
  "ioapic_redir_readback",
  "edge_delivered_once",
  "edge_held_high_no_repeat",
  "edge_falling_no_delivery",
  "edge_second_rising_delivered",
  "level_delivered_once",
  "level_remote_irr_clear_after_eoi",
  "simultaneous_edges_pin5_once",
  "simultaneous_edges_pin6_once",
  "coalesce_remote_irr_set_in_handler",
  "coalesce_exactly_one_more_after_eoi",
  "sequential_level_3_deliveries",
  "level_retrigger_after_eoi",
  "masked_level_not_delivered",
  "unmask_asserted_level_delivered",
  "mask_in_handler_no_redelivery",
  "mask_in_handler_remote_irr_clear",
  "unmask_redelivers_asserted_level",
  "remote_irr_clear_before",
  "remote_irr_delivered",
  "remote_irr_set_in_handler",
  "remote_irr_clear_after_eoi",
];

Deno.test({
  name: "ioapic: level-triggered semantics on real KVM",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    await t.step(
      "split irqchip: every check of the ioapic guest passes",
      () => {
        const { result, out, machine } = bootGuest("ioapic", [], {
          irqchip: "split",
        });
        using _ = machine;
        assert.deepEqual(failures(out), [], out);
        const passed = passes(out);
        for (const c of CORE_CHECKS) assert.ok(passed.includes(c), `${c} ran`);
        for (
          const c of [
            "ioapic_version_0x00170020",
            "eoi_register_delivered_once",
            "eoi_register_remote_irr_set_before",
            "eoi_register_clears_remote_irr",
            "directed_lapic_eoi_keeps_remote_irr",
            "directed_ioapic_eoi_clears_remote_irr",
          ]
        ) assert.ok(passed.includes(c), `${c} ran`);
        assert.deepEqual(result, { reason: "exit", status: 1 });
        const st = machine.ioapic!.ioapic.stats;
        assert.ok(st.deliveries >= 15 && st.eois >= 10, JSON.stringify(st));
        assert.ok(st.coalesced >= 1, "the coalescing check coalesced");
        assert.ok(machine.vm.stats.suppressedEoiBroadcasts > 0);
      },
    );

    await t.step(
      "kernel irqchip: same guest on KVM's IOAPIC, results recorded",
      () => {
        const { result, out, machine } = bootGuest("ioapic");
        using _ = machine;
        assert.equal(result.reason, "exit");
        const failed = failures(out);
        // Recorded, not hidden: KVM's in-kernel IOAPIC is version 0x11 (no
        // EOI register), and on this host the LAPIC retires a level
        // interrupt when it is accepted rather than at the guest's EOI, so a
        // line still asserted at the handler's first exit is delivered again.
        console.log(
          `    kernel-mode failures (${failed.length}): ${failed.join(", ")}`,
        );
        assert.equal(result.status, failed.length * 2 + 1);
        assert.ok(failed.includes("ioapic_version_0x00170020"));
        assert.ok(passes(out).includes("edge_delivered_once"));
      },
    );
  },
});
