//! A host-thread level-triggered interrupt source on an irqfd with a
//! resample eventfd: the device model a passthrough or virtio INTx line
//! uses. The thread asserts the line (irqfd write) while it has pending
//! work, learns of the guest's EOI from the resample eventfd, retires one
//! work item per EOI and re-asserts while work remains — without any
//! round trip to TypeScript.
//!
//! With the in-kernel IOAPIC, KVM de-asserts the line and signals the
//! resample eventfd on EOI (KVM_IRQFD_FLAG_RESAMPLE). With the split
//! irqchip the EOI reaches our userspace IOAPIC, which signals the same
//! eventfd (as QEMU does).

use crate::error::{Error, Result};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Counters of a level source.
#[derive(Debug, Default)]
pub struct LevelStats {
    /// Monotonic ns of the outstanding assertion, 0 when none.
    pub asserted_at_ns: AtomicU64,
    /// Assertions re-signalled by the vCPU's poll (message lost).
    pub reinjected: AtomicU64,
    /// Assertions (irqfd writes).
    pub asserts: AtomicU64,
    /// EOIs seen on the resample eventfd.
    pub eois: AtomicU64,
    /// Work items not yet retired.
    pub pending: AtomicU64,
    /// Sum of assert → EOI round trips (ns).
    pub rtt_total_ns: AtomicU64,
    /// Shortest round trip (ns).
    pub rtt_min_ns: AtomicU64,
    /// Longest round trip (ns).
    pub rtt_max_ns: AtomicU64,
}

/// How long an assertion may stay without an EOI before the source asks
/// the vCPU to check that it reached the guest (split irqchip).
pub const POLL_AFTER_NS: u64 = 1_000_000;

/// Asks the vCPU thread to re-check outstanding level interrupts.
pub type PollRequest = Arc<dyn Fn() + Send + Sync>;

/// The source: owns its thread.
pub struct LevelSource {
    gsi: u32,
    stats: Arc<LevelStats>,
    kick: Arc<EventFd>,
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
}

impl LevelSource {
    /// Start the thread asserting `irqfd` on `gsi` and waiting on
    /// `resample`. With `poll`, an assertion without EOI for
    /// [`POLL_AFTER_NS`] asks the vCPU to check it (see [`crate::vm`]).
    pub fn start(gsi: u32, irqfd: Arc<EventFd>, resample: Arc<EventFd>, poll: Option<PollRequest>) -> Result<Self> {
        let stats = Arc::new(LevelStats { rtt_min_ns: AtomicU64::new(u64::MAX), ..Default::default() });
        let kick = Arc::new(EventFd::new(EFD_NONBLOCK).map_err(|e| Error::os("eventfd", e))?);
        let stop = EventFd::new(EFD_NONBLOCK).map_err(|e| Error::os("eventfd", e))?;
        let stop2 = stop.try_clone().map_err(|e| Error::os("eventfd clone", e))?;
        let (s, k, r) = (stats.clone(), kick.clone(), resample.clone());
        let thread = std::thread::Builder::new()
            .name("dv-level".into())
            .spawn(move || level_loop(&irqfd, &r, &k, &stop2, &s, poll.as_deref()))
            .map_err(|e| Error::os("spawn level source", e))?;
        Ok(LevelSource { gsi, stats, kick, stop, thread: Some(thread) })
    }

    /// The line.
    pub fn gsi(&self) -> u32 {
        self.gsi
    }

    /// True while an assertion waits for its EOI.
    pub fn outstanding(&self) -> bool {
        self.stats.asserted_at_ns.load(Ordering::SeqCst) != 0
    }

    /// Count an assertion the vCPU's poll re-signalled.
    pub fn note_reinjected(&self) {
        self.stats.reinjected.fetch_add(1, Ordering::SeqCst);
    }

    /// Add `n` work items (each needs one interrupt + EOI).
    pub fn add_pending(&self, n: u64) -> Result<()> {
        self.stats.pending.fetch_add(n, Ordering::SeqCst);
        self.kick.write(1).map_err(|e| Error::os("level kick", e))
    }

    /// Counters: asserts, eois, pending, rtt total/min/max ns,
    /// re-signalled assertions.
    pub fn stats(&self) -> [u64; 7] {
        let s = &self.stats;
        let min = s.rtt_min_ns.load(Ordering::SeqCst);
        [
            s.asserts.load(Ordering::SeqCst),
            s.eois.load(Ordering::SeqCst),
            s.pending.load(Ordering::SeqCst),
            s.rtt_total_ns.load(Ordering::SeqCst),
            if min == u64::MAX { 0 } else { min },
            s.rtt_max_ns.load(Ordering::SeqCst),
            s.reinjected.load(Ordering::SeqCst),
        ]
    }
}

impl Drop for LevelSource {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64).max(1)
}

fn level_loop(
    irqfd: &EventFd,
    resample: &EventFd,
    kick: &EventFd,
    stop: &EventFd,
    s: &LevelStats,
    poll: Option<&(dyn Fn() + Send + Sync)>,
) {
    let mut fds = [
        libc::pollfd { fd: resample.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: kick.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: stop.as_raw_fd(), events: libc::POLLIN, revents: 0 },
    ];
    let mut asserted_at: Option<Instant> = None;
    loop {
        if asserted_at.is_none() && s.pending.load(Ordering::SeqCst) > 0 {
            s.asserted_at_ns.store(now_ns(), Ordering::SeqCst);
            if irqfd.write(1).is_err() {
                break;
            }
            s.asserts.fetch_add(1, Ordering::SeqCst);
            asserted_at = Some(Instant::now());
        }
        // While an assertion waits for its EOI, wake up to ask for a poll.
        let timeout_ms = match (asserted_at, poll) {
            (Some(_), Some(_)) => ((POLL_AFTER_NS / 1_000_000).max(1)) as libc::c_int,
            _ => -1,
        };
        // SAFETY: fds is a valid array of three pollfd.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, timeout_ms) };
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if r == 0 {
            if let (Some(p), Some(_)) = (poll, asserted_at) {
                p();
            }
            continue;
        }
        if fds[2].revents != 0 {
            break;
        }
        if fds[1].revents != 0 {
            let _ = kick.read();
        }
        if fds[0].revents != 0 && resample.read().is_ok() {
            // One EOI retires the in-flight item.
            if let Some(t) = asserted_at.take() {
                s.asserted_at_ns.store(0, Ordering::SeqCst);
                let ns = t.elapsed().as_nanos() as u64;
                s.rtt_total_ns.fetch_add(ns, Ordering::SeqCst);
                s.rtt_min_ns.fetch_min(ns, Ordering::SeqCst);
                s.rtt_max_ns.fetch_max(ns, Ordering::SeqCst);
                s.eois.fetch_add(1, Ordering::SeqCst);
                let _ = s.pending.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| p.checked_sub(1));
            }
        }
    }
}
