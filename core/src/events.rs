//! The VM's event thread: one epoll loop serving every host-side event
//! source of a VM — tick timers, level sources (resample eventfds) and
//! the run-timeout / wake-up alarm. It is created when the first of them
//! is, so a VM that uses none has no thread besides its vCPUs; it exits
//! when the VM shuts down.

use crate::error::{Error, Result};
use crate::ids::IdAllocator;
use crate::kick::{Kick, POLL, TIMEOUT, WAKE};
use crate::level_source::LevelSource;
use crate::ioctls::VmCtl;
use crate::timer::{make_precise, monotonic_ns, thread_cpu_ns, Timerfd};
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Name of the thread (tests count threads by it).
pub const THREAD_NAME: &str = "dv-events";
/// Most ids of one kind (timers, level sources) per VM.
pub const MAX_SOURCES: u32 = 4096;

mod timers;
pub use timers::Timer;

/// epoll tokens: kind in the high half, id in the low half.
const CONTROL: u64 = 0;
const ALARM: u64 = 1 << 32;
const TIMER: u64 = 2 << 32;
const LEVEL: u64 = 3 << 32;
const TIMER_ACK: u64 = 4 << 32;

#[derive(Default)]
struct State {
    quit: bool,
    timers: HashMap<u32, Timer>,
    timer_ids: Option<IdAllocator>,
    levels: HashMap<u32, LevelSource>,
    level_ids: Option<IdAllocator>,
    timeout_at: Option<u64>,
    wake_at: Option<u64>,
    next_poll_ns: u64,
    /// Halt polling is on for a catch-up backlog.
    catchup_polling: bool,
}

struct Shared {
    epoll: Epoll,
    control: EventFd,
    alarm: Timerfd,
    state: Mutex<State>,
    kicks: Vec<Arc<Kick>>,
    /// Split irqchip: ask vCPU 0 to check level assertions left without EOI.
    poll_levels: bool,
    realtime: AtomicBool,
    cpu_ns: AtomicU64,
    ctl: Option<Arc<VmCtl>>,
    halt_poll_off: Arc<AtomicBool>,
}

/// The event thread of one VM (started lazily).
pub struct Events {
    /// The thread's handle on the VM (lines, halt polling).
    ctl: Option<Arc<VmCtl>>,
    /// In-kernel irqchip: catch-up ticks go through `ctl`'s KVM_IRQ_LINE.
    lines: bool,
    /// The VM's halt polling is off (short period); see [`CATCHUP_HALT_POLL_NS`].
    halt_poll_off: Arc<AtomicBool>,
    kicks: Vec<Arc<Kick>>,
    poll_levels: bool,
    running: Mutex<Option<(Arc<Shared>, JoinHandle<()>)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn ids(slot: &mut Option<IdAllocator>) -> &mut IdAllocator {
    slot.get_or_insert_with(|| IdAllocator::new(1, MAX_SOURCES))
}

/// Thread-level counters of the event thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadStats {
    /// True while the thread exists.
    pub running: bool,
    /// SCHED_FIFO was granted.
    pub realtime: bool,
    /// CPU time of the thread (ns).
    pub cpu_ns: u64,
}

impl Events {
    /// No thread yet; `kicks` are the vCPUs' kick states; `ctl` is the
    /// thread's handle on the VM (None: no VM, unit tests); `lines`: the
    /// in-kernel irqchip, whose lines `ctl` drives.
    pub fn new(kicks: Vec<Arc<Kick>>, poll_levels: bool, ctl: Option<VmCtl>, lines: bool) -> Self {
        Events {
            ctl: ctl.map(Arc::new),
            lines,
            halt_poll_off: Arc::new(AtomicBool::new(false)),
            kicks,
            poll_levels,
            running: Mutex::new(None),
        }
    }

    /// The VM's halt polling was turned off (a short timer period): the
    /// thread turns it back on while a catch-up backlog drains.
    pub fn halt_poll_off(&self) {
        self.halt_poll_off.store(true, Ordering::SeqCst);
    }

