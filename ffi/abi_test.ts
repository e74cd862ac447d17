import assert from "node:assert/strict";
import {
  AbiConst,
  CoreCode,
  CpuModeCode,
  ExitReason,
  InsnHintCode,
  InsnReadCode,
  IrqchipCode,
  PacingCode,
  RangeAction,
  RecordOffset,
  SpaceCode,
  StateTagCode,
  StructFields,
  TickPolicyCode,
  TimerTargetCode,
} from "./abi.ts";
import { SYMBOLS } from "./library.ts";

const header = Deno.readTextFileSync(
  new URL("../core/include/denovmm.h", import.meta.url),
);
/** The header without comments. */
const code = header.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");

const screaming = (s: string) =>
  s.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();

function enumValues(name: string): Record<string, number> {
  const m = new RegExp(`enum ${name}[^{]*\\{([^}]*)\\}`).exec(code);
  assert.ok(m, `enum ${name} is in the header`);
  const out: Record<string, number> = {};
  for (const [, k, v] of m[1].matchAll(/(\w+)\s*=\s*(-?\d+)/g)) out[k] = +v;
  return out;
}

function structFields(name: string): [string, string][] {
  const m = new RegExp(`typedef struct \\{([^}]*)\\} ${name};`).exec(code);
  assert.ok(m, `struct ${name} is in the header`);
  return [...m[1].matchAll(/(\w+)\s+(\w+)(\[[^\]]*\])?;/g)].map((
    [, t, f],
  ) => [t, f]);
}

Deno.test("abi: every enum mirrors the generated header", () => {
  const cases: [string, string, Record<string, number>][] = [
    ["DvCode", "DV_CODE_", CoreCode],
    ["DvReason", "DV_REASON_", ExitReason],
    ["DvSpace", "DV_SPACE_", SpaceCode],
    ["DvIrqchipMode", "DV_IRQCHIP_MODE_", IrqchipCode],
    ["DvRangeAction", "DV_RANGE_ACTION_", RangeAction],
    ["DvTimerTarget", "DV_TIMER_TARGET_", TimerTargetCode],
    ["DvPacing", "DV_PACING_", PacingCode],
    ["DvTickPolicy", "DV_TICK_POLICY_", TickPolicyCode],
    ["DvStateTag", "DV_STATE_TAG_", StateTagCode],
    ["DvCpuMode", "DV_CPU_MODE_", CpuModeCode],
    ["DvInsnHint", "DV_INSN_HINT_", InsnHintCode],
    ["DvInsnRead", "DV_INSN_READ_", InsnReadCode],
  ];
  for (const [name, prefix, mirror] of cases) {
    const expected = Object.fromEntries(
      Object.entries(mirror).map(([k, v]) => [prefix + screaming(k), v]),
    );
    assert.deepEqual(expected, enumValues(name), name);
  }
});

Deno.test("abi: every #define mirrors the generated header", () => {
  const defines: Record<string, number> = {};
  for (const [, k, v] of code.matchAll(/#define (DV_\w+) (\d+)/g)) {
    defines[k] = +v;
  }
  assert.deepEqual({ ...AbiConst }, defines);
});

Deno.test("abi: out-structs and the exit record mirror the header", () => {
  for (const [name, fields] of Object.entries(StructFields)) {
    const h = structFields(name);
    assert.deepEqual(h.map(([, f]) => f), [...fields], name);
    assert.ok(h.every(([t]) => t === "uint64_t"), `${name} is all u64`);
  }
  // Offsets from the C field types, as a C compiler lays them out here.
  const size: Record<string, number> = { uint32_t: 4, uint64_t: 8 };
  let off = 0;
  const offsets: Record<string, number> = {};
  for (const [t, f] of structFields("DvExitRecord")) {
    const n = size[t] ?? 1;
    off = Math.ceil(off / n) * n;
    offsets[f] = off;
    off += f === "reserved" ? 12 : n;
  }
  const { reserved: _, ...fields } = offsets;
  assert.deepEqual(fields, { ...RecordOffset });
});

Deno.test("abi: the dlopen table binds every header function with its arity", () => {
  const fns: Record<string, number> = {};
  for (
    const [, name, params] of code.matchAll(
      /^\w+ (?:\*)?(dv_\w+)\(([^)]*)\);/gm,
    )
  ) {
    const p = params.trim();
    fns[name] = p === "void" ? 0 : p.split(",").length;
  }
  const bound = Object.fromEntries(
    Object.entries(SYMBOLS).map(([k, v]) => [k, v.parameters.length]),
  );
  assert.deepEqual(bound, fns);
});
