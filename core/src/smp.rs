//! More than one vCPU: every vCPU runs `KVM_RUN` on its own host thread
//! and the caller (the JS thread) waits for the exits that need it.
//!
//! Design (one device model, many vCPUs): TypeScript devices stay
//! single-threaded. A vCPU whose exit needs the caller (a forwarded port
//! or MMIO access, a shutdown, an internal error; for vCPU 0 also a stop,
//! the run timeout, a wake-up or an interrupt window) *parks*: it marks
//! its slot and bumps the park counter, which the caller polls in
//! [`Vm::wait_exits`] (spinning briefly, then sleeping on it as a futex).
//! The caller takes every parked vCPU in one call, handles each exit from
//! that vCPU's exit record, and releases them with its next
//! [`Vm::wait_exits`]; a released vCPU's next `KVM_RUN` completes a read
//! with the record's data. A parked vCPU spins briefly on its slot, then
//! sleeps on it (a release wakes it only when it sleeps). Exits the core
//! handles itself (fast-path ranges, level polls, timer/IPI work inside
//! KVM) never wait for the caller. Cost per exit that needs the caller:
//! two cross-thread handoffs through shared memory and one call; no
//! signal, no thread wake-up while both sides still spin. A single-vCPU
//! VM starts no thread and keeps vCPU 0 on the caller's thread.
//!
//! The threads live for one run of the caller: [`Vm::start_aps`] spawns
//! them, [`Vm::stop_aps`] (also at shutdown) sets `quit`, gets every vCPU
//! out of `KVM_RUN` and joins the threads. An exit still parked when the
//! threads stop is kept: the slot stays parked, and the vCPU's next
//! thread (the next run) hands the same exit to the caller before it
//! enters `KVM_RUN` again, so no write is lost and no read completes with
//! stale data. An exit the caller took is handled: stopping releases it.
//! [`Vm::reset`] and a state load drop parked exits (the vCPU's state is
//! replaced).
//!
//! A caller running in slices (`runAsync`) ends a slice with
//! [`Vm::detach_aps`] instead: the threads keep running the guest (their
//! exits park until the next slice takes them), the next
//! [`Vm::start_aps`] adopts them, and any call that needs a vCPU (its
//! registers, state, reset, snapshot) stops them first.

use crate::error::{Code, Error, Result};
use crate::exit::Reason;
use crate::kick::{STOP, YIELD};
use crate::vm::{lock, Vm};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Mutex;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Slot states: in (or entering) `KVM_RUN`.
const RUNNING: u32 = 0;
/// Waiting for the caller to take its exit.
const PARKED: u32 = 1;
/// Taken by the caller, waiting for its release.
const TAKEN: u32 = 2;

struct Slot {
    /// [`RUNNING`], [`PARKED`] or [`TAKEN`].
    state: AtomicU32,
    /// Bumped by every release and by `stop_aps`: the futex word a parked
    /// vCPU sleeps on (a bump between its check and its sleep makes the
    /// sleep return at once).
    epoch: AtomicU32,
    /// The parked vCPU sleeps (or is about to): a release must wake it.
    sleeping: AtomicBool,
}

/// Polls of a parked vCPU on its slot before it sleeps, and of the
/// caller on the park counter before it sleeps: a handoff within the
/// polling costs no futex wake. Every [`YIELD_EVERY`]th poll yields the
/// host core instead of a `pause`, so a poller never holds a core another
/// runnable thread needs for long (3 busy threads on the 2-core dev host).
/// ~26 ns a `pause` and ~0.6 us a `sched_yield` there (AMD EPYC, nested),
/// so 50,000 polls are ~1.6 ms of polling at most per wait. Measured on
/// the 2-core nested dev host (bench:smp, 2026-12-04, load 2.0-2.3; the
/// handoff per TS exit, 2-vCPU minus 1-vCPU VM, medians of 3-5 rounds):
/// 2,000/20,000 polls without yielding 141 us (a wait then sleeps almost
/// every time, and a futex wake of a sleeping thread is ~100 us here);
/// 50,000 without yielding 0.6 us but rounds of +2.6 ms (two pollers
/// starving a vCPU); 20,000 yielding every 100th 3.8 us; 50,000 yielding
/// every 20th 1.2 us; 50,000 yielding every 100th 1.0 us, quartiles
/// 0.2..1.1 us; 200,000 yielding every 100th 0.7 us, but one vCPU each
/// hammering 0.22x the 1-vCPU throughput (0.57x with 50,000).
const PARK_SPINS: u32 = 50_000;
const WAIT_SPINS: u32 = 50_000;
/// See [`PARK_SPINS`].
const YIELD_EVERY: u32 = 100;

