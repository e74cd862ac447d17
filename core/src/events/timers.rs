//! Tick timers on the event thread: a timerfd per timer, and for the
//! `catchup` policy the acknowledgement path (resample eventfd in, next
//! owed tick out). The state machine is [`CatchUp`]; this file feeds it
//! expirations and acknowledgements and sends what it says.

use super::{ids, lock, Events, TIMER, TIMER_ACK};
use crate::error::{Error, Result};
use crate::ioctls::VmCtl;
use crate::timer::{monotonic_ns, CatchUp, Pacing, TickPolicy, TimerStats, Timerfd, DEFAULT_CATCHUP_CAP_NS};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

/// An unacknowledged catch-up tick is raised again after this long (kernel
/// irqchip; see [`Timer::resend_if_stale`]). Far above any handler's run
/// time or host stall seen here (~2 ms), so a tick the guest has accepted
/// but not yet acknowledged is not sent twice.
pub(crate) const STALE_RESEND_NS: u64 = 100_000_000;

/// A tick timer: a timerfd writing an irqfd's eventfd; with the
/// [`TickPolicy::Catchup`] policy, also the irqfd's resample eventfd, where
/// KVM (or our IOAPIC's EOI path) reports the guest's acknowledgement, and
/// with the in-kernel irqchip the thread's [`VmCtl`], which sends catch-up
/// ticks.
pub struct Timer {
    tfd: Timerfd,
    target: Arc<EventFd>,
    pacing: Pacing,
    pub(super) stats: Arc<TimerStats>,
    /// Policy asked for.
    policy: TickPolicy,
    /// Backlog cap of the catch-up policy, in ns worth of ticks.
    cap_ns: u64,
    /// Resample eventfd (catch-up), registered with the epoll.
    resample: Option<Arc<EventFd>>,
    /// Policy in effect for the current arm.
    effective: TickPolicy,
    catchup: CatchUp,
    /// Monotonic ns of the last catch-up tick sent (for the no-EOI poll).
    sent_at_ns: u64,
    /// The irqfd was written since the guest's last acknowledgement was
    /// read: with a resampling irqfd, KVM may hold the line asserted.
    line_may_be_high: bool,
    /// The resample eventfd wakes the thread (owed ticks wait for an ack).
    ack_watched: bool,
    /// Kernel irqchip: catch-up ticks are raised with KVM_IRQ_LINE from the
    /// event thread. An irqfd on an irqchip GSI injects from a kworker
    /// (KVM injects only MSIs in the writer's context): one more thread
    /// wake-up per tick in the acknowledgement round trip that bounds
    /// catch-up, and a SCHED_OTHER one that waits behind other jobs under
    /// load (README, "Paravirtual timer", for the A/B).
    line: Option<Arc<VmCtl>>,
    /// Resources the VM releases with the timer (irqfd id, owned GSI).
    pub irqfd_id: u32,
    /// GSI allocated for the timer's MSI route, if any.
    pub owned_gsi: Option<u32>,
    /// The GSI the timer's irqfd signals.
    pub gsi: u32,
}

impl Timer {
    pub(super) fn on_expire(&mut self, epoll: &Epoll, id: u32) {
        let n = self.tfd.read();
        if n == 0 {
            return;
        }
        if self.effective == TickPolicy::Catchup {
            // An acknowledgement that came while nothing was owed was not
            // worth a wake-up: take it now, before the new expirations.
            self.take_ack();
            if self.catchup.expire(n) {
                self.send();
            } else {
                self.resend_if_stale();
            }
            self.watch_acks(epoll, id);
            self.stats.publish(&self.catchup);
        } else {
            let _ = self.target.write(1);
            // Acks do not pair with writes here: only a lowering clears it.
            self.line_may_be_high = true;
            self.stats.note(n);
            self.stats.owed.fetch_add(n, Ordering::Relaxed);
        }
        if self.pacing == Pacing::RelativeSleep {
            let p = self.stats.period_ns.load(Ordering::SeqCst);
            if p > 0 {
                let _ = self.tfd.set_relative(p);
            }
        }
    }

    /// The resample eventfd is readable: the guest acknowledged a tick.
    pub(super) fn on_ack(&mut self, epoll: &Epoll, id: u32) {
        self.take_ack();
        self.watch_acks(epoll, id);
        self.stats.publish(&self.catchup);
    }

    /// Consume a pending acknowledgement, sending the next owed tick.
    fn take_ack(&mut self) {
        let Some(r) = &self.resample else { return };
        if r.read().is_err() {
            return;
        }
        // Catch-up sends only after the previous tick's ack was read.
        if self.effective == TickPolicy::Catchup {
            self.line_may_be_high = false;
        }
        if self.catchup.ack() {
            self.send();
        }
    }

