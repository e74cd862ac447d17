//! Host-side event sources of a VM on its event thread ([`crate::events`]):
//! tick timers (to a GSI or a direct MSI), level sources, and the
//! run-timeout / wake-up alarms; plus the vCPU-side poll for level
//! assertions a nested host lost (split irqchip).

use crate::error::{Error, Result};
use crate::events::ThreadStats;
use crate::lapic;
use crate::level_source::LevelSource;
use crate::routing;
use crate::timer::{Pacing, TickPolicy};
use crate::vm::IrqchipMode;
use crate::vm::Vm;
use kvm_ioctls::VcpuFd;
use std::sync::atomic::Ordering;

/// Where a timer delivers. Values are part of the C ABI.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerTarget {
    /// An irqchip GSI (the in-kernel IOAPIC, or our IOAPIC's MSI route).
    Gsi = 0,
    /// A direct fixed MSI through a route of its own.
    Msi = 1,
}

/// Counters of a timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimerCounters {
    /// Ticks delivered.
    pub ticks: u64,
    /// Expirations coalesced because the event thread woke late.
    pub missed: u64,
    /// Period (ns), 0 when disarmed.
    pub period_ns: u64,
    /// Expirations owed to the guest (both policies).
    pub owed: u64,
    /// Catch-up: owed ticks dropped at the backlog cap.
    pub dropped_over_cap: u64,
    /// Catch-up: backlog discarded by re-arm or stop.
    pub cleared: u64,
    /// Catch-up: owed ticks not yet delivered.
    pub backlog: u64,
    /// Catch-up: acknowledgements (EOIs) seen.
    pub acks: u64,
    /// Policy in effect for the current (or last) arm.
    pub policy: u64,
    /// Catch-up ticks re-signalled by the vCPU (split irqchip host quirk).
    pub reinjected: u64,
}

/// MSI data: trigger mode bit (1 = level; SDM 11.11.2).
const MSI_DATA_LEVEL: u32 = 1 << 15;

impl Vm {
    /// Create a tick timer delivering to GSI `gsi` ([`TimerTarget::Gsi`]) or
    /// as a fixed MSI to `vector` at APIC `destination` ([`TimerTarget::Msi`],
    /// through a GSI of its own).
    pub fn timer_create(&self, target: TimerTarget, gsi: u32, vector: u32, destination: u32) -> Result<u32> {
        let (gsi, owned) = match target {
            TimerTarget::Gsi => (gsi, None),
            TimerTarget::Msi => {
                if !(16..=255).contains(&vector) || destination > 255 {
                    return Err(Error::invalid(format!("bad MSI target vector {vector} destination {destination}")));
                }
                let g = self.route_allocate()?;
                let (a, d) = routing::msi_message(vector as u8, destination as u8, false, false);
                if let Err(e) = self.route_set_msi(g, a, d) {
                    let _ = self.route_release(g);
                    return Err(e);
                }
                (g, Some(g))
            }
        };
        let release = |irqfd: Option<u32>| {
            if let Some(id) = irqfd {
                let _ = self.irqfd_destroy(id);
            }
            if let Some(g) = owned {
                let _ = self.route_release(g);
            }
        };
        let irqfd = match self.irqfd_create(gsi, false) {
            Ok(id) => id,
            Err(e) => {
                release(None);
                return Err(e);
            }
        };
        let (efd, _) = self.irqfd_fds(irqfd)?;
        self.events.timer_add(efd, gsi, irqfd, owned).inspect_err(|_| release(Some(irqfd)))
    }

    /// Arm a timer (period in ns). A catch-up timer learns of the guest's
    /// acknowledgements from its resampling irqfd: KVM's resampler with the
    /// in-kernel irqchip (an IOAPIC or PIC ack of the pin, whatever its
    /// trigger mode); in split mode our IOAPIC's EOI path, which sees EOIs
    /// only of level-triggered entries (KVM reports `KVM_EXIT_IOAPIC_EOI`
    /// only for level MSI routes), so an edge-programmed pin coalesces.
    pub fn timer_arm(&self, id: u32, period_ns: u64) -> Result<()> {
        if period_ns < 200_000 {
            self.disable_halt_polling();
        }
        let (gsi, _, owned) = self.events.timer_info(id)?;
        let acks = owned.is_none()
            && match self.config.irqchip {
                IrqchipMode::Kernel => true,
                IrqchipMode::Split => self.msi_route(gsi).is_some_and(|(_, data)| data & MSI_DATA_LEVEL != 0),
            };
        self.events.timer_arm(id, period_ns, acks)
    }

