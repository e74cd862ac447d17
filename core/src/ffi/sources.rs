//! Interrupt functions of the C ABI: lines, MSIs, routes, irqfds, level
//! sources and tick timers.

use super::{with_vm, write_out};
use crate::error::Error;
use crate::sources::TimerTarget;
use crate::timer::{Pacing, TickPolicy};

/// [`dv_irq_request`] flag: level-triggered (asserted) message.
pub const DV_IRQ_LEVEL: u32 = 1;
/// [`dv_irq_request`] flag: logical destination mode.
pub const DV_IRQ_LOGICAL: u32 = 2;
/// [`dv_irqfd_create`] flag: a resampling (level) irqfd.
pub const DV_IRQFD_RESAMPLE: u32 = 1;

/// Set irqchip line `gsi` (in-kernel irqchip only) to `level`. Returns 0.
#[no_mangle]
pub extern "C" fn dv_irq_line(vm: u32, gsi: u32, level: u32) -> i32 {
    with_vm(vm, |v| v.irq_line(gsi, level != 0).map(|_| 0))
}

/// KVM_SIGNAL_MSI of the message (`address_hi:address_lo`, `data`), the
/// halves as in `struct kvm_msi`; returns KVM's result (> 0 delivered, 0
/// blocked by the guest's LAPIC state).
#[no_mangle]
pub extern "C" fn dv_irq_signal_msi(vm: u32, address_lo: u32, address_hi: u32, data: u32) -> i32 {
    with_vm(vm, |v| v.signal_msi((address_hi as u64) << 32 | address_lo as u64, data))
}

/// Inject `vector` (16..255) at xAPIC `destination` with `DV_IRQ_*`
/// `flags`; returns KVM's KVM_SIGNAL_MSI result.
#[no_mangle]
pub extern "C" fn dv_irq_request(vm: u32, vector: u32, destination: u32, flags: u32) -> i32 {
    with_vm(vm, |v| {
        if flags & !(DV_IRQ_LEVEL | DV_IRQ_LOGICAL) != 0 {
            return Err(Error::invalid(format!("unknown interrupt flags {flags:#x}")));
        }
        v.request_virtual_interrupt(vector, destination, flags & DV_IRQ_LEVEL != 0, flags & DV_IRQ_LOGICAL != 0)
    })
}

/// Route `gsi` to the MSI (`address_hi:address_lo`, `data`), replacing
/// its routes, and commit the table. Returns 0.
#[no_mangle]
pub extern "C" fn dv_route_set_msi(vm: u32, gsi: u32, address_lo: u32, address_hi: u32, data: u32) -> i32 {
    with_vm(vm, |v| v.route_set_msi(gsi, (address_hi as u64) << 32 | address_lo as u64, data).map(|_| 0))
}

/// Remove every route of `gsi` (a no-op when it has none). Returns 0.
#[no_mangle]
pub extern "C" fn dv_route_clear(vm: u32, gsi: u32) -> i32 {
    with_vm(vm, |v| v.route_clear(gsi).map(|_| 0))
}

/// Allocate the lowest free GSI above the IOAPIC pins; returns it.
#[no_mangle]
pub extern "C" fn dv_route_allocate(vm: u32) -> i32 {
    with_vm(vm, |v| Ok(v.route_allocate()? as i32))
}

/// Release a GSI from [`dv_route_allocate`] and its routes. Returns 0.
#[no_mangle]
pub extern "C" fn dv_route_release(vm: u32, gsi: u32) -> i32 {
    with_vm(vm, |v| v.route_release(gsi).map(|_| 0))
}

/// Create an irqfd on `gsi` (`DV_IRQFD_*` flags); returns its id (ids of
/// destroyed irqfds are reused).
#[no_mangle]
pub extern "C" fn dv_irqfd_create(vm: u32, gsi: u32, flags: u32) -> i32 {
    with_vm(vm, |v| {
        if flags & !DV_IRQFD_RESAMPLE != 0 {
            return Err(Error::invalid(format!("unknown irqfd flags {flags:#x}")));
        }
        Ok(v.irqfd_create(gsi, flags & DV_IRQFD_RESAMPLE != 0)? as i32)
    })
}

/// Signal irqfd `id`. Returns 0.
#[no_mangle]
pub extern "C" fn dv_irqfd_trigger(vm: u32, id: u32) -> i32 {
    with_vm(vm, |v| v.irqfd_trigger(id).map(|_| 0))
}

/// Attach (`attached` != 0) irqfd `id` to KVM or detach it (its eventfd
/// keeps counting, see [`dv_irqfd_take_pending`]). Returns 0.
#[no_mangle]
pub extern "C" fn dv_irqfd_set_attached(vm: u32, id: u32, attached: u32) -> i32 {
    with_vm(vm, |v| v.irqfd_attach(id, attached != 0).map(|_| 0))
}

