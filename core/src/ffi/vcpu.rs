//! vCPU functions of the C ABI: run, exit record, counters, LAPIC, ExtINT.

use super::{with_vm, write_out};
use crate::error::Error;

/// [`dv_vcpu_lapic_eoi`] result when no vector was in service.
pub const DV_LAPIC_EOI_NONE: i32 = 256;

/// Run-loop counters of a vCPU.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct VcpuCounters {
    /// All KVM exits.
    pub exits: u64,
    /// Exits handled in the core's fast path.
    pub fast_path: u64,
    /// Exits returned to the caller.
    pub forwarded: u64,
    /// Unclaimed reads answered with all-ones.
    pub unclaimed_reads: u64,
    /// Unclaimed writes ignored.
    pub unclaimed_writes: u64,
}

/// Run vCPU `vcpu` on the calling thread until an exit the caller must
/// handle; returns its `DvReason` (> 0) with the exit record filled, or an
/// error. For a forwarded read, the caller writes the data into the
/// record's `data` before the next run. `DV_CODE_BUSY` if the vCPU already
/// runs on another thread.
#[no_mangle]
pub extern "C" fn dv_vcpu_run(vm: u32, vcpu: u32) -> i32 {
    with_vm(vm, |v| Ok(v.run(vcpu)? as i32))
}

/// Write the address of vCPU `vcpu`'s exit record (`DvExitRecord`, fixed
/// for the VM's life; see the module docs for how long it stays valid)
/// to `out`. Returns 0.
///
/// # Safety
/// `out` must be valid for one u64 write.
#[no_mangle]
pub unsafe extern "C" fn dv_vcpu_record(vm: u32, vcpu: u32, out: *mut u64) -> i32 {
    with_vm(vm, |v| {
        let p = v.record(vcpu)? as u64;
        // SAFETY: forwarded from the caller's contract.
        unsafe { write_out(out, p) }?;
        Ok(0)
    })
}

/// Write vCPU `vcpu`'s [`VcpuCounters`] to `out` (not while it runs).
///
/// # Safety
/// `out` must be valid for one `VcpuCounters` write.
#[no_mangle]
pub unsafe extern "C" fn dv_vcpu_counters(vm: u32, vcpu: u32, out: *mut VcpuCounters) -> i32 {
    with_vm(vm, |v| {
        let c = v.counters(vcpu)?;
        let c = VcpuCounters {
            exits: c.exits,
            fast_path: c.fast_path,
            forwarded: c.forwarded,
            unclaimed_reads: c.unclaimed_reads,
            unclaimed_writes: c.unclaimed_writes,
        };
        // SAFETY: forwarded from the caller's contract.
        unsafe { write_out(out, c) }?;
        Ok(0)
    })
}

/// vCPU `vcpu`'s `KVM_MP_STATE`: 0 runnable, 1 uninitialized (an AP
/// waiting for INIT/SIPI), 2 INIT received, 3 halted, 4 SIPI received.
/// Not while it runs.
#[no_mangle]
pub extern "C" fn dv_vcpu_mp_state(vm: u32, vcpu: u32) -> i32 {
    with_vm(vm, |v| i32::try_from(v.mp_state(vcpu)?).map_err(|_| Error::invalid("MP state out of range")))
}

/// TSC frequency of vCPU `vcpu` in kHz.
#[no_mangle]
pub extern "C" fn dv_vcpu_tsc_khz(vm: u32, vcpu: u32) -> i32 {
    with_vm(vm, |v| i32::try_from(v.tsc_khz(vcpu)?).map_err(|_| Error::invalid("TSC frequency out of range")))
}

/// Read `count` 32-bit registers of vCPU `vcpu`'s in-kernel LAPIC at the
/// byte `offsets` (multiples of 16, SDM table 11-1) into `out`. Returns 0.
///
/// # Safety
/// `offsets` must be valid for `count` u32 reads and `out` for `count`
/// u32 writes.
#[no_mangle]
pub unsafe extern "C" fn dv_vcpu_lapic_read(vm: u32, vcpu: u32, offsets: *const u32, count: usize, out: *mut u32) -> i32 {
    with_vm(vm, |v| {
        if offsets.is_null() || out.is_null() || count > 64 {
            return Err(Error::invalid("LAPIC read: null buffer or more than 64 registers"));
        }
        // SAFETY: the caller guarantees `count` readable offsets.
        let offs: Vec<usize> = (0..count).map(|i| unsafe { offsets.add(i).read_unaligned() } as usize).collect();
        for (i, r) in v.lapic_regs(vcpu, &offs)?.into_iter().enumerate() {
            // SAFETY: the caller guarantees `count` writable u32; i < count.
            unsafe { out.add(i).write_unaligned(r) };
        }
        Ok(0)
    })
}

/// Retire the highest in-service vector of vCPU `vcpu`'s LAPIC (what a
/// guest EOI write does). Returns the vector (0..255), or
/// [`DV_LAPIC_EOI_NONE`] when none was in service.
#[no_mangle]
pub extern "C" fn dv_vcpu_lapic_eoi(vm: u32, vcpu: u32) -> i32 {
    with_vm(vm, |v| Ok(v.lapic_eoi(vcpu)?.map_or(DV_LAPIC_EOI_NONE, i32::from)))
}

