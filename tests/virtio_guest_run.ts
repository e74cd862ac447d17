/**
 * Scratch runner for guests/build/virtio.elf: PCI bus with virtio-rng at
 * 00:01.0 and virtio-blk at 00:02.0 (backed by a temp file of 64 KiB), a
 * 1-port PIO hook at 0x2F0 whose write of 1 grows the disk to 128 KiB, run
 * in both irqchip modes. Prints the run result and serial output, checks the
 * exit status (0 failures -> status 1) and that sector 1 of the backing
 * file holds the guest's pattern (byte i = (i * 7 + 0x5A) & 0xFF).
 *
 *   deno run -A tests/virtio_guest_run.ts
 */
import { createMachine } from "../vmm/machine.ts";
import type { Plugin } from "../bus/types.ts";
import { pciBusPlugin } from "../plugins/pci/pci_bus.ts";
import { virtioRng } from "../plugins/virtio/rng.ts";
import { virtioBlk } from "../plugins/virtio/blk.ts";

const ELF = new URL("../guests/build/virtio.elf", import.meta.url).pathname;
const DISK_BYTES = 64 * 1024;
const RESIZED_BYTES = 128 * 1024;

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

let bad = 0;
for (const irqchip of ["kernel", "split"] as const) {
  const path = Deno.makeTempFileSync({
    prefix: "denovmm-virtio-",
    suffix: ".img",
  });
  try {
    Deno.truncateSync(path, DISK_BYTES);
    const blk = virtioBlk({ path });
    const pci = pciBusPlugin({
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
    let out = "";
    let result;
    {
      using m = createMachine({
        irqchip,
        serialOutput: (b) => out += String.fromCharCode(b),
        plugins: [pci, hook],
      });
      m.vm.load(ELF, [RESIZED_BYTES / 512]);
      const t0 = performance.now();
      result = m.vm.run({ timeoutMs: 20000 });
      console.log(
        `=== irqchip=${irqchip}: ${JSON.stringify(result)} in ${
          (performance.now() - t0).toFixed(1)
        } ms; resizes=${resizes}; pci counters ${
          JSON.stringify(pci.counters)
        }; blk ${JSON.stringify(blk.device.counters)}; blk fn ${
          JSON.stringify(blk.counters)
        }`,
      );
    }
    console.log(out);
    const disk = Deno.readFileSync(path);
    let patternOk = disk.length === RESIZED_BYTES;
    for (let i = 0; i < 512; i++) {
      if (disk[512 + i] !== ((i * 7 + 0x5a) & 0xff)) patternOk = false;
    }
    const fails = out.split("\n").filter((l) => l.startsWith("FAIL "));
    const ok = result.reason === "exit" && result.status === 1 &&
      fails.length === 0 && patternOk && resizes === 1 &&
      out.includes("WAITING_FOR_RESIZE");
    console.log(
      `=== irqchip=${irqchip}: ${
        ok ? "OK" : "BAD"
      } (disk ${disk.length} bytes, ` +
        `sector 1 pattern ${
          patternOk ? "present" : "MISSING"
        }, ${fails.length} FAIL lines)`,
    );
    if (!ok) bad++;
  } finally {
    Deno.removeSync(path);
  }
}
if (bad) {
  console.log(`virtio_guest_run: ${bad} mode(s) failed`);
  Deno.exit(1);
}
console.log("virtio_guest_run: OK (kernel and split)");