    fn shared(&self) -> Result<Arc<Shared>> {
        let mut g = lock(&self.running);
        if let Some((s, _)) = g.as_ref() {
            return Ok(s.clone());
        }
        let epoll = Epoll::new().map_err(|e| Error::os("epoll_create", e))?;
        let control = EventFd::new(EFD_NONBLOCK).map_err(|e| Error::os("eventfd", e))?;
        let alarm = Timerfd::new()?;
        for (fd, token) in [(control.as_raw_fd(), CONTROL), (alarm.as_raw_fd(), ALARM)] {
            epoll
                .ctl(ControlOperation::Add, fd, EpollEvent::new(EventSet::IN, token))
                .map_err(|e| Error::os("epoll_ctl", e))?;
        }
        let shared = Arc::new(Shared {
            epoll,
            control,
            alarm,
            state: Mutex::new(State::default()),
            kicks: self.kicks.clone(),
            poll_levels: self.poll_levels,
            realtime: AtomicBool::new(false),
            cpu_ns: AtomicU64::new(0),
            ctl: self.ctl.clone(),
            halt_poll_off: self.halt_poll_off.clone(),
        });
        let s2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || event_loop(&s2))
            .map_err(|e| Error::os("spawn event thread", e))?;
        *g = Some((shared.clone(), thread));
        Ok(shared)
    }

    fn existing(&self) -> Option<Arc<Shared>> {
        lock(&self.running).as_ref().map(|(s, _)| s.clone())
    }

    /// Thread counters.
    pub fn thread_stats(&self) -> ThreadStats {
        match self.existing() {
            None => ThreadStats::default(),
            Some(s) => ThreadStats {
                running: true,
                realtime: s.realtime.load(Ordering::Relaxed),
                cpu_ns: s.cpu_ns.load(Ordering::Relaxed),
            },
        }
    }

    /// Wake the thread so it re-evaluates its poll timeout.
    fn wake(&self) {
        if let Some(s) = self.existing() {
            let _ = s.control.write(1);
        }
    }

    /// Run `f`, which replaces the irqchip and vCPU state (snapshot
    /// restore, reset), with the event thread held off: no tick or level
    /// assertion is sent into a half-replaced machine, where KVM would
    /// deliver its edge to a LAPIC about to be overwritten while the
    /// resampled line stays asserted, so every later tick coalesced into
    /// that line and the guest waited forever. `f` gets the irqfds whose
    /// line KVM may hold asserted (written since the guest's last
    /// acknowledgement) to lower (see `Vm::lower_resampled_lines`).
    /// Afterwards nothing is outstanding, since the ticks and assertions
    /// the replaced state held are gone with it: periods and backlogs stay,
    /// and level sources with pending work assert again. With `disarm`
    /// (VM reset), a successful `f` also disarms every timer, clearing its
    /// backlog. With `levels` (a snapshot's pending work per level
    /// source, in id order, checked by the caller), a successful `f` also
    /// sets each source's pending work. `f` must not call into `Events`.
    pub fn quiesced<T>(&self, disarm: bool, levels: Option<&[u64]>, f: impl FnOnce(&[u32]) -> Result<T>) -> Result<T> {
        let Some(s) = self.existing() else { return f(&[]) };
        let mut st = lock(&s.state);
        let mut high: Vec<u32> = st.timers.values_mut().filter_map(|t| t.line_held()).collect();
        for l in st.levels.values() {
            // Likewise an EOI not yet read retires its item here.
            l.on_resample();
        }
        high.extend(st.levels.values().filter(|l| l.outstanding()).map(|l| l.irqfd_id));
        let r = f(&high);
        for (&id, t) in st.timers.iter_mut() {
            t.after_replace(&s.epoll, id, disarm, r.is_ok());
        }
        if let (Some(p), true) = (levels, r.is_ok()) {
            for (l, &n) in in_id_order(&st.levels).into_iter().zip(p) {
                l.stats.pending.store(n, Ordering::SeqCst);
            }
        }
        for l in st.levels.values() {
            l.stats.asserted_at_ns.store(0, Ordering::SeqCst);
            l.maybe_assert();
        }
        drop(st);
        let _ = s.control.write(1);
        r
    }

    /// Add a level source; returns its id.
    pub fn level_add(&self, src: LevelSource) -> Result<u32> {
        let s = self.shared()?;
        let mut st = lock(&s.state);
        let id = ids(&mut st.level_ids).allocate().ok_or_else(|| Error::invalid("too many level sources"))?;
        let ev = EpollEvent::new(EventSet::IN, LEVEL | id as u64);
        if let Err(e) = s.epoll.ctl(ControlOperation::Add, src.resample.as_raw_fd(), ev) {
            ids(&mut st.level_ids).release(id);
            return Err(Error::os("epoll_ctl(level)", e));
        }
        st.levels.insert(id, src);
        Ok(id)
    }

    /// Run `f` on a level source.
    pub fn with_level<R>(&self, id: u32, f: impl FnOnce(&LevelSource) -> R) -> Result<R> {
        let s = self.existing().ok_or_else(|| Error::invalid(format!("no level source {id}")))?;
        let st = lock(&s.state);
        Ok(f(st.levels.get(&id).ok_or_else(|| Error::invalid(format!("no level source {id}")))?))
    }

    /// (GSI, work items pending) of every level source, in id order (the
    /// order a VM's plugins created them). An EOI already signalled but not
    /// yet read retires its item first and the next item asserts, as the
    /// event thread would do a moment later.
    pub fn level_pending(&self) -> Vec<(u32, u64)> {
        let Some(s) = self.existing() else { return vec![] };
        let st = lock(&s.state);
        in_id_order(&st.levels)
            .into_iter()
            .map(|l| {
                l.on_resample();
                l.maybe_assert();
                (l.gsi, l.stats.pending.load(Ordering::SeqCst))
            })
            .collect()
    }

    /// The GSI of every level source, in id order (see
    /// [`Events::level_pending`]); changes nothing.
    pub fn level_gsis(&self) -> Vec<u32> {
        let Some(s) = self.existing() else { return vec![] };
        let st = lock(&s.state);
        in_id_order(&st.levels).into_iter().map(|l| l.gsi).collect()
    }

    /// Add `n` work items to a level source (asserts at once if idle).
    pub fn level_work(&self, id: u32, n: u64) -> Result<()> {
        self.with_level(id, |l| {
            l.stats.pending.fetch_add(n, Ordering::SeqCst);
            l.maybe_assert();
        })?;
        // Wake the thread so it schedules the no-EOI poll.
        self.existing().map(|s| s.control.write(1)).transpose().map_err(|e| Error::os("eventfd", e))?;
        Ok(())
    }

    /// Level sources with an outstanding assertion, and catch-up timers
    /// with an unacknowledged tick: (gsi, counter of re-signals).
    pub fn outstanding_levels(&self) -> Vec<(u32, Arc<AtomicU64>)> {
        let Some(s) = self.existing() else { return vec![] };
        let st = lock(&s.state);
        let levels = st.levels.values().filter(|l| l.outstanding()).map(|l| (l.gsi, l.stats.reinjected_counter()));
        let timers = st.timers.values().filter(|t| t.outstanding()).map(|t| (t.gsi, t.stats.reinjected.clone()));
        levels.chain(timers).collect()
    }

    /// Remove a level source; returns it so the VM can release its irqfd.
    pub fn level_remove(&self, id: u32) -> Result<LevelSource> {
        let s = self.existing().ok_or_else(|| Error::invalid(format!("no level source {id}")))?;
        let mut st = lock(&s.state);
        let l = st.levels.remove(&id).ok_or_else(|| Error::invalid(format!("no level source {id}")))?;
        let _ = s.epoll.ctl(ControlOperation::Delete, l.resample.as_raw_fd(), EpollEvent::default());
        ids(&mut st.level_ids).release(id);
        Ok(l)
    }

    /// Ids of every level source.
    pub fn level_ids(&self) -> Vec<u32> {
        self.existing().map(|s| lock(&s.state).levels.keys().copied().collect()).unwrap_or_default()
    }

    /// Set (`ns` > 0, from now) or cancel (0) the run timeout
    /// ([`TIMEOUT`]) or a wake-up ([`WAKE`]). Cancelling never starts the
    /// thread.
    pub fn alarm(&self, kind: u32, ns: u64) -> Result<()> {
        let s = match (ns, self.existing()) {
            (0, None) => return Ok(()),
            (0, Some(s)) => s,
            _ => self.shared()?,
        };
        let when = (ns > 0).then(|| monotonic_ns().saturating_add(ns));
        let mut st = lock(&s.state);
        match kind {
            TIMEOUT => st.timeout_at = when,
            WAKE => st.wake_at = when,
            _ => return Err(Error::invalid(format!("bad alarm kind {kind}"))),
        }
        arm_alarm(&s, &st)
    }

    /// Stop the thread (joins it); sources are dropped.
    pub fn shutdown(&self) {
        let Some((s, t)) = lock(&self.running).take() else { return };
        {
            let mut st = lock(&s.state);
            st.quit = true;
            st.timers.clear();
            st.levels.clear();
        }
        let _ = s.control.write(1);
        let _ = t.join();
    }
}