/// Make vCPU `vcpu`'s current (or next) run return `DV_REASON_WAKE`, from
/// any thread: how the caller gets a vCPU that runs on its own thread out
/// to it (for example vCPU 0, to inject an ExtINT). Returns 0.
#[no_mangle]
pub extern "C" fn dv_vcpu_wake(vm: u32, vcpu: u32) -> i32 {
    with_vm(vm, |v| v.wake_vcpu(vcpu).map(|_| 0))
}

/// Ask for (`on` != 0) or cancel an interrupt-window exit on vCPU `vcpu`:
/// `dv_vcpu_run` returns `DV_REASON_IRQ_WINDOW` at the first exit where
/// the vCPU can take an injected interrupt. Returns 0.
#[no_mangle]
pub extern "C" fn dv_vcpu_set_irq_window(vm: u32, vcpu: u32, on: u32) -> i32 {
    with_vm(vm, |v| v.request_interrupt_window(vcpu, on != 0).map(|_| 0))
}

/// 1 when KVM reported at the last exit that vCPU `vcpu` can take an
/// injected interrupt now, else 0.
#[no_mangle]
pub extern "C" fn dv_vcpu_ready_for_injection(vm: u32, vcpu: u32) -> i32 {
    with_vm(vm, |v| Ok(v.ready_for_injection(vcpu)? as i32))
}

/// Split irqchip: inject the PIC's ExtINT `vector` (KVM_INTERRUPT) on vCPU
/// `vcpu` if it is ready. Returns 1 when injected, 0 when not ready.
#[no_mangle]
pub extern "C" fn dv_vcpu_inject_extint(vm: u32, vcpu: u32, vector: u32) -> i32 {
    with_vm(vm, |v| {
        let vector = u8::try_from(vector).map_err(|_| Error::invalid(format!("vector {vector} is not 0..255")))?;
        Ok(v.inject_extint(vcpu, vector)? as i32)
    })
}

/// Set vCPU `vcpu`'s CPU model from a spec of `len` UTF-8 bytes at `spec`:
/// items separated by newlines (or commas when there is no newline): an
/// optional first item `host` or `baseline`, then `+name` / `-name` per
/// feature, `vendor=`, `family=`, `model=`, `stepping=`, `brand=`,
/// `kvm=on|off` (paravirt leaves), `tsc-leaves=on|off`. Validated against
/// `KVM_GET_SUPPORTED_CPUID` (`DV_CODE_UNSUPPORTED` naming the feature the
/// host lacks). Only before the vCPU first runs. Returns 0.
///
/// # Safety
/// `spec` must be valid for `len` byte reads.
#[no_mangle]
pub unsafe extern "C" fn dv_vcpu_set_cpu(vm: u32, vcpu: u32, spec: *const u8, len: usize) -> i32 {
    with_vm(vm, |v| {
        if spec.is_null() {
            return Err(Error::invalid("null CPU spec"));
        }
        // SAFETY: the caller guarantees `len` readable bytes at `spec`.
        let bytes = unsafe { std::slice::from_raw_parts(spec, len) };
        let text = std::str::from_utf8(bytes).map_err(|_| Error::invalid("CPU spec is not UTF-8"))?;
        v.set_cpu(vcpu, text).map(|_| 0)
    })
}

/// Write the CPUID answer of vCPU `vcpu` for `leaf`/`subleaf` (EAX, EBX,
/// ECX, EDX) to `out`. Returns 1 when the table has the entry, 0 when not
/// (`out` zeroed).
///
/// # Safety
/// `out` must be valid for four u32 writes.
#[no_mangle]
pub unsafe extern "C" fn dv_vcpu_cpuid(vm: u32, vcpu: u32, leaf: u32, subleaf: u32, out: *mut u32) -> i32 {
    with_vm(vm, |v| {
        let e = v.cpuid(vcpu, leaf, subleaf)?;
        let regs = e.map_or([0; 4], |e| [e.eax, e.ebx, e.ecx, e.edx]);
        // SAFETY: forwarded from the caller's contract (four u32 slots).
        unsafe { write_out(out.cast::<[u32; 4]>(), regs) }?;
        Ok(e.is_some() as i32)
    })
}

