//! A host-side level-triggered interrupt source on irqfd + resamplefd: the
//! device model of an INTx line without TypeScript in the loop. Its work
//! items each need one interrupt and one EOI; the VM's event thread
//! ([`crate::events`]) asserts the line by writing the irqfd, learns of the
//! EOI from the resample eventfd (KVM's in kernel mode; our IOAPIC's EOI
//! path in split mode) and re-asserts while work remains.

use crate::timer::monotonic_ns;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use vmm_sys_util::eventfd::EventFd;

/// Counters of a level source, readable from any thread.
#[derive(Debug)]
pub struct LevelStats {
    /// Monotonic ns of the outstanding assertion, 0 when none.
    pub asserted_at_ns: AtomicU64,
    /// Assertions re-signalled by the vCPU's poll (message lost).
    pub reinjected: Arc<AtomicU64>,
    /// Assertions (irqfd writes).
    pub asserts: AtomicU64,
    /// EOIs seen on the resample eventfd.
    pub eois: AtomicU64,
    /// Work items not yet retired.
    pub pending: AtomicU64,
    /// Sum of assert → EOI round trips (ns).
    pub rtt_total_ns: AtomicU64,
    /// Shortest round trip (ns), u64::MAX before the first.
    pub rtt_min_ns: AtomicU64,
    /// Longest round trip (ns).
    pub rtt_max_ns: AtomicU64,
}

impl Default for LevelStats {
    fn default() -> Self {
        LevelStats {
            asserted_at_ns: AtomicU64::new(0),
            reinjected: Arc::new(AtomicU64::new(0)),
            asserts: AtomicU64::new(0),
            eois: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            rtt_total_ns: AtomicU64::new(0),
            rtt_min_ns: AtomicU64::new(u64::MAX),
            rtt_max_ns: AtomicU64::new(0),
        }
    }
}

/// How long an assertion may stay without an EOI before the source asks
/// the vCPU to check that it reached the guest (split irqchip quirk).
pub const POLL_AFTER_NS: u64 = 1_000_000;

/// One source: its line, eventfds and counters.
pub struct LevelSource {
    /// The line.
    pub gsi: u32,
    /// The irqfd id in the VM (destroyed with the source).
    pub irqfd_id: u32,
    /// The irqfd's trigger eventfd.
    pub irqfd: Arc<EventFd>,
    /// The resample eventfd (signalled on EOI).
    pub resample: Arc<EventFd>,
    /// Counters.
    pub stats: Arc<LevelStats>,
}

impl LevelStats {
    /// The re-signal counter, shared with the vCPU's poll.
    pub fn reinjected_counter(&self) -> Arc<AtomicU64> {
        self.reinjected.clone()
    }
}

impl LevelSource {
    /// True while an assertion waits for its EOI.
    pub fn outstanding(&self) -> bool {
        self.stats.asserted_at_ns.load(Ordering::SeqCst) != 0
    }

    /// Assert the line if work is pending and no assertion is outstanding.
    pub fn maybe_assert(&self) {
        let s = &self.stats;
        if !self.outstanding() && s.pending.load(Ordering::SeqCst) > 0 && self.irqfd.write(1).is_ok() {
            s.asserted_at_ns.store(monotonic_ns().max(1), Ordering::SeqCst);
            s.asserts.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The resample eventfd fired: one EOI retires the in-flight item.
    pub fn on_resample(&self) {
        if self.resample.read().is_err() {
            return;
        }
        let s = &self.stats;
        let at = s.asserted_at_ns.swap(0, Ordering::SeqCst);
        if at == 0 {
            return;
        }
        let ns = monotonic_ns().saturating_sub(at);
        s.rtt_total_ns.fetch_add(ns, Ordering::SeqCst);
        s.rtt_min_ns.fetch_min(ns, Ordering::SeqCst);
        s.rtt_max_ns.fetch_max(ns, Ordering::SeqCst);
        s.eois.fetch_add(1, Ordering::SeqCst);
        let _ = s.pending.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| p.checked_sub(1));
    }

    /// Monotonic ns after which an outstanding assertion should be polled.
    pub fn poll_due_ns(&self) -> Option<u64> {
        let at = self.stats.asserted_at_ns.load(Ordering::SeqCst);
        (at != 0).then(|| at + POLL_AFTER_NS)
    }
}