fn arm_alarm(s: &Shared, st: &State) -> Result<()> {
    match [st.timeout_at, st.wake_at].into_iter().flatten().min() {
        Some(t) => s.alarm.set_absolute(t, 0),
        None => s.alarm.disarm(),
    }
}

fn fire_alarms(s: &Shared, st: &mut State) {
    let _ = s.alarm.read();
    let now = monotonic_ns();
    let mut fire = 0;
    if st.timeout_at.is_some_and(|t| t <= now) {
        st.timeout_at = None;
        fire |= TIMEOUT;
    }
    if st.wake_at.is_some_and(|t| t <= now) {
        st.wake_at = None;
        fire |= WAKE;
    }
    if fire != 0 {
        for k in &s.kicks {
            k.kick(fire);
        }
    }
    let _ = arm_alarm(s, st);
}

/// The vCPUs' halt polling while a catch-up backlog drains, where a short
/// period turned it off (KVM's default maximum). Each owed tick then
/// reaches a vCPU that is still polling in HLT instead of one that must be
/// woken: one thread wake-up less in the acknowledgement round trip, which
/// bounds how fast a backlog drains (README, "Paravirtual timer"). It costs
/// host CPU only while ticks are owed.
pub(crate) const CATCHUP_HALT_POLL_NS: u64 = 200_000;