/// The caller's polling adapts to the gaps between exits, as KVM's halt
/// polling does: its budget (at most [`WAIT_SPINS`], at least this) drops
/// by a quarter after a sleep longer than twice [`FULL_POLL_NS`] (the VM
/// is idle between exits: polling only burns the core) and returns to
/// [`WAIT_SPINS`] after a sleep shorter than [`FULL_POLL_NS`] (polling
/// longer would have caught the exit; a busy VM polls in full again at
/// once).
/// An idle VM whose vCPUs exit to TypeScript 100 times a second then polls
/// ~30 us per exit instead of ~1.6 ms.
const WAIT_SPINS_MIN: u32 = 1_000;
/// What [`WAIT_SPINS`] polls take on the dev host (see [`PARK_SPINS`]).
const FULL_POLL_NS: u128 = 1_600_000;

/// One poll of a spin-then-sleep wait (`i` counts the polls).
#[inline]
fn relax(i: u32) {
    if i % YIELD_EVERY == YIELD_EVERY - 1 {
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
    } else {
        std::hint::spin_loop();
    }
}

/// Longest single sleep of the caller: it then checks that the vCPU
/// threads still run (a thread that ended without parking, e.g. the VM
/// was destroyed from another thread, must not leave it asleep forever).
const WAIT_SLICE_NS: i64 = 100_000_000;

/// The vCPU threads of a VM and their exit slots (index = vCPU index).
pub(crate) struct Aps {
    slots: Vec<Slot>,
    quit: AtomicBool,
    /// The threads run between two runs of the caller (see `detach_aps`).
    detached: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Bumped by every park: the futex word the caller sleeps on.
    parks: AtomicU32,
    /// The caller sleeps (or is about to) on `parks`.
    waiting: AtomicBool,
    /// The caller's poll budget (see [`WAIT_SPINS_MIN`]).
    wait_budget: AtomicU32,
}

impl Aps {
    pub(crate) fn new(vcpus: u32) -> Self {
        let slots = (0..vcpus)
            .map(|_| Slot { state: AtomicU32::new(RUNNING), epoch: AtomicU32::new(0), sleeping: AtomicBool::new(false) })
            .collect();
        Aps {
            slots,
            quit: AtomicBool::new(false),
            detached: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            parks: AtomicU32::new(0),
            waiting: AtomicBool::new(false),
            wait_budget: AtomicU32::new(WAIT_SPINS),
        }
    }

    /// Tell the caller that a slot was parked (or the threads stop).
    fn notify_caller(&self) {
        self.parks.fetch_add(1, SeqCst);
        if self.waiting.load(SeqCst) {
            futex_wake(&self.parks);
        }
    }
}

/// Sleep while `word` holds `expected` (at most `timeout_ns` when > 0).
fn futex_wait(word: &AtomicU32, expected: u32, timeout_ns: i64) {
    let ts = libc::timespec { tv_sec: timeout_ns / 1_000_000_000, tv_nsec: timeout_ns % 1_000_000_000 };
    let tsp = if timeout_ns > 0 { &ts as *const libc::timespec } else { std::ptr::null() };
    // SAFETY: `word` is a live, aligned u32 for the duration of the call;
    // FUTEX_WAIT only reads it and `tsp` is null or points at `ts`. EINTR,
    // EAGAIN (the value changed) and ETIMEDOUT all mean "check again",
    // which every caller does.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG, expected, tsp);
    }
}

/// Wake every sleeper on `word`.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE does not access
    // memory through it beyond the address as a key.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, i32::MAX);
    }
}

/// Exits a vCPU thread handles without the caller: for an AP the kicks
/// meant for vCPU 0 (a stop, the run timeout, a wake-up) and a window it
/// never asks for; vCPU 0 hands every exit over.
fn ignores(index: u32, r: Reason) -> bool {
    index > 0 && matches!(r, Reason::Stopped | Reason::Timeout | Reason::Wake | Reason::IrqWindow)
}

/// vCPU 0's exits that belong to one run only: dropped, not carried,
/// when the threads stop (a stop is kept: it ends the next run).
fn run_local(r: u32) -> bool {
    r == Reason::Wake as u32 || r == Reason::Timeout as u32 || r == Reason::IrqWindow as u32
}