    /// Be woken by acknowledgements only while owed ticks wait for one:
    /// on time, the next expiration collects the acknowledgement, so a tick
    /// costs the event thread one wake-up, as under `coalesce`.
    fn watch_acks(&mut self, epoll: &Epoll, id: u32) {
        let want = self.catchup.outstanding && self.catchup.backlog > 0;
        if want == self.ack_watched {
            return;
        }
        let Some(r) = &self.resample else { return };
        let events = if want { EventSet::IN } else { EventSet::empty() };
        if epoll.ctl(ControlOperation::Modify, r.as_raw_fd(), EpollEvent::new(events, TIMER_ACK | id as u64)).is_ok() {
            self.ack_watched = want;
        }
    }

    fn send(&mut self) {
        self.raise();
        self.sent_at_ns = monotonic_ns();
    }

    /// One tick on the line (kernel irqchip) or through the irqfd.
    fn raise(&mut self) {
        // A pulse: the kernel IOAPIC takes an edge on the raise and, for a
        // level entry, sets Remote IRR until the EOI; the line must be low
        // again by then or the EOI would re-deliver it.
        if let Some(l) = &self.line {
            if l.pulse(self.gsi).is_ok() {
                return;
            }
        }
        let _ = self.target.write(1);
        self.line_may_be_high = true;
    }