fn catchup_halt_poll(s: &Shared, st: &mut State) {
    let Some(ctl) = &s.ctl else { return };
    if !s.halt_poll_off.load(Ordering::Relaxed) {
        return;
    }
    let want = st.timers.values().any(|t| t.backlogged());
    if want != st.catchup_polling && ctl.halt_poll(if want { CATCHUP_HALT_POLL_NS } else { 0 }).is_ok() {
        st.catchup_polling = want;
    }
}

fn event_loop(s: &Shared) {
    s.realtime.store(make_precise(), Ordering::Relaxed);
    let mut events = vec![EpollEvent::default(); 32];
    loop {
        let timeout_ms = {
            let st = lock(&s.state);
            if st.quit {
                break;
            }
            // Wake for the no-EOI poll while an assertion is outstanding.
            let polling = s.poll_levels
                && (st.levels.values().any(|l| l.outstanding()) || st.timers.values().any(|t| t.outstanding()));
            if polling {
                (POLL_MS).max(1)
            } else {
                -1
            }
        };
        let n = match s.epoll.wait(timeout_ms, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let mut st = lock(&s.state);
        if st.quit {
            break;
        }
        for ev in &events[..n] {
            let token = ev.data();
            let id = token as u32;
            match token & !0xffff_ffff {
                CONTROL => {
                    let _ = s.control.read();
                }
                ALARM => fire_alarms(s, &mut st),
                TIMER => {
                    if let Some(t) = st.timers.get_mut(&id) {
                        t.on_expire(&s.epoll, id);
                    }
                }
                TIMER_ACK => {
                    if let Some(t) = st.timers.get_mut(&id) {
                        t.on_ack(&s.epoll, id);
                    }
                }
                LEVEL => {
                    if let Some(l) = st.levels.get(&id) {
                        l.on_resample();
                    }
                }
                _ => {}
            }
        }
        for l in st.levels.values() {
            l.maybe_assert();
        }
        if s.poll_levels {
            let now = monotonic_ns();
            let due = st
                .levels
                .values()
                .filter_map(|l| l.poll_due_ns())
                .chain(st.timers.values().filter_map(|t| t.poll_due_ns()))
                .min();
            if due.is_some_and(|d| d <= now) && now >= st.next_poll_ns {
                st.next_poll_ns = now + crate::level_source::POLL_AFTER_NS;
                // Every vCPU: each looks in its own LAPIC for the messages
                // routed to it (`Vm::poll_levels`).
                for k in &s.kicks {
                    k.kick(POLL);
                }
            }
        }
        catchup_halt_poll(s, &mut st);
        drop(st);
        s.cpu_ns.store(thread_cpu_ns(), Ordering::Relaxed);
    }
    s.cpu_ns.store(thread_cpu_ns(), Ordering::Relaxed);
}

/// epoll timeout while a level assertion waits for its EOI (ms).
/// Level sources in id order: the order a VM's plugins created them, in
/// which snapshots record them.
fn in_id_order(levels: &HashMap<u32, LevelSource>) -> Vec<&LevelSource> {
    let mut v: Vec<(&u32, &LevelSource)> = levels.iter().collect();
    v.sort_unstable_by_key(|(id, _)| **id);
    v.into_iter().map(|(_, l)| l).collect()
}

const POLL_MS: i32 = (crate::level_source::POLL_AFTER_NS / 1_000_000) as i32;

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_count() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter(|e| {
                let p = e.as_ref().unwrap().path().join("comm");
                std::fs::read_to_string(p).map(|c| c.trim() == THREAD_NAME).unwrap_or(false)
            })
            .count()
    }

    #[test]
    fn lazily_started_ticks_and_reuses_ids() {
        let ev = Events::new(vec![], false, None, false);
        ev.alarm(TIMEOUT, 0).unwrap();
        assert!(!ev.thread_stats().running, "cancelling an alarm starts nothing");
        let efd = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        let a = ev.timer_add(efd.clone(), 0, 0, None).unwrap();
        let b = ev.timer_add(efd.clone(), 0, 0, None).unwrap();
        assert_eq!((a, b), (1, 2));
        assert!(ev.thread_stats().running);
        ev.timer_arm(a, 1_000_000, false).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        ev.timer_disarm(a).unwrap();
        let ticks = ev.timer_stats(a).unwrap().ticks.load(Ordering::SeqCst);
        assert!(ticks >= 5, "ticks {ticks}");
        assert_eq!(efd.read().unwrap(), ticks, "one irqfd write per tick batch");
        ev.timer_remove(a).unwrap();
        assert_eq!(ev.timer_add(efd, 0, 0, None).unwrap(), 1, "freed id reused");
        ev.shutdown();
        assert!(!ev.thread_stats().running);
    }

    #[test]
    fn level_source_retires_one_item_per_eoi() {
        let ev = Events::new(vec![], false, None, false);
        let irqfd = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        let resample = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        let src = LevelSource {
            gsi: 5,
            irqfd_id: 0,
            irqfd: irqfd.clone(),
            resample: resample.clone(),
            stats: Default::default(),
        };
        let id = ev.level_add(src).unwrap();
        ev.level_work(id, 3).unwrap();
        for i in 1..=3u64 {
            // Wait for the assertion, then "EOI" it.
            let mut spins = 0;
            while irqfd.read().is_err() {
                spins += 1;
                assert!(spins < 10_000, "assertion {i} never came");
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
            resample.write(1).unwrap();
            let mut spins = 0;
            while ev.with_level(id, |l| l.stats.eois.load(Ordering::SeqCst)).unwrap() < i {
                spins += 1;
                assert!(spins < 10_000, "EOI {i} never retired");
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
        }
        let pending = ev.with_level(id, |l| l.stats.pending.load(Ordering::SeqCst)).unwrap();
        assert_eq!(pending, 0);
        ev.level_remove(id).unwrap();
        ev.shutdown();
    }

    #[test]
    fn one_thread_per_events_and_none_after_shutdown() {
        let before = thread_count();
        let ev = Events::new(vec![], false, None, false);
        let efd = Arc::new(EventFd::new(EFD_NONBLOCK).unwrap());
        for _ in 0..5 {
            ev.timer_add(efd.clone(), 0, 0, None).unwrap();
        }
        ev.alarm(WAKE, 1_000_000_000).unwrap();
        assert!(thread_count() <= before + 1 + 2, "other tests may run concurrently");
        ev.shutdown();
        assert!(!ev.thread_stats().running);
    }
}
