/**
 * One leg of `napi/bench/ts_plugin_bench.mjs`: the TS-plugin exit path
 * (`createVm`, the bus, a trivial TS plugin counting writes to port
 * 0x600, the `exits` guest) in a long-lived process, on whichever runtime
 * runs it: Deno (FFI backend) from source, Node (napi backend) compiled
 * by tsc. Same source, same run loop; only ffi/ differs.
 *
 * Protocol on stdin/stdout, one line each: `WARM n` runs n exits
 * unrecorded and answers `ok`; `RUN n` creates a VM, times `vm.run()`
 * of n writes (creation and loading excluded) and answers
 * `{"nsPerExit":...,"exits":...}`.
 *
 * @module
 */
import { createInterface } from "node:readline";
import process from "node:process";
import { readFileSync } from "node:fs";
import type { Plugin } from "../bus/types.ts";
import { debugExitPlugin } from "../plugins/debug_exit/plugin.ts";
import { createVm } from "../vmm/vm.ts";

const PORT = 0x600;
// the repository root is the last argument (the compiled leg lives elsewhere)
const ELF = readFileSync(`${process.argv.at(-1)}/guests/build/exits.elf`);

function round(count: number): { nsPerExit: number; exits: number } {
  let writes = 0;
  const counter: Plugin = {
    name: "bench-counter",
    setup: () => [{
      range: { space: "pio", base: PORT, length: 1 },
      read: (_a, d) => d.fill(0xff),
      write: () => void writes++,
    }],
  };
  const vm = createVm({ memory: "16M", plugins: [debugExitPlugin(), counter] });
  try {
    vm.load(new Uint8Array(ELF), [PORT, count]);
    const t0 = performance.now();
    const r = vm.run();
    const t1 = performance.now();
    if (r.reason !== "exit" || writes !== count) {
      throw new Error(`run ended ${JSON.stringify(r)} after ${writes} writes`);
    }
    const exits = vm.counters().exits;
    return { nsPerExit: (t1 - t0) * 1e6 / exits, exits };
  } finally {
    vm.close();
  }
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  const [cmd, n] = line.trim().split(" ");
  if (cmd === "WARM") {
    for (let left = Number(n); left > 0; left -= 20000) {
      round(Math.min(left, 20000));
    }
    console.log("ok");
  } else if (cmd === "RUN") {
    console.log(JSON.stringify(round(Number(n))));
  } else break;
}
