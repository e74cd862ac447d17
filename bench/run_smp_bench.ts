/**
 * The cost of the SMP exit handoff: the `smp` guest with 2 vCPUs times
 * `--count` writes to a TS plugin's port from the BSP (vCPU 0's in-thread
 * path) and then from AP 1 (parked on its core thread, vCPU 0 kicked, the
 * exit taken and released by the run loop), both with the guest's TSC in
 * the same run. Reports, over `--rounds` fresh VMs, the median and spread
 * of the AP/BSP ratio and of the difference in µs per exit (TSC kHz from
 * the core).
 *
 * Then, with the `smp_bench` guest, interleaved per round: the IPI round
 * trip between two vCPUs (in-kernel LAPIC, BSP -> AP 1 -> BSP, guest TSC),
 * and TS-exit throughput (exits per second of guest TSC time) of: a
 * one-vCPU VM; a two-vCPU VM with only the BSP writing; with only AP 1
 * writing (the BSP halted); both vCPUs writing the same plugin's port;
 * both writing a port of their own plugin. The handoff's cost per TS exit
 * is the 2-vCPU VM's time per exit (one vCPU writing) minus the 1-vCPU
 * VM's, same round.
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
    "handoff-only": { type: "boolean", default: false },
    "skip-handoff": { type: "boolean", default: false },
  },
});
const rounds = Number(values.rounds);
const count = Number(values.count);
const irqchip = values.irqchip === "split" ? "split" : "kernel";
const guest = new URL("../guests/build/smp.elf", import.meta.url).pathname;
const benchGuest =
  new URL("../guests/build/smp_bench.elf", import.meta.url).pathname;

function sink(base = 0x610, length = 8): Plugin {
  return {
    name: `smp-bench-sink-${base.toString(16)}`,
    setup: () => [
      {
        range: { space: "pio", base, length },
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
const handoffRounds = values["skip-handoff"] ? 0 : rounds;
for (let r = 0; r < handoffRounds; r++) {
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
if (handoffRounds > 0) {
  console.log(
    `smp guest, ${irqchip} irqchip, ${rounds} rounds x ${count} TS exits per vCPU`,
  );
  console.log(`  AP/BSP time per TS exit: ${show(ratios, 3)}`);
  console.log(`  AP - BSP per TS exit (us): ${show(deltas, 2)}`);
}

/** One smp_bench run; its output line's numbers. */
function benchRun(
  vcpus: number,
  args: number[],
  plugins: Plugin[],
): { values: Record<string, number>; khz: number } {
  let out = "";
  using m = createMachine({
    irqchip,
    vcpus,
    plugins,
    serialOutput: (b) => out += String.fromCharCode(b),
  });
  m.vm.load(benchGuest, [vcpus, ...args]);
  const res = m.vm.run({ timeoutMs: 300_000 });
  if (res.reason !== "exit" || /FAIL/.test(out)) {
    throw new Error(`smp_bench ${args}: ${JSON.stringify(res)}\n${out}`);
  }
  const values: Record<string, number> = {};
  for (const [, k, v] of out.matchAll(/(\w+)=(\d+)/g)) values[k] = Number(v);
  return { values, khz: m.vm.tscKhz() };
}

if (values["handoff-only"]) Deno.exit(0);
const ipiUs: number[] = [];
const configs = {
  "1-vCPU VM, BSP": { vcpus: 1, mask: 1, plugins: () => [sink(0x614, 4)] },
  "2-vCPU VM, BSP only": { vcpus: 2, mask: 1, plugins: () => [sink(0x614, 4)] },
  "2-vCPU VM, AP 1 only": {
    vcpus: 2,
    mask: 2,
    plugins: () => [sink(0x614, 4)],
  },
  "2-vCPU VM, both, same plugin": {
    vcpus: 2,
    mask: 3,
    plugins: () => [sink(0x614, 4)],
  },
  "2-vCPU VM, both, own plugins": {
    vcpus: 2,
    mask: 3 | 0x100,
    plugins: () => [sink(0x614, 4), sink(0x618, 4)],
  },
};
const rates: Record<string, number[]> = {};
for (const name of Object.keys(configs)) rates[name] = [];
for (let r = 0; r < rounds; r++) {
  const ipi = benchRun(2, [1, count], [sink(0x614, 4)]);
  ipiUs.push(ipi.values.ipi_rtt / ipi.khz * 1000);
  for (const [name, c] of Object.entries(configs)) {
    const { values, khz } = benchRun(c.vcpus, [2, count, c.mask], c.plugins());
    // exits per second of guest TSC time
    rates[name].push(values.exits / (values.kcycles / khz));
  }
}
console.log(`  IPI round trip BSP -> AP 1 -> BSP (us): ${show(ipiUs, 2)}`);
const base = rates["1-vCPU VM, BSP"];
for (const [name, xs] of Object.entries(rates)) {
  const ratio = xs.map((x, i) => x / base[i]);
  console.log(
    `  TS exits/s, ${name}: ${show(xs, 0)}; / 1-vCPU VM same round: ${
      show(ratio, 3)
    }`,
  );
}
// The measure: what the handoff adds per TS exit, the 2-vCPU VM's
// time per exit (BSP writing, AP halted) minus the 1-vCPU VM's, per round.
const us = (rate: number) => 1e6 / rate;
console.log(`  us per TS exit, 1-vCPU VM: ${show(base.map(us), 2)}`);
for (const who of ["BSP", "AP 1"]) {
  const two = rates[`2-vCPU VM, ${who} only`];
  console.log(
    `  handoff per TS exit, 2-vCPU VM (${who} writing) - 1-vCPU VM same round (us): ${
      show(two.map((x, i) => us(x) - us(base[i])), 2)
    }`,
  );
}
