// Per-exit cost of the napi path on Node against the C loop, interleaved:
//   node napi/bench/exit_bench.mjs [count=20000] [rounds=7]
// With ./deno present, each round also runs the same JS loop under Deno
// (bench/exit_loop_leg.ts) on the Deno FFI backend and on the addon.
// Each round runs bench/c_loop.c (plain KVM ioctls, no denovmm code) and
// then Node driving the same `exits` guest (count x `outb 0x80`, then
// `outl 0xF4`) through the addon, with the exit loop and a plugin-like
// write handler (dispatch on the record's region tag, count the write) in
// JS. Both time from the first KVM_RUN to the 0xF4 exit (VM creation and
// loading excluded). Reports ns/exit of each and the per-round ratio
// napi/C (median, min, max): the two share the machine's noise.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  ADDON_PATH, addon, check, createVm, missing, Off, Reason, ROOT,
} from "../test/harness.mjs";

const count = Number(process.argv[2] ?? 20000);
const rounds = Number(process.argv[3] ?? 7);
const PORT = 0x80;

function cLoop() {
  const src = join(ROOT, "bench", "c_loop.c");
  const gaps = join(ROOT, "bench", "syscall_gaps.c");
  const bin = join(ROOT, "bench", "out", "c_loop");
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(join(ROOT, "bench", "out"), { recursive: true });
    execFileSync("cc", ["-O2", "-o", bin, src, gaps]);
  }
  return bin;
}

function cRound(bin) {
  const out = execFileSync(bin, [
    join(ROOT, "guests", "build", "exits.elf"), "out", `0x${PORT.toString(16)}`,
    `${count}`, "1",
  ], { encoding: "utf8" });
  const r = JSON.parse(out.trim().split("\n").at(-1));
  return r.ns / r.exits;
}

function napiRound(dv) {
  const vm = createVm(dv, { elf: "exits", args: [PORT, count] });
  try {
    const plugins = [
      { base: PORT, writes: 0, write() { this.writes++; } },
      { base: 0xf4, status: -1, write(v) { this.status = v; return true; } },
    ];
    check(dv, dv.dv_vm_range_add(vm, 0, PORT, 1, 0, 0, 0), "range");
    check(dv, dv.dv_vm_range_add(vm, 0, 0xf4, 4, 0, 1, 0), "range");
    const view = new DataView(dv.dv_vcpu_record_buffer(vm, 0));
    let exits = 0;
    const t0 = process.hrtime.bigint();
    for (;;) {
      const reason = dv.dv_vcpu_run(vm, 0);
      exits++;
      if (reason !== Reason.Io) throw new Error(`reason ${reason}`);
      const p = plugins[view.getUint32(Off.region, true)];
      if (p.write(view.getUint32(Off.data, true))) break;
    }
    const ns = Number(process.hrtime.bigint() - t0);
    if (plugins[0].writes !== count) {
      throw new Error(`${plugins[0].writes} writes, expected ${count}`);
    }
    return ns / exits;
  } finally {
    dv.dv_vm_destroy(vm);
  }
}

/** The Deno leg on `library` (undefined: Deno.dlopen of the .so). */
function denoRound(library) {
  const out = execFileSync(join(ROOT, "deno"), [
    "run", "-A", join(ROOT, "bench", "exit_loop_leg.ts"), `${count}`,
    ...(library ? [library] : []),
  ], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  return JSON.parse(out.trim().split("\n").at(-1)).ns_per_exit;
}

const why = missing();
if (why) {
  console.error(`napi exit bench: ${why}`);
  process.exit(1);
}
const dv = addon();
const bin = cLoop();
const deno = existsSync(join(ROOT, "deno"));
const legs = {
  napi_node: () => napiRound(dv),
  ...(deno ? {
    ffi_deno: () => denoRound(),
    napi_deno: () => denoRound(ADDON_PATH),
  } : {}),
};
const rows = [];
for (let i = 0; i < rounds + 1; i++) {
  const row = { c: cRound(bin) };
  for (const [k, f] of Object.entries(legs)) row[k] = f();
  if (i > 0) rows.push(row); // round 0 warms up
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const result = { count, rounds, c_ns_per_exit: Math.round(med(rows.map((r) => r.c))) };
for (const k of Object.keys(legs)) {
  const ratios = rows.map((r) => r[k] / r.c).sort((x, y) => x - y);
  result[k] = {
    ns_per_exit: Math.round(med(rows.map((r) => r[k]))),
    ratio_to_c: { median: +med(ratios).toFixed(3), min: +ratios[0].toFixed(3), max: +ratios.at(-1).toFixed(3) },
  };
}
console.log(JSON.stringify(result));
