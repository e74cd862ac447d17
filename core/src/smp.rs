//! Application processors: vCPUs 1..N run `KVM_RUN` on their own host
//! threads while vCPU 0 runs on the caller's (the JS) thread.
//!
//! Design (one device model, many vCPUs): TypeScript devices stay
//! single-threaded. An AP whose exit needs the caller (a forwarded port or
//! MMIO access, a shutdown, an internal error, ...) *parks*: it marks its
//! slot, kicks vCPU 0 out of `KVM_RUN` with `WAKE`, and blocks on its own
//! condition variable (after a short spin). The caller, after each of
//! vCPU 0's exits, takes the
//! parked APs ([`Vm::take_parked_aps`]), handles each exit from that AP's
//! exit record exactly like one of vCPU 0's, and releases it
//! ([`Vm::release_ap`]); the AP's next `KVM_RUN` then completes a read with
//! the record's data. Exits the core handles itself (fast-path ranges,
//! level polls, timer/IPI work inside KVM) never wait for the caller. Cost:
//! one kick of vCPU 0 (a signal, or `immediate_exit` when it is not in the
//! guest) plus two calls per AP exit, one extra call per vCPU 0 exit while
//! APs run; a single-vCPU VM starts no thread and makes no extra call.
//!
//! The threads live for one run of the caller: [`Vm::start_aps`] spawns
//! them, [`Vm::stop_aps`] (also at shutdown) sets `quit`, stops every AP
//! and joins the threads. An AP parked when its threads stop keeps its
//! exit: the slot stays parked, and the AP's next thread (the next run)
//! hands the same exit to the caller before it enters `KVM_RUN` again, so
//! no write is lost and no read completes with stale data. [`Vm::reset`]
//! and a state load drop it (the vCPU's state is replaced).
//!
//! A caller running in slices (`runAsync`) ends a slice with
//! [`Vm::detach_aps`] instead: the AP threads keep running the guest (their
//! plugin exits park until the next slice takes them), the next
//! [`Vm::start_aps`] adopts them, and any call that needs an AP's vCPU
//! (its registers, state, reset, snapshot) stops them first.

use crate::error::{Error, Result};
use crate::exit::Reason;
use crate::kick::{STOP, WAKE};
use crate::vm::{lock, Vm};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Where an AP's exit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// In (or entering) `KVM_RUN`.
    Running,
    /// Waiting for the caller to take its exit.
    Parked,
    /// Taken by the caller, waiting for [`Vm::release_ap`].
    Taken,
}

struct ApSlot {
    state: Mutex<Slot>,
    cv: Condvar,
    /// Set (under `state`'s lock) when the slot returns to Running or the
    /// threads quit: what a parked AP spins on before it sleeps.
    go: AtomicBool,
}

/// Spins of a parked AP on its slot before it sleeps on the condition
/// variable: a release within a few microseconds then costs no futex wake.
/// Measured on the 2-core nested dev host (bench:smp, 2026-12-03): 0 spins
/// adds 58-84 us per AP exit, 2,000 36-41 us, 50,000 300-2,800 us (the
/// spinning AP takes the core the JS thread needs).
const PARK_SPINS: u32 = 2_000;

