// Per-exit cost of the TS-plugin path on Node (napi backend) and on Deno
// (FFI backend) against the C loop, in one interleaved run:
//   node napi/bench/ts_plugin_bench.mjs [count=20000] [rounds=9] [warm=40000]
// Each round runs, in an order rotated by one per round:
// - `c`: bench/c_loop.c (plain KVM ioctls, no denovmm code), the `exits`
//   guest writing `count` times to a port, each write back in the C loop;
// - `node`: bench/ts_plugin_leg.ts compiled by tsc (napi/node_modules),
//   a long-lived `node` process: createVm + the bus + a trivial TS plugin
//   counting the writes, on the addon;
// - `deno`: the same leg from source under ./deno on the C library;
// - `deno-napi`: that Deno leg on the addon (backend vs runtime).
// The legs are warmed first (`warm` exits: V8 reaches Turbofan on the run
// loop only after ~20-25k exits). Reports ns/exit of each and the
// per-round ratios node/C and deno/C: median [quartiles] (min-max).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ADDON_PATH, missing, ROOT } from "../test/harness.mjs";

const count = Number(process.argv[2] ?? 20000);
const rounds = Number(process.argv[3] ?? 9);
const warm = Number(process.argv[4] ?? 40000);

function cLoop() {
  const src = join(ROOT, "bench", "c_loop.c");
  const bin = join(ROOT, "bench", "out", "c_loop");
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(join(ROOT, "bench", "out"), { recursive: true });
    execFileSync("cc", ["-O2", "-o", bin, src, join(ROOT, "bench", "syscall_gaps.c")]);
  }
  return bin;
}

function cRound(bin) {
  const out = execFileSync(bin, [
    join(ROOT, "guests", "build", "exits.elf"), "out", "0x600", `${count}`, "1",
  ], { encoding: "utf8" });
  const r = JSON.parse(out.trim().split("\n").at(-1));
  return r.ns / r.exits;
}

/** A long-lived leg process answering one line per request. */
function leg(cmd, args, env) {
  const p = spawn(cmd, [...args, ROOT], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: p.stdout })[Symbol.asyncIterator]();
  return {
    async ask(line) {
      p.stdin.write(`${line}\n`);
      const { value, done } = await lines.next();
      if (done) throw new Error(`${cmd} leg ended`);
      return value;
    },
    close: () => p.stdin.end(),
  };
}

/** Quantile `q` of `a` (linear interpolation). */
const quantile = (a, q) => {
  const s = [...a].sort((x, y) => x - y);
  const i = (s.length - 1) * q;
  return s[Math.floor(i)] + (s[Math.ceil(i)] - s[Math.floor(i)]) * (i - Math.floor(i));
};
const spread = (a) => ({
  median: quantile(a, 0.5), p25: quantile(a, 0.25), p75: quantile(a, 0.75),
  min: Math.min(...a), max: Math.max(...a),
});

async function main() {
  const why = missing();
  if (why) throw new Error(why);
  const tsc = join(ROOT, "napi", "node_modules", ".bin", "tsc");
  const out = mkdtempSync(join(tmpdir(), "denovmm-bench-"));
  try {
    execFileSync(tsc, [
      "--rewriteRelativeImportExtensions", "--noCheck", "--module", "esnext",
      "--moduleResolution", "bundler", "--target", "es2022",
      "--outDir", out, "--rootDir", ROOT, join(ROOT, "bench", "ts_plugin_leg.ts"),
    ], { stdio: "inherit" });
    writeFileSync(join(out, "package.json"), '{"type":"module"}');
    const c = cLoop();
    const legs = {
      node: leg("node", [join(out, "bench", "ts_plugin_leg.js")], { DENOVMM_LIB: ADDON_PATH }),
      deno: leg(join(ROOT, "deno"), ["run", "-A", join(ROOT, "bench", "ts_plugin_leg.ts")], { DENOVMM_LIB: "" }),
      // the same Deno leg on the addon: separates the backend from the runtime
      "deno-napi": leg(join(ROOT, "deno"), ["run", "-A", join(ROOT, "bench", "ts_plugin_leg.ts")], { DENOVMM_LIB: ADDON_PATH }),
    };
    for (const l of Object.values(legs)) await l.ask(`WARM ${warm}`);
    cRound(c); // warm-up, dropped
    const methods = ["c", "node", "deno", "deno-napi"];
    const ns = Object.fromEntries(methods.map((m) => [m, []]));
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < methods.length; i++) {
        const m = methods[(i + r) % methods.length];
        ns[m].push(m === "c" ? cRound(c) : JSON.parse(await legs[m].ask(`RUN ${count}`)).nsPerExit);
      }
    }
    Object.values(legs).forEach((l) => l.close());
    const ratio = (m) => spread(ns[m].map((v, i) => v / ns.c[i]));
    const report = {
      date: new Date().toISOString(), count, rounds, warm,
      nsPerExit: Object.fromEntries(methods.map((m) => [m, spread(ns[m])])),
      ratioToC: Object.fromEntries(methods.slice(1).map((m) => [m, ratio(m)])),
    };
    const f = (s, d = 0) =>
      `${s.median.toFixed(d)} [${s.p25.toFixed(d)}-${s.p75.toFixed(d)}] (${s.min.toFixed(d)}-${s.max.toFixed(d)})`;
    for (const m of methods) console.log(`${m.padEnd(9)} ns/exit ${f(report.nsPerExit[m])}`);
    for (const m of methods.slice(1)) console.log(`${m}/C ratio ${f(report.ratioToC[m], 3)}`);
    console.log(JSON.stringify(report));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

await main();
