/**
 * `deno task bench:snapshot`: snapshot and restore costs for 16 MiB, 256
 * MiB and 1 GiB guests, interleaved with their references in one run:
 *
 * - full snapshot to a file (RAM filled by the host, so every page is
 *   data), diff snapshot with 1% of pages dirty, vs a full memory copy;
 * - restore-to-run (restore, then `run` for 1 ms of guest time) from a file
 *   by copy and as a copy-on-write clone (MAP_PRIVATE), vs creating an
 *   empty VM of the same size, loading the guest and the same 1 ms run
 *   (the reference); the clone's restore alone vs the create + load alone;
 * - in-place rollback with 1% dirty, timed alone (the run after it is not
 *   part of it), vs a full memory copy of the same size;
 * - RSS added per clone of the largest size, before and after it runs.
 *
 * Dirty pages are written by the host (tracked like guest writes). Prints
 * a table and writes bench/out/snapshot_bench.json.
 *
 * @module
 */
import { AbiConst } from "../ffi/abi.ts";
import { pvTimerPlugin } from "../plugins/pv_timer/plugin.ts";
import { restoreVm } from "../vmm/restore.ts";
import { loadSnapshot } from "../vmm/snapshot.ts";
import { createVm, type Vm } from "../vmm/vm.ts";
import { median, table } from "./report.ts";

const GUEST = new URL("../guests/build/snapshot.elf", import.meta.url)
  .pathname;
const SIZES = [16 << 20, 256 << 20, 1 << 30];
const ROUNDS = 7;
const CLONES = 8;
const opts = (memory: number) => ({
  memory,
  irqchip: "kernel" as const,
  plugins: [pvTimerPlugin({ target: { kind: "gsi", gsi: 0 } })],
});
const args = [1e9, 1000, 5, 0];

const ms = (f: () => void): number => {
  const t = performance.now();
  f();
  return performance.now() - t;
};
function dirty(vm: Vm, fraction: number, seed: number): void {
  const pages = vm.memory.size / 4096;
  const lowPages = Math.min(vm.memory.size, AbiConst.DV_RAM_HOLE_START) / 4096;
  const n = Math.max(1, Math.round(pages * fraction));
  const b = new Uint8Array(4096).fill(seed & 0xff);
  for (let i = 0; i < n; i++) {
    const p = (i * 7919 + seed) % pages;
    if (p < 0x400 || (p >= 0x200 && p < 0x400)) continue; // keep the guest's pages
    const gpa = p < lowPages ? p * 4096 : 2 ** 32 + (p - lowPages) * 4096;
    vm.memory.write(gpa, b);
  }
}
function fill(vm: Vm): void {
  const chunk = new Uint8Array(1 << 20);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 0xff | 1;
  for (
    let a = 0x400000;
    a + chunk.length <= vm.memory.size;
    a += chunk.length
  ) {
    vm.memory.write(a, chunk);
  }
}