/// A failed vCPU's state for a person to read (see
/// [`dv_vcpu_crash_report`]). Every field is a u64.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct CrashReport {
    /// RIP.
    pub rip: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// RAX.
    pub rax: u64,
    /// RBX.
    pub rbx: u64,
    /// RCX.
    pub rcx: u64,
    /// RDX.
    pub rdx: u64,
    /// RSI.
    pub rsi: u64,
    /// RDI.
    pub rdi: u64,
    /// RSP.
    pub rsp: u64,
    /// RBP.
    pub rbp: u64,
    /// R8.
    pub r8: u64,
    /// R9.
    pub r9: u64,
    /// R10.
    pub r10: u64,
    /// R11.
    pub r11: u64,
    /// R12.
    pub r12: u64,
    /// R13.
    pub r13: u64,
    /// R14.
    pub r14: u64,
    /// R15.
    pub r15: u64,
    /// CR0.
    pub cr0: u64,
    /// CR2.
    pub cr2: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// CR8.
    pub cr8: u64,
    /// EFER.
    pub efer: u64,
    /// CS selector.
    pub cs_selector: u64,
    /// CS base.
    pub cs_base: u64,
    /// DS base.
    pub ds_base: u64,
    /// ES base.
    pub es_base: u64,
    /// FS base.
    pub fs_base: u64,
    /// GS base.
    pub gs_base: u64,
    /// SS base.
    pub ss_base: u64,
    /// GDT base.
    pub gdt_base: u64,
    /// IDT base.
    pub idt_base: u64,
    /// IDT limit.
    pub idt_limit: u64,
    /// `DvCpuMode`.
    pub mode: u64,
    /// Linear address of RIP.
    pub linear: u64,
    /// Instruction bytes read at RIP (0..15).
    pub insn_len: u64,
    /// Instruction bytes 0..8 (little-endian: byte 0 in the low bits).
    pub insn_lo: u64,
    /// Instruction bytes 8..15.
    pub insn_hi: u64,
    /// `DvInsnRead`: why fewer than 15 bytes were read.
    pub insn_read: u64,
    /// `DvInsnHint`: an instruction this host cannot emulate.
    pub insn_hint: u64,
    /// 1 when the last run ended with a KVM internal error (the next
    /// three fields and the data words are valid).
    pub has_internal: u64,
    /// `KVM_INTERNAL_ERROR_*` suberror.
    pub suberror: u64,
    /// Valid data words (0..16).
    pub ndata: u64,
    /// Data word 0.
    pub data0: u64,
    /// Data word 1.
    pub data1: u64,
    /// Data word 2.
    pub data2: u64,
    /// Data word 3.
    pub data3: u64,
    /// Data word 4.
    pub data4: u64,
    /// Data word 5.
    pub data5: u64,
    /// Data word 6.
    pub data6: u64,
    /// Data word 7.
    pub data7: u64,
    /// Data word 8.
    pub data8: u64,
    /// Data word 9.
    pub data9: u64,
    /// Data word 10.
    pub data10: u64,
    /// Data word 11.
    pub data11: u64,
    /// Data word 12.
    pub data12: u64,
    /// Data word 13.
    pub data13: u64,
    /// Data word 14.
    pub data14: u64,
    /// Data word 15.
    pub data15: u64,
}

/// Write vCPU `vcpu`'s [`CrashReport`] to `out` (not while it runs):
/// registers, mode, up to 15 instruction bytes at RIP read through the
/// guest's page tables (bounded by guest RAM), a hint for instructions
/// this host cannot emulate, and the last internal error's data words.
/// Returns 0.
///
/// # Safety
/// `out` must be valid for one `DvCrashReport` write.
#[no_mangle]
pub unsafe extern "C" fn dv_vcpu_crash_report(vm: u32, vcpu: u32, out: *mut CrashReport) -> i32 {
    with_vm(vm, |v| {
        let s = v.crash_state(vcpu)?;
        let (r, sr) = (&s.regs, &s.sregs);
        let mut b = [0u8; 16];
        b[..s.insn.len().min(15)].copy_from_slice(&s.insn[..s.insn.len().min(15)]);
        let lo = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let hi = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
        let i = s.internal.unwrap_or_default();
        let d = i.data;
        let rep = CrashReport {
            rip: r.rip,
            rflags: r.rflags,
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
            cr0: sr.cr0,
            cr2: sr.cr2,
            cr3: sr.cr3,
            cr4: sr.cr4,
            cr8: sr.cr8,
            efer: sr.efer,
            cs_selector: sr.cs.selector as u64,
            cs_base: sr.cs.base,
            ds_base: sr.ds.base,
            es_base: sr.es.base,
            fs_base: sr.fs.base,
            gs_base: sr.gs.base,
            ss_base: sr.ss.base,
            gdt_base: sr.gdt.base,
            idt_base: sr.idt.base,
            idt_limit: sr.idt.limit as u64,
            mode: s.mode as u64,
            linear: s.linear,
            insn_len: s.insn.len() as u64,
            insn_lo: lo,
            insn_hi: hi,
            insn_read: s.insn_read as u64,
            insn_hint: s.hint as u64,
            has_internal: s.internal.is_some() as u64,
            suberror: i.suberror as u64,
            ndata: i.ndata as u64,
            data0: d[0],
            data1: d[1],
            data2: d[2],
            data3: d[3],
            data4: d[4],
            data5: d[5],
            data6: d[6],
            data7: d[7],
            data8: d[8],
            data9: d[9],
            data10: d[10],
            data11: d[11],
            data12: d[12],
            data13: d[13],
            data14: d[14],
            data15: d[15],
        };
        // SAFETY: forwarded from the caller's contract.
        unsafe { write_out(out, rep) }?;
        Ok(0)
    })
}
