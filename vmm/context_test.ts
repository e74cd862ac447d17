import assert from "node:assert/strict";
import type { MsiMessage, TickTarget } from "../bus/types.ts";
import { irqChipPlugin, isIrqChipPlugin } from "../bus/irqchip.ts";
import type { CoreVm } from "../ffi/core_vm.ts";
import { FakeTickSource } from "../plugins/testing/fake_context.ts";
import { FakeMemory } from "../plugins/testing/fake_context.ts";
import { type ContextHost, PluginContexts } from "./context.ts";

/** A host that records what the contexts ask of the VM. */
function host(irqchip: "kernel" | "split" = "split") {
  const lines: [number, boolean][] = [];
  const msis: MsiMessage[] = [];
  const routes: [number, MsiMessage | null][] = [];
  const calls: string[] = [];
  const core = {
    lapicEoi: () => void calls.push("lapicEoi"),
    irqfdResampleGsi: (g: number) => void calls.push(`resample ${g}`),
  } as unknown as CoreVm;
  const h: ContextHost = {
    core,
    irqchip,
    memory: new FakeMemory(4096),
    clock: { now: () => 0 },
    closed: () => false,
    log: () => {},
    addRegion: () => {},
    removeRegion: () => {},
    setLine: (gsi, level) => void lines.push([gsi, level]),
    signalMsi: (m) => (msis.push(m), true),
    routeMsi: (g, m) => void routes.push([g, m]),
    exit: () => {},
    halt: () => {},
    sleep: () => {},
    createTickSource: (t: TickTarget) => new FakeTickSource(t),
    addEoiListener: () => void calls.push("eoi listener"),
    addLineController: () => void calls.push("line controller"),
    setExtint: () => void calls.push("extint"),
  };
  return { h, lines, msis, routes, calls };
}

const PRIVILEGED = [
  "signalMsi",
  "routeMsi",
  "resample",
  "lapicEoi",
  "lapicHasVector",
  "msiIrqfd",
  "onEoi",
  "addLineController",
  "setExtint",
];

Deno.test("device context: no route, EOI, resample, ExtINT or raw MSI", () => {
  const { h } = host();
  const ctx = new PluginContexts(h).device("third-party") as unknown as Record<
    string,
    unknown
  >;
  for (const k of PRIVILEGED) assert.equal(k in ctx, false, k);
  // and a plugin cannot mark itself: the marker is not part of the package
  assert.equal(isIrqChipPlugin({ name: "x", setup: () => [] }), false);
});

Deno.test("irqchip context: the privileged members reach the host", () => {
  const { h, routes, calls } = host("split");
  const chip = new PluginContexts(h).irqchip("ioapic");
  for (const k of PRIVILEGED) {
    assert.equal(
      typeof (chip as unknown as Record<string, unknown>)[k],
      "function",
      k,
    );
  }
  chip.routeMsi(5, { address: 0xfee00000, data: 0x35 });
  chip.resample(5);
  chip.lapicEoi();
  chip.onEoi(() => {});
  chip.addLineController({ setLevel: () => {} });
  chip.setExtint({ interruptPending: false, acknowledge: () => 0 });
  assert.throws(() =>
    chip.setExtint({ interruptPending: false, acknowledge: () => 0 })
  );
  assert.deepEqual(routes, [[5, { address: 0xfee00000, data: 0x35 }]]);
  assert.deepEqual(calls, [
    "resample 5",
    "lapicEoi",
    "eoi listener",
    "line controller",
    "extint",
  ]);
  assert.equal(
    isIrqChipPlugin(irqChipPlugin({ name: "c", setup: () => [] })),
    true,
  );
});

Deno.test("irqchip context: line controllers and ExtINT need split mode", () => {
  const chip = new PluginContexts(host("kernel").h).irqchip("pic");
  assert.throws(() => chip.addLineController({ setLevel: () => {} }), /split/);
  assert.throws(
    () => chip.setExtint({ interruptPending: false, acknowledge: () => 0 }),
    /split/,
  );
});

