/**
 * Interrupts across CPUs on /dev/kvm: the `ioapic_smp` guest routes an
 * IOAPIC pin and MSIs by every destination form (physical, logical flat
 * and cluster, lowest priority, broadcast) and two level lines to two
 * CPUs, and reports per CPU which interrupts it took. Asserts counts and
 * states, never timing.
 */
import assert from "node:assert/strict";
import type { DeviceContext, MsiInterrupt, Plugin } from "../bus/types.ts";
import { cpuTablePlugin } from "./cpu_table.ts";
import { bootGuest, failures, HAVE_KVM, passes } from "./kvm.ts";

function u32(d: Uint8Array): number {
  return new DataView(d.buffer, d.byteOffset).getUint32(0, true);
}

/**
 * The guest's MSI source: a 4-byte write to 0x640 sets the address, one to
 * 0x644 the data and signals the message (through the VM's MSI path).
 */
function msiPlugin(): Plugin & { sent: number } {
  let msi: MsiInterrupt | undefined;
  let address = 0;
  const p = {
    name: "smp-msi",
    sent: 0,
    setup: (ctx: DeviceContext) => {
      msi = ctx.msiInterrupt();
      return [{
        range: { space: "pio" as const, base: 0x640, length: 8 },
        read: (_a: unknown, d: Uint8Array) => d.fill(0),
        write: (a: { offset: number; size: number }, d: Uint8Array) => {
          if (a.size !== 4) return;
          if (a.offset === 0) address = u32(d);
          else {
            msi!.modify({ address, data: u32(d) });
            msi!.trigger();
            p.sent++;
          }
        },
      }];
    },
  };
  return p;
}

/** What the guest must report, case by case, for `n` CPUs (see ioapic_smp.c). */
function expected(n: number): { fixed: number[][]; lowest: Set<number> } {
  const fixed: number[][] = [];
  const lowest = new Set<number>();
  const one = (mask: number, reps = 1) =>
    Array.from({ length: n }, (_, i) => (mask >> i) & 1 ? reps : 0);
  const all = (1 << n) - 1;
  const last = (n - 1) >> 1;
  const members = (3 << (2 * last)) & all;
  for (let via = 0; via < 2; via++) {
    for (let i = 0; i < n; i++) fixed.push(one(1 << i)); // physical each
    fixed.push(one(all)); // physical broadcast
    for (let i = 0; i < n; i++) fixed.push(one(1 << i)); // flat each
    fixed.push(one(all)); // flat all
    fixed.push(one(0)); // flat none
    lowest.add(fixed.length);
    fixed.push(one(all, 8)); // flat lowest priority: the set, 8 in all
    for (let i = 0; i < n; i++) fixed.push(one(1 << i)); // cluster each
    fixed.push(one(members)); // cluster pair
    fixed.push(one(all)); // cluster broadcast
    lowest.add(fixed.length);
    fixed.push(one(members, 8)); // cluster lowest priority
  }
  return { fixed, lowest };
}

const CHECKS = [
  "physical_each_cpu",
  "physical_broadcast",
  "flat_each_cpu",
  "flat_all",
  "flat_none",
  "flat_lowest_priority",
  "cluster_each_cpu",
  "cluster_pair",
  "cluster_broadcast",
  "cluster_lowest_priority",
];

Deno.test({
  name: "ioapic_smp: IOAPIC and MSI destinations and level EOIs across vCPUs",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    for (const irqchip of ["kernel", "split"] as const) {
      for (const n of [2, 4]) {
        await t.step(`${n} vCPUs, ${irqchip} irqchip`, () => {
          const msi = msiPlugin();
          const tab = cpuTablePlugin();
          const { result, out, machine } = bootGuest(
            "ioapic_smp",
            [n, 1, 1000, 1],
            {
              irqchip,
              vcpus: n,
              plugins: [msi, tab],
              timeoutMs: 240_000,
            },
          );
          using _ = machine;
          assert.deepEqual(failures(out), [], out);
          assert.deepEqual(passes(out), [
            "all_aps_started",
            ...CHECKS.map((c) => `ioapic_${c}`),
            ...CHECKS.map((c) => `msi_${c}`),
            "level_each_cpu_retriggers_exactly",
            "level_remote_irr_clear",
            // The LAPIC offers directed EOI with our IOAPIC only.
            ...(irqchip === "split"
              ? [
                "directed_eoi_on_ap_retriggers_exactly",
                "directed_eoi_on_ap_lapic_eoi_not_broadcast",
              ]
              : []),
            "pv_timer_ap_alone",
            "pv_timer_bsp_alone",
            "pv_timer_both",
          ], out);
          assert.deepEqual(result, { reason: "exit", status: 1 }, out);
          // The host's view of the same counts.
          const { fixed, lowest } = expected(n);
          for (let c = 0; c < fixed.length; c++) {
            const row = tab.table.get(c);
            assert.ok(row !== undefined, `case ${c} reported`);
            if (lowest.has(c)) {
              const sum = row.reduce((a, b) => a + b, 0);
              assert.equal(sum, 8, `case ${c}: one CPU per interrupt`);
              row.forEach((v, i) =>
                assert.ok(
                  v === 0 || fixed[c][i] > 0,
                  `case ${c}: CPU ${i} is not in the destination`,
                )
              );
            } else {
              assert.deepEqual(row, fixed[c], `case ${c}`);
            }
          }
          assert.equal(tab.table.size, fixed.length + 3, "every case reported");
          // Per-vCPU PV timers: ticks reached vCPUs 0 and 1 only.
          const tk = tab.table.get(0x200)!;
          assert.ok(tk[0] >= 10 && tk[1] >= 10, `ticks ${tk}`);
          for (let i = 2; i < n; i++) assert.equal(tk[i], 0, `CPU ${i} ticks`);
          assert.deepEqual(
            tab.table.get(0x100),
            Array.from({ length: n }, (_, i) => i === 1 ? 4 : 0),
            "level line 0 on CPU 1 only",
          );
          assert.deepEqual(
            tab.table.get(0x101),
            Array.from({ length: n }, (_, i) => i === 0 ? 4 : 0),
            "level line 1 on CPU 0 only",
          );
          const msis = fixed.length / 2;
          assert.ok(msi.sent >= msis, "the MSI cases went through the plugin");
        });
      }
    }
  },
});
