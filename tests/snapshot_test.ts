/**
 * End-to-end snapshot tests on /dev/kvm with the `snapshot` guest: work
 * whose checksum depends only on its step count, under a ticking PV timer.
 * Invariants only (checksums, step and tick counts, bytes), never timing.
 */
import assert from "node:assert/strict";
import { pvTimerPlugin } from "../plugins/pv_timer/plugin.ts";
import { restoreVm } from "../vmm/restore.ts";
import { loadSnapshot, SnapshotError } from "../vmm/snapshot.ts";
import { createVm, type Vm } from "../vmm/vm.ts";
import { guestPath, HAVE_KVM } from "./kvm.ts";

const STEPS = 30000;
const MSI_PIN = 0xffffffff;
type Mode = "kernel" | "split";

/** Kernel mode: ticks through KVM's IOAPIC pin 0 (its state is snapshotted); split: MSI. */
const opts = (irqchip: Mode) => ({
  memory: "16M",
  irqchip,
  plugins: [
    pvTimerPlugin({
      target: irqchip === "kernel"
        ? { kind: "gsi", gsi: 0 }
        : { kind: "msi", vector: 0x20, destination: 0 },
    }),
  ],
});
const args = (
  irqchip: Mode,
) => [STEPS, 1000, 5, irqchip === "kernel" ? 0 : MSI_PIN];

interface Results {
  ticks: number;
  steps: number;
  sum: bigint;
  done: boolean;
}
function results(vm: Vm): Results {
  const d = new DataView(vm.memory.view(0x200000, 40).slice().buffer);
  const u = (i: number) => d.getBigUint64(8 * i, true);
  return {
    ticks: Number(u(1)),
    steps: Number(u(2)),
    sum: u(3),
    done: u(4) === 1n,
  };
}

function finish(vm: Vm): Results {
  assert.deepEqual(vm.run({ timeoutMs: 60_000 }), { reason: "halt" });
  const r = results(vm);
  assert.ok(r.done);
  assert.equal(r.steps, STEPS);
  return r;
}

/** Boot and run until the guest is mid-work (stop by timeout). */
function midRun(irqchip: Mode): Vm {
  const vm = createVm(opts(irqchip));
  vm.load(guestPath("snapshot"), args(irqchip));
  for (let ms = 100;; ms = Math.max(5, ms / 2)) {
    assert.deepEqual(vm.run({ timeoutMs: ms }), { reason: "timeout" });
    const r = results(vm);
    if (r.steps > 0 && r.steps < STEPS) return vm;
  }
}

const tmp = () => Deno.makeTempFileSync({ suffix: ".snap" });

