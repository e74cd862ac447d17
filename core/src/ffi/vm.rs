//! VM functions of the C ABI: create, load, memory, ranges, stop, alarms.

use super::{guard, with_vm, write_out, VMS};
use crate::error::{Error, Result};
use crate::kick::{TIMEOUT, WAKE};
use crate::multiboot::MultibootModule;
use crate::ranges::{Action, Space};
use crate::vm::{IrqchipMode, Vm, VmConfig};

/// `DvVmConfig.flags`: forward accesses nobody claimed (`DV_REASON_UNCLAIMED`)
/// instead of answering reads with all-ones and ignoring writes.
pub const DV_VM_STRICT: u32 = 1;
/// `DvVmCreateConfig.flags`: enable the nested-KVM quirk workaround that
/// re-signals level MSIs left without EOI (split irqchip only).
pub const DV_VM_QUIRK_LEVEL_RESIGNAL: u32 = 2;

/// What the core does with accesses in a range. Values are ABI.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAction {
    /// Return from `dv_vcpu_run` with the access in the exit record.
    Forward = 0,
    /// Handle in the core: writes ignored, reads return `read_value`.
    Ignore = 1,
}

/// Arguments of [`dv_vm_create`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VmCreateConfig {
    /// Guest RAM in bytes (a multiple of 4 KiB, 2 MiB .. 3 GiB).
    pub mem_size: u64,
    /// An [`IrqchipMode`].
    pub irqchip: u32,
    /// `DV_VM_*` flags.
    pub flags: u32,
    /// vCPUs, 1..=64 (0 means 1). vCPU 0 boots; the others (APs) wait for
    /// INIT/SIPI from the guest.
    pub vcpus: u32,
    /// Must be 0.
    pub reserved: u32,
}

/// Create a VM with `config.vcpus` vCPUs; writes its handle to `out`.
/// Returns 0.
///
/// # Safety
/// `config` must be valid for one read and `out` for one write.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_create(config: *const VmCreateConfig, out: *mut u32) -> i32 {
    guard(|| {
        if config.is_null() {
            return Err(Error::invalid("null config"));
        }
        // SAFETY: the caller guarantees `config` is readable.
        let c = unsafe { config.read_unaligned() };
        if c.flags & !(DV_VM_STRICT | DV_VM_QUIRK_LEVEL_RESIGNAL) != 0 {
            return Err(Error::invalid(format!("unknown VM flags {:#x}", c.flags)));
        }
        let config = VmConfig {
            mem_size: c.mem_size,
            irqchip: IrqchipMode::from_u32(c.irqchip)?,
            strict: c.flags & DV_VM_STRICT != 0,
            quirk_level_resignal: c.flags & DV_VM_QUIRK_LEVEL_RESIGNAL != 0,
            vcpus: c.vcpus.max(1),
        };
        if c.reserved != 0 {
            return Err(Error::invalid("VmCreateConfig.reserved must be 0"));
        }
        let vm = Vm::new(config)?;
        let h = VMS.insert(vm);
        let h32 = u32::try_from(h).map_err(|_| Error::invalid("VM handles exhausted"))?;
        // SAFETY: forwarded from the caller's contract.
        unsafe { write_out(out, h32) }?;
        Ok(0)
    })
}

/// Load an ELF64 image (`len` bytes at `image`) and set vCPU 0 to its
/// long-mode entry with `args[0..4]` in RDI, RSI, RDX, RCX (`args` may be
/// null: zeros). Returns 0.
///
/// # Safety
/// `image` must be valid for `len` byte reads; `args` null or 4 u64 reads.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_load_elf(vm: u32, image: *const u8, len: usize, args: *const u64) -> i32 {
    with_vm(vm, |v| {
        if image.is_null() {
            return Err(Error::invalid("null image"));
        }
        // SAFETY: the caller guarantees image/len describe readable memory.
        let bytes = unsafe { std::slice::from_raw_parts(image, len) };
        let mut a = [0u64; 4];
        if !args.is_null() {
            for (i, slot) in a.iter_mut().enumerate() {
                // SAFETY: the caller guarantees 4 readable u64.
                *slot = unsafe { args.add(i).read_unaligned() };
            }
        }
        v.load_elf(bytes, a)?;
        Ok(0)
    })
}

