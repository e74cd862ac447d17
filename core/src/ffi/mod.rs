//! The C ABI: the only `extern "C"` functions of the crate, one per
//! operation, with typed arguments. `include/denovmm.h` is generated from
//! these files by cbindgen (a test fails when it is stale).
//!
//! Conventions, stated once for every function:
//! - The return value is a [`Code`]-style `int32_t`: `>= 0` is success (0,
//!   or the value the function documents), `< 0` a [`Code`]. The message
//!   of the calling thread's last error is copied out by [`dv_last_error`].
//! - A VM is an opaque `uint32_t` handle (never 0, never reused in a
//!   process). A destroyed or made-up handle is [`Code::BadHandle`].
//! - Panics are caught at this boundary and become [`Code::Panic`].
//! - Pointers: out-pointers must be valid for the documented writes for
//!   the duration of the call only. Two pointers outlive a call: the exit
//!   record ([`dv_vcpu_record`]) and guest RAM ([`dv_vm_memory`]); both stay
//!   valid until the VM is destroyed *and* every thread that ran one of
//!   its vCPUs has made another call or exited (see `Handles`): callers
//!   must stop using them at `dv_vm_destroy`.

mod snapshot;
mod sources;
mod vcpu;
mod vm;

pub use snapshot::*;
pub use sources::*;
pub use vcpu::*;
pub use vm::*;

use crate::error::{Code, Error, Result};
use crate::handles::HandleTable;
use crate::vm::Vm;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, LazyLock};

/// Version of this ABI; callers refuse a library with another one.
pub const DV_ABI_VERSION: u32 = 3;

static VMS: LazyLock<HandleTable<Vm>> = LazyLock::new(HandleTable::new);

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
    /// The VM this thread used last: the hot calls (`dv_vcpu_run`,
    /// `dv_irq_*`) skip the process-wide handle table while a thread keeps
    /// using one VM. A destroyed VM fails its liveness check here and is
    /// dropped from the cache at its thread's next call on another handle.
    static CURRENT: RefCell<Option<(u32, Arc<Vm>)>> = const { RefCell::new(None) };
}

fn set_error(e: &Error) {
    LAST_ERROR.with(|l| *l.borrow_mut() = e.message.clone());
}

pub(crate) fn guard(f: impl FnOnce() -> Result<i32>) -> i32 {
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

fn bad_handle(h: u32) -> Error {
    Error::new(Code::BadHandle, format!("unknown or closed VM handle {h}"))
}

/// Run `f` on VM `h` (the guarded body of most functions).
pub(crate) fn with_vm(h: u32, f: impl FnOnce(&Vm) -> Result<i32>) -> i32 {
    guard(|| {
        CURRENT.with(|c| {
            if let Some((ch, vm)) = &*c.borrow() {
                if *ch == h && vm.alive() {
                    return f(vm);
                }
            }
            let vm = VMS.get(h as u64).map_err(|_| bad_handle(h))?;
            if !vm.alive() {
                return Err(bad_handle(h));
            }
            *c.borrow_mut() = Some((h, vm.clone()));
            f(&vm)
        })
    })
}

/// Write `v` through `out`.
///
/// # Safety
/// `out` must be null or valid for one `T` write.
pub(crate) unsafe fn write_out<T>(out: *mut T, v: T) -> Result<()> {
    if out.is_null() {
        return Err(Error::invalid("null output pointer"));
    }
    // SAFETY: the caller guarantees `out` is valid for one write.
    unsafe { out.write_unaligned(v) };
    Ok(())
}

/// Version of this ABI ([`DV_ABI_VERSION`]).
#[no_mangle]
pub extern "C" fn dv_abi_version() -> u32 {
    DV_ABI_VERSION
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

/// Destroy a VM: marks it dead (every later call on the handle is
/// `BadHandle`), stops its vCPUs and its event thread. Its memory is
/// unmapped when the last thread that used it lets go (see the module
/// docs). Returns 0.
#[no_mangle]
pub extern "C" fn dv_vm_destroy(vm: u32) -> i32 {
    guard(|| {
        let v = VMS.remove(vm as u64).map_err(|_| bad_handle(vm))?;
        v.shutdown();
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            if c.as_ref().is_some_and(|(h, _)| *h == vm) {
                *c = None;
            }
        });
        Ok(0)
    })
}

/// Number of live VMs in this process (diagnostics and leak tests).
#[no_mangle]
pub extern "C" fn dv_vm_count() -> i32 {
    guard(|| Ok(VMS.len() as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_handles_are_errors_with_messages() {
        assert_eq!(dv_vcpu_run(0, 0), Code::BadHandle as i32);
        assert_eq!(dv_vm_destroy(12345), Code::BadHandle as i32);
        assert_eq!(dv_vm_stop(777), Code::BadHandle as i32);
        let mut buf = [0u8; 128];
        // SAFETY: buf is valid for 128 bytes.
        let n = unsafe { dv_last_error(buf.as_mut_ptr(), buf.len()) };
        let msg = std::str::from_utf8(&buf[..n.min(128)]).unwrap();
        assert!(msg.contains("handle 777"), "{msg}");
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

    #[test]
    fn header_is_current() {
        let crate_dir = env!("CARGO_MANIFEST_DIR");
        let mut out = Vec::new();
        cbindgen::Builder::new()
            .with_crate(crate_dir)
            .with_config(cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml")).unwrap())
            .generate()
            .expect("cbindgen")
            .write(&mut out);
        let path = format!("{crate_dir}/include/denovmm.h");
        let have = std::fs::read(&path).unwrap_or_default();
        if have != out {
            if std::env::var_os("DENOVMM_BLESS").is_some() {
                std::fs::write(&path, &out).unwrap();
            } else {
                panic!("{path} is stale: run `DENOVMM_BLESS=1 cargo test header_is_current` and commit it");
            }
        }
    }
}