Deno.test("lines are a wired OR: a device cannot retire another's interrupt", () => {
  const { h, lines } = host();
  const contexts = new PluginContexts(h);
  const a = contexts.device("a").interruptLine(10, "level");
  const b = contexts.device("b").interruptLine(10, "level");
  a.set(true);
  b.set(true);
  a.set(false); // b still asserts: the line stays high
  assert.deepEqual(lines, [[10, true]]);
  assert.equal(contexts.lineLevel(10), true);
  b.set(false);
  assert.deepEqual(lines, [[10, true], [10, false]]);
  // a source is per (device, line): asking again returns it
  const ctx = contexts.device("c");
  assert.equal(ctx.interruptLine(3, "edge"), ctx.interruptLine(3, "edge"));
  assert.throws(() => ctx.interruptLine(3, "level"), RangeError);
  assert.throws(() => ctx.interruptLine(-1, "edge"), RangeError);
  assert.throws(() => ctx.interruptLine(1024, "edge"), RangeError);
});

Deno.test("edge sources pulse; masked edges are held, one at most", () => {
  const { h, lines } = host();
  const irq = new PluginContexts(h).device("pit").interruptLine(0, "edge");
  irq.trigger();
  assert.deepEqual(lines, [[0, true], [0, false]]);
  irq.mask();
  irq.trigger();
  irq.trigger();
  assert.equal(lines.length, 2);
  irq.unmask();
  assert.deepEqual(lines.slice(2), [[0, true], [0, false]]);
  irq.unmask();
  assert.equal(lines.length, 4);
});

Deno.test("masking a level source lowers its share of the line", () => {
  const { h, lines } = host();
  const irq = new PluginContexts(h).device("uart").interruptLine(4, "level");
  irq.trigger();
  irq.mask();
  irq.unmask();
  assert.deepEqual(lines, [[4, true], [4, false], [4, true]]);
  assert.equal(irq.level, true);
});

Deno.test("MSI sources: modify, trigger, mask holds one pending", () => {
  const { h, msis } = host();
  const m = new PluginContexts(h).device("nic").msiInterrupt();
  m.trigger(); // no message yet: dropped
  m.modify({ address: 0xfee00000, data: 0x41 });
  m.trigger();
  m.mask();
  m.trigger();
  m.trigger();
  assert.equal(m.pending, true);
  m.unmask();
  assert.deepEqual(msis.map((x) => x.data), [0x41, 0x41]);
  assert.equal(m.pending, false);
});

Deno.test("reset lowers every source without signalling", () => {
  const { h, lines } = host();
  const contexts = new PluginContexts(h);
  const irq = contexts.device("uart").interruptLine(4, "level");
  irq.set(true);
  contexts.reset();
  assert.equal(irq.level, false);
  assert.equal(contexts.lineLevel(4), false);
  irq.set(true); // raised again after reset: the irqchip sees it
  assert.deepEqual(lines, [[4, true], [4, true]]);
});

Deno.test("irqchip context: lapicHasVector looks in every vCPU's LAPIC it can read", () => {
  const { h } = host("split");
  // vCPU 0: nothing; vCPU 1: vector 0x71 in service (ISR word 3, bit 17);
  // vCPU 2: inside KVM_RUN (busy).
  const reads: number[] = [];
  const core = {
    lapicRead: (vcpu: number, offsets: readonly number[]) => {
      reads.push(vcpu);
      if (vcpu === 2) throw new Error("vCPU 2 is running");
      if (vcpu === 1 && offsets[0] === 0x130) return [1 << 17, 0];
      return [0, 0];
    },
  } as unknown as CoreVm;
  const chip = new PluginContexts({ ...h, core, vcpus: 3 }).irqchip("ioapic");
  assert.equal(chip.lapicHasVector(0x71), true);
  assert.deepEqual(reads, [0, 1]);
  reads.length = 0;
  assert.equal(chip.lapicHasVector(0x72), false, "a busy vCPU is skipped");
  assert.deepEqual(reads, [0, 1, 2]);
  const one = new PluginContexts({ ...h, core }).irqchip("ioapic");
  reads.length = 0;
  assert.equal(one.lapicHasVector(0x71), false, "one vCPU: only vCPU 0");
  assert.deepEqual(reads, [0]);
});
