/**
 * SMP on /dev/kvm: VMs with several vCPUs, APs started by the guest with
 * INIT/SIPI, their port exits handed to the TS bus, IPIs between vCPUs.
 * Asserts counts and states, never timing.
 */
import assert from "node:assert/strict";
import type { Plugin } from "../bus/types.ts";
import { parseAcpi } from "../plugins/acpi/parse.ts";
import { createMachine } from "../vmm/machine.ts";
import { echoPlugin } from "../plugins/echo/plugin.ts";
import { createVm, type Vm } from "../vmm/vm.ts";
import { bootGuest, failures, guestPath, HAVE_KVM, passes } from "./kvm.ts";

/** Records the (vCPU, value) of every 4-byte write to port 0x610. */
function reportPlugin(): Plugin & { reports: [number, number][] } {
  const reports: [number, number][] = [];
  return {
    name: "smp-report",
    reports,
    setup: () => [{
      range: { space: "pio", base: 0x610, length: 4 },
      read: (_a, data) => data.fill(0),
      write: (a, data) => {
        reports.push([
          a.vcpu,
          new DataView(data.buffer, data.byteOffset).getUint32(0, true),
        ]);
      },
    }],
  };
}

/**
 * Counts the 4-byte writes to port 0x614 per vCPU: each vCPU writes
 * 0, 1, 2, ... in order, so `byVcpu[v]` counts the writes that arrived in
 * order and once; any other value counts in `outOfOrder`.
 */
function hammerPlugin(): Plugin & { byVcpu: number[]; outOfOrder: number } {
  const p: Plugin & { byVcpu: number[]; outOfOrder: number } = {
    name: "hammer",
    byVcpu: [0, 0],
    outOfOrder: 0,
    setup: () => [{
      range: { space: "pio", base: 0x614, length: 4 },
      read: (_a, d) => d.fill(0),
      write: (a, d) => {
        const v = new DataView(d.buffer, d.byteOffset).getUint32(0, true);
        if (v === p.byVcpu[a.vcpu]) p.byVcpu[a.vcpu]++;
        else p.outOfOrder++;
      },
    }],
  };
  return p;
}

Deno.test("smp: vcpus is validated", () => {
  for (const vcpus of [0, 65, 1.5, NaN]) {
    assert.throws(() => createVm({ vcpus }), RangeError);
  }
});