/// Wait until the caller releases `slot` (true) or the threads quit
/// (false, the exit stays parked or taken).
fn wait_release(aps: &Aps, slot: &Slot) -> bool {
    for i in 0..PARK_SPINS {
        if slot.state.load(SeqCst) == RUNNING || aps.quit.load(SeqCst) {
            break;
        }
        relax(i);
    }
    loop {
        let epoch = slot.epoch.load(SeqCst);
        if slot.state.load(SeqCst) == RUNNING {
            return true;
        }
        if aps.quit.load(SeqCst) {
            return false;
        }
        slot.sleeping.store(true, SeqCst);
        // Announced before the re-check: a release after it sees
        // `sleeping` and wakes us; one before it is seen here.
        if slot.state.load(SeqCst) != RUNNING && !aps.quit.load(SeqCst) {
            futex_wait(&slot.epoch, epoch, 0);
        }
        slot.sleeping.store(false, SeqCst);
    }
}

fn vcpu_thread(vm: Arc<Vm>, index: u32) {
    let aps = &vm.aps;
    let slot = &aps.slots[index as usize];
    loop {
        // An exit left parked by the previous run goes to the caller
        // before this vCPU runs again; the caller may already have taken
        // it before this thread got here (then it waits for the release).
        if slot.state.load(SeqCst) == RUNNING {
            if aps.quit.load(SeqCst) || !vm.alive() {
                return;
            }
            match vm.run_on_thread(index) {
                Ok(r) if ignores(index, r) => continue,
                // Leaving (stop_aps' YIELD): nothing to hand over.
                Ok(r) if run_local(r as u32) && aps.quit.load(SeqCst) => return,
                Ok(_) => {}
                // The failure reaches the caller as an internal error in this
                // vCPU's record.
                Err(_) => vm.mark_failed(index),
            }
            slot.state.store(PARKED, SeqCst);
        }
        aps.notify_caller();
        if !wait_release(aps, slot) {
            return;
        }
    }
}

impl Vm {
    /// Number of vCPUs.
    pub fn vcpu_count(&self) -> u32 {
        self.vcpus.len() as u32
    }