interface Row {
  size: string;
  [k: string]: number | string;
}
const rows: Row[] = [];
const dir = Deno.makeTempDirSync({ prefix: "dv-snap-bench" });
for (const size of SIZES) {
  const label = `${size >> 20} MiB`;
  const t: Record<string, number[]> = {
    create: [],
    copy: [],
    full: [],
    diff: [],
    file: [],
    clone: [],
    cloneOnly: [],
    createOnly: [],
    rollback: [],
  };
  using src = createVm(opts(size));
  src.load(GUEST, args);
  src.run({ timeoutMs: 20 });
  fill(src);
  const base = `${dir}/base.snap`;
  const mem = new Uint8Array(size);
  const copyDst = new Uint8Array(size);
  mem.fill(7);
  const inmem = src.snapshot();
  for (let r = 0; r < ROUNDS; r++) {
    t.copy.push(ms(() => copyDst.set(mem)));
    // New names each round: replacing a file would time the host's
    // discard of the old one (this machine's ext4 mounts with `discard`).
    t.full.push(ms(() => src.snapshot(`${base}.${r}`)));
    dirty(src, 0.01, r);
    t.diff.push(ms(() => src.snapshot(`${dir}/diff.${r}`, { diff: true })));
    t.create.push(ms(() => {
      using v = createVm(opts(size));
      v.load(GUEST, args);
      v.run({ timeoutMs: 1 });
    }));
    const snap = loadSnapshot(`${base}.${r}`);
    t.file.push(ms(() => {
      using v = restoreVm(snap, { vm: opts(size), memory: "copy" });
      v.run({ timeoutMs: 1 });
    }));
    t.clone.push(ms(() => {
      using v = restoreVm(snap, { vm: opts(size) });
      v.run({ timeoutMs: 1 });
    }));
    {
      let v: Vm | undefined;
      t.cloneOnly.push(ms(() => v = restoreVm(snap, { vm: opts(size) })));
      v!.close();
      t.createOnly.push(ms(() => {
        v = createVm(opts(size));
        v.load(GUEST, args);
      }));
      v!.close();
    }
    // Roll back first (untimed): the timed rollback then copies exactly
    // the 1% written since, not also this round's earlier writes.
    src.restore(inmem);
    dirty(src, 0.01, r + 100);
    t.rollback.push(ms(() => src.restore(inmem)));
    src.run({ timeoutMs: 1 });
  }
  const m = Object.fromEntries(
    Object.entries(t).map(([k, v]) => [k, median(v)]),
  );
  const ratio = (a: string, b: string) => {
    const rs = t[a].map((x, i) => x / t[b][i]).sort((x, y) => x - y);
    return { median: median(rs), min: rs[0], max: rs[rs.length - 1] };
  };
  const row: Row = {
    size: label,
    ...m,
    cloneVsCreate: ratio("clone", "create").median,
    cloneVsCreateMin: ratio("clone", "create").min,
    cloneVsCreateMax: ratio("clone", "create").max,
    cloneOnlyVsCreateOnly: ratio("cloneOnly", "createOnly").median,
    rollbackVsCopy: ratio("rollback", "copy").median,
    rollbackMin: Math.min(...t.rollback),
    rollbackMax: Math.max(...t.rollback),
    fullVsCopy: ratio("full", "copy").median,
  };
  if (size === SIZES[SIZES.length - 1]) {
    // In a fresh process, so garbage collection of this one's buffers
    // cannot move its RSS.
    const script = `
      import { pvTimerPlugin } from "${new URL(
      "../plugins/pv_timer/plugin.ts",
      import.meta.url,
    )}";
      import { restoreVm } from "${new URL(
      "../vmm/restore.ts",
      import.meta.url,
    )}";
      import { loadSnapshot } from "${new URL(
      "../vmm/snapshot.ts",
      import.meta.url,
    )}";
      const rss = () => +/VmRSS:\\s+(\\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))[1];
      const opts = { plugins: [pvTimerPlugin({ target: { kind: "gsi", gsi: 0 } })] };
      const snap = loadSnapshot(${JSON.stringify(`${base}.0`)});
      restoreVm(snap, { vm: opts }).close();
      const r0 = rss();
      const cs = Array.from({ length: ${CLONES} }, () => restoreVm(snap, { vm: { plugins: [pvTimerPlugin({ target: { kind: "gsi", gsi: 0 } })] } }));
      const r1 = rss();
      for (const c of cs) c.run({ timeoutMs: 1 });
      const r2 = rss();
      console.log(JSON.stringify([r0, r1, r2]));`;
    const out = new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      stdout: "piped",
    }).outputSync();
    const [r0, r1, r2] = JSON.parse(new TextDecoder().decode(out.stdout));
    row.rssPerCloneKiB = (r1 - r0) / CLONES;
    row.rssPerCloneAfterRunKiB = (r2 - r0) / CLONES;
  }
  for (const e of Deno.readDirSync(dir)) Deno.removeSync(`${dir}/${e.name}`);
  rows.push(row);
  console.error(`${label} done`);
}
Deno.removeSync(dir, { recursive: true });

const f = (x: number | string | undefined, d = 1) =>
  typeof x === "number" ? x.toFixed(d) : x ?? "";
console.log(table(
  [
    "size",
    "create+run ms",
    "clone+run",
    "clone/create (min–max)",
    "file copy+run",
    "clone/create, restore only",
    "rollback 1% (min–max)",
    "memcpy",
    "rollback/memcpy",
    "full snap",
    "diff 1%",
  ],
  rows.map((r) => [
    r.size,
    f(r.create),
    f(r.clone),
    `${f(r.cloneVsCreate, 2)} (${f(r.cloneVsCreateMin, 2)}–${
      f(r.cloneVsCreateMax, 2)
    })`,
    f(r.file),
    f(r.cloneOnlyVsCreateOnly, 2),
    `${f(r.rollback, 2)} (${f(r.rollbackMin, 2)}–${f(r.rollbackMax, 2)})`,
    f(r.copy),
    f(r.rollbackVsCopy, 3),
    f(r.full),
    f(r.diff),
  ]),
));
const last = rows[rows.length - 1];
console.log(
  `RSS per ${last.size} clone: ${f(last.rssPerCloneKiB)} KiB before running, ${
    f(last.rssPerCloneAfterRunKiB)
  } KiB after 1 ms of guest`,
);
Deno.mkdirSync(new URL("./out/", import.meta.url), { recursive: true });
Deno.writeTextFileSync(
  new URL("./out/snapshot_bench.json", import.meta.url),
  JSON.stringify({ rounds: ROUNDS, rows }, null, 2),
);
