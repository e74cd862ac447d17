/**
 * Level-triggered interrupt round trip, split vs kernel irqchip, side by
 * side: a host thread asserts a level line through an irqfd, the guest's
 * handler runs and EOIs, the EOI comes back through the resample eventfd
 * (KVM's in kernel mode; our userspace IOAPIC's in split mode), and the
 * thread asserts the next one. Rounds alternate the modes.
 *
 * ```sh
 * deno run -A bench/run_irq_bench.ts [--rounds 5] [--count 300]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { Plugin } from "../bus/types.ts";
import type { LevelSource } from "../vmm/vm.ts";
import { bootGuest } from "../tests/kvm.ts";
import { median } from "./report.ts";

const GSI = 10;
const VECTOR = 0x70;

/** One measured run. */
interface Sample {
  mode: "kernel" | "split";
  /** Wall time per interrupt, guest-ready to guest-exit (µs). */
  wallUs: number;
  /** Mean assert → EOI round trip seen by the device thread (µs). */
  rttUs: number;
  /** Fastest round trip (µs). */
  minRttUs: number;
  /** Level MSIs the vCPU had to re-signal (nested-host quirk). */
  reinjected: number;
}

function measure(mode: "kernel" | "split", count: number): Sample {
  let src: LevelSource | undefined;
  let t0 = 0;
  const start: Plugin = {
    name: "bench-start",
    setup: () => [{
      range: { space: "pio", base: 0x2f1, length: 1 },
      read: () => {},
      write: () => {
        t0 = performance.now();
        src!.add(count);
      },
    }],
  };
  const { result, machine } = bootGuest(
    "level_irq",
    [GSI, VECTOR, count],
    { irqchip: mode, plugins: [start], timeoutMs: 60_000 },
    (vm) => src = vm.createLevelSource(GSI),
  );
  using _ = machine;
  const wall = performance.now() - t0;
  if (result.reason !== "exit" || result.status !== 1) {
    throw new Error(`${mode}: guest failed: ${JSON.stringify(result)}`);
  }
  const s = src!.stats();
  src!.close();
  return {
    mode,
    wallUs: wall * 1000 / count,
    rttUs: s.meanRttNs / 1000,
    minRttUs: s.minRttNs / 1000,
    reinjected: s.reinjected,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "5" },
      count: { type: "string", default: "300" },
    },
  });
  const rounds = Number(values.rounds);
  const count = Number(values.count);
  const samples: Sample[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0
      ? ["kernel", "split"] as const
      : ["split", "kernel"] as const;
    for (const mode of order) samples.push(measure(mode, count));
  }
  const rows = (["kernel", "split"] as const).map((mode) => {
    const s = samples.filter((x) => x.mode === mode);
    return {
      mode,
      wallUs: median(s.map((x) => x.wallUs)),
      rttUs: median(s.map((x) => x.rttUs)),
      minRttUs: Math.min(...s.map((x) => x.minRttUs)),
      reinjected: s.reduce((a, x) => a + x.reinjected, 0),
    };
  });
  const ratio = median(
    Array.from({ length: rounds }, (_, i) => {
      const k = samples.filter((x) => x.mode === "kernel")[i].rttUs;
      const sp = samples.filter((x) => x.mode === "split")[i].rttUs;
      return sp / k;
    }),
  );
  console.log(
    `level-triggered round trip, ${count} interrupts × ${rounds} rounds per mode`,
  );
  console.log(
    "mode    | wall/irq µs | mean rtt µs | min rtt µs | re-signalled",
  );
  for (const r of rows) {
    console.log(
      `${r.mode.padEnd(7)} | ${r.wallUs.toFixed(1).padStart(11)} | ${
        r.rttUs.toFixed(1).padStart(11)
      } | ${r.minRttUs.toFixed(1).padStart(10)} | ${r.reinjected}`,
    );
  }
  console.log(
    `split / kernel mean round trip (median of per-round ratios): ${
      ratio.toFixed(2)
    }`,
  );
  const out = new URL("./out/", import.meta.url);
  Deno.mkdirSync(out, { recursive: true });
  Deno.writeTextFileSync(
    new URL("irq_bench.json", out),
    JSON.stringify(
      { rounds, count, rows, splitOverKernel: ratio, samples },
      null,
      2,
    ),
  );
}
