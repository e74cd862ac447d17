/**
 * Multiboot v1 kernels (ELF32 and a.out kludge) boot with the QEMU-style
 * devices: command line and module through the multiboot info, fw_cfg
 * signature / RAM size / CPUs / command line, exit through isa-debug-exit.
 */
import assert from "node:assert/strict";
import { CoreError } from "../ffi/library.ts";
import { createMachine } from "../vmm/machine.ts";
import { failures, HAVE_KVM, passes } from "./kvm.ts";

const CMDLINE = "denovmm-multiboot-test arg=42";
const build = (f: string) =>
  decodeURIComponent(new URL(`../guests/build/${f}`, import.meta.url).pathname);

Deno.test({
  name: "multiboot: test kernels boot and report through 0xF4",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    const images = [
      "multiboot_elf32.elf",
      "multiboot_aout.bin",
      "multiboot_low.bin", // loads at 0x8000, in conventional memory
    ];
    for (const image of images) {
      for (const irqchip of ["kernel", "split"] as const) {
        await t.step(`${image}, ${irqchip} irqchip`, () => {
          let out = "";
          using m = createMachine({
            irqchip,
            memory: "32M",
            cmdline: CMDLINE,
            serialOutput: (b) => out += String.fromCharCode(b),
          });
          m.vm.loadMultiboot(build(image), {
            cmdline: CMDLINE,
            modules: [{
              bytes: new TextEncoder().encode("MODULE0 payload"),
              cmdline: "mod0",
            }],
          });
          const r = m.vm.run({ timeoutMs: 20_000 });
          assert.deepEqual(failures(out), [], out);
          // GRUB/QEMU style: the image name, then the arguments.
          assert.ok(
            out.includes(`cmdline="${build(image)} ${CMDLINE}"`),
            out,
          );
          for (
            const c of [
              "multiboot_magic",
              "mb_cmdline",
              "mb_module_content",
              "long_mode_entered",
              "fwcfg_signature",
              "fwcfg_ram_size",
              "fwcfg_cmdline",
              "fwcfg_unknown_key_zero",
            ]
          ) assert.ok(passes(out).includes(c), `${c} in\n${out}`);
          assert.deepEqual(r, { reason: "exit", status: 1 });
        });
      }
    }

    await t.step("hostile multiboot images are refused", () => {
      using m = createMachine({});
      assert.throws(
        () => m.vm.loadMultiboot(new Uint8Array(64)),
        (e: unknown) =>
          e instanceof CoreError && /no multiboot header/.test(e.message),
      );
      const img = Deno.readFileSync(build("multiboot_aout.bin"));
      // break the checksum of the header (first 8 KiB, magic 0x1BADB002)
      const dv = new DataView(img.buffer);
      for (let o = 0; o < 8192; o += 4) {
        if (dv.getUint32(o, true) === 0x1badb002) {
          dv.setUint32(o + 8, dv.getUint32(o + 8, true) ^ 1, true);
          break;
        }
      }
      assert.throws(() => m.vm.loadMultiboot(img), /checksum/);
    });
  },
});
