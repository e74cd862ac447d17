/**
 * pc-testdev end to end: the `testdev` guest drives the scratch port at
 * 0xE0 (every width, string I/O), the flush port, wide IRQ-port writes and
 * the iomem window (moves, ALU ops and string ops on MMIO) in both
 * irqchip modes.
 */
import assert from "node:assert/strict";
import { bootGuest, failures, HAVE_KVM, passes } from "./kvm.ts";

Deno.test({
  name: "testdev: scratch port, flush, IRQ ports and iomem on KVM",
  ignore: !HAVE_KVM,
  fn() {
    for (const irqchip of ["kernel", "split"] as const) {
      const { result, out, machine } = bootGuest("testdev", [], { irqchip });
      using _ = machine;
      assert.deepEqual(failures(out), [], `${irqchip}:\n${out}`);
      assert.ok(passes(out).length >= 45, `${irqchip}:\n${out}`);
      assert.deepEqual(result, { reason: "exit", status: 1 }, out);
    }
  },
});