/// Consume a detached irqfd's eventfd: 1 when it was signalled, else 0.
#[no_mangle]
pub extern "C" fn dv_irqfd_take_pending(vm: u32, id: u32) -> i32 {
    with_vm(vm, |v| Ok(v.irqfd_take(id)? as i32))
}

/// Split irqchip: signal the resample eventfd of every resampling irqfd
/// on `gsi` (our IOAPIC retired its level interrupt); returns how many.
#[no_mangle]
pub extern "C" fn dv_irqfd_resample_gsi(vm: u32, gsi: u32) -> i32 {
    with_vm(vm, |v| Ok(v.resample_gsi(gsi)? as i32))
}

/// Unregister and close irqfd `id`. Returns 0.
#[no_mangle]
pub extern "C" fn dv_irqfd_destroy(vm: u32, id: u32) -> i32 {
    with_vm(vm, |v| v.irqfd_destroy(id).map(|_| 0))
}

/// Counters of a level source.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct LevelStats {
    /// Line assertions.
    pub asserts: u64,
    /// EOIs seen (one work item retired each).
    pub eois: u64,
    /// Work items left.
    pub pending: u64,
    /// Sum of assert → EOI round trips (ns).
    pub rtt_total_ns: u64,
    /// Shortest round trip (ns).
    pub rtt_min_ns: u64,
    /// Longest round trip (ns).
    pub rtt_max_ns: u64,
    /// Assertions the vCPU re-signalled (split irqchip, lost messages).
    pub reinjected: u64,
}

/// Start a level source on `gsi` (served by the VM's event thread);
/// returns its id.
#[no_mangle]
pub extern "C" fn dv_level_create(vm: u32, gsi: u32) -> i32 {
    with_vm(vm, |v| Ok(v.level_create(gsi)? as i32))
}

/// Add `items` work items to level source `id`. Returns 0.
#[no_mangle]
pub extern "C" fn dv_level_add(vm: u32, id: u32, items: u64) -> i32 {
    with_vm(vm, |v| v.level_add(id, items).map(|_| 0))
}

/// Write level source `id`'s [`LevelStats`] to `out`. Returns 0.
///
/// # Safety
/// `out` must be valid for one `LevelStats` write.
#[no_mangle]
pub unsafe extern "C" fn dv_level_stats(vm: u32, id: u32, out: *mut LevelStats) -> i32 {
    with_vm(vm, |v| {
        let [asserts, eois, pending, rtt_total_ns, rtt_min_ns, rtt_max_ns, reinjected] = v.level_stats(id)?;
        let s = LevelStats { asserts, eois, pending, rtt_total_ns, rtt_min_ns, rtt_max_ns, reinjected };
        // SAFETY: forwarded from the caller's contract.
        unsafe { write_out(out, s) }?;
        Ok(0)
    })
}

/// Stop level source `id` and close its irqfd. Returns 0.
#[no_mangle]
pub extern "C" fn dv_level_destroy(vm: u32, id: u32) -> i32 {
    with_vm(vm, |v| v.level_destroy(id).map(|_| 0))
}

/// Create a disarmed tick timer: `target` [`TimerTarget`]`::Gsi` delivers
/// to `gsi`; `Msi` delivers a fixed MSI to `vector` at APIC `destination`
/// through a GSI of its own. Returns its id.
#[no_mangle]
pub extern "C" fn dv_timer_create(vm: u32, target: u32, gsi: u32, vector: u32, destination: u32) -> i32 {
    with_vm(vm, |v| {
        let target = match target {
            t if t == TimerTarget::Gsi as u32 => TimerTarget::Gsi,
            t if t == TimerTarget::Msi as u32 => TimerTarget::Msi,
            _ => return Err(Error::invalid(format!("bad timer target {target}"))),
        };
        Ok(v.timer_create(target, gsi, vector, destination)? as i32)
    })
}

/// Arm (or re-arm) timer `id` with `period_ns`; the first tick is one
/// period from now. Returns 0.
#[no_mangle]
pub extern "C" fn dv_timer_arm(vm: u32, id: u32, period_ns: u64) -> i32 {
    with_vm(vm, |v| v.timer_arm(id, period_ns).map(|_| 0))
}

/// Disarm timer `id`. Returns 0.
#[no_mangle]
pub extern "C" fn dv_timer_disarm(vm: u32, id: u32) -> i32 {
    with_vm(vm, |v| v.timer_disarm(id).map(|_| 0))
}

