//! Drift-free periodic ticks: a thread per armed timer waits on a timerfd
//! armed with an absolute first deadline (`TFD_TIMER_ABSTIME`) and a fixed
//! `it_interval`, and writes the eventfd of an irqfd on each expiration.
//! Expirations that pile up (timerfd read value > 1) are counted as missed
//! and delivered as one tick: the guest is never flooded.

use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Counters of one timer, readable from any thread.
#[derive(Debug, Default)]
pub struct TimerStats {
    /// Ticks delivered.
    pub ticks: AtomicU64,
    /// Expirations coalesced because the thread woke late.
    pub missed: AtomicU64,
    /// CPU time used by the timer thread (ns).
    pub cpu_ns: AtomicU64,
    /// Current period (ns), 0 when disarmed.
    pub period_ns: AtomicU64,
    /// 1 when the thread got real-time (SCHED_FIFO) priority.
    pub realtime: AtomicU64,
}

/// How ticks are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// timerfd with an absolute first deadline and `it_interval`: no drift.
    Absolute,
    /// A thread that sleeps `period` between ticks (what Hyperlight does).
    /// It drifts by the wake-up latency of every tick; kept only as the
    /// baseline of the timer benchmark.
    RelativeSleep,
}

/// A periodic tick source feeding `target` (an irqfd's eventfd).
pub struct TickTimer {
    pacing: Pacing,
    target: Arc<EventFd>,
    stats: Arc<TimerStats>,
    running: Option<(JoinHandle<()>, EventFd)>,
    timerfd: Arc<OwnedFd>,
}

