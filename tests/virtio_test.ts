/**
 * PCI + MSI-X + virtio-pci end to end: the `virtio` guest enumerates bus 0,
 * assigns BARs, enables MSI-X with a vector per config/queue, drives
 * virtio-rng and a file-backed virtio-blk, checks masking (entry and
 * function), the pending-bit array and the configuration-change vector
 * raised by a host-side resize, in both irqchip modes.
 */
import assert from "node:assert/strict";
import type { Plugin } from "../bus/types.ts";
import { pciBusPlugin } from "../plugins/pci/pci_bus.ts";
import { virtioBlk } from "../plugins/virtio/blk.ts";
import { virtioRng } from "../plugins/virtio/rng.ts";
import { bootGuest, failures, HAVE_KVM, passes } from "./kvm.ts";

const DISK_BYTES = 64 * 1024;
const RESIZED_BYTES = 128 * 1024;

/** Port 0x2F0: the guest asks the host to resize the disk. */
function resizeHook(onResize: () => void): Plugin {
  return {
    name: "resize-hook",
    setup: () => [{
      range: { space: "pio", base: 0x2f0, length: 1 },
      read: (_a, d) => d.fill(0),
      write: (_a, d) => {
        if (d[0] === 1) onResize();
      },
    }],
  };
}

Deno.test({
  name: "virtio: rng + blk over PCI with MSI-X on KVM",
  ignore: !HAVE_KVM,
  fn: async (t) => {
    for (
      const [irqchip, msixIrqfd] of [
        ["kernel", false],
        ["split", false],
        ["kernel", true],
        ["split", true],
      ] as const
    ) {
      await t.step(
        `${irqchip} irqchip, MSI-X via ${
          msixIrqfd ? "irqfd" : "KVM_SIGNAL_MSI"
        }`,
        () => {
          const path = Deno.makeTempFileSync({
            prefix: "denovmm-virtio-",
            suffix: ".img",
          });
          try {
            Deno.truncateSync(path, DISK_BYTES);
            const blk = virtioBlk({ path });
            const pci = pciBusPlugin({
              msixIrqfd,
              devices: [
                { device: 1, function: virtioRng() },
                { device: 2, function: blk },
              ],
            });
            let resizes = 0;
            const hook = resizeHook(() => {
              resizes++;
              blk.device.resize(RESIZED_BYTES);
            });
            const { result, out, machine } = bootGuest("virtio", [
              RESIZED_BYTES / 512,
            ], {
              irqchip,
              plugins: [pci, hook],
            });
            if (msixIrqfd) {
              assert.ok(pci.irqfdCount >= 4, `irqfds: ${pci.irqfdCount}`);
            }
            machine.vm.close();
            assert.deepEqual(failures(out), [], out);
            const passed = passes(out);
            assert.ok(
              passed.length >= 60,
              `only ${passed.length} checks ran\n${out}`,
            );
            for (
              const c of [
                "msix_masked_no_interrupt",
                "msix_masked_pba_bit_set",
                "msix_unmask_delivers_once",
                "msix_unmask_pba_bit_clear",
                "fmask_no_interrupt",
                "fmask_clear_delivers_once",
                "config_change_irq_on_config_vector",
                "after_resize_sector1_intact",
              ]
            ) assert.ok(passed.includes(c), `${c} ran`);
            assert.match(out, /WAITING_FOR_RESIZE/);
            assert.deepEqual(result, { reason: "exit", status: 1 });
            assert.equal(resizes, 1);
            // what the guest wrote is in the backing file, after a resize
            const disk = Deno.readFileSync(path);
            assert.equal(disk.length, RESIZED_BYTES);
            for (let i = 0; i < 512; i++) {
              assert.equal(
                disk[512 + i],
                (i * 7 + 0x5a) & 0xff,
                `sector 1 byte ${i}`,
              );
            }
          } finally {
            Deno.removeSync(path);
          }
        },
      );
    }
  },
});
