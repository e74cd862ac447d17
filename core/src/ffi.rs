//! The C ABI (the only `extern "C"` functions of the crate).
//!
//! Conventions: every function returns an `i32`: >= 0 on success (a value
//! or 0), or a negative [`Code`]; the message of the last error on the
//! calling thread is copied out by [`dv_last_error`]. VMs are opaque `u64`
//! handles. Panics are caught here and become [`Code::Panic`]. Operations
//! are multiplexed by an `op` argument to keep the symbol table small
//! (Deno's dlopen costs ~155 µs per symbol).

use crate::error::{Code, Error, Result};
use crate::handles::HandleTable;
use crate::kick;
use crate::ranges::{Action, Space};
use crate::vm::{IrqchipMode, Vm, VmConfig};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, LazyLock};

/// Version of this ABI; TypeScript refuses a library with another one.
pub const ABI_VERSION: u32 = 1;

static VMS: LazyLock<HandleTable<Vm>> = LazyLock::new(HandleTable::new);

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_error(e: &Error) {
    LAST_ERROR.with(|l| *l.borrow_mut() = e.message.clone());
}

fn guard(f: impl FnOnce() -> Result<i32>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_error(&e);
            e.code as i32
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_error(&Error::new(Code::Panic, format!("panic in denovmm core: {msg}")));
            Code::Panic as i32
        }
    }
}

fn vm(h: u64) -> Result<Arc<Vm>> {
    VMS.get(h)
}

/// Write `values` to a caller buffer of `cap` u64 slots.
///
/// # Safety
/// `out` must be null or valid for `cap` u64 writes.
unsafe fn write_out(out: *mut u64, cap: usize, values: &[u64]) -> Result<()> {
    if out.is_null() || cap < values.len() {
        return Err(Error::invalid(format!("output buffer needs {} u64 slots", values.len())));
    }
    for (i, v) in values.iter().enumerate() {
        // SAFETY: the caller guarantees `out` is valid for `cap` writes and
        // i < values.len() <= cap.
        unsafe { out.add(i).write_unaligned(*v) };
    }
    Ok(())
}

/// ABI version of this library.
#[no_mangle]
pub extern "C" fn dv_abi_version() -> u32 {
    ABI_VERSION
}

/// Copy the calling thread's last error message (UTF-8, no NUL) into `buf`
/// (up to `cap` bytes); returns the message's full length.
///
/// # Safety
/// `buf` must be null or valid for `cap` byte writes.
#[no_mangle]
pub unsafe extern "C" fn dv_last_error(buf: *mut u8, cap: usize) -> usize {
    LAST_ERROR.with(|l| {
        let s = l.borrow();
        let n = s.len().min(cap);
        if !buf.is_null() {
            // SAFETY: the caller guarantees `buf` holds `cap` bytes; n <= cap.
            unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), buf, n) };
        }
        s.len()
    })
}

/// Create a VM. `irqchip`: 0 kernel, 1 split. `flags` bit 0: strict
/// (unclaimed accesses are returned as `Unclaimed`). Writes the handle.
///
/// # Safety
/// `out` must be valid for one u64 write.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_create(mem_size: u64, irqchip: u32, flags: u32, out: *mut u64) -> i32 {
    guard(|| {
        let config = VmConfig { mem_size, irqchip: IrqchipMode::from_u32(irqchip)?, strict: flags & 1 != 0 };
        let vm = Vm::new(config)?;
        let h = VMS.insert(vm);
        // SAFETY: forwarded from the caller's contract.
        unsafe { write_out(out, 1, &[h]) }?;
        Ok(0)
    })
}

/// Destroy a VM: stops its vCPUs and timers; memory is freed when a
/// running vCPU returns.
#[no_mangle]
pub extern "C" fn dv_vm_destroy(h: u64) -> i32 {
    guard(|| {
        let vm = VMS.remove(h)?;
        vm.shutdown();
        Ok(0)
    })
}