    /// Set a timer's tick policy (while disarmed; from its next arm) and
    /// the catch-up backlog cap in ns worth of ticks. `Catchup` on a GSI
    /// target replaces the timer's irqfd with a resampling one (the EOI
    /// notification). A direct-MSI target has no EOI notification in either
    /// irqchip mode (KVM's resampler needs an irqchip pin; split-mode EOI
    /// exits come only for level routes of the reserved IOAPIC pins), so it
    /// keeps coalescing: the policy is accepted and `policy` in its
    /// counters says `Coalesce`.
    pub fn timer_set_policy(&self, id: u32, policy: TickPolicy, cap_ns: u64) -> Result<()> {
        let (gsi, _, owned) = self.events.timer_info(id)?;
        let effective = if owned.is_some() { TickPolicy::Coalesce } else { policy };
        let has_resample = |irqfd: u32| self.irqfd_fds(irqfd).map(|(_, r)| r.is_some()).unwrap_or(false);
        let (_, irqfd_now, _) = self.events.timer_info(id)?;
        if effective == TickPolicy::Catchup && !has_resample(irqfd_now) {
            let irqfd = self.irqfd_create(gsi, true)?;
            let swap = self.irqfd_fds(irqfd).and_then(|(efd, r)| {
                let r = r.ok_or_else(|| Error::invalid("no resamplefd"))?;
                self.events.timer_set_policy(id, effective, Some((efd, r, irqfd)), cap_ns)
            });
            match swap {
                Ok(Some(old)) => self.irqfd_destroy(old),
                Ok(None) => Ok(()),
                Err(e) => {
                    let _ = self.irqfd_destroy(irqfd);
                    Err(e)
                }
            }
        } else {
            self.events.timer_set_policy(id, effective, None, cap_ns).map(|_| ())
        }
    }

    /// Disarm a timer.
    pub fn timer_disarm(&self, id: u32) -> Result<()> {
        self.events.timer_disarm(id)
    }

    /// Set a timer's pacing (see [`Pacing`]).
    pub fn timer_set_pacing(&self, id: u32, pacing: Pacing) -> Result<()> {
        self.events.timer_set_pacing(id, pacing)
    }

    /// Destroy a timer, its irqfd and its route.
    pub fn timer_destroy(&self, id: u32) -> Result<()> {
        let t = self.events.timer_remove(id)?;
        self.irqfd_destroy(t.irqfd_id)?;
        if let Some(g) = t.owned_gsi {
            self.route_release(g)?;
        }
        Ok(())
    }

    /// Timer counters.
    pub fn timer_stats(&self, id: u32) -> Result<TimerCounters> {
        let s = self.events.timer_stats(id)?;
        Ok(TimerCounters {
            ticks: s.ticks.load(Ordering::SeqCst),
            missed: s.missed.load(Ordering::SeqCst),
            period_ns: s.period_ns.load(Ordering::SeqCst),
            owed: s.owed.load(Ordering::SeqCst),
            dropped_over_cap: s.dropped_over_cap.load(Ordering::SeqCst),
            cleared: s.cleared.load(Ordering::SeqCst),
            backlog: s.backlog.load(Ordering::SeqCst),
            acks: s.acks.load(Ordering::SeqCst),
            policy: s.policy.load(Ordering::SeqCst),
            reinjected: s.reinjected.load(Ordering::SeqCst),
        })
    }

    /// Number of armed timers.
    pub fn timers_armed(&self) -> usize {
        self.events.timers_armed()
    }

    /// Counters of the event thread.
    pub fn event_thread(&self) -> ThreadStats {
        self.events.thread_stats()
    }

    /// Arm (ns > 0) or cancel (0) the run timeout (`kick::TIMEOUT`) or a
    /// wake-up (`kick::WAKE`).
    pub fn alarm(&self, kind: u32, ns: u64) -> Result<()> {
        self.events.alarm(kind, ns)
    }

