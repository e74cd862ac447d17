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
use std::sync::Arc;

/// Counters of one timer, readable from any thread.
#[derive(Debug, Default)]
pub struct TimerStats {
    /// Ticks delivered.
    pub ticks: AtomicU64,
    /// Expirations coalesced because the thread woke late.
    pub missed: AtomicU64,
    /// Current period (ns), 0 when disarmed.
    pub period_ns: AtomicU64,
    /// Catch-up: expirations owed to the guest.
    pub owed: AtomicU64,
    /// Catch-up: owed ticks dropped because the backlog was at its cap.
    pub dropped_over_cap: AtomicU64,
    /// Catch-up: backlog discarded by a re-arm or stop.
    pub cleared: AtomicU64,
    /// Catch-up: owed ticks not yet delivered.
    pub backlog: AtomicU64,
    /// Catch-up: acknowledgements (EOIs) seen.
    pub acks: AtomicU64,
    /// Policy in effect for the current arm ([`TickPolicy`] as u32).
    pub policy: AtomicU64,
    /// Catch-up ticks the vCPU re-signalled (split irqchip host quirk).
    pub reinjected: Arc<AtomicU64>,
}

/// What a timer does with expirations the guest has not taken yet. Values
/// are part of the C ABI.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickPolicy {
    /// One irqfd write per expiration batch; late expirations are counted
    /// ([`TimerStats::missed`]) and lost (Hyperlight's behaviour).
    Coalesce = 0,
    /// Every expiration is owed: one tick outstanding at a time, the next
    /// delivered when the guest acknowledges (EOI) the previous one, up to a
    /// backlog cap ([`CatchUp`]). Needs an EOI notification (a resampling
    /// irqfd on an irqchip GSI); without one the timer coalesces.
    Catchup = 1,
}

impl TickPolicy {
    /// From the C ABI value.
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(TickPolicy::Coalesce),
            1 => Some(TickPolicy::Catchup),
            _ => None,
        }
    }
}

/// Default backlog cap of a catch-up timer: one second of ticks.
pub const DEFAULT_CATCHUP_CAP_NS: u64 = 1_000_000_000;

/// The catch-up state machine of one timer (pure: driven by expiration
/// counts and acknowledgements, so tests run it on a fake clock).
///
/// Conservation: `owed == delivered + backlog + dropped_over_cap + cleared`
/// at every step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Most ticks the backlog holds (≥ 1).
    pub cap: u64,
    /// Expirations counted.
    pub owed: u64,
    /// Ticks sent to the guest.
    pub delivered: u64,
    /// Owed ticks not yet sent.
    pub backlog: u64,
    /// Owed ticks dropped at the cap.
    pub dropped_over_cap: u64,
    /// Backlog discarded by re-arm or stop.
    pub cleared: u64,
    /// Acknowledgements seen.
    pub acks: u64,
    /// A sent tick waits for its acknowledgement.
    pub outstanding: bool,
}

impl CatchUp {
    /// An idle machine with a backlog cap of `cap` ticks (at least 1).
    pub fn new(cap: u64) -> Self {
        CatchUp { cap: cap.max(1), ..Default::default() }
    }

    /// The backlog cap for `period_ns` and a cap of `cap_ns` worth of ticks.
    pub fn cap_for(period_ns: u64, cap_ns: u64) -> u64 {
        (cap_ns / period_ns.max(1)).max(1)
    }

    fn send(&mut self) -> bool {
        if self.outstanding || self.backlog == 0 {
            return false;
        }
        self.backlog -= 1;
        self.delivered += 1;
        self.outstanding = true;
        true
    }

    /// `n` expirations: owed, queued up to the cap (the excess is dropped
    /// and counted). Returns true when a tick must be sent now.
    pub fn expire(&mut self, n: u64) -> bool {
        self.owed += n;
        self.backlog += n;
        if self.backlog > self.cap {
            self.dropped_over_cap += self.backlog - self.cap;
            self.backlog = self.cap;
        }
        self.send()
    }

    /// The guest acknowledged the outstanding tick. Returns true when the
    /// next owed tick must be sent now. An acknowledgement with nothing
    /// outstanding (a spurious EOI) only counts.
    pub fn ack(&mut self) -> bool {
        self.acks += 1;
        self.outstanding = false;
        self.send()
    }

    /// Re-arm or stop: the backlog is discarded (counted in `cleared`). An
    /// outstanding tick stays outstanding: its line is asserted until the
    /// guest acknowledges it.
    pub fn clear(&mut self) {
        self.cleared += self.backlog;
        self.backlog = 0;
    }

    /// VM reset: the irqchip forgot the asserted line, so nothing is
    /// outstanding any more.
    pub fn reset_line(&mut self) {
        self.clear();
        self.outstanding = false;
    }
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

