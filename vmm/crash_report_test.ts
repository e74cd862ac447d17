import assert from "node:assert/strict";
import { StructFields } from "../ffi/abi.ts";
import {
  decodeCrashReport,
  decodeInternalError,
  formatCrashCompact,
  formatCrashReport,
  type RawCrashReport,
} from "./crash_report.ts";

function raw(over: Record<string, bigint>): RawCrashReport {
  const r: Record<string, bigint> = {};
  for (const f of StructFields.DvCrashReport) r[f] = 0n;
  return { ...r, ...over };
}

Deno.test("crash report: decoded from the core's words", () => {
  const c = decodeCrashReport(raw({
    rip: 0xffff_ffff_8100_0010n,
    rbx: 0x1111n,
    r15: 0xf00dn,
    cr0: 0x8001_0033n,
    cr3: 0x9000n,
    efer: 0x500n,
    cs_selector: 8n,
    fs_base: 0x7f00_0000_0000n,
    idt_limit: 0xfffn,
    mode: 5n,
    linear: 0xffff_ffff_8100_0010n,
    insn_len: 10n,
    insn_lo: 0x0807_0605_0403_c70fn, // 0f c7 03 04 05 06 07 08
    insn_hi: 0xaa0an, // 0a (then past insn_len)
    insn_read: 1n,
    insn_hint: 5n,
    has_internal: 1n,
    suberror: 4n,
    ndata: 2n,
    data0: 0x30n,
    data1: 3n,
    data2: 0x99n, // beyond ndata: ignored
  }));
  assert.equal(c.rip, 0xffff_ffff_8100_0010n);
  assert.equal(c.mode, "long64");
  assert.equal(c.regs.rbx, 0x1111n);
  assert.equal(c.regs.r15, 0xf00dn);
  assert.equal(c.segments.csSelector, 8);
  assert.equal(c.segments.fs, 0x7f00_0000_0000n);
  assert.equal(c.tables.idtLimit, 0xfff);
  assert.deepEqual(c.instruction.bytes, [
    0x0f,
    0xc7,
    0x03,
    0x04,
    0x05,
    0x06,
    0x07,
    0x08,
    0x0a,
    0xaa,
  ]);
  assert.equal(c.instruction.readError, "not-mapped");
  assert.equal(c.instruction.forbidden, "xsave family");
  assert.deepEqual(c.kvm?.data, [0x30n, 3n]);
  assert.equal(c.kvm?.name, "unexpected exit reason");
  assert.deepEqual(c.kvm?.decoded, [
    "hardware exit reason = 0x30",
    "last VM-entry host CPU = 3",
  ]);
  assert.equal(
    formatCrashCompact(c),
    "at rip 0xffffffff81000010 (long64): 0f c7 03 04 05 06 07 08 .. [xsave family: this host's KVM cannot emulate this instruction (a host limit, not a guest bug; see README \"What this project's KVM host does differently\")]",
  );
  const full = formatCrashReport(c);
  assert.match(
    full,
    /^rip ffffffff81000010 {2}rflags 0000000000000000 {2}mode long64$/m,
  );
  assert.match(
    full,
    /^r12 0{16} {2}r13 0{16} {2}r14 0{16} {2}r15 000000000000f00d$/m,
  );
  assert.match(full, /^cs 0x8 base 0x0 .* fs 0x7f0000000000 /m);
  assert.match(
    full,
    /^code at 0xffffffff81000010: 0f c7 03 .* 0a aa \(not-mapped\)$/m,
  );
  assert.match(full, /^KVM suberror 4 \(unexpected exit reason\)$/m);
  assert.match(full, /^hint: xsave family: /m);
});

Deno.test("crash report: no internal error, no bytes, every mode", () => {
  const c = decodeCrashReport(raw({ insn_read: 2n, mode: 0n }));
  assert.equal(c.kvm, undefined);
  assert.equal(c.instruction.forbidden, undefined);
  assert.equal(
    formatCrashCompact(c),
    "at rip 0x0 (real): <no bytes: outside-ram>",
  );
  const modes = [0n, 1n, 2n, 3n, 4n, 5n].map((m) =>
    decodeCrashReport(raw({ mode: m })).mode
  );
  assert.deepEqual(modes, [
    "real",
    "v8086",
    "protected16",
    "protected32",
    "compat",
    "long64",
  ]);
});

Deno.test("crash report: KVM internal-error words are labelled", () => {
  // Emulation failure with instruction bytes (flags bit 0), then the
  // hardware exit info words.
  const e = decodeInternalError(1, [
    1n,
    0x0000_0000_0001_cc01n, // insn_size 1, byte cc
    0n,
    0x1000n,
    0x0n,
    0n,
    0x8000_0b0en,
    4n,
  ]);
  assert.equal(e.name, "emulation failure");
  assert.deepEqual(e.decoded, [
    "flags = 0x1",
    "instruction bytes (KVM) = cc",
    "hardware exit reason = 0x1000",
    "exit qualification / info 1 = 0x0",
    "exit info 2 = 0x0",
    "interruption info = 0x80000b0e (vector 14, hardware exception)",
    "error code = 0x4",
  ]);
  // Without instruction bytes the exit info starts at word 1.
  assert.deepEqual(decodeInternalError(1, [0n, 0x31n]).decoded, [
    "flags = 0x0",
    "hardware exit reason = 0x31",
  ]);
  // Event delivery: vectoring info, exit reason, qualification, GPA, CPU.
  assert.deepEqual(
    decodeInternalError(3, [0x8000_0306n, 0x30n, 0x181n, 0xfee0_0000n, 2n])
      .decoded,
    [
      "vectoring info = 0x80000306 (vector 6, hardware exception)",
      "hardware exit reason = 0x30",
      "exit qualification = 0x181",
      "guest-physical address = 0xfee00000",
      "last VM-entry host CPU = 2",
    ],
  );
  assert.deepEqual(decodeInternalError(2, []).decoded, []);
  assert.equal(decodeInternalError(9, [5n]).name, "unknown suberror");
  assert.deepEqual(decodeInternalError(9, [5n]).decoded, ["data 0 = 0x5"]);
});
