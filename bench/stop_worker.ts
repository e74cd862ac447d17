/**
 * Worker for `run_stop_bench.ts`: runs the `spin` guest, one `run()` per
 * "go", and reports when each returns. `flag[0]` is 1 while the vCPU is
 * inside `run()`, so the host stops only a running vCPU.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { monoNs } from "./mono_clock.ts";
import { createVm } from "../vmm/vm.ts";

let vm: ReturnType<typeof createVm> | undefined;
let flag: Int32Array;

self.onmessage = (e: MessageEvent) => {
  const m = e.data as { type: string; elf?: string; sab?: SharedArrayBuffer };
  if (m.type === "init") {
    flag = new Int32Array(m.sab!);
    vm = createVm({ log: () => {} });
    vm.load(m.elf!);
    self.postMessage({ type: "ready", handle: vm.handle });
  } else if (m.type === "go") {
    Atomics.store(flag, 0, 1);
    const r = vm!.run();
    const t1 = monoNs();
    Atomics.store(flag, 0, 0);
    self.postMessage({ type: "returned", t1, reason: r.reason });
  } else if (m.type === "close") {
    vm?.close();
    self.postMessage({ type: "closed" });
  }
};
