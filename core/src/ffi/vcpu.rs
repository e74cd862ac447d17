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