fn timespec(ns: u64) -> libc::timespec {
    libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as libc::c_long }
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl TickTimer {
    /// A disarmed timer that will write `target` on each tick.
    pub fn new(target: Arc<EventFd>) -> Result<Self> {
        // Non-blocking: `disarm` may clear a pending expiration between the
        // tick thread's poll and its read; a blocking read would then hang
        // the thread (and the join in `disarm`) forever.
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC | libc::TFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::os("timerfd_create", std::io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh descriptor we own.
        let timerfd = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(TickTimer { pacing: Pacing::Absolute, target, stats: Arc::new(TimerStats::default()), running: None, timerfd })
    }

    /// Choose the pacing (takes effect at the next arm of a stopped timer).
    pub fn set_pacing(&mut self, pacing: Pacing) {
        self.pacing = pacing;
    }

    /// Shared counters.
    pub fn stats(&self) -> Arc<TimerStats> {
        self.stats.clone()
    }

    /// True while the timer thread runs.
    pub fn armed(&self) -> bool {
        self.running.is_some()
    }

    fn settime(&self, first_abs_ns: u64, period_ns: u64) -> Result<()> {
        let spec = libc::itimerspec { it_interval: timespec(period_ns), it_value: timespec(first_abs_ns) };
        // SAFETY: the timerfd is owned by self; spec is a valid itimerspec.
        let r = unsafe {
            libc::timerfd_settime(self.timerfd.as_raw_fd(), libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut())
        };
        if r < 0 {
            return Err(Error::os("timerfd_settime", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Arm (or re-arm) with `period_ns`; the first tick is one period from now.
    pub fn arm(&mut self, period_ns: u64) -> Result<()> {
        if period_ns == 0 {
            return Err(Error::invalid("timer period must be > 0"));
        }
        if self.pacing == Pacing::Absolute {
            self.settime(monotonic_ns() + period_ns, period_ns)?;
        }
        self.stats.period_ns.store(period_ns, Ordering::SeqCst);
        if self.running.is_none() {
            let stop = EventFd::new(EFD_NONBLOCK).map_err(|e| Error::os("eventfd", e))?;
            let stop2 = stop.try_clone().map_err(|e| Error::os("eventfd clone", e))?;
            let (tfd, target, stats) = (self.timerfd.clone(), self.target.clone(), self.stats.clone());
            let pacing = self.pacing;
            let h = std::thread::Builder::new()
                .name("dv-timer".into())
                .spawn(move || match pacing {
                    Pacing::Absolute => tick_loop(&tfd, &stop2, &target, &stats),
                    Pacing::RelativeSleep => sleep_loop(&stop2, &target, &stats),
                })
                .map_err(|e| Error::os("spawn timer thread", e))?;
            self.running = Some((h, stop));
        }
        Ok(())
    }

    /// Stop ticking and join the thread. Idempotent.
    pub fn disarm(&mut self) {
        let _ = self.settime(0, 0);
        self.stats.period_ns.store(0, Ordering::SeqCst);
        if let Some((h, stop)) = self.running.take() {
            let _ = stop.write(1);
            let _ = h.join();
        }
    }
}

impl Drop for TickTimer {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// Make the calling thread a precise timer thread: no timer slack (the
/// default 50 µs would add up to 50 µs of wake-up jitter), and SCHED_FIFO
/// priority where the process may use it (root / CAP_SYS_NICE), so a busy
/// vCPU thread on the same core cannot delay the tick. Returns whether
/// real-time priority was granted.
fn make_precise() -> bool {
    // SAFETY: PR_SET_TIMERSLACK takes an unsigned long and affects only the
    // calling thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: pthread_self is this thread; param is a valid sched_param.
    unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) == 0 }
}

fn tick_loop(tfd: &OwnedFd, stop: &EventFd, target: &EventFd, stats: &TimerStats) {
    stats.realtime.store(make_precise() as u64, Ordering::Relaxed);
    let mut fds = [
        libc::pollfd { fd: tfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: stop.as_raw_fd(), events: libc::POLLIN, revents: 0 },
    ];
    loop {
        // SAFETY: fds is a valid array of two pollfd.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if fds[1].revents != 0 {
            break;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            let mut n = 0u64;
            // SAFETY: reading 8 bytes into a u64 from our timerfd.
            let got = unsafe { libc::read(tfd.as_raw_fd(), &mut n as *mut u64 as *mut libc::c_void, 8) };
            if got == 8 && n > 0 {
                let _ = target.write(1);
                stats.ticks.fetch_add(1, Ordering::Relaxed);
                stats.missed.fetch_add(n - 1, Ordering::Relaxed);
            }
            stats.cpu_ns.store(thread_cpu_ns(), Ordering::Relaxed);
        }
    }
    stats.cpu_ns.store(thread_cpu_ns(), Ordering::Relaxed);
}

fn sleep_loop(stop: &EventFd, target: &EventFd, stats: &TimerStats) {
    stats.realtime.store(make_precise() as u64, Ordering::Relaxed);
    let mut fd = libc::pollfd { fd: stop.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    loop {
        let period = stats.period_ns.load(Ordering::SeqCst).max(1);
        let ts = timespec(period);
        let mut rem = timespec(0);
        // SAFETY: ts and rem are valid timespecs.
        unsafe { libc::nanosleep(&ts, &mut rem) };
        // SAFETY: fd is a valid pollfd; zero timeout only checks for stop.
        if unsafe { libc::poll(&mut fd, 1, 0) } != 0 {
            break;
        }
        let _ = target.write(1);
        stats.ticks.fetch_add(1, Ordering::Relaxed);
        stats.cpu_ns.store(thread_cpu_ns(), Ordering::Relaxed);
    }
    stats.cpu_ns.store(thread_cpu_ns(), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_and_stops() {
        let efd = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        let mut t = TickTimer::new(efd.clone()).unwrap();
        assert!(t.arm(0).is_err());
        t.arm(1_000_000).unwrap();
        assert!(t.armed());
        std::thread::sleep(std::time::Duration::from_millis(30));
        t.disarm();
        let ticks = t.stats().ticks.load(Ordering::SeqCst);
        assert!(ticks >= 5, "ticks {ticks}");
        // every tick wrote the eventfd once (its counter sums the writes)
        assert_eq!(efd.read().unwrap(), ticks);
        assert!(!t.armed());
        t.disarm();
    }
}