/// Load an ELF64 image (`len` bytes at `ptr`) and set the entry state with
/// four u64 arguments from `args` (may be null). Returns 0.
///
/// # Safety
/// `ptr` must be valid for `len` byte reads; `args` null or 4 u64 reads.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_load_elf(h: u64, ptr: *const u8, len: usize, args: *const u64) -> i32 {
    guard(|| {
        let vm = vm(h)?;
        if ptr.is_null() {
            return Err(Error::invalid("null image"));
        }
        // SAFETY: the caller guarantees ptr/len describe readable memory.
        let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
        let mut a = [0u64; 4];
        if !args.is_null() {
            for (i, slot) in a.iter_mut().enumerate() {
                // SAFETY: the caller guarantees 4 readable u64.
                *slot = unsafe { args.add(i).read_unaligned() };
            }
        }
        vm.load_elf(bytes, a)?;
        Ok(0)
    })
}

/// Parse the Multiboot extras blob: u32 cmdline length, cmdline bytes, u32
/// module count, then per module u32 length, bytes, u32 cmdline length,
/// cmdline bytes (all little-endian). Every length is bounds-checked.
fn str_of(s: &[u8]) -> Result<&str> {
    std::str::from_utf8(s).map_err(|_| Error::invalid("multiboot command line is not UTF-8"))
}

fn parse_multiboot_extras(b: &[u8]) -> Result<(&str, Vec<crate::multiboot::MultibootModule<'_>>)> {
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
        mods.push(crate::multiboot::MultibootModule { bytes, cmdline: cmd });
    }
    Ok((cmdline, mods))
}

/// Load a Multiboot v1 image (`len` bytes at `ptr`) with `extras`
/// (`extras_len` bytes; see the layout in the crate docs of
/// `parse_multiboot_extras`): command line and modules. Returns 0.
///
/// # Safety
/// `ptr` must be valid for `len` byte reads and `extras` for `extras_len`.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_load_multiboot(h: u64, ptr: *const u8, len: usize, extras: *const u8, extras_len: usize) -> i32 {
    guard(|| {
        let vm = vm(h)?;
        if ptr.is_null() || extras.is_null() {
            return Err(Error::invalid("null image or extras"));
        }
        // SAFETY: the caller guarantees both ranges are readable.
        let (bytes, extras) = unsafe { (std::slice::from_raw_parts(ptr, len), std::slice::from_raw_parts(extras, extras_len)) };
        let (cmdline, mods) = parse_multiboot_extras(extras)?;
        vm.load_multiboot(bytes, cmdline, &mods)?;
        Ok(0)
    })
}

/// Query: `what` 0 = guest RAM [host address, size]; 1 = exit record
/// address of vCPU `arg`; 2 = vCPU `arg` counters [exits, fast path,
/// forwarded, unclaimed reads, unclaimed writes]; 3 = TSC kHz of vCPU
/// `arg`; 4 = timer `arg` stats [ticks, missed, cpu ns, period ns, realtime];
/// 5 = [armed timers, TSC-deadline advertised]; 6 = LAPIC ISR of vCPU
/// `arg` as 8 words (vectors 32*i..32*i+31 in word i); 7 = LAPIC [version,
/// spurious-vector register] of vCPU `arg`; 8 = level source `arg` stats
/// [asserts, eois, pending, rtt total ns, rtt min ns, rtt max ns,
/// re-signalled assertions].
///
/// # Safety
/// `out` must be valid for `cap` u64 writes.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_query(h: u64, what: u32, arg: u32, out: *mut u64, cap: usize) -> i32 {
    guard(|| {
        let vm = vm(h)?;
        let values: Vec<u64> = match what {
            0 => {
                let (a, s) = vm.memory()?;
                vec![a, s]
            }
            1 => vec![vm.record(arg)? as u64],
            2 => {
                let c = vm.counters(arg)?;
                vec![c.exits, c.fast_path, c.forwarded, c.unclaimed_reads, c.unclaimed_writes]
            }
            3 => vec![vm.tsc_khz(arg)? as u64],
            4 => vm.timer_stats(arg)?.to_vec(),
            5 => vec![vm.timers_armed() as u64, vm.tsc_deadline() as u64],
            6 => vm.lapic_regs(arg, &[0x100, 0x110, 0x120, 0x130, 0x140, 0x150, 0x160, 0x170])?.iter().map(|&w| w as u64).collect(),
            7 => vm.lapic_regs(arg, &[0x30, 0xf0])?.iter().map(|&w| w as u64).collect(),
            8 => vm.level_stats(arg)?.to_vec(),
            _ => return Err(Error::invalid(format!("bad query {what}"))),
        };
        // SAFETY: forwarded from the caller's contract.
        unsafe { write_out(out, cap, &values) }?;
        Ok(values.len() as i32)
    })
}