Deno.test({
  name: "snapshot: restore, rollback, diff, clones",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    const ref: Record<string, bigint> = {};
    for (const irqchip of ["kernel", "split"] as const) {
      await t.step(`${irqchip}: reference run`, () => {
        using vm = createVm(opts(irqchip));
        vm.load(guestPath("snapshot"), args(irqchip));
        ref[irqchip] = finish(vm).sum;
      });

      await t.step(
        `${irqchip}: file snapshot mid-run → new VM → same result, ticks on`,
        () => {
          const path = tmp();
          let at: Results;
          {
            using vm = midRun(irqchip);
            at = results(vm);
            vm.snapshot(path);
          }
          assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
          using back = restoreVm(path, { vm: opts(irqchip) });
          assert.deepEqual(results(back), at, "RAM is the snapshot's");
          const end = finish(back);
          assert.equal(end.sum, ref[irqchip]);
          assert.ok(
            end.ticks >= at.ticks + 5,
            `ticks ${at.ticks} → ${end.ticks}`,
          );
          Deno.removeSync(path);
        },
      );

      await t.step(
        `${irqchip}: in-place rollback is byte-identical, twice`,
        () => {
          using vm = midRun(irqchip);
          const before = vm.memory.view(0, vm.memory.size).slice();
          const snap = vm.snapshot();
          for (let round = 0; round < 2; round++) {
            assert.equal(finish(vm).sum, ref[irqchip]);
            vm.restore(snap);
            const after = vm.memory.view(0, vm.memory.size).slice();
            assert.ok(
              after.every((b, i) => b === before[i]),
              `round ${round}: RAM differs from the snapshot`,
            );
          }
          assert.equal(finish(vm).sum, ref[irqchip]);
        },
      );
    }

    for (const irqchip of ["kernel", "split"] as const) {
      await t.step(`${irqchip}: diff snapshot over its base`, () => {
        const [base, diff] = [tmp(), tmp()];
        {
          using vm = midRun(irqchip);
          vm.snapshot(base);
          vm.run({ timeoutMs: 30 });
          assert.ok(results(vm).steps < STEPS, "still mid-run");
          vm.snapshot(diff, { diff: true });
        }
        assert.ok(
          Deno.statSync(diff).blocks! < Deno.statSync(base).blocks!,
          "the diff holds fewer pages",
        );
        assert.throws(
          () => restoreVm(diff, { vm: opts(irqchip) }),
          (e: unknown) =>
            e instanceof SnapshotError && e.kind === "mismatch" &&
            /pass its base/.test(e.message),
        );
        using back = restoreVm(diff, { base, vm: opts(irqchip) });
        assert.equal(finish(back).sum, ref[irqchip]);
        Deno.removeSync(base);
        Deno.removeSync(diff);
      });

      await t.step(`${irqchip}: 16 copy-on-write clones of one file`, () => {
        const path = tmp();
        {
          using vm = midRun(irqchip);
          vm.snapshot(path);
        }
        const snap = loadSnapshot(path);
        const clones = Array.from(
          { length: 16 },
          () => restoreVm(snap, { vm: opts(irqchip) }),
        );
        try {
          for (const c of clones) assert.equal(finish(c).sum, ref[irqchip]);
        } finally {
          for (const c of clones) c.close();
        }
        Deno.removeSync(path);
      });
    }

    await t.step("kernel: restore in another process", async () => {
      const path = tmp();
      {
        using vm = midRun("kernel");
        vm.snapshot(path);
      }
      const script = `
        import { pvTimerPlugin } from "${new URL(
        "../plugins/pv_timer/plugin.ts",
        import.meta.url,
      )}";
        import { restoreVm } from "${new URL(
        "../vmm/restore.ts",
        import.meta.url,
      )}";
        using vm = restoreVm(${
        JSON.stringify(path)
      }, { vm: { plugins: [pvTimerPlugin({ target: { kind: "gsi", gsi: 0 } })] } });
        const r = vm.run({ timeoutMs: 60000 });
        console.log(JSON.stringify({ r, sum: vm.memory.view(0x200018, 8).slice() }));`;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", script],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      assert.ok(out.success);
      const { r, sum } = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.deepEqual(r, { reason: "halt" });
      const got = new DataView(
        new Uint8Array(Object.values(sum) as number[]).buffer,
      ).getBigUint64(0, true);
      assert.equal(got, ref.kernel);
      Deno.removeSync(path);
    });

    await t.step("bad files: each its own clear error", () => {
      const path = tmp();
      {
        using vm = midRun("kernel");
        vm.snapshot(path);
      }
      const bytes = Deno.readFileSync(path);
      const cases: [string, (b: Uint8Array) => Uint8Array, string, RegExp][] = [
        [
          "truncated",
          (b) => b.subarray(0, b.length - 4096),
          "truncated",
          /memory image ends/,
        ],
        [
          "corrupt header",
          (b) => (b[25] ^= 1, b),
          "corrupt",
          /header checksum/,
        ],
        [
          "corrupt section",
          (b) => (b[64 + 24 * 3 + 5] ^= 1, b),
          "corrupt",
          /section META checksum/,
        ],
        ["not a snapshot", (b) => (b[0] = 0, b), "not-a-snapshot", /magic/],
      ];
      for (const [what, mangle, kind, msg] of cases) {
        const p = tmp();
        Deno.writeFileSync(p, mangle(bytes.slice()));
        assert.throws(
          () => restoreVm(p, { vm: opts("kernel") }),
          (e: unknown) =>
            e instanceof SnapshotError && e.kind === kind &&
            msg.test(e.message),
          what,
        );
        Deno.removeSync(p);
      }
      // A flipped byte in the memory image: found when asked to verify.
      const p = tmp();
      const m = bytes.slice();
      const memOff = Number(new DataView(m.buffer).getBigUint64(24, true));
      m[memOff + 0x200000 + 24] ^= 0x40; // the guest's checksum word
      Deno.writeFileSync(p, m);
      assert.throws(
        () => restoreVm(p, { vm: opts("kernel"), verifyMemory: true }),
        (e: unknown) =>
          e instanceof SnapshotError && e.kind === "corrupt" &&
          /memory image checksum/.test(e.message),
      );
      Deno.removeSync(p);
      // Mismatched VMs.
      const mismatch: [string, () => unknown, RegExp][] = [
        [
          "irqchip",
          () => restoreVm(path, { vm: { ...opts("split"), irqchip: "split" } }),
          /kernel irqchip, this VM the split/,
        ],
        [
          "memory",
          () => restoreVm(path, { vm: { ...opts("kernel"), memory: "32M" } }),
          /16777216 bytes of RAM, this VM 33554432/,
        ],
        [
          "plugins",
          () => restoreVm(path, { vm: { plugins: [] } }),
          /plugins differ.*missing pv-timer/,
        ],
        [
          "CPU model",
          () =>
            restoreVm(path, { vm: { ...opts("kernel"), cpu: "host,-x2apic" } }),
          /CPU model differs at CPUID leaf 0x1:/,
        ],
      ];
      for (const [what, f, msg] of mismatch) {
        assert.throws(
          f,
          (e: unknown) =>
            e instanceof SnapshotError && e.kind === "mismatch" &&
            msg.test(e.message),
          what,
        );
      }
      Deno.removeSync(path);
    });
  },
});
