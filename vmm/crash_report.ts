/**
 * Crash reports: the state of a vCPU whose run ended in a failure (KVM
 * internal error, triple-fault shutdown, failed entry, strict-mode
 * unclaimed access), decoded from the core's `DvCrashReport` into
 * something a person can act on, and formatted compactly (one line) or
 * completely (`-v` on the CLI).
 *
 * @module
 */
import { CpuModeCode, InsnHintCode, InsnReadCode } from "../ffi/abi.ts";

/**
 * The raw report as the core writes it: every `DvCrashReport` field (see
 * `StructFields.DvCrashReport` in `ffi/abi.ts`) by name, as a u64.
 */
export type RawCrashReport = Readonly<Record<string, bigint>>;

/** Guest CPU mode at the failure. */
export type CpuMode =
  | "real"
  | "v8086"
  | "protected16"
  | "protected32"
  | "compat"
  | "long64";

/** General registers. */
export interface GeneralRegisters {
  /** RAX. */ rax: bigint;
  /** RBX. */ rbx: bigint;
  /** RCX. */ rcx: bigint;
  /** RDX. */ rdx: bigint;
  /** RSI. */ rsi: bigint;
  /** RDI. */ rdi: bigint;
  /** RSP. */ rsp: bigint;
  /** RBP. */ rbp: bigint;
  /** R8. */ r8: bigint;
  /** R9. */ r9: bigint;
  /** R10. */ r10: bigint;
  /** R11. */ r11: bigint;
  /** R12. */ r12: bigint;
  /** R13. */ r13: bigint;
  /** R14. */ r14: bigint;
  /** R15. */ r15: bigint;
}

/** The instruction at RIP. */
export interface CrashInstruction {
  /** Linear address of RIP (CS base + RIP outside 64-bit mode). */
  linear: bigint;
  /** Up to 15 bytes read through the guest's page tables. */
  bytes: number[];
  /** Why fewer than 15 bytes could be read. */
  readError?: "not-mapped" | "outside-ram";
  /** Short name of an instruction this host's KVM cannot emulate. */
  forbidden?: string;
  /** One line saying so, when `forbidden` is set. */
  hint?: string;
}

/** KVM's internal-error details (`kvm_run.internal`). */
export interface KvmInternalError {
  /** `KVM_INTERNAL_ERROR_*`. */
  suberror: number;
  /** Its meaning. */
  name: string;
  /** The data words KVM gave. */
  data: bigint[];
  /** The data words, labelled. */
  decoded: string[];
}

/** A failed vCPU's state (see the README's "Crash reports"). */
export interface CrashReport {
  /** RIP. */
  rip: bigint;
  /** RFLAGS. */
  rflags: bigint;
  /** Mode. */
  mode: CpuMode;
  /** General registers. */
  regs: GeneralRegisters;
  /** Control registers and EFER. */
  control: {
    cr0: bigint;
    cr2: bigint;
    cr3: bigint;
    cr4: bigint;
    cr8: bigint;
    efer: bigint;
  };
  /** CS selector and segment bases. */
  segments: {
    csSelector: number;
    cs: bigint;
    ds: bigint;
    es: bigint;
    fs: bigint;
    gs: bigint;
    ss: bigint;
  };
  /** Descriptor tables. */
  tables: { gdtBase: bigint; idtBase: bigint; idtLimit: number };
  /** The instruction at RIP. */
  instruction: CrashInstruction;
  /** Present when the run ended with a KVM internal error. */
  kvm?: KvmInternalError;
}

const MODES: Record<number, CpuMode> = {
  [CpuModeCode.Real]: "real",
  [CpuModeCode.V8086]: "v8086",
  [CpuModeCode.Protected16]: "protected16",
  [CpuModeCode.Protected32]: "protected32",
  [CpuModeCode.Compat]: "compat",
  [CpuModeCode.Long64]: "long64",
};

const FORBIDDEN: Record<number, string> = {
  [InsnHintCode.Int3]: "int3",
  [InsnHintCode.IntN]: "int n",
  [InsnHintCode.Iret]: "16/32-bit iret",
  [InsnHintCode.Cmpxchg16b]: "cmpxchg16b",
  [InsnHintCode.Xsave]: "xsave family",
  [InsnHintCode.Fxsave]: "fxsave/ldmxcsr family",
  [InsnHintCode.Xgetbv]: "xgetbv/xsetbv",
  [InsnHintCode.Vmcall]: "vmcall",
};