/// Ranges: `op` 0 = add (`action` 0 forward to the caller, 1 handle in
/// Rust: writes ignored, reads return `value`), 1 = remove the range at
/// `base`. `space`: 0 pio, 1 mmio.
#[no_mangle]
pub extern "C" fn dv_vm_range(h: u64, op: u32, space: u32, base: u64, len: u64, action: u32, value: u64) -> i32 {
    guard(|| {
        let vm = vm(h)?;
        let space = Space::from_u32(space)?;
        match op {
            0 => {
                let action = match action {
                    0 => Action::Forward,
                    1 => Action::Ignore { read_value: value },
                    _ => return Err(Error::invalid(format!("bad range action {action}"))),
                };
                vm.range_add(space, base, len, action)?
            }
            1 => vm.range_remove(space, base)?,
            _ => return Err(Error::invalid(format!("bad range op {op}"))),
        }
        Ok(0)
    })
}

/// Run vCPU `vcpu` until an exit the caller must handle; returns the
/// [`crate::exit::Reason`] (> 0) or an error code.
#[no_mangle]
pub extern "C" fn dv_vcpu_run(h: u64, vcpu: u32) -> i32 {
    guard(|| Ok(vm(h)?.run(vcpu)? as i32))
}

/// Control from any thread: `op` 0 = stop (sticky; also disarms timers),
/// 1 = clear stop, 2 = wake (one-shot kick), 3 = set run timeout in `ns`
/// (0 cancels), 4 = wake after `ns` (0 cancels), 5 = request an
/// interrupt-window exit on vCPU 0 (`ns` != 0 on, 0 off).
#[no_mangle]
pub extern "C" fn dv_vm_control(h: u64, op: u32, ns: u64) -> i32 {
    guard(|| {
        let vm = vm(h)?;
        match op {
            0 => vm.kick(kick::STOP),
            1 => vm.clear_stop(),
            2 => vm.kick(kick::WAKE),
            3 => vm.alarm(kick::TIMEOUT, ns)?,
            4 => vm.alarm(kick::WAKE, ns)?,
            5 => vm.request_interrupt_window(0, ns != 0)?,
            _ => return Err(Error::invalid(format!("bad control op {op}"))),
        }
        Ok(0)
    })
}

/// Interrupts: `op` 0 = KVM_IRQ_LINE(`a` gsi, `b` level); 1 =
/// KVM_SIGNAL_MSI(address `addr`, data `b`) returning KVM's result; 2 =
/// request_virtual_interrupt(vector `a`, destination `b`, `addr` bit 0
/// level, bit 1 logical); 3 = lapic EOI on vCPU `a` (returns the vector or
/// -1 as 0xffffffff... see TS); 4 = set MSI route gsi `a` → (`addr`, `b`);
/// 5 = clear routes of gsi `a`; 6 = allocate a GSI (returned); 7 = inject
/// ExtINT vector `b` on vCPU `a` if it is ready (returns 1) or not (0);
/// 8 = whether vCPU `a` is ready for an injected interrupt (1/0).
#[no_mangle]
pub extern "C" fn dv_irq(h: u64, op: u32, a: u32, b: u32, addr: u64) -> i32 {
    guard(|| {
        let vm = vm(h)?;
        Ok(match op {
            0 => {
                vm.irq_line(a, b != 0)?;
                0
            }
            1 => vm.signal_msi(addr, b)?,
            2 => vm.request_virtual_interrupt(a, b, addr & 1 != 0, addr & 2 != 0)?,
            3 => vm.lapic_eoi(a)?.max(-1) + 1,
            4 => {
                vm.route_set_msi(a, addr, b)?;
                0
            }
            5 => {
                vm.route_clear(a)?;
                0
            }
            6 => vm.route_allocate()? as i32,
            7 => vm.inject_extint(a, b as u8)? as i32,
            8 => vm.ready_for_injection(a)? as i32,
            _ => return Err(Error::invalid(format!("bad irq op {op}"))),
        })
    })
}

