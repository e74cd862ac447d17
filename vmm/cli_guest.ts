/**
 * Setup module for running the CLI's standard machine in a Worker with
 * `spawnVm` (the CLI itself runs in-process): builds the machine inside
 * the vCPU worker, with COM1 output written to stdout.
 *
 * @module
 */
import { host } from "../ffi/host.ts";
import { createMachine, type TimerDelivery } from "./machine.ts";
import type { IrqchipMode } from "./vm.ts";
import type { WorkerSetup } from "./worker_host.ts";
import { imageKind } from "./image_kind.ts";
import { readHostFile } from "./host_file.ts";

export { imageKind } from "./image_kind.ts";
import type { CpuOption } from "./cpu_spec.ts";

/** Arguments the CLI passes to the worker. */
export interface CliGuestArgs {
  /** ELF64 guest path. */
  path: string;
  /** Irqchip mode. */
  irqchip: IrqchipMode;
  /** RAM size string or bytes. */
  memory: string;
  /** Fail on unclaimed accesses. */
  strict: boolean;
  /** Run timeout in ms. */
  timeoutMs: number;
  /** Guest arguments (RDI, RSI, RDX, RCX). */
  args: string[];
  /** PV timer delivery. */
  timer: TimerDelivery;
  /** Kernel command line (multiboot info and fw_cfg). */
  cmdline?: string;
  /** Multiboot module paths. */
  modules?: string[];
  /** CPU model (`--cpu`). */
  cpu?: CpuOption;
}

/**
 * Build the CLI's machine.
 *
 * @example
 * ```ts ignore
 * import setup from "./cli_guest.ts";
 * const s = setup({ path: "guests/build/hello.elf", irqchip: "kernel", memory: "16M", strict: false, timeoutMs: 1000, args: [], timer: "msi" });
 * console.log(s.vm.run(s.run));
 * ```
 */
export default function setup(a: CliGuestArgs): WorkerSetup {
  const out = new Uint8Array(4096);
  let n = 0;
  const flush = () => {
    if (n === 0) return;
    let off = 0;
    while (off < n) off += host.writeStdout(out.subarray(off, n));
    n = 0;
  };
  const machine = createMachine({
    irqchip: a.irqchip,
    memory: a.memory,
    strict: a.strict,
    timerDelivery: a.timer,
    cmdline: a.cmdline,
    cpu: a.cpu,
    serialOutput: (b) => {
      out[n++] = b;
      if (b === 0x0a || n === out.length) flush();
    },
    log: (level, source, msg) => {
      if (level === "warn" || level === "error") {
        flush();
        console.error(`[denovmm ${source}] ${level}: ${msg}`);
      }
    },
  });
  try {
    const image = readHostFile(a.path, { what: "guest image" });
    if (imageKind(image) === "multiboot") {
      machine.vm.loadMultiboot(image, {
        cmdline: a.cmdline ?? "",
        imageName: a.path,
        modules: (a.modules ?? []).map((m) => ({ bytes: m, cmdline: m })),
      });
    } else {
      machine.vm.load(image, a.args.map((s) => BigInt(s)));
    }
  } catch (e) {
    machine.vm.close();
    throw e;
  }
  return { vm: machine.vm, run: { timeoutMs: a.timeoutMs }, report: flush };
}