const SUBERRORS: Record<number, string> = {
  1: "emulation failure",
  2: "exception while delivering an exception",
  3: "exit while delivering an event",
  4: "unexpected exit reason",
};

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

/** Bytes of a u64, little-endian. */
function bytesOf(v: bigint, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Number((v >> BigInt(8 * i)) & 0xffn));
  return out;
}

function vectoring(v: bigint): string {
  if ((v & (1n << 31n)) === 0n) return `${hex(v)} (none)`;
  const types = [
    "external interrupt",
    "reserved",
    "NMI",
    "hardware exception",
    "software interrupt",
    "privileged software exception",
    "software exception",
    "other",
  ];
  return `${hex(v)} (vector ${v & 0xffn}, ${types[Number((v >> 8n) & 7n)]})`;
}

/**
 * Label KVM's internal-error data words (`include/uapi/linux/kvm.h`,
 * `arch/x86/kvm/x86.c` `prepare_emulation_failure_exit`).
 *
 * @example
 * ```ts
 * import { decodeInternalError } from "./crash_report.ts";
 * console.log(decodeInternalError(4, [0x30n, 1n]).decoded);
 * ```
 */
export function decodeInternalError(
  suberror: number,
  data: bigint[],
): KvmInternalError {
  const name = SUBERRORS[suberror] ?? "unknown suberror";
  const decoded: string[] = [];
  const label = (
    i: number,
    what: string,
    fmt: (v: bigint) => string = hex,
  ) => {
    if (i < data.length) decoded.push(`${what} = ${fmt(data[i])}`);
  };
  if (suberror === 1 && data.length > 0) {
    const flags = data[0];
    decoded.push(`flags = ${hex(flags)}`);
    let next = 1;
    if ((flags & 1n) !== 0n && data.length >= 3) {
      const all = [...bytesOf(data[1], 8), ...bytesOf(data[2], 8)];
      const size = Math.min(all[0], 15);
      decoded.push(
        `instruction bytes (KVM) = ${
          all.slice(1, 1 + size).map((b) => b.toString(16).padStart(2, "0"))
            .join(" ")
        }`,
      );
      next = 3;
    }
    label(next, "hardware exit reason");
    label(next + 1, "exit qualification / info 1");
    label(next + 2, "exit info 2");
    label(next + 3, "interruption info", vectoring);
    label(next + 4, "error code");
    for (let i = next + 5; i < data.length; i++) label(i, `extra data ${i}`);
  } else if (suberror === 3) {
    label(0, "vectoring info", vectoring);
    label(1, "hardware exit reason");
    label(2, "exit qualification");
    if (data.length > 4) label(3, "guest-physical address");
    label(data.length - 1, "last VM-entry host CPU", (v) => v.toString());
  } else if (suberror === 4) {
    label(0, "hardware exit reason");
    label(1, "last VM-entry host CPU", (v) => v.toString());
  } else {
    data.forEach((_, i) => label(i, `data ${i}`));
  }
  return { suberror, name, data, decoded };
}

/**
 * Decode the core's raw report.
 *
 * @example
 * ```ts ignore
 * import { decodeCrashReport } from "./crash_report.ts";
 * const report = decodeCrashReport(core.crashReport(0));
 * ```
 */
export function decodeCrashReport(r: RawCrashReport): CrashReport {
  const len = Math.min(Number(r.insn_len), 15);
  const bytes = [...bytesOf(r.insn_lo, 8), ...bytesOf(r.insn_hi, 8)].slice(
    0,
    len,
  );
  const hint = Number(r.insn_hint);
  const forbidden = FORBIDDEN[hint];
  const read = Number(r.insn_read);
  const instruction: CrashInstruction = { linear: r.linear, bytes };
  if (read === InsnReadCode.NotMapped) instruction.readError = "not-mapped";
  if (read === InsnReadCode.OutsideRam) instruction.readError = "outside-ram";
  if (forbidden) {
    instruction.forbidden = forbidden;
    instruction.hint =
      `${forbidden}: this host's KVM cannot emulate this instruction (a host limit, not a guest bug; see README "What this project's KVM host does differently")`;
  }
  const report: CrashReport = {
    rip: r.rip,
    rflags: r.rflags,
    mode: MODES[Number(r.mode)] ?? "long64",
    regs: {
      rax: r.rax,
      rbx: r.rbx,
      rcx: r.rcx,
      rdx: r.rdx,
      rsi: r.rsi,
      rdi: r.rdi,
      rsp: r.rsp,
      rbp: r.rbp,
      r8: r.r8,
      r9: r.r9,
      r10: r.r10,
      r11: r.r11,
      r12: r.r12,
      r13: r.r13,
      r14: r.r14,
      r15: r.r15,
    },
    control: {
      cr0: r.cr0,
      cr2: r.cr2,
      cr3: r.cr3,
      cr4: r.cr4,
      cr8: r.cr8,
      efer: r.efer,
    },
    segments: {
      csSelector: Number(r.cs_selector),
      cs: r.cs_base,
      ds: r.ds_base,
      es: r.es_base,
      fs: r.fs_base,
      gs: r.gs_base,
      ss: r.ss_base,
    },
    tables: {
      gdtBase: r.gdt_base,
      idtBase: r.idt_base,
      idtLimit: Number(r.idt_limit),
    },
    instruction,
  };
  if (r.has_internal !== 0n) {
    const n = Math.min(Number(r.ndata), 16);
    const words = [
      r.data0,
      r.data1,
      r.data2,
      r.data3,
      r.data4,
      r.data5,
      r.data6,
      r.data7,
      r.data8,
      r.data9,
      r.data10,
      r.data11,
      r.data12,
      r.data13,
      r.data14,
      r.data15,
    ].slice(0, n);
    report.kvm = decodeInternalError(Number(r.suberror), words);
  }
  return report;
}