fn str_of(s: &[u8]) -> Result<&str> {
    std::str::from_utf8(s).map_err(|_| Error::invalid("multiboot command line is not UTF-8"))
}

/// Parse the Multiboot extras blob: u32 cmdline length, cmdline bytes, u32
/// module count, then per module u32 length, bytes, u32 cmdline length,
/// cmdline bytes (all little-endian). Every length is bounds-checked.
pub(crate) fn parse_multiboot_extras(b: &[u8]) -> Result<(&str, Vec<MultibootModule<'_>>)> {
    let mut off = 0usize;
    let mut take = |n: usize| -> Result<&[u8]> {
        let end = off.checked_add(n).filter(|&e| e <= b.len()).ok_or_else(|| Error::invalid("multiboot extras: truncated"))?;
        let s = &b[off..end];
        off = end;
        Ok(s)
    };
    let u32_at = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize;
    let n = u32_at(take(4)?);
    let cmdline = str_of(take(n)?)?;
    let count = u32_at(take(4)?);
    if count > 64 {
        return Err(Error::invalid(format!("{count} multiboot modules (at most 64)")));
    }
    let mut mods = Vec::with_capacity(count);
    for _ in 0..count {
        let n = u32_at(take(4)?);
        let bytes = take(n)?;
        let n = u32_at(take(4)?);
        let cmd = str_of(take(n)?)?;
        mods.push(MultibootModule { bytes, cmdline: cmd });
    }
    Ok((cmdline, mods))
}

/// Load a Multiboot v1 image (`len` bytes at `image`) with `extras`
/// (`extras_len` bytes: command line and modules, laid out as u32 cmdline
/// length, cmdline, u32 module count, then per module u32 length, bytes,
/// u32 cmdline length, cmdline; little-endian). Returns 0.
///
/// # Safety
/// `image` must be valid for `len` byte reads and `extras` for `extras_len`.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_load_multiboot(
    vm: u32,
    image: *const u8,
    len: usize,
    extras: *const u8,
    extras_len: usize,
) -> i32 {
    with_vm(vm, |v| {
        if image.is_null() || extras.is_null() {
            return Err(Error::invalid("null image or extras"));
        }
        // SAFETY: the caller guarantees both ranges are readable.
        let (bytes, extras) =
            unsafe { (std::slice::from_raw_parts(image, len), std::slice::from_raw_parts(extras, extras_len)) };
        let (cmdline, mods) = parse_multiboot_extras(extras)?;
        v.load_multiboot(bytes, cmdline, &mods)?;
        Ok(0)
    })
}

/// Guest RAM: writes its host address to `out[0]` and its size to
/// `out[1]`. The mapping lives as long as the VM (see the module docs).
///
/// # Safety
/// `out` must be valid for two u64 writes.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_memory(vm: u32, out: *mut u64) -> i32 {
    with_vm(vm, |v| {
        let (a, s) = v.memory()?;
        // SAFETY: forwarded from the caller's contract (two u64 slots).
        unsafe { write_out(out.cast::<[u64; 2]>(), [a, s]) }?;
        Ok(0)
    })
}

/// Add a range of `space` ([`Space`]): [`RangeAction::Forward`] (accesses
/// come back from `dv_vcpu_run` with `region` in the record) or
/// [`RangeAction::Ignore`] (reads return `read_value`). Overlaps are
/// errors. Returns 0.
#[no_mangle]
pub extern "C" fn dv_vm_range_add(vm: u32, space: u32, base: u64, len: u64, action: u32, region: u32, read_value: u64) -> i32 {
    with_vm(vm, |v| {
        let space = Space::from_u32(space)?;
        let action = match action {
            a if a == RangeAction::Forward as u32 => Action::Forward { region },
            a if a == RangeAction::Ignore as u32 => Action::Ignore { read_value },
            _ => return Err(Error::invalid(format!("bad range action {action}"))),
        };
        v.range_add(space, base, len, action)?;
        Ok(0)
    })
}

/// Remove the range of `space` starting at `base`. Returns 0.
#[no_mangle]
pub extern "C" fn dv_vm_range_remove(vm: u32, space: u32, base: u64) -> i32 {
    with_vm(vm, |v| {
        v.range_remove(Space::from_u32(space)?, base)?;
        Ok(0)
    })
}

