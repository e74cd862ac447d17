/**
 * The core's C ABI as TypeScript constants: every enum, flag and record
 * layout of `core/include/denovmm.h` (generated from the Rust sources),
 * mirrored here by name. `abi_test.ts` parses the header and fails when a
 * value here drifts from it.
 *
 * @module
 */

/** ABI version this binding speaks (`DV_ABI_VERSION`). */
export const ABI_VERSION = 3;

/** Error codes of the core (`DvCode`, negative return values). */
export const CoreCode = {
  BadHandle: -1,
  InvalidArgument: -2,
  Os: -3,
  BadImage: -4,
  NoKvm: -5,
  Panic: -6,
  Busy: -7,
  Unsupported: -8,
} as const;

/** Why `dv_vcpu_run` returned (`DvReason`). */
export const ExitReason = {
  Io: 1,
  Mmio: 2,
  Hlt: 3,
  Shutdown: 4,
  InternalError: 5,
  Stopped: 6,
  Timeout: 7,
  IoapicEoi: 8,
  FailEntry: 9,
  SystemEvent: 10,
  Unclaimed: 11,
  Wake: 12,
  IrqWindow: 13,
  Unknown: 14,
} as const;

/** Address spaces (`DvSpace`). */
export const SpaceCode = { Pio: 0, Mmio: 1 } as const;
/** Irqchip arrangements (`DvIrqchipMode`). */
export const IrqchipCode = { Kernel: 0, Split: 1 } as const;
/** Range actions (`DvRangeAction`). */
export const RangeAction = { Forward: 0, Ignore: 1 } as const;
/** Timer targets (`DvTimerTarget`). */
export const TimerTargetCode = { Gsi: 0, Msi: 1 } as const;
/** Timer pacing (`DvPacing`). */
export const PacingCode = { Absolute: 0, RelativeSleep: 1 } as const;
/** Timer tick policies (`DvTickPolicy`). */
export const TickPolicyCode = { Coalesce: 0, Catchup: 1 } as const;

/** Record kinds of a machine-state blob (`DvStateTag`; stored in files). */
export const StateTagCode = {
  Regs: 1,
  Sregs: 2,
  Fpu: 3,
  Xsave: 4,
  Xcrs: 5,
  Lapic: 6,
  Events: 7,
  MpState: 8,
  DebugRegs: 9,
  Msrs: 10,
  Irqchip: 16,
  Clock: 17,
  Pit: 18,
  LevelSources: 19,
} as const;
/** Guest CPU modes of a crash report (`DvCpuMode`). */
export const CpuModeCode = {
  Real: 0,
  V8086: 1,
  Protected16: 2,
  Protected32: 3,
  Compat: 4,
  Long64: 5,
} as const;
/** Instructions this host's KVM cannot emulate (`DvInsnHint`). */
export const InsnHintCode = {
  None: 0,
  Int3: 1,
  IntN: 2,
  Iret: 3,
  Cmpxchg16b: 4,
  Xsave: 5,
  Fxsave: 6,
  Xgetbv: 7,
  Vmcall: 8,
} as const;
/** Why fewer than 15 instruction bytes were read (`DvInsnRead`). */
export const InsnReadCode = { Ok: 0, NotMapped: 1, OutsideRam: 2 } as const;

/** Flags and limits (`#define DV_*`). */
export const AbiConst = {
  DV_ABI_VERSION: ABI_VERSION,
  DV_VM_STRICT: 1,
  DV_VM_QUIRK_LEVEL_RESIGNAL: 2,
  DV_RESET_MEMORY: 1,
  DV_IRQ_LEVEL: 1,
  DV_IRQ_LOGICAL: 2,
  DV_IRQFD_RESAMPLE: 1,
  DV_LAPIC_EOI_NONE: 256,
  DV_EXIT_DATA_LEN: 4096,
  DV_MAX_SOURCES: 4096,
  DV_MAX_IRQFDS: 4096,
  DV_IOAPIC_PINS: 24,
  DV_MAX_GSI: 1023,
  DV_MIN_MEM: 0x20_0000,
  DV_MAX_MEM: 0x100_0000_0000,
  DV_RAM_HOLE_START: 0xb000_0000,
  DV_RAM_HIGH_BASE: 0x1_0000_0000,
  DV_MEMORY_MAP: 1,
  DV_MEMORY_TO_RAM: 1,
  DV_STATE_VERSION: 1,
} as const;

/**
 * Field order of the all-u64 out-structs (read through a BigUint64Array
 * or Float64-free DataView at 8 bytes per field).
 */
export const StructFields = {
  DvVcpuCounters: [
    "exits",
    "fast_path",
    "forwarded",
    "unclaimed_reads",
    "unclaimed_writes",
  ],
  DvTimerStats: ["ticks", "missed", "period_ns"],
  DvTimerCatchupStats: [
    "ticks",
    "missed",
    "period_ns",
    "owed",
    "dropped_over_cap",
    "cleared",
    "backlog",
    "acks",
    "policy",
    "reinjected",
  ],
  DvLevelStats: [
    "asserts",
    "eois",
    "pending",
    "rtt_total_ns",
    "rtt_min_ns",
    "rtt_max_ns",
    "reinjected",
  ],
  DvCrashReport: [
    "rip",
    "rflags",
    "rax",
    "rbx",
    "rcx",
    "rdx",
    "rsi",
    "rdi",
    "rsp",
    "rbp",
    "r8",
    "r9",
    "r10",
    "r11",
    "r12",
    "r13",
    "r14",
    "r15",
    "cr0",
    "cr2",
    "cr3",
    "cr4",
    "cr8",
    "efer",
    "cs_selector",
    "cs_base",
    "ds_base",
    "es_base",
    "fs_base",
    "gs_base",
    "ss_base",
    "gdt_base",
    "idt_base",
    "idt_limit",
    "mode",
    "linear",
    "insn_len",
    "insn_lo",
    "insn_hi",
    "insn_read",
    "insn_hint",
    "has_internal",
    "suberror",
    "ndata",
    "data0",
    "data1",
    "data2",
    "data3",
    "data4",
    "data5",
    "data6",
    "data7",
    "data8",
    "data9",
    "data10",
    "data11",
    "data12",
    "data13",
    "data14",
    "data15",
  ],
  DvVmInfo: [
    "tsc_deadline",
    "timers_armed",
    "event_thread",
    "event_thread_realtime",
    "event_thread_cpu_ns",
    "irqfds",
    "vcpus",
    "ap_threads",
  ],
} as const;

/** Byte offsets of `DvExitRecord` fields. */
export const RecordOffset = {
  reason: 0,
  vcpu: 4,
  address: 8,
  size: 16,
  count: 20,
  is_write: 24,
  space: 28,
  arg: 32,
  arg2: 40,
  region: 48,
  data: 64,
} as const;
