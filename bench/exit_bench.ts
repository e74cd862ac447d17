/**
 * Port-I/O exit cost, as `Deno.bench` cases (group `pio-exit`):
 *
 * - `ts-plugin`: 2000 guest writes to port 0x600, each forwarded to a
 *   trivial TypeScript plugin region (its write handler counts);
 * - `rust-fastpath`: 2000 writes to port 0x80, an `ignoredPorts` range
 *   answered in the Rust core without leaving `run()`;
 * - `cold-start` (group `cold-start`): `dlopen` of a fresh copy of the core
 *   + create VM + load + run to the first exit.
 *
 * Only `vm.run()` is timed in the first two (VM creation and load happen
 * outside `b.start()`/`b.end()`). The emulating nested KVM of the dev hosts
 * drifts between runs: for ratios use the interleaving runner,
 * `deno run -A bench/run_exit_bench.ts`.
 *
 *     deno bench -A bench/exit_bench.ts
 *
 * @module
 */
import {
  coldStart,
  freshLibraryCopy,
  prepareRun,
  timedRun,
} from "./exit_common.ts";

/** Guest writes per iteration. */
const COUNT = 2000;

// Open the library and warm the JIT outside the measured cases.
timedRun("ts-plugin", 10);
timedRun("fastpath", 10);

Deno.bench({
  name: "ts-plugin (port 0x600, 2000 exits)",
  group: "pio-exit",
  baseline: true,
  n: 30,
  warmup: 3,
  fn(b) {
    const p = prepareRun("ts-plugin", COUNT);
    try {
      b.start();
      p.run();
      b.end();
    } finally {
      p.close();
    }
  },
});

Deno.bench({
  name: "rust-fastpath (ignoredPorts 0x80, 2000 exits)",
  group: "pio-exit",
  n: 30,
  warmup: 3,
  fn(b) {
    const p = prepareRun("fastpath", COUNT);
    try {
      b.start();
      p.run();
      b.end();
    } finally {
      p.close();
    }
  },
});

Deno.bench({
  name: "cold-start (dlopen + create + load + first exit)",
  group: "cold-start",
  n: 10,
  warmup: 1,
  fn(b) {
    const lib = freshLibraryCopy();
    try {
      b.start();
      coldStart(lib.path);
      b.end();
    } finally {
      lib.dispose();
    }
  },
});
