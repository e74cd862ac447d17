/**
 * Guest RAM sizes and layout on KVM: RAM past the MMIO hole continues at
 * 4 GiB and the guest reaches it; sizes and guest arguments are validated
 * with messages that name them; large RAM is reserved lazily.
 */
import assert from "node:assert/strict";
import { AbiConst } from "../ffi/abi.ts";
import { createMachine } from "../vmm/machine.ts";
import { createVm } from "../vmm/vm.ts";
import { failures, guestPath, HAVE_KVM, passes } from "./kvm.ts";

const GiB = 2 ** 30;
const HOLE = AbiConst.DV_RAM_HOLE_START;
const HIGH = AbiConst.DV_RAM_HIGH_BASE;
const rssKb = () =>
  Number(Deno.readTextFileSync("/proc/self/statm").split(" ")[1]) * 4;
const u64At = (b: Uint8Array) =>
  new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);

Deno.test({
  name: "memory: RAM around the MMIO hole, validated sizes",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    for (const irqchip of ["kernel", "split"] as const) {
      await t.step(`a 5 GiB guest uses RAM above 4 GiB (${irqchip})`, () => {
        let out = "";
        using m = createMachine({
          irqchip,
          memory: "5G",
          serialOutput: (b) => out += String.fromCharCode(b),
        });
        const mem = m.vm.memory;
        assert.equal(mem.size, 5 * GiB);
        assert.equal(mem.contains(HOLE - 8, 8), true, "RAM up to the hole");
        assert.equal(mem.contains(HOLE, 1), false, "the hole is MMIO");
        const highSize = 5 * GiB - HOLE;
        assert.equal(mem.contains(HIGH + highSize - 8, 8), true);
        assert.equal(mem.contains(HIGH + highSize, 1), false);
        const offset = 0x1234_5000;
        const value = 0x12_3456_789a_bcden;
        const slot = mem.view(HIGH + offset, 16);
        new DataView(slot.buffer, slot.byteOffset).setBigUint64(0, value, true);
        m.vm.load(guestPath("highmem"), [offset, value]);
        const r = m.vm.run({ timeoutMs: 20_000 });
        assert.deepEqual(failures(out), [], out);
        assert.equal(passes(out).length, 2, out);
        assert.deepEqual(r, { reason: "exit", status: 1 }, out); // (0 << 1) | 1
        assert.equal(
          u64At(mem.view(HIGH + offset + 8, 8)),
          BigInt.asUintN(64, ~value),
          "the guest's write landed in the host mapping past the low part",
        );
      });
    }

    await t.step("16 GiB of RAM is reserved lazily", () => {
      const before = rssKb();
      using vm = createVm({ memory: 16 * GiB });
      assert.equal(vm.memory.size, 16 * GiB);
      vm.memory.write(HIGH + 13 * GiB, new Uint8Array([1]));
      assert.ok(
        rssKb() - before < 64 * 1024,
        `RSS grew ${rssKb() - before} KiB`,
      );
    });

    await t.step("bad memory sizes name the option", () => {
      for (
        const bad of [
          1.5,
          NaN,
          Infinity,
          -4096,
          2 ** 64,
          4097,
          1 << 20,
          "3X",
          "2T",
        ]
      ) {
        assert.throws(
          () => createVm({ memory: bad }),
          (e: unknown) =>
            e instanceof RangeError && /size|memory/.test(e.message) &&
            e.message.includes(String(bad)),
          String(bad),
        );
      }
    });

    await t.step("guest arguments are never silently cut", () => {
      using vm = createVm({});
      const hello = guestPath("hello");
      for (const bad of [1.5, 2 ** 64, NaN, 2n ** 64n, -(2n ** 63n) - 1n]) {
        assert.throws(() => vm.load(hello, [bad]), /guest argument 0/);
      }
      vm.load(hello, [2n ** 64n - 1n, -1, 2 ** 53 - 1]);
    });
  },
});
