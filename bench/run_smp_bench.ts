/**
 * The cost of the SMP exit handoff: the `smp` guest with 2 vCPUs times
 * `--count` writes to a TS plugin's port from the BSP (vCPU 0's in-thread
 * path) and then from AP 1 (parked on its core thread, vCPU 0 kicked, the
 * exit taken and released by the run loop), both with the guest's TSC in
 * the same run. Reports, over `--rounds` fresh VMs, the median and spread
 * of the AP/BSP ratio and of the difference in µs per exit (TSC kHz from
 * the core).
 *
 * ```sh
 * deno run -A bench/run_smp_bench.ts [--rounds 11] [--count 2000] [--irqchip kernel]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { Plugin } from "../bus/types.ts";
import { createMachine } from "../vmm/machine.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "11" },
    count: { type: "string", default: "2000" },
    irqchip: { type: "string", default: "kernel" },
  },
});
const rounds = Number(values.rounds);
const count = Number(values.count);
const irqchip = values.irqchip === "split" ? "split" : "kernel";
const guest = new URL("../guests/build/smp.elf", import.meta.url).pathname;

function sink(): Plugin {
  return {
    name: "smp-bench-sink",
    setup: () => [
      {
        range: { space: "pio", base: 0x610, length: 8 },
        read: (_a, d) => d.fill(0),
        write: () => {},
      },
    ],
  };
}

const quantile = (xs: number[], q: number) => {
  const s = xs.toSorted((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))];
};

const ratios: number[] = [];
const deltas: number[] = [];
for (let r = 0; r < rounds; r++) {
  let out = "";
  using m = createMachine({
    irqchip,
    vcpus: 2,
    plugins: [sink()],
    serialOutput: (b) => out += String.fromCharCode(b),
  });
  m.vm.load(guest, [2, 1, 0, count]);
  const res = m.vm.run({ timeoutMs: 300_000 });
  const hit = /handoff bsp=(\d+) ap=(\d+)/.exec(out);
  if (res.reason !== "exit" || hit === null || /FAIL/.test(out)) {
    throw new Error(`round ${r}: ${JSON.stringify(res)}\n${out}`);
  }
  const khz = m.vm.tscKhz();
  const [bsp, ap] = [Number(hit[1]), Number(hit[2])];
  ratios.push(ap / bsp);
  deltas.push((ap - bsp) / khz * 1000);
  if (r === 0) {
    console.log(`round 0: bsp ${bsp} ap ${ap} cycles/exit, TSC ${khz} kHz`);
  }
}
const show = (xs: number[], d: number) =>
  `median ${quantile(xs, 0.5).toFixed(d)} (quartiles ${
    quantile(xs, 0.25).toFixed(d)
  }..${quantile(xs, 0.75).toFixed(d)}, range ${Math.min(...xs).toFixed(d)}..${
    Math.max(...xs).toFixed(d)
  })`;
console.log(
  `smp handoff, ${irqchip} irqchip, ${rounds} rounds x ${count} TS exits per vCPU`,
);
console.log(`  AP/BSP time per TS exit: ${show(ratios, 3)}`);
console.log(`  AP - BSP per TS exit (us): ${show(deltas, 2)}`);
