/**
 * ACPI tables and the HPET on KVM, in both irqchip modes: the `hpet` guest
 * finds the tables by the RSDP scan (checksums, FADT PM timer, MADT, HPET
 * base), runs HPET timer 0 periodic on the legacy route (IRQ0), a one-shot
 * on an IOAPIC pin, a level-triggered periodic timer on another pin and an
 * FSB (MSI) periodic timer, counting interrupts; then it powers off through
 * PM1a_CNT, which ends the run with `poweroff`. The host parses the same
 * tables from guest memory.
 */
import assert from "node:assert/strict";
import { parseAcpi } from "../plugins/acpi/parse.ts";
import { bootGuest, failures, HAVE_KVM, passes, RESULTS_GPA } from "./kvm.ts";

for (const irqchip of ["kernel", "split"] as const) {
  Deno.test({
    name: `hpet + acpi: guest finds and uses them (${irqchip} irqchip)`,
    ignore: !HAVE_KVM,
    fn() {
      const { result, out, machine } = bootGuest(
        "hpet",
        [irqchip === "split" ? 1 : 0],
        { irqchip, timeoutMs: 30_000 },
      );
      using _ = machine;
      assert.deepEqual(failures(out), [], out);
      assert.equal(passes(out).length, 15, out);
      assert.deepEqual(result, { reason: "poweroff", state: 5 }, out);
      const failed = new DataView(
        machine.vm.memory.view(RESULTS_GPA, 4).slice().buffer,
      ).getUint32(0, true);
      assert.equal(failed, 0);
      const t = parseAcpi((a, n) => machine.vm.memory.view(a, n));
      assert.equal(t.hpet?.base.address, 0xfed00000);
      assert.equal(t.madt.lapics.length, 1);
    },
  });
}