/// Set timer `id`'s [`Pacing`] (from its next arm). Returns 0.
#[no_mangle]
pub extern "C" fn dv_timer_set_pacing(vm: u32, id: u32, pacing: u32) -> i32 {
    with_vm(vm, |v| {
        let pacing = match pacing {
            p if p == Pacing::Absolute as u32 => Pacing::Absolute,
            p if p == Pacing::RelativeSleep as u32 => Pacing::RelativeSleep,
            _ => return Err(Error::invalid(format!("bad pacing {pacing}"))),
        };
        v.timer_set_pacing(id, pacing).map(|_| 0)
    })
}

/// Counters of a timer.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TimerStats {
    /// Ticks delivered.
    pub ticks: u64,
    /// Expirations coalesced because the event thread woke late.
    pub missed: u64,
    /// Period (ns), 0 when disarmed.
    pub period_ns: u64,
}

/// Write timer `id`'s [`TimerStats`] to `out`. Returns 0.
///
/// # Safety
/// `out` must be valid for one `TimerStats` write.
#[no_mangle]
pub unsafe extern "C" fn dv_timer_stats(vm: u32, id: u32, out: *mut TimerStats) -> i32 {
    with_vm(vm, |v| {
        let c = v.timer_stats(id)?;
        // SAFETY: forwarded from the caller's contract.
        unsafe { write_out(out, TimerStats { ticks: c.ticks, missed: c.missed, period_ns: c.period_ns }) }?;
        Ok(0)
    })
}

/// Destroy timer `id`, its irqfd and its route. Returns 0.
#[no_mangle]
pub extern "C" fn dv_timer_destroy(vm: u32, id: u32) -> i32 {
    with_vm(vm, |v| v.timer_destroy(id).map(|_| 0))
}

/// Set timer `id`'s [`TickPolicy`] (`DV_TICK_POLICY_COALESCE` / `DV_TICK_POLICY_CATCHUP`)
/// and the catch-up backlog cap in ns worth of ticks (`cap_ns` > 0), while
/// it is disarmed; both take effect at its next arm. A direct-MSI timer
/// keeps coalescing (no EOI notification); [`TimerCatchupStats`] reports
/// the policy in effect. Returns 0.
#[no_mangle]
pub extern "C" fn dv_timer_set_policy(vm: u32, id: u32, policy: u32, cap_ns: u64) -> i32 {
    with_vm(vm, |v| {
        let policy = TickPolicy::from_u32(policy).ok_or_else(|| Error::invalid(format!("bad tick policy {policy}")))?;
        v.timer_set_policy(id, policy, cap_ns).map(|_| 0)
    })
}

/// Counters of a timer, with the catch-up policy's. Conservation:
/// `owed == ticks + backlog + dropped_over_cap + cleared` for a catch-up
/// timer.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TimerCatchupStats {
    /// Ticks delivered (irqfd writes).
    pub ticks: u64,
    /// Coalesce policy: expirations coalesced because the thread woke late.
    pub missed: u64,
    /// Period (ns), 0 when disarmed.
    pub period_ns: u64,
    /// Expirations owed to the guest.
    pub owed: u64,
    /// Catch-up: owed ticks dropped at the backlog cap.
    pub dropped_over_cap: u64,
    /// Catch-up: backlog discarded by a re-arm or stop.
    pub cleared: u64,
    /// Catch-up: owed ticks not yet delivered.
    pub backlog: u64,
    /// Catch-up: acknowledgements (EOIs) seen.
    pub acks: u64,
    /// Policy in effect for the current (or last) arm.
    pub policy: u64,
    /// Catch-up ticks the vCPU re-signalled because the guest's LAPIC
    /// showed them neither requested nor in service (split irqchip with
    /// `DV_VM_QUIRK_LEVEL_RESIGNAL`; 0 on a healthy host).
    pub reinjected: u64,
}

/// Write timer `id`'s [`TimerCatchupStats`] to `out`. Returns 0.
///
/// # Safety
/// `out` must be valid for one `TimerCatchupStats` write.
#[no_mangle]
pub unsafe extern "C" fn dv_timer_catchup_stats(vm: u32, id: u32, out: *mut TimerCatchupStats) -> i32 {
    with_vm(vm, |v| {
        let c = v.timer_stats(id)?;
        let s = TimerCatchupStats {
            ticks: c.ticks,
            missed: c.missed,
            period_ns: c.period_ns,
            owed: c.owed,
            dropped_over_cap: c.dropped_over_cap,
            cleared: c.cleared,
            backlog: c.backlog,
            acks: c.acks,
            policy: c.policy,
            reinjected: c.reinjected,
        };
        // SAFETY: forwarded from the caller's contract.
        unsafe { write_out(out, s) }?;
        Ok(0)
    })
}