    /// Start a host-side level interrupt source on `gsi` (irqfd +
    /// resamplefd, see [`crate::level_source`]).
    pub fn level_create(&self, gsi: u32) -> Result<u32> {
        let irqfd_id = self.irqfd_create(gsi, true)?;
        let (irqfd, resample) = self.irqfd_fds(irqfd_id)?;
        let resample = resample.ok_or_else(|| Error::invalid("no resamplefd"))?;
        let src = LevelSource { gsi, irqfd_id, irqfd, resample, stats: Default::default() };
        self.events.level_add(src).inspect_err(|_| {
            let _ = self.irqfd_destroy(irqfd_id);
        })
    }

    /// Add work items to a level source.
    pub fn level_add(&self, id: u32, n: u64) -> Result<()> {
        self.events.level_work(id, n)
    }

    /// Level source counters: asserts, eois, pending, rtt total/min/max ns,
    /// re-signalled assertions.
    pub fn level_stats(&self, id: u32) -> Result<[u64; 7]> {
        self.events.with_level(id, |l| {
            let s = &l.stats;
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
        })
    }

    /// Stop a level source and unregister its irqfd.
    pub fn level_destroy(&self, id: u32) -> Result<()> {
        let l = self.events.level_remove(id)?;
        self.irqfd_destroy(l.irqfd_id)
    }

    /// On vCPU `index`'s thread: for each level source still waiting for an
    /// EOI whose message this vCPU answers for ([`level_poller`]), look its
    /// vector (from the GSI's MSI route) up in the LAPIC. When it
    /// is neither requested (IRR) nor in service (ISR), the asserted
    /// message never reached the guest: on this project's nested KVM a
    /// level MSI written to an irqfd while the vCPU runs can be lost (TMR
    /// set, IRR clear). Re-signal it from here with KVM_SIGNAL_MSI, which is
    /// reliable; its EOI then resamples the source as usual. At worst a
    /// guest sees one spurious level interrupt, which level handlers must
    /// tolerate (they check the device).
    pub(crate) fn poll_levels(&self, index: u32, fd: &VcpuFd) {
        let mut lapic_state = None;
        for (gsi, reinjected) in self.events.outstanding_levels() {
            let Some((address, data)) = self.msi_route(gsi) else { continue };
            if level_poller(address, self.vcpus.len() as u32) != index {
                continue;
            }
            let vector = (data & 0xff) as usize;
            if lapic_state.is_none() {
                lapic_state = fd.get_lapic().ok();
            }
            let Some(st) = lapic_state.as_ref() else { return };
            if !lapic::vector_bit(st, lapic::IRR, vector)
                && !lapic::vector_bit(st, lapic::ISR, vector)
                && self.signal_msi(address, data).is_ok()
            {
                reinjected.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// The vCPU whose LAPIC tells whether a level message to `address`
/// arrived: the one a physical destination names (APIC ID = vCPU index);
/// vCPU 0 for every other form (logical, broadcast, no such CPU), whose
/// target the core does not resolve. Another vCPU's LAPIC cannot be read
/// while it runs, so each vCPU polls its own: looking in vCPU 0's for a
/// message an AP holds in service would re-signal it needlessly.
pub(crate) fn level_poller(address: u64, vcpus: u32) -> u32 {
    let dest = ((address >> 12) & 0xff) as u32;
    let logical = address & (1 << 2) != 0;
    if !logical && dest < vcpus {
        dest
    } else {
        0
    }
}

#[cfg(test)]
mod poller_tests {
    use super::level_poller;

    #[test]
    fn physical_destinations_poll_on_their_vcpu_the_rest_on_vcpu_0() {
        let msi = |dest: u64, logical: bool| 0xfee0_0000 | dest << 12 | if logical { 4 } else { 0 };
        assert_eq!(level_poller(msi(0, false), 4), 0);
        assert_eq!(level_poller(msi(3, false), 4), 3);
        assert_eq!(level_poller(msi(4, false), 4), 0, "no such CPU");
        assert_eq!(level_poller(msi(0xff, false), 4), 0, "broadcast");
        assert_eq!(level_poller(msi(2, true), 4), 0, "logical");
    }
}
