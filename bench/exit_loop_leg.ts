/**
 * The Deno FFI leg of `napi/bench/exit_bench.mjs`: the same minimal JS exit
 * loop as the Node napi leg (dispatch on the record's region tag, count the
 * write) over `CoreVm` with the default backend (`Deno.dlopen`).
 *
 *     deno run -A bench/exit_loop_leg.ts <count> [library]
 *
 * Prints `{"ns_per_exit": n}`: from the first run to the 0xF4 exit.
 *
 * @module
 */
import { CoreVm } from "../ffi/core_vm.ts";
import { ExitReason, RecordOffset } from "../ffi/exit_record.ts";

/** Run the `exits` guest for `count` writes; ns per exit. */
export function exitLoopLeg(count: number, libraryPath?: string): number {
  const port = 0x80;
  const core = CoreVm.create({
    memSize: 16 << 20,
    irqchip: "kernel",
    strict: false,
    libraryPath,
  });
  try {
    const image = Deno.readFileSync(
      new URL("../guests/build/exits.elf", import.meta.url),
    );
    core.loadElf(
      image,
      new BigUint64Array([BigInt(port), BigInt(count), 0n, 0n]),
    );
    const plugins = [
      {
        writes: 0,
        write(_v: number): boolean {
          this.writes++;
          return false;
        },
      },
      {
        writes: 0,
        write(_v: number): boolean {
          return true;
        },
      },
    ];
    core.forwardRange("pio", port, 1, 0);
    core.forwardRange("pio", 0xf4, 4, 1);
    const view = new DataView(core.recordBuffer(0));
    let exits = 0;
    const t0 = performance.now();
    for (;;) {
      const reason = core.run(0);
      exits++;
      if (reason !== ExitReason.Io) throw new Error(`reason ${reason}`);
      const p = plugins[view.getUint32(RecordOffset.region, true)];
      if (p.write(view.getUint32(RecordOffset.data, true))) break;
    }
    const ns = (performance.now() - t0) * 1e6;
    if (plugins[0].writes !== count) {
      throw new Error(`${plugins[0].writes} writes, expected ${count}`);
    }
    return ns / exits;
  } finally {
    core.destroy();
  }
}

if (import.meta.main) {
  const count = Number(Deno.args[0] ?? 20000);
  console.log(
    JSON.stringify({ ns_per_exit: exitLoopLeg(count, Deno.args[1]) }),
  );
}
