//! Drift-free tick timers: a non-blocking timerfd with an absolute first
//! deadline (`TFD_TIMER_ABSTIME`) and `it_interval`, served by the VM's
//! event thread ([`crate::events`]), which writes the target irqfd once
//! per expiration batch. A late wake-up coalesces expirations (counted in
//! [`TimerStats::missed`]); it never shifts the later deadlines, so there
//! is no drift. [`Pacing::RelativeSleep`] re-arms one relative period
//! after each tick instead, which drifts; it is kept only as the baseline
//! of the timer benchmark.

use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one timer, readable from any thread.
#[derive(Debug, Default)]
pub struct TimerStats {
    /// Ticks delivered.
    pub ticks: AtomicU64,
    /// Expirations coalesced because the thread woke late.
    pub missed: AtomicU64,
    /// Current period (ns), 0 when disarmed.
    pub period_ns: AtomicU64,
}

/// How ticks are paced.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// timerfd with an absolute first deadline and `it_interval`: no drift.
    Absolute = 0,
    /// One relative period from each tick (what Hyperlight's sleeping
    /// thread does): drifts by every wake-up latency; benchmark baseline.
    RelativeSleep = 1,
}

/// A CLOCK_MONOTONIC timerfd (non-blocking: a disarm racing with the
/// event thread's read must not block it).
#[derive(Debug)]
pub struct Timerfd(OwnedFd);

fn timespec(ns: u64) -> libc::timespec {
    libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as libc::c_long }
}

/// CLOCK_MONOTONIC in ns.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CPU time of the calling thread in ns.
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out pointer; both clocks always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Timerfd {
    /// A disarmed timerfd.
    pub fn new() -> Result<Self> {
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC | libc::TFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::os("timerfd_create", std::io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        Ok(Timerfd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn settime(&self, flags: libc::c_int, first_ns: u64, period_ns: u64) -> Result<()> {
        let spec = libc::itimerspec { it_interval: timespec(period_ns), it_value: timespec(first_ns) };
        // SAFETY: the fd is owned by self; spec is a valid itimerspec.
        let r = unsafe { libc::timerfd_settime(self.0.as_raw_fd(), flags, &spec, std::ptr::null_mut()) };
        if r < 0 {
            return Err(Error::os("timerfd_settime", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// First expiration at absolute monotonic `first_ns`, then every
    /// `period_ns` (0: once).
    pub fn set_absolute(&self, first_ns: u64, period_ns: u64) -> Result<()> {
        self.settime(libc::TFD_TIMER_ABSTIME, first_ns.max(1), period_ns)
    }

    /// One expiration `ns` from now.
    pub fn set_relative(&self, ns: u64) -> Result<()> {
        self.settime(0, ns.max(1), 0)
    }

    /// Disarm (pending expirations are dropped).
    pub fn disarm(&self) -> Result<()> {
        self.settime(0, 0, 0)
    }

    /// Expirations since the last read (0 when none, e.g. after a disarm).
    pub fn read(&self) -> u64 {
        let mut n = 0u64;
        // SAFETY: reading 8 bytes into a u64 from our non-blocking timerfd.
        let got = unsafe { libc::read(self.0.as_raw_fd(), &mut n as *mut u64 as *mut libc::c_void, 8) };
        if got == 8 {
            n
        } else {
            0
        }
    }
}

impl AsRawFd for Timerfd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Make the calling thread a precise timer thread: no timer slack (the
/// default 50 µs would add up to 50 µs of wake-up jitter), and SCHED_FIFO
/// priority where the process may use it (root / CAP_SYS_NICE), so a busy
/// vCPU thread on the same core cannot delay the tick. Returns whether
/// real-time priority was granted.
pub fn make_precise() -> bool {
    // SAFETY: PR_SET_TIMERSLACK takes an unsigned long and affects only the
    // calling thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: pthread_self is this thread; param is a valid sched_param.
    unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) == 0 }
}

impl TimerStats {
    /// Count one expiration batch of `n` (> 0) expirations.
    pub fn note(&self, n: u64) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
        self.missed.fetch_add(n - 1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_timerfd_expires_and_disarms() {
        let t = Timerfd::new().unwrap();
        assert_eq!(t.read(), 0, "disarmed");
        t.set_absolute(monotonic_ns() + 1_000_000, 1_000_000).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(t.read() >= 5);
        t.disarm().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(3));
        assert_eq!(t.read(), 0, "no expiration after disarm");
    }
}