    /// Start one host thread per vCPU running `KVM_RUN` (the caller then
    /// waits with [`Vm::wait_exits`]). No-op with one vCPU or while they
    /// run.
    pub fn start_aps(self: &Arc<Self>) -> Result<()> {
        let mut threads = lock(&self.aps.threads);
        self.aps.detached.store(false, SeqCst);
        if self.vcpus.len() < 2 || !threads.is_empty() {
            return Ok(());
        }
        self.aps.quit.store(false, SeqCst);
        for i in 0..self.vcpus.len() as u32 {
            let vm = self.clone();
            let t = std::thread::Builder::new()
                .name(format!("denovmm-vcpu{i}"))
                .spawn(move || vcpu_thread(vm, i))
                .map_err(|e| Error::os("spawn vCPU thread", e));
            match t {
                Ok(t) => threads.push(t),
                Err(e) => {
                    drop(threads);
                    self.stop_aps();
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Stop every vCPU thread and join it: exits still parked stay parked
    /// for the next run (but vCPU 0's wake-ups, timeouts and windows,
    /// which belong to this run), taken exits count as handled.
    /// Idempotent. Not from a vCPU thread.
    pub fn stop_aps(&self) {
        let mut threads = lock(&self.aps.threads);
        self.aps.detached.store(false, SeqCst);
        if threads.is_empty() {
            return;
        }
        self.aps.quit.store(true, SeqCst);
        for (i, s) in self.aps.slots.iter().enumerate() {
            s.epoch.fetch_add(1, SeqCst);
            futex_wake(&s.epoch);
            self.vcpus[i].kick.kick(YIELD);
        }
        self.aps.notify_caller();
        for t in threads.drain(..) {
            let _ = t.join();
        }
        for (i, s) in self.aps.slots.iter().enumerate() {
            let st = s.state.load(SeqCst);
            let local = i == 0 && st == PARKED && self.with_vcpu(0, |g| Ok(run_local(g.record.reason))).unwrap_or(false);
            if st == TAKEN || local {
                s.state.store(RUNNING, SeqCst);
            }
        }
        // A STOP an AP did not consume would end its next run at once;
        // drop it (the threads are gone, nothing else reads it). vCPU 0's
        // is the caller's: it ends the next run.
        for (i, v) in self.vcpus.iter().enumerate() {
            v.kick.take(YIELD);
            if i > 0 {
                v.kick.take(STOP);
            }
            if v.kick.flags() == 0 {
                v.kick.clear_immediate_exit();
            }
        }
    }

    /// Drop every parked exit (the vCPUs were reset or their state
    /// replaced). Only while no vCPU thread runs.
    pub(crate) fn drop_parked_aps(&self) {
        for s in &self.aps.slots {
            s.state.store(RUNNING, SeqCst);
        }
    }

    /// End the caller's run leaving the vCPU threads running: the next
    /// [`Vm::start_aps`] adopts them; [`Vm::stop_aps`], or any call that
    /// needs a vCPU, stops them. No-op without threads.
    pub fn detach_aps(&self) {
        let threads = lock(&self.aps.threads);
        if !threads.is_empty() {
            self.aps.detached.store(true, SeqCst);
        }
    }

    pub(crate) fn aps_detached(&self) -> bool {
        self.aps.detached.load(SeqCst)
    }

    /// Stop vCPU threads left running between runs (see
    /// [`Vm::detach_aps`]) before an operation that needs the whole VM
    /// still: state save/load, reset, guest memory save/copy/load.
    pub(crate) fn quiesce_detached_aps(&self) {
        if self.aps_detached() {
            self.stop_aps();
        }
    }

    /// Number of AP (vCPU 1..N) threads running; vCPU 0's thread, which
    /// runs with them, is not counted.
    pub fn ap_threads(&self) -> usize {
        lock(&self.aps.threads).len().saturating_sub(1)
    }

    /// Write the indices of parked vCPUs (at most `out.len()`) to `out` and
    /// mark them taken; returns how many. Each must be released
    /// ([`Vm::release_ap`] or [`Vm::wait_exits`]) after its exit record was
    /// handled.
    pub fn take_parked_aps(&self, out: &mut [u32]) -> usize {
        let mut n = 0;
        for (i, s) in self.aps.slots.iter().enumerate() {
            if n == out.len() {
                break;
            }
            if s.state.compare_exchange(PARKED, TAKEN, SeqCst, SeqCst).is_ok() {
                out[n] = i as u32;
                n += 1;
            }
        }
        n
    }

    /// Let a taken vCPU run again.
    pub fn release_ap(&self, index: u32) -> Result<()> {
        let s = self.aps.slots.get(index as usize).ok_or_else(|| Error::invalid(format!("no vCPU {index}")))?;
        if s.state.compare_exchange(TAKEN, RUNNING, SeqCst, SeqCst).is_err() {
            return Err(Error::invalid(format!("vCPU {index} has no taken exit")));
        }
        s.epoch.fetch_add(1, SeqCst);
        if s.sleeping.load(SeqCst) {
            futex_wake(&s.epoch);
        }
        Ok(())
    }

    /// Release the taken vCPUs in `release`, then wait until at least one
    /// vCPU has parked an exit and take every parked one (at most
    /// `out.len()`): returns how many indices went to `out`. Spins briefly,
    /// then sleeps. `Busy` when no vCPU thread runs (none were started, or
    /// they were stopped).
    pub fn wait_exits(&self, release: &[u32], out: &mut [u32]) -> Result<usize> {
        for &i in release {
            self.release_ap(i)?;
        }
        let aps = &self.aps;
        let budget = aps.wait_budget.load(Relaxed);
        let mut slept: Option<std::time::Instant> = None;
        loop {
            let parks = aps.parks.load(SeqCst);
            let n = self.take_parked_aps(out);
            if n > 0 {
                if let Some(since) = slept {
                    let ns = since.elapsed().as_nanos();
                    let b = if ns > 2 * FULL_POLL_NS {
                        (budget / 4 * 3).max(WAIT_SPINS_MIN)
                    } else if ns < FULL_POLL_NS {
                        WAIT_SPINS
                    } else {
                        budget
                    };
                    aps.wait_budget.store(b, Relaxed);
                }
                return Ok(n);
            }
            if aps.quit.load(SeqCst) {
                return Err(Error::new(Code::Busy, "the vCPU threads are not running"));
            }
            let mut spins = 0;
            while spins < budget && aps.parks.load(SeqCst) == parks {
                relax(spins);
                spins += 1;
            }
            if spins < budget {
                continue;
            }
            slept.get_or_insert_with(std::time::Instant::now);
            aps.waiting.store(true, SeqCst);
            // Announced before the re-check (see `Aps::notify_caller`).
            if aps.parks.load(SeqCst) == parks {
                futex_wait(&aps.parks, parks, WAIT_SLICE_NS);
            }
            aps.waiting.store(false, SeqCst);
            let threads = lock(&aps.threads);
            if threads.is_empty() || threads.iter().all(|t| t.is_finished()) {
                return Err(Error::new(Code::Busy, "the vCPU threads are not running"));
            }
        }
    }
}
