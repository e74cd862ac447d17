/**
 * The 8259A pair of the split irqchip on KVM: ExtINT through LAPIC LINT0,
 * injected with KVM_INTERRUPT when the vCPU is ready (or at an
 * interrupt-window exit); plus the wiring that keeps Hyperlight-style PIC
 * EOIs of MSI timer ticks working.
 */
import assert from "node:assert/strict";
import { access } from "../plugins/testing/fake_context.ts";
import { FakeIrqChipContext } from "../plugins/testing/fake_irqchip.ts";
import { standardPlugins } from "../vmm/machine.ts";
import { bootGuest, failures, HAVE_KVM, passes } from "./kvm.ts";

Deno.test({
  name: "pic: 8259A pair in split mode on KVM",
  ignore: !HAVE_KVM,
  fn: () => {
    const { result, out, machine } = bootGuest("pic", [], { irqchip: "split" });
    using _ = machine;
    assert.deepEqual(failures(out), [], out);
    for (
      const c of [
        "edge_irq3_delivered_once",
        "isr_bit3_in_handler",
        "masked_irq4_in_irr",
        "unmask_irq4_delivered",
        "slave_irq10_delivered_once",
        "level_irq5_delivered_once",
        "level_retrigger_while_high",
        "aeoi_delivered",
        "aeoi_isr_clear_in_handler",
      ]
    ) assert.ok(passes(out).includes(c), `${c} ran`);
    assert.deepEqual(result, { reason: "exit", status: 1 });
    assert.ok(machine.vm.stats.extintInjected >= 8);
    assert.equal(machine.pic!.pic.stats.spurious, 0);
  },
});

Deno.test({
  name:
    "pic: 2 vCPUs (vCPU 0 on its own thread): ExtINT pumped at vCPU 0's exits, and raised by AP 1 while vCPU 0 halts",
  ignore: !HAVE_KVM,
  fn: () => {
    const { result, out, machine } = bootGuest("pic", [2], {
      irqchip: "split",
      vcpus: 2,
    });
    using _ = machine;
    assert.deepEqual(failures(out), [], out);
    for (
      const c of [
        "edge_irq3_delivered_once",
        "level_retrigger_while_high",
        "aeoi_delivered",
        "smp_ap_started",
        "smp_ap_extint_to_halted_bsp",
      ]
    ) assert.ok(passes(out).includes(c), `${c} ran`);
    assert.deepEqual(result, { reason: "exit", status: 1 });
    assert.ok(machine.vm.stats.extintInjected >= 8 + 20);
    assert.equal(machine.pic!.pic.stats.spurious, 0);
  },
});

Deno.test("pic: a PIC EOI with nothing in service reaches the LAPIC while the PV timer runs", () => {
  const { plugins, pic } = standardPlugins({ irqchip: "split" });
  const ctx = new FakeIrqChipContext();
  const regions = plugins.flatMap((p) => p.setup(ctx));
  const write = (port: number, bytes: Uint8Array) => {
    const r = regions.find((r) =>
      r.range.space === "pio" && port >= r.range.base &&
      port < r.range.base + r.range.length
    )!;
    const size = bytes.length as 1 | 4;
    r.write(access(port, port - r.range.base, size), bytes);
  };
  const out8 = (port: number, v: number) => write(port, new Uint8Array([v]));
  const out32 = (port: number, v: number) =>
    write(port, new Uint8Array(new Uint32Array([v]).buffer));
  out8(0x20, 0x20); // timer off: a stray EOI stays in the PIC
  assert.equal(ctx.lapicEois, 0);
  out32(107, 1000); // Hyperlight guest arms the PV timer (MSI ticks)
  out8(0x20, 0x20); // ...and acknowledges a tick the PIC way
  assert.equal(ctx.lapicEois, 1);
  // a PIC-programmed guest: the EOI retires the PIC's in-service IRQ only
  for (
    const [p, v] of [[0x20, 0x11], [0x21, 0x30], [0x21, 4], [0x21, 1], [
      0x21,
      0xf7,
    ]]
  ) out8(p, v);
  pic!.pic.setLevel(3, true);
  assert.equal(pic!.pic.acknowledge(), 0x33);
  out8(0x20, 0x20);
  assert.equal(ctx.lapicEois, 1);
  assert.equal(pic!.pic.master.isr, 0);
});