    /// Kernel irqchip: a tick outstanding for [`STALE_RESEND_NS`] is raised
    /// again (counted in `reinjected`). A tick raised while the guest had
    /// the pin masked is gone (the kernel IOAPIC keeps neither a masked
    /// edge nor a pulse), and its acknowledgement would never come. If the
    /// tick was only waiting (interrupts off), the two merge in the LAPIC:
    /// still one tick and one acknowledgement. (Split mode has the vCPU's
    /// no-EOI poll instead.)
    fn resend_if_stale(&mut self) {
        if self.line.is_none() || !self.catchup.outstanding {
            return;
        }
        let now = monotonic_ns();
        if now.saturating_sub(self.sent_at_ns) >= STALE_RESEND_NS {
            self.raise();
            self.sent_at_ns = now;
            self.stats.reinjected.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Monotonic ns after which an unacknowledged tick should be polled.
    pub(super) fn poll_due_ns(&self) -> Option<u64> {
        self.outstanding().then(|| self.sent_at_ns + crate::level_source::POLL_AFTER_NS)
    }

    /// True while owed catch-up ticks wait to be sent.
    pub(super) fn backlogged(&self) -> bool {
        self.effective == TickPolicy::Catchup && self.catchup.backlog > 0
    }

    /// True while a catch-up tick waits for its acknowledgement.
    pub(super) fn outstanding(&self) -> bool {
        self.effective == TickPolicy::Catchup && self.catchup.outstanding
    }

    /// Before the irqchip state is replaced: the irqfd id if KVM may hold
    /// this timer's resampled line asserted. The event thread reads an
    /// acknowledgement only at the next expiration, and a run's end
    /// disarms the timer first, so one may be waiting: KVM lowered the line
    /// before signalling it, and a catch-up timer sent nothing since.
    pub(super) fn line_held(&mut self) -> Option<u32> {
        if self.line_may_be_high && self.effective == TickPolicy::Catchup {
            if let Some(r) = &self.resample {
                if r.read().is_ok() {
                    self.line_may_be_high = false;
                    self.catchup.ack();
                }
            }
        }
        (self.resample.is_some() && self.line_may_be_high).then_some(self.irqfd_id)
    }

    /// After the irqchip state was replaced (`replaced`: successfully):
    /// nothing is outstanding on the new state; with `disarm` (reset) the
    /// timer stops and its backlog is cleared.
    pub(super) fn after_replace(&mut self, epoll: &Epoll, id: u32, disarm: bool, replaced: bool) {
        if disarm && replaced {
            self.stats.period_ns.store(0, Ordering::SeqCst);
            let _ = self.tfd.disarm();
            self.catchup.clear();
        }
        if replaced {
            self.line_may_be_high = false;
        }
        self.catchup.outstanding = false;
        self.watch_acks(epoll, id);
        if self.effective == TickPolicy::Catchup {
            self.stats.publish(&self.catchup);
        }
    }

    fn clear(&mut self) {
        self.catchup.clear();
        if self.effective == TickPolicy::Catchup {
            self.stats.publish(&self.catchup);
        }
    }
}

impl Events {
    /// Add a disarmed timer writing `target`; returns its id.
    pub fn timer_add(&self, target: Arc<EventFd>, gsi: u32, irqfd_id: u32, owned_gsi: Option<u32>) -> Result<u32> {
        let s = self.shared()?;
        let tfd = Timerfd::new()?;
        let mut st = lock(&s.state);
        let id = ids(&mut st.timer_ids).allocate().ok_or_else(|| Error::invalid("too many timers"))?;
        if let Err(e) = s.epoll.ctl(ControlOperation::Add, tfd.as_raw_fd(), EpollEvent::new(EventSet::IN, TIMER | id as u64)) {
            ids(&mut st.timer_ids).release(id);
            return Err(Error::os("epoll_ctl(timer)", e));
        }
        let stats = Arc::new(TimerStats::default());
        let timer = Timer {
            tfd,
            target,
            pacing: Pacing::Absolute,
            stats,
            policy: TickPolicy::Coalesce,
            cap_ns: DEFAULT_CATCHUP_CAP_NS,
            resample: None,
            effective: TickPolicy::Coalesce,
            catchup: CatchUp::new(1),
            sent_at_ns: 0,
            line_may_be_high: false,
            ack_watched: false,
            line: self.ctl.clone().filter(|_| self.lines),
            irqfd_id,
            owned_gsi,
            gsi,
        };
        st.timers.insert(id, timer);
        Ok(id)
    }

    /// Set a timer's tick policy (from its next arm). `Catchup` needs the
    /// `resample` eventfd of its irqfd, which is registered with the epoll
    /// (and replaces an earlier one); `target` replaces the eventfd written
    /// per tick (the resampling irqfd's). `cap_ns` (> 0) is the backlog cap
    /// in ns worth of ticks.
    pub fn timer_set_policy(
        &self,
        id: u32,
        policy: TickPolicy,
        swap: Option<(Arc<EventFd>, Arc<EventFd>, u32)>,
        cap_ns: u64,
    ) -> Result<Option<u32>> {
        if cap_ns == 0 {
            return Err(Error::invalid("catch-up backlog cap must be > 0 ns"));
        }
        let s = self.existing().ok_or_else(|| Error::invalid(format!("no timer {id}")))?;
        let mut st = lock(&s.state);
        let t = st.timers.get_mut(&id).ok_or_else(|| Error::invalid(format!("no timer {id}")))?;
        if t.stats.period_ns.load(Ordering::SeqCst) != 0 {
            return Err(Error::invalid(format!("timer {id} is armed; set its policy while disarmed")));
        }
        let mut old_irqfd = None;
        if let Some((target, resample, irqfd_id)) = swap {
            s.epoll
                .ctl(ControlOperation::Add, resample.as_raw_fd(), EpollEvent::new(EventSet::empty(), TIMER_ACK | id as u64))
                .map_err(|e| Error::os("epoll_ctl(timer ack)", e))?;
            if let Some(r) = t.resample.take() {
                let _ = s.epoll.ctl(ControlOperation::Delete, r.as_raw_fd(), EpollEvent::default());
            }
            t.target = target;
            t.resample = Some(resample);
            t.ack_watched = false;
            old_irqfd = Some(std::mem::replace(&mut t.irqfd_id, irqfd_id));
            t.catchup.reset_line();
        }
        if policy == TickPolicy::Catchup && t.resample.is_none() {
            return Err(Error::invalid(format!("timer {id} has no EOI notification for catch-up")));
        }
        t.policy = policy;
        t.cap_ns = cap_ns;
        Ok(old_irqfd)
    }

    fn with_timer<R>(&self, id: u32, f: impl FnOnce(&mut Timer) -> Result<R>) -> Result<R> {
        let s = self.existing().ok_or_else(|| Error::invalid(format!("no timer {id}")))?;
        let mut st = lock(&s.state);
        f(st.timers.get_mut(&id).ok_or_else(|| Error::invalid(format!("no timer {id}")))?)
    }

    /// Arm (or re-arm) a timer: first tick one period from now. A re-arm
    /// clears the catch-up backlog. `acks`: whether the guest's
    /// acknowledgements reach the resample eventfd for this arm (else a
    /// catch-up timer coalesces).
    pub fn timer_arm(&self, id: u32, period_ns: u64, acks: bool) -> Result<()> {
        if period_ns == 0 {
            return Err(Error::invalid("timer period must be > 0"));
        }
        self.with_timer(id, |t| {
            t.clear();
            // Drop expirations of an earlier arm still unread.
            let _ = t.tfd.read();
            t.effective = if t.policy == TickPolicy::Catchup && acks && t.pacing == Pacing::Absolute {
                TickPolicy::Catchup
            } else {
                TickPolicy::Coalesce
            };
            t.catchup.cap = CatchUp::cap_for(period_ns, t.cap_ns);
            t.stats.policy.store(t.effective as u64, Ordering::SeqCst);
            match t.pacing {
                Pacing::Absolute => t.tfd.set_absolute(monotonic_ns() + period_ns, period_ns)?,
                Pacing::RelativeSleep => t.tfd.set_relative(period_ns)?,
            }
            t.stats.period_ns.store(period_ns, Ordering::SeqCst);
            Ok(())
        })?;
        self.wake();
        Ok(())
    }

    /// Disarm a timer; its catch-up backlog is cleared.
    pub fn timer_disarm(&self, id: u32) -> Result<()> {
        self.with_timer(id, |t| {
            t.stats.period_ns.store(0, Ordering::SeqCst);
            let r = t.tfd.disarm();
            t.clear();
            r
        })?;
        // The thread re-evaluates catch-up halt polling (no backlog now).
        self.wake();
        Ok(())
    }

    /// Set a timer's pacing (takes effect at its next arm).
    pub fn timer_set_pacing(&self, id: u32, pacing: Pacing) -> Result<()> {
        self.with_timer(id, |t| {
            t.pacing = pacing;
            Ok(())
        })
    }

    /// A timer's GSI, irqfd id and owned (MSI-route) GSI.
    pub fn timer_info(&self, id: u32) -> Result<(u32, u32, Option<u32>)> {
        self.with_timer(id, |t| Ok((t.gsi, t.irqfd_id, t.owned_gsi)))
    }

    /// A timer's counters.
    pub fn timer_stats(&self, id: u32) -> Result<Arc<TimerStats>> {
        self.with_timer(id, |t| Ok(t.stats.clone()))
    }

    /// Remove a timer; returns it so the VM can release its irqfd/route.
    pub fn timer_remove(&self, id: u32) -> Result<Timer> {
        let s = self.existing().ok_or_else(|| Error::invalid(format!("no timer {id}")))?;
        let mut st = lock(&s.state);
        let t = st.timers.remove(&id).ok_or_else(|| Error::invalid(format!("no timer {id}")))?;
        let _ = s.epoll.ctl(ControlOperation::Delete, t.tfd.as_raw_fd(), EpollEvent::default());
        if let Some(r) = &t.resample {
            let _ = s.epoll.ctl(ControlOperation::Delete, r.as_raw_fd(), EpollEvent::default());
        }
        ids(&mut st.timer_ids).release(id);
        Ok(t)
    }

    /// Tests: send this timer's ticks through its irqfd, as without the
    /// in-kernel line (or when raising the line fails).
    #[cfg(test)]
    pub(crate) fn timer_use_irqfd(&self, id: u32) -> Result<()> {
        self.with_timer(id, |t| {
            t.line = None;
            Ok(())
        })
    }

    /// Ids of every timer.
    pub fn timer_ids(&self) -> Vec<u32> {
        self.existing().map(|s| lock(&s.state).timers.keys().copied().collect()).unwrap_or_default()
    }

    /// Number of armed timers.
    pub fn timers_armed(&self) -> usize {
        self.existing()
            .map(|s| lock(&s.state).timers.values().filter(|t| t.stats.period_ns.load(Ordering::SeqCst) > 0).count())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use vmm_sys_util::eventfd::EFD_NONBLOCK;

    fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        let mut spins = 0;
        while !f() {
            spins += 1;
            assert!(spins < 20_000, "{what} never happened");
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }

    #[test]
    fn catchup_timer_sends_one_owed_tick_per_ack() {
        let ev = Events::new(vec![], false, None, false);
        let id = ev.timer_add(Arc::new(EventFd::new(EFD_NONBLOCK).unwrap()), 0, 0, None).unwrap();
        let target = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        let resample = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        let old = ev.timer_set_policy(id, TickPolicy::Catchup, Some((target.clone(), resample.clone(), 7)), DEFAULT_CATCHUP_CAP_NS);
        assert_eq!(old.unwrap(), Some(0), "the irqfd replaced");
        ev.timer_arm(id, 200_000, true).unwrap();
        let stats = ev.timer_stats(id).unwrap();
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        // Nobody acknowledges: one tick goes out, the rest are owed.
        wait_for("5 expirations", || get(&stats.owed) >= 5);
        assert_eq!(target.read().unwrap(), 1, "one tick outstanding");
        assert_eq!(get(&stats.ticks), 1);
        for i in 1..=3u64 {
            resample.write(1).unwrap();
            wait_for("the next owed tick", || get(&stats.ticks) == i + 1);
            assert_eq!(target.read().unwrap(), 1, "one tick per acknowledgement");
            assert_eq!(get(&stats.acks), i);
        }
        ev.timer_disarm(id).unwrap();
        let (owed, sent, backlog) = (get(&stats.owed), get(&stats.ticks), get(&stats.backlog));
        assert_eq!(owed, sent + backlog + get(&stats.dropped_over_cap) + get(&stats.cleared));
        assert_eq!((sent, backlog), (4, 0), "the stop cleared the backlog");
        ev.shutdown();
    }
}
