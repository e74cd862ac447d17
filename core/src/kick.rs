//! Kicking a vCPU out of `KVM_RUN` from any thread, without a lost-kick
//! race: a flag, `kvm_run.immediate_exit`, and a signal to the vCPU thread.
//!
//! Ordering: the kicker sets the flag, then `immediate_exit = 1`, then
//! signals the thread if it is inside `run()`. The vCPU checks the flags
//! before every `KVM_RUN`; a kick landing after that check either finds
//! `immediate_exit` set (KVM_RUN returns EINTR at once) or interrupts the
//! ioctl with the signal.

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Mutex, Once};

/// `stop()`: pending until the run it ends (or the next run) consumes it.
pub const STOP: u32 = 1;
/// Run deadline passed.
pub const TIMEOUT: u32 = 2;
/// A one-shot host wake-up.
pub const WAKE: u32 = 4;
/// Internal: re-check outstanding level interrupts, then resume without
/// returning to the caller.
pub const POLL: u32 = 8;
/// Internal: leave `KVM_RUN` so that the vCPU's host thread can end (see
/// `Vm::stop_aps`, which clears it once the thread is joined). The run
/// returns `Wake` and leaves the flag set.
pub const YIELD: u32 = 16;

/// The real-time signal used to interrupt `KVM_RUN` (SIGRTMIN + 5).
pub fn kick_signal() -> libc::c_int {
    libc::SIGRTMIN() + 5
}

extern "C" fn on_kick_signal(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Install the no-op handler once per process with vmm-sys-util (no
/// SA_RESTART, so `KVM_RUN` returns EINTR).
pub fn install_signal_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The handler does nothing, so it is async-signal-safe; failure
        // (an invalid signal number) cannot happen for SIGRTMIN + 5, and a
        // missing handler would only make kicks rely on immediate_exit.
        let _ = vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick_signal);
    });
}

/// Per-vCPU kick state, shared with other threads.
pub struct Kick {
    flags: AtomicU32,
    run: AtomicPtr<kvm_bindings::kvm_run>,
    thread: Mutex<Option<libc::pthread_t>>,
}

impl Kick {
    /// `run` is the vCPU's kvm_run mapping (valid as long as the vCPU).
    pub fn new(run: *mut kvm_bindings::kvm_run) -> Self {
        Kick { flags: AtomicU32::new(0), run: AtomicPtr::new(run), thread: Mutex::new(None) }
    }

    /// Pending flags.
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::SeqCst)
    }

    /// Clear `mask` from the flags; returns the flags that were set.
    pub fn take(&self, mask: u32) -> u32 {
        self.flags.fetch_and(!mask, Ordering::SeqCst) & mask
    }

    /// Set `flag` and kick the vCPU out of the guest.
    pub fn kick(&self, flag: u32) {
        self.flags.fetch_or(flag, Ordering::SeqCst);
        let run = self.run.load(Ordering::SeqCst);
        if !run.is_null() {
            // SAFETY: `run` points at the live kvm_run mapping of this vCPU
            // (the Kick is dropped with the vCPU); immediate_exit is a byte
            // that KVM reads at entry, so a concurrent volatile store is the
            // documented way to request an exit.
            unsafe { std::ptr::addr_of_mut!((*run).immediate_exit).write_volatile(1) };
        }
        let guard = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = *guard {
            // SAFETY: the thread id is registered only while that thread is
            // inside `run()`, and unregistered under this same lock before
            // it leaves, so the thread is alive here.
            unsafe { libc::pthread_kill(t, kick_signal()) };
        }
    }

    /// Called by the vCPU thread on entering `run()`.
    pub fn enter(&self) {
        install_signal_handler();
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(me);
    }

    /// Called by the vCPU thread when leaving `run()`.
    pub fn leave(&self) {
        *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Reset `immediate_exit` (only the vCPU thread, after it saw the flags).
    pub fn clear_immediate_exit(&self) {
        let run = self.run.load(Ordering::SeqCst);
        if !run.is_null() {
            // SAFETY: as in `kick`, the mapping is live.
            unsafe { std::ptr::addr_of_mut!((*run).immediate_exit).write_volatile(0) };
        }
    }
}
