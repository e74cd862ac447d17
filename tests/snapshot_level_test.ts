/**
 * Host level sources across snapshots: their pending work is machine
 * state (rolled back and restored), their lines are configuration (a VM
 * restoring a snapshot must have the same sources). The guest never runs,
 * so no EOI retires work: the counts are exact.
 */
import assert from "node:assert/strict";
import { restoreVm } from "../vmm/restore.ts";
import { loadSnapshot, SnapshotError } from "../vmm/snapshot.ts";
import { createVm } from "../vmm/vm.ts";
import { HAVE_KVM } from "./kvm.ts";

Deno.test({
  name: "snapshot: level sources' pending work",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    for (const irqchip of ["kernel", "split"] as const) {
      const opts = { memory: "16M", irqchip };
      await t.step(`${irqchip}: rollback restores pending work`, () => {
        using vm = createVm(opts);
        const a = vm.createLevelSource(10);
        const b = vm.createLevelSource(11);
        a.add(5);
        b.add(2);
        const snap = vm.snapshot();
        a.add(3);
        b.add(7);
        assert.equal(a.stats().pending, 8);
        vm.restore(snap);
        assert.equal(a.stats().pending, 5);
        assert.equal(b.stats().pending, 2);
        // The restored work is live: it keeps counting from there.
        a.add(1);
        assert.equal(a.stats().pending, 6);
      });
      await t.step(
        `${irqchip}: a file restore into a VM with the same sources`,
        () => {
          const path = Deno.makeTempFileSync({ suffix: ".snap" });
          try {
            {
              using vm = createVm(opts);
              vm.createLevelSource(10).add(4);
              vm.snapshot(path);
            }
            const snap = loadSnapshot(path);
            assert.deepEqual(snap.meta.levels, [10]);
            using back = createVm(opts);
            const src = back.createLevelSource(10);
            back.restore(snap);
            assert.equal(src.stats().pending, 4);
          } finally {
            Deno.removeSync(path);
          }
        },
      );
      await t.step(`${irqchip}: different sources are a clear mismatch`, () => {
        using vm = createVm(opts);
        vm.createLevelSource(10).add(1);
        const snap = vm.snapshot();
        // restoreVm creates a VM without level sources.
        assert.throws(
          () => restoreVm(snap, { vm: opts }),
          (e: unknown) =>
            e instanceof SnapshotError && e.kind === "mismatch" &&
            /level sources on GSI \[10\], this VM on \[\]/.test(e.message),
        );
        using other = createVm(opts);
        other.createLevelSource(12);
        assert.throws(
          () => other.restore(snap),
          /level sources on GSI \[10\], this VM on \[12\]/,
        );
        // A closed source no longer counts.
        using gone = createVm(opts);
        gone.createLevelSource(10).close();
        assert.throws(() => gone.restore(snap), /this VM on \[\]/);
      });
    }
  },
});