const byteText = (b: number[]) =>
  b.map((x) => x.toString(16).padStart(2, "0")).join(" ");

/**
 * One line: where the guest was and what it was executing, plus the hint.
 *
 * @example
 * ```ts ignore
 * import { formatCrashCompact } from "./crash_report.ts";
 * console.log(formatCrashCompact(report)); // "at rip 0x100010 (long64): cc 90 ... [int3: ...]"
 * ```
 */
export function formatCrashCompact(c: CrashReport): string {
  const i = c.instruction;
  const bytes = i.bytes.length
    ? byteText(i.bytes.slice(0, 8)) + (i.bytes.length > 8 ? " .." : "")
    : `<no bytes: ${i.readError ?? "unreadable"}>`;
  return `at rip ${hex(c.rip)} (${c.mode}): ${bytes}${
    i.hint ? ` [${i.hint}]` : ""
  }`;
}

/**
 * The whole report, several lines.
 *
 * @example
 * ```ts ignore
 * import { formatCrashReport } from "./crash_report.ts";
 * console.error(formatCrashReport(report));
 * ```
 */
export function formatCrashReport(c: CrashReport): string {
  const w = (v: bigint) => v.toString(16).padStart(16, "0");
  const r = c.regs;
  const lines = [
    `rip ${w(c.rip)}  rflags ${w(c.rflags)}  mode ${c.mode}`,
    `rax ${w(r.rax)}  rbx ${w(r.rbx)}  rcx ${w(r.rcx)}  rdx ${w(r.rdx)}`,
    `rsi ${w(r.rsi)}  rdi ${w(r.rdi)}  rsp ${w(r.rsp)}  rbp ${w(r.rbp)}`,
    `r8  ${w(r.r8)}  r9  ${w(r.r9)}  r10 ${w(r.r10)}  r11 ${w(r.r11)}`,
    `r12 ${w(r.r12)}  r13 ${w(r.r13)}  r14 ${w(r.r14)}  r15 ${w(r.r15)}`,
    `cr0 ${w(c.control.cr0)}  cr2 ${w(c.control.cr2)}  cr3 ${
      w(c.control.cr3)
    }  cr4 ${w(c.control.cr4)}`,
    `cr8 ${w(c.control.cr8)}  efer ${w(c.control.efer)}`,
    `cs ${hex(c.segments.csSelector)} base ${hex(c.segments.cs)}  ds ${
      hex(c.segments.ds)
    }  es ${hex(c.segments.es)}  fs ${hex(c.segments.fs)}  gs ${
      hex(c.segments.gs)
    }  ss ${hex(c.segments.ss)}`,
    `gdt ${hex(c.tables.gdtBase)}  idt ${hex(c.tables.idtBase)} limit ${
      hex(c.tables.idtLimit)
    }`,
    `code at ${hex(c.instruction.linear)}: ${
      byteText(c.instruction.bytes) || "-"
    }${c.instruction.readError ? ` (${c.instruction.readError})` : ""}`,
  ];
  if (c.kvm) {
    lines.push(`KVM suberror ${c.kvm.suberror} (${c.kvm.name})`);
    for (const d of c.kvm.decoded) lines.push(`  ${d}`);
  }
  if (c.instruction.hint) lines.push(`hint: ${c.instruction.hint}`);
  return lines.join("\n");
}