/// Stop, from any thread: the current run of every vCPU, or its next one
/// if none is running, returns `DV_REASON_STOPPED` (the stop is consumed
/// by that return). Returns 0.
#[no_mangle]
pub extern "C" fn dv_vm_stop(vm: u32) -> i32 {
    with_vm(vm, |v| {
        v.stop();
        Ok(0)
    })
}

/// Set the run timeout `ns` from now (0 cancels): the running vCPUs return
/// `DV_REASON_TIMEOUT`. Returns 0.
#[no_mangle]
pub extern "C" fn dv_vm_set_timeout(vm: u32, ns: u64) -> i32 {
    with_vm(vm, |v| v.alarm(TIMEOUT, ns).map(|_| 0))
}

/// Set a one-shot wake-up `ns` from now (0 cancels): the running vCPUs
/// return `DV_REASON_WAKE`. Returns 0.
#[no_mangle]
pub extern "C" fn dv_vm_set_wake(vm: u32, ns: u64) -> i32 {
    with_vm(vm, |v| v.alarm(WAKE, ns).map(|_| 0))
}

/// [`dv_vm_reset`] flag: zero guest RAM too.
pub const DV_RESET_MEMORY: u32 = 1;

/// Return the VM to power-on state (vCPUs, in-kernel irqchip, timers and
/// alarms disarmed; with [`DV_RESET_MEMORY`] guest RAM zeroed). Ranges,
/// routes, irqfds and level sources stay. `DV_CODE_BUSY` while a vCPU
/// runs. Returns 0.
#[no_mangle]
pub extern "C" fn dv_vm_reset(vm: u32, flags: u32) -> i32 {
    with_vm(vm, |v| {
        if flags & !DV_RESET_MEMORY != 0 {
            return Err(Error::invalid(format!("unknown reset flags {flags:#x}")));
        }
        v.reset(flags & DV_RESET_MEMORY != 0).map(|_| 0)
    })
}

/// Start one host thread per vCPU running `KVM_RUN` (a VM with more
/// than one vCPU); no-op with one vCPU or while they run. An exit the core
/// does not handle parks that vCPU; the caller waits for and takes parked
/// vCPUs with [`dv_vm_wait_exits`] (or [`dv_vm_take_parked`]), handles
/// each exit record and releases the vCPU with its next
/// [`dv_vm_wait_exits`] (or [`dv_vm_release_ap`]). Returns 0.
#[no_mangle]
pub extern "C" fn dv_vm_start_aps(vm: u32) -> i32 {
    guard(|| {
        let v = VMS.get(vm as u64).map_err(|_| Error::new(crate::error::Code::BadHandle, format!("unknown or closed VM handle {vm}")))?;
        if !v.alive() {
            return Err(Error::new(crate::error::Code::BadHandle, format!("unknown or closed VM handle {vm}")));
        }
        v.start_aps().map(|_| 0)
    })
}

/// Stop every AP thread and join it (an exit still parked stays parked
/// and is handed over by the next run). Idempotent. Returns 0.
#[no_mangle]
pub extern "C" fn dv_vm_stop_aps(vm: u32) -> i32 {
    with_vm(vm, |v| {
        v.stop_aps();
        Ok(0)
    })
}

/// End a run leaving the AP threads running (a caller that runs in
/// slices): the next [`dv_vm_start_aps`] adopts them; [`dv_vm_stop_aps`],
/// or any call that needs an AP's vCPU (registers, state, reset, snapshot),
/// stops them first. No-op without AP threads. Returns 0.
#[no_mangle]
pub extern "C" fn dv_vm_detach_aps(vm: u32) -> i32 {
    with_vm(vm, |v| {
        v.detach_aps();
        Ok(0)
    })
}

/// Write the indices of up to `cap` parked vCPUs to `out` and mark them
/// taken, without waiting; returns how many (0 when none). Each exit is in
/// that vCPU's exit record; release the vCPU with [`dv_vm_release_ap`]
/// once handled. [`dv_vm_wait_exits`] does both and waits.
///
/// # Safety
/// `out` must be valid for `cap` u32 writes.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_take_parked(vm: u32, out: *mut u32, cap: u32) -> i32 {
    with_vm(vm, |v| {
        if out.is_null() || cap == 0 || cap > 64 {
            return Err(Error::invalid("take parked: null buffer or capacity not 1..64"));
        }
        // SAFETY: the caller guarantees `cap` writable u32 at `out`.
        let buf = unsafe { std::slice::from_raw_parts_mut(out, cap as usize) };
        Ok(v.take_parked_aps(buf) as i32)
    })
}