Deno.test({
  name: "smp: N vCPUs on KVM",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    await t.step(
      "APs wait for INIT/SIPI with distinct APIC IDs and CPUID topology for N",
      () => {
        using m = createMachine({ vcpus: 4 });
        const vm = m.vm;
        assert.equal(vm.mpState(0), 0, "the BSP is runnable");
        for (let i = 1; i < 4; i++) {
          assert.equal(vm.mpState(i), 1, `vCPU ${i} waits for INIT/SIPI`);
        }
        const ids = [0, 1, 2, 3].map((i) => vm.cpuid(1, 0, i)![1] >>> 24);
        assert.deepEqual(ids, [0, 1, 2, 3]);
        for (let i = 0; i < 4; i++) {
          assert.equal((vm.cpuid(1, 0, i)![1] >>> 16) & 0xff, 4);
          assert.equal(vm.cpuid(0xb, 0, i)![3], i, "x2APIC ID (leaf 0xB EDX)");
        }
        assert.equal(vm.apThreads(), 0, "no AP thread outside run()");
        const madt = parseAcpi((a, n) => vm.memory.view(a, n)).madt;
        assert.deepEqual(
          madt.lapics.map((l) => [l.uid, l.apicId, l.flags & 1]),
          [[0, 0, 1], [1, 1, 1], [2, 2, 1], [3, 3, 1]],
          "MADT: one enabled LAPIC per vCPU",
        );
      },
    );

    await t.step("one vCPU starts no AP thread", () => {
      using m = createMachine({});
      assert.equal(m.vm.vcpus, 1);
      assert.throws(() => m.vm.mpState(1), /no vCPU 1/);
    });

    await t.step(
      "timeout and stop() end a run with every vCPU spinning; threads joined; snapshot/restore of all vCPUs; reset() returns the APs to wait-for-SIPI",
      () => {
        for (const irqchip of ["kernel", "split"] as const) {
          const plugin = reportPlugin();
          let out = "";
          using m = createMachine({
            irqchip,
            vcpus: 3,
            plugins: [plugin],
            serialOutput: (b) => out += String.fromCharCode(b),
          });
          const vm = m.vm;
          vm.load(guestPath("smp"), [3, 2, 1]);
          let r = vm.run({ timeoutMs: 200 });
          // The guest spins forever once it printed "spinning": run until
          // it did (each run ends by the timeout at the earliest).
          for (let i = 0; i < 100 && !out.includes("smp: spinning"); i++) {
            assert.equal(r.reason, "timeout", out);
            r = vm.run({ timeoutMs: 200 });
          }
          assert.match(out, /smp: spinning/);
          assert.deepEqual(failures(out), [], out);
          assert.equal(plugin.reports.length, 2, "both APs reported");
          assert.equal(vm.apThreads(), 0);
          // A snapshot carries every vCPU: restored into a VM of the same
          // size the APs are started and the guest keeps spinning; a VM
          // with another vCPU count refuses it.
          const snap = vm.snapshot();
          {
            using m2 = createMachine({
              irqchip,
              vcpus: 3,
              plugins: [reportPlugin()],
            });
            m2.vm.restore(snap);
            for (let i = 1; i < 3; i++) assert.notEqual(m2.vm.mpState(i), 1);
            assert.equal(m2.vm.run({ timeoutMs: 100 }).reason, "timeout");
            using m3 = createMachine({
              irqchip,
              vcpus: 2,
              plugins: [reportPlugin()],
            });
            assert.throws(
              () => m3.vm.restore(snap),
              /snapshot has 3 vCPUs, this VM 2/,
            );
          }
          vm.forgetSnapshot(snap);
          // Everyone spins: a stop() requested before the run ends it.
          vm.stop();
          assert.equal(vm.run({ timeoutMs: 60_000 }).reason, "stopped");
          assert.equal(vm.apThreads(), 0);
          // And a timeout again, with the AP threads restarted and joined.
          assert.equal(vm.run({ timeoutMs: 50 }).reason, "timeout");
          assert.equal(vm.apThreads(), 0);
          for (let i = 1; i < 3; i++) assert.notEqual(vm.mpState(i), 1);
          vm.reset();
          assert.equal(vm.mpState(0), 0);
          for (let i = 1; i < 3; i++) assert.equal(vm.mpState(i), 1);
        }
      },
    );

    await t.step(
      "AP port exits through the handoff: every write reaches the plugin once, tagged with its vCPU",
      () => {
        const k = 300;
        const hammer = hammerPlugin();
        const { result, out, machine } = bootGuest("smp", [2, 1, 0, k], {
          vcpus: 2,
          plugins: [reportPlugin(), hammer],
          timeoutMs: 120_000,
        });
        using _ = machine;
        assert.deepEqual(failures(out), [], out);
        assert.match(out, /smp: handoff bsp=\d+ ap=\d+/);
        assert.deepEqual(result, { reason: "exit", status: 1 }, out);
        assert.deepEqual(hammer.byVcpu, [k, k]);
      },
    );

    await t.step(
      "an AP exit parked when a run ends is handled by the next run, never lost (many short runs)",
      () => {
        const k = 300;
        const hammer = hammerPlugin();
        let out = "";
        using m = createMachine({
          vcpus: 2,
          plugins: [reportPlugin(), hammer],
          serialOutput: (b) => out += String.fromCharCode(b),
        });
        m.vm.load(guestPath("smp"), [2, 1, 0, k]);
        let r = m.vm.run({ timeoutMs: 1 });
        let runs = 1;
        for (; r.reason === "timeout" && runs < 200_000; runs++) {
          r = m.vm.run({ timeoutMs: 1 });
        }
        assert.deepEqual(failures(out), [], out);
        assert.deepEqual(r, { reason: "exit", status: 1 }, out);
        assert.deepEqual(hammer.byVcpu, [k, k], `after ${runs} runs`);
        assert.equal(hammer.outOfOrder, 0);
      },
    );

    await t.step(
      "runAsync keeps the AP threads between slices; a call that needs an AP stops them; every AP exit arrives once",
      async () => {
        const k = 300;
        const hammer = hammerPlugin();
        let out = "";
        using m = createMachine({
          vcpus: 2,
          plugins: [reportPlugin(), hammer],
          serialOutput: (b) => out += String.fromCharCode(b),
        });
        const vm = m.vm;
        vm.load(guestPath("smp"), [2, 1, 0, k]);
        let slices = 0, kept = 0, stopped = false;
        const r = await vm.runAsync({
          sliceMs: 1,
          timeoutMs: 120_000,
          onSlice: () => {
            slices++;
            if (vm.apThreads() === 1) kept++;
            if (kept === 3 && !stopped) {
              stopped = true;
              assert.ok(vm.mpState(1) >= 0, "an AP's state is readable");
              assert.equal(vm.apThreads(), 0, "mpState(1) stopped them");
            }
          },
        });
        assert.deepEqual(failures(out), [], out);
        assert.deepEqual(r, { reason: "exit", status: 1 }, out);
        assert.deepEqual(hammer.byVcpu, [k, k], `after ${slices} slices`);
        assert.ok(kept > 0, "AP threads kept between slices");
        assert.equal(vm.apThreads(), 0, "joined at the end");
      },
    );

    await t.step(
      "a plugin adds a range during a run while APs wait for SIPI (no AP holds the range table in KVM_RUN)",
      () => {
        let vmRef: Vm | undefined;
        let added = 0;
        const adder: Plugin = {
          name: "adder",
          setup: () => [{
            range: { space: "pio", base: 0x610, length: 4 },
            read: (_a, d) => d.fill(0),
            write: () => {
              // First AP report: APs 2 and 3 are still waiting for SIPI.
              if (added++ === 0) {
                vmRef!.add(echoPlugin({ space: "pio", base: 0x700 }));
              }
            },
          }],
        };
        const { result, out, machine } = bootGuest(
          "smp",
          [4, 1],
          { vcpus: 4, plugins: [adder], timeoutMs: 120_000 },
          (vm) => vmRef = vm,
        );
        using _ = machine;
        assert.deepEqual(failures(out), [], out);
        assert.deepEqual(result, { reason: "exit", status: 1 }, out);
        assert.equal(added, 3);
      },
    );

    for (const irqchip of ["kernel", "split"] as const) {
      for (const n of [2, 4]) {
        await t.step(
          `smp guest: ${n} vCPUs, ${irqchip} irqchip: INIT/SIPI, AP reports, fixed/NMI/broadcast IPI rounds, IOAPIC to each AP`,
          () => {
            const plugin = reportPlugin();
            const rounds = 8;
            const { result, out, machine } = bootGuest("smp", [n, rounds], {
              irqchip,
              vcpus: n,
              plugins: [plugin],
              timeoutMs: 120_000,
            });
            using _ = machine;
            assert.deepEqual(failures(out), [], out);
            assert.deepEqual(passes(out), [
              "smp_cpuid_count",
              "smp_bsp_is_apic_0",
              "smp_all_aps_started",
              "smp_ipi_counts_exact",
              "smp_nmi_counts_exact",
              "smp_broadcast_excluding_self",
              "smp_ioapic_physical_destination",
            ], out);
            assert.deepEqual(result, { reason: "exit", status: 1 }, out);
            const seen = plugin.reports.toSorted((a, b) => a[0] - b[0]);
            const want = Array.from(
              { length: n - 1 },
              (_, i) => [i + 1, i + 1],
            );
            assert.deepEqual(seen, want, "each AP reported its APIC ID once");
            assert.equal(machine.vm.apThreads(), 0, "AP threads joined");
            for (let i = 1; i < n; i++) {
              assert.notEqual(machine.vm.mpState(i), 1, `vCPU ${i} started`);
            }
          },
        );
      }
    }
  },
});