/// The AP threads of a VM and their exit slots (index = vCPU index; slot 0
/// is unused).
pub(crate) struct Aps {
    slots: Vec<ApSlot>,
    quit: AtomicBool,
    /// The threads run between two runs of the caller (see `detach_aps`).
    detached: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Aps {
    pub(crate) fn new(vcpus: u32) -> Self {
        let slots = (0..vcpus).map(|_| ApSlot { state: Mutex::new(Slot::Running), cv: Condvar::new(), go: AtomicBool::new(false) }).collect();
        Aps { slots, quit: AtomicBool::new(false), detached: AtomicBool::new(false), threads: Mutex::new(Vec::new()) }
    }
}

/// Exits an AP handles without the caller: kicks meant for vCPU 0's run
/// (a stop, the run timeout, a wake-up) or no longer relevant.
fn ap_ignores(r: Reason) -> bool {
    matches!(r, Reason::Stopped | Reason::Timeout | Reason::Wake | Reason::IrqWindow)
}

fn ap_thread(vm: Arc<Vm>, index: u32) {
    let aps = &vm.aps;
    let slot = &aps.slots[index as usize];
    loop {
        // An exit left parked by the previous run goes to the caller
        // before this AP runs again; the caller may already have taken it
        // before this thread got here (then it waits for the release).
        let carried = *lock(&slot.state) != Slot::Running;
        if !carried {
            if aps.quit.load(Ordering::Acquire) || !vm.alive() {
                return;
            }
            match vm.run(index) {
                Ok(r) if ap_ignores(r) => continue,
                Ok(_) => {}
                // The failure reaches the caller as an internal error in this
                // vCPU's record.
                Err(_) => vm.mark_failed(index),
            }
            let mut st = lock(&slot.state);
            *st = Slot::Parked;
            slot.go.store(false, Ordering::Release);
        }
        vm.vcpus[0].kick.kick(WAKE);
        for _ in 0..PARK_SPINS {
            if slot.go.load(Ordering::Acquire) {
                break;
            }
            std::hint::spin_loop();
        }
        let mut st = lock(&slot.state);
        while *st != Slot::Running {
            if aps.quit.load(Ordering::Acquire) {
                // Still parked (or taken): the exit waits for the next run.
                return;
            }
            st = slot.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Vm {
    /// Number of vCPUs.
    pub fn vcpu_count(&self) -> u32 {
        self.vcpus.len() as u32
    }

    /// Start one host thread per AP (vCPUs 1..N) running `KVM_RUN`. No-op
    /// with one vCPU or while they run.
    pub fn start_aps(self: &Arc<Self>) -> Result<()> {
        let mut threads = lock(&self.aps.threads);
        self.aps.detached.store(false, Ordering::Release);
        if self.vcpus.len() < 2 || !threads.is_empty() {
            return Ok(());
        }
        self.aps.quit.store(false, Ordering::Release);
        for i in 1..self.vcpus.len() as u32 {
            let vm = self.clone();
            let t = std::thread::Builder::new()
                .name(format!("denovmm-vcpu{i}"))
                .spawn(move || ap_thread(vm, i))
                .map_err(|e| Error::os("spawn vCPU thread", e))?;
            threads.push(t);
        }
        Ok(())
    }

    /// Stop every AP thread and join it; exits still parked stay parked
    /// for the next run. Idempotent. Not from an AP thread.
    pub fn stop_aps(&self) {
        let mut threads = lock(&self.aps.threads);
        self.aps.detached.store(false, Ordering::Release);
        if threads.is_empty() {
            return;
        }
        self.aps.quit.store(true, Ordering::Release);
        for (i, s) in self.aps.slots.iter().enumerate().skip(1) {
            let _g = lock(&s.state);
            s.go.store(true, Ordering::Release);
            s.cv.notify_all();
            self.vcpus[i].kick.kick(STOP);
        }
        for t in threads.drain(..) {
            let _ = t.join();
        }
        // A taken exit is always released by the caller before the run
        // ends; should one not be, it is handed over again.
        for s in &self.aps.slots {
            let mut st = lock(&s.state);
            if *st == Slot::Taken {
                *st = Slot::Parked;
            }
        }
        // A STOP an AP did not consume would end its next run at once;
        // drop it (the AP threads are gone, nothing else reads it).
        for v in self.vcpus.iter().skip(1) {
            v.kick.take(STOP);
            v.kick.clear_immediate_exit();
        }
    }

    /// Drop every parked AP exit (the vCPUs were reset or their state
    /// replaced). Only while no AP thread runs.
    pub(crate) fn drop_parked_aps(&self) {
        for s in &self.aps.slots {
            *lock(&s.state) = Slot::Running;
        }
    }

    /// End the caller's run leaving the AP threads running: the next
    /// [`Vm::start_aps`] adopts them; [`Vm::stop_aps`], or any call that
    /// needs an AP's vCPU, stops them. No-op without AP threads.
    pub fn detach_aps(&self) {
        let threads = lock(&self.aps.threads);
        if !threads.is_empty() {
            self.aps.detached.store(true, Ordering::Release);
        }
    }

    pub(crate) fn aps_detached(&self) -> bool {
        self.aps.detached.load(Ordering::Acquire)
    }

    /// Stop AP threads left running between runs (see
    /// [`Vm::detach_aps`]) before an operation that needs the whole VM
    /// still: state save/load, reset, guest memory save/copy/load.
    pub(crate) fn quiesce_detached_aps(&self) {
        if self.aps_detached() {
            self.stop_aps();
        }
    }

    /// Number of AP threads running.
    pub fn ap_threads(&self) -> usize {
        lock(&self.aps.threads).len()
    }

    /// Write the indices of parked APs (at most `out.len()`) to `out` and
    /// mark them taken; returns how many. Each must be released with
    /// [`Vm::release_ap`] after its exit record was handled.
    pub fn take_parked_aps(&self, out: &mut [u32]) -> usize {
        let mut n = 0;
        for (i, s) in self.aps.slots.iter().enumerate().skip(1) {
            if n == out.len() {
                break;
            }
            let mut st = lock(&s.state);
            if *st == Slot::Parked {
                *st = Slot::Taken;
                out[n] = i as u32;
                n += 1;
            }
        }
        n
    }

    /// Let a taken AP run again.
    pub fn release_ap(&self, index: u32) -> Result<()> {
        let s = self
            .aps
            .slots
            .get(index as usize)
            .filter(|_| index > 0)
            .ok_or_else(|| Error::invalid(format!("no AP {index}")))?;
        let mut st = lock(&s.state);
        if *st != Slot::Taken {
            return Err(Error::invalid(format!("vCPU {index} has no taken exit")));
        }
        *st = Slot::Running;
        s.go.store(true, Ordering::Release);
        s.cv.notify_all();
        Ok(())
    }
}