    /// Publish a catch-up machine's counters (`ticks` = delivered).
    pub fn publish(&self, c: &CatchUp) {
        self.owed.store(c.owed, Ordering::Relaxed);
        self.ticks.store(c.delivered, Ordering::Relaxed);
        self.backlog.store(c.backlog, Ordering::Relaxed);
        self.dropped_over_cap.store(c.dropped_over_cap, Ordering::Relaxed);
        self.cleared.store(c.cleared, Ordering::Relaxed);
        self.acks.store(c.acks, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake periodic timer: expirations between two reads of a fake
    /// clock, as a timerfd with an absolute first deadline reports them.
    struct FakeTimer {
        now: u64,
        next: u64,
        period: u64,
    }

    impl FakeTimer {
        fn arm(now: u64, period: u64) -> Self {
            FakeTimer { now, next: now + period, period }
        }
        /// Advance the clock to `t` and return the expirations since the
        /// last read.
        fn advance(&mut self, t: u64) -> u64 {
            self.now = t;
            let mut n = 0;
            while self.next <= self.now {
                n += 1;
                self.next += self.period;
            }
            n
        }
    }

    fn conserved(c: &CatchUp) {
        assert_eq!(c.owed, c.delivered + c.backlog + c.dropped_over_cap + c.cleared, "{c:?}");
    }

    #[test]
    fn catchup_one_tick_per_ack_in_time() {
        let p = 1_000_000;
        let mut t = FakeTimer::arm(0, p);
        let mut c = CatchUp::new(CatchUp::cap_for(p, DEFAULT_CATCHUP_CAP_NS));
        assert_eq!(c.cap, 1000);
        // On time: every expiration is sent at once and acked before the next.
        for k in 1..=10 {
            assert!(c.expire(t.advance(k * p)), "tick {k} sent");
            assert!(!c.ack(), "nothing owed");
            conserved(&c);
        }
        assert_eq!((c.owed, c.delivered, c.backlog), (10, 10, 0));
    }

    #[test]
    fn catchup_stall_of_k_periods_delivers_k_ticks_one_per_ack() {
        let p = 100_000;
        for k in [2u64, 5, 37] {
            let mut t = FakeTimer::arm(0, p);
            let mut c = CatchUp::new(CatchUp::cap_for(p, DEFAULT_CATCHUP_CAP_NS));
            // The host stalls for k periods: one read sees k expirations.
            let n = t.advance(k * p + p / 2);
            assert_eq!(n, k);
            assert!(c.expire(n), "first owed tick sent at once");
            assert_eq!((c.delivered, c.backlog), (1, k - 1));
            assert!(!c.expire(0), "no second tick while one is outstanding");
            let mut sent = 1;
            while c.ack() {
                sent += 1;
                assert_eq!(c.delivered, sent, "one tick per ack");
                conserved(&c);
            }
            assert_eq!(sent, k, "every owed tick delivered");
            assert_eq!((c.owed, c.delivered, c.backlog, c.dropped_over_cap), (k, k, 0, 0));
            // Ticks keep coming on time afterwards.
            assert!(c.expire(t.advance((k + 1) * p)));
            assert_eq!(c.delivered, k + 1);
        }
    }

    #[test]
    fn catchup_ticks_during_an_unacked_tick_wait_in_order() {
        let p = 1_000_000;
        let mut t = FakeTimer::arm(0, p);
        let mut c = CatchUp::new(100);
        assert!(c.expire(t.advance(p)));
        // The guest takes 3.5 periods to acknowledge: 3 more are owed.
        for k in 2..=4 {
            assert!(!c.expire(t.advance(k * p)));
        }
        assert_eq!((c.delivered, c.backlog), (1, 3));
        for _ in 0..3 {
            assert!(c.ack());
        }
        assert!(!c.ack());
        assert_eq!((c.owed, c.delivered, c.backlog, c.acks), (4, 4, 0, 4));
    }

    #[test]
    fn catchup_cap_drops_and_counts() {
        let p = 1_000_000;
        let cap = CatchUp::cap_for(p, 10_000_000); // 10 ticks
        assert_eq!(cap, 10);
        let mut t = FakeTimer::arm(0, p);
        let mut c = CatchUp::new(cap);
        // A guest that never acknowledges: one tick sent, 10 kept, rest dropped.
        assert!(c.expire(t.advance(p)));
        for k in 2..=50 {
            assert!(!c.expire(t.advance(k * p)));
            conserved(&c);
        }
        assert_eq!((c.owed, c.delivered, c.backlog, c.dropped_over_cap), (50, 1, 10, 39));
        // One big batch past the cap at once.
        assert!(!c.expire(t.advance(80 * p)));
        assert_eq!((c.backlog, c.dropped_over_cap), (10, 69));
        conserved(&c);
        // The guest wakes: the capped backlog drains one per ack.
        let mut n = 0;
        while c.ack() {
            n += 1;
        }
        assert_eq!(n, 10);
        assert_eq!(c.delivered, 11);
        conserved(&c);
    }

    #[test]
    fn catchup_rearm_and_stop_clear_the_backlog() {
        let p = 1_000_000;
        let mut t = FakeTimer::arm(0, p);
        let mut c = CatchUp::new(1000);
        assert!(c.expire(t.advance(6 * p)));
        assert_eq!(c.backlog, 5);
        c.clear(); // stop (or re-arm)
        assert_eq!((c.backlog, c.cleared), (0, 5));
        assert!(c.outstanding, "the asserted tick stays outstanding");
        conserved(&c);
        // Re-armed: new expirations wait behind the outstanding tick.
        let mut t = FakeTimer::arm(10 * p, p);
        assert!(!c.expire(t.advance(12 * p)));
        assert_eq!(c.backlog, 2);
        assert!(c.ack());
        c.clear();
        assert_eq!((c.backlog, c.cleared), (0, 6));
        assert!(!c.ack(), "nothing left after the clear");
        // A VM reset forgets the outstanding line as well.
        assert!(c.expire(t.advance(13 * p)));
        c.reset_line();
        assert!(!c.outstanding);
        assert!(c.expire(t.advance(14 * p)), "sent at once after reset");
        conserved(&c);
    }

    #[test]
    fn catchup_spurious_ack_only_counts() {
        let mut c = CatchUp::new(10);
        assert!(!c.ack());
        assert_eq!((c.acks, c.delivered), (1, 0));
        conserved(&c);
    }

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