/// The caller's side of a run with vCPU threads: release the first
/// `released` vCPUs listed in `buf` (exits taken by the previous call and
/// handled), then wait until at least one vCPU has parked an exit for
/// the caller and take every parked one: their indices go to `buf` (at
/// most `cap`, 1..64), and the count is returned. Spins briefly, then
/// sleeps; a stop, the run timeout and a wake-up reach the caller as
/// vCPU 0's exits. `DV_CODE_BUSY` when no vCPU thread runs.
///
/// # Safety
/// `buf` must be valid for `cap` u32 reads and writes.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_wait_exits(vm: u32, buf: *mut u32, released: u32, cap: u32) -> i32 {
    with_vm(vm, |v| {
        if buf.is_null() || cap == 0 || cap > 64 || released > cap {
            return Err(Error::invalid("wait exits: null buffer, capacity not 1..64 or more released than it holds"));
        }
        // SAFETY: the caller guarantees `cap` readable and writable u32 at `buf`.
        let buf = unsafe { std::slice::from_raw_parts_mut(buf, cap as usize) };
        let mut release = [0u32; 64];
        release[..released as usize].copy_from_slice(&buf[..released as usize]);
        Ok(v.wait_exits(&release[..released as usize], buf)? as i32)
    })
}

/// Let vCPU `vcpu`, whose exit was taken with [`dv_vm_take_parked`], run
/// again (a read completes with its record's data). Returns 0.
#[no_mangle]
pub extern "C" fn dv_vm_release_ap(vm: u32, vcpu: u32) -> i32 {
    with_vm(vm, |v| v.release_ap(vcpu).map(|_| 0))
}

/// VM-wide facts and counters (see [`dv_vm_info`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct VmInfo {
    /// 1 when CPUID advertises the TSC-deadline timer.
    pub tsc_deadline: u64,
    /// Armed tick timers.
    pub timers_armed: u64,
    /// 1 while the VM's event thread exists.
    pub event_thread: u64,
    /// 1 when the event thread got SCHED_FIFO priority.
    pub event_thread_realtime: u64,
    /// CPU time of the event thread (ns).
    pub event_thread_cpu_ns: u64,
    /// Live irqfds.
    pub irqfds: u64,
    /// vCPUs of the VM.
    pub vcpus: u64,
    /// AP threads running (see [`dv_vm_start_aps`]).
    pub ap_threads: u64,
}

/// Write the VM's [`VmInfo`] to `out`. Returns 0.
///
/// # Safety
/// `out` must be valid for one `VmInfo` write.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_info(vm: u32, out: *mut VmInfo) -> i32 {
    with_vm(vm, |v| {
        let t = v.event_thread();
        let info = VmInfo {
            tsc_deadline: v.tsc_deadline() as u64,
            timers_armed: v.timers_armed() as u64,
            event_thread: t.running as u64,
            event_thread_realtime: t.realtime as u64,
            event_thread_cpu_ns: t.cpu_ns,
            irqfds: v.irqfd_count() as u64,
            vcpus: v.vcpu_count() as u64,
            ap_threads: v.ap_threads() as u64,
        };
        // SAFETY: forwarded from the caller's contract.
        unsafe { write_out(out, info) }?;
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiboot_extras_are_bounds_checked() {
        let mut b = Vec::new();
        b.extend(3u32.to_le_bytes());
        b.extend(b"a=1");
        b.extend(1u32.to_le_bytes());
        b.extend(2u32.to_le_bytes());
        b.extend(b"MZ");
        b.extend(1u32.to_le_bytes());
        b.extend(b"m");
        let (c, m) = parse_multiboot_extras(&b).unwrap();
        assert_eq!((c, m.len(), m[0].bytes, m[0].cmdline), ("a=1", 1, &b"MZ"[..], "m"));
        for cut in 0..b.len() {
            assert!(parse_multiboot_extras(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = 0xffff_fff0u32.to_le_bytes().to_vec();
        huge.extend([0; 8]);
        assert!(parse_multiboot_extras(&huge).is_err());
    }
}