/// irqfds and timers: `op` 0 = irqfd create on gsi `a` (`b` = 1 resample),
/// returns id; 1 = trigger irqfd `a`; 2 = destroy irqfd `a`; 5 = signal the
/// resamplefds of every resampling irqfd on gsi
/// `a` (split irqchip EOI path), returns how many; 6 = detach (`b` = 0) or
/// re-attach (`b` = 1) irqfd `a` from KVM; 7 = consume the trigger eventfd
/// of irqfd `a` (returns 1 if it was written); 20 = start a level
/// source on gsi `a`, returns id; 21 = add `arg` work items to level source
/// `a`; 22 = destroy level source `a`; 10 = timer create (`b` = 0: to gsi `a`; `b` = 1: MSI with
/// vector `a & 0xff`, destination `a >> 8`), returns id; 11 = arm timer `a`
/// with period `arg` ns; 12 = disarm timer `a`; 13 = destroy timer `a`;
/// 14 = set pacing of timer `a` (`arg` 0 absolute timerfd, 1 relative sleep,
/// the drifting baseline for benchmarks).
#[no_mangle]
pub extern "C" fn dv_event(h: u64, op: u32, a: u32, b: u32, arg: u64) -> i32 {
    guard(|| {
        let vm = vm(h)?;
        Ok(match op {
            0 => vm.irqfd_create(a, b == 1)? as i32,
            1 => {
                vm.irqfd_trigger(a)?;
                0
            }
            2 => {
                vm.irqfd_destroy(a)?;
                0
            }
            5 => vm.resample_gsi(a)? as i32,
            6 => {
                vm.irqfd_attach(a, b != 0)?;
                0
            }
            7 => vm.irqfd_take(a)? as i32,
            20 => vm.level_create(a)? as i32,
            21 => {
                vm.level_add(a, arg)?;
                0
            }
            22 => {
                vm.level_destroy(a)?;
                0
            }
            10 => match b {
                0 => vm.timer_create(a, None)? as i32,
                1 => vm.timer_create(0, Some((a & 0xff, a >> 8)))? as i32,
                _ => return Err(Error::invalid(format!("bad timer target kind {b}"))),
            },
            11 => {
                vm.timer_arm(a, arg)?;
                0
            }
            12 => {
                vm.timer_disarm(a)?;
                0
            }
            13 => {
                vm.timer_destroy(a)?;
                0
            }
            14 => {
                let pacing = match arg {
                    0 => crate::timer::Pacing::Absolute,
                    1 => crate::timer::Pacing::RelativeSleep,
                    _ => return Err(Error::invalid(format!("bad pacing {arg}"))),
                };
                vm.timer_set_pacing(a, pacing)?;
                0
            }
            _ => return Err(Error::invalid(format!("bad event op {op}"))),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_handles_are_errors_with_messages() {
        assert_eq!(dv_vcpu_run(0, 0), Code::BadHandle as i32);
        assert_eq!(dv_vm_destroy(12345), Code::BadHandle as i32);
        assert_eq!(dv_vm_control(777, 0, 0), Code::BadHandle as i32);
        let mut buf = [0u8; 128];
        // SAFETY: buf is valid for 128 bytes.
        let n = unsafe { dv_last_error(buf.as_mut_ptr(), buf.len()) };
        let msg = std::str::from_utf8(&buf[..n.min(128)]).unwrap();
        assert!(msg.contains("handle 777"), "{msg}");
    }

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

    #[test]
    fn panics_become_error_codes() {
        let r = guard(|| panic!("boom"));
        assert_eq!(r, Code::Panic as i32);
        let mut buf = [0u8; 128];
        // SAFETY: buf is valid for 128 bytes.
        let n = unsafe { dv_last_error(buf.as_mut_ptr(), buf.len()) };
        assert!(std::str::from_utf8(&buf[..n]).unwrap().contains("boom"));
    }
}
