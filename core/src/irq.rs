//! Interrupt injection: KVM_IRQ_LINE, KVM_SIGNAL_MSI, the GSI routing table
//! (KVM replaces it whole, so the authoritative copy is ours) and irqfds.

use crate::error::{Error, Result};
use crate::ids::IdAllocator;
use crate::routing::{self, RoutingTable};
use crate::vm::{kvm_err, lock, IrqchipMode, Vm};
use kvm_bindings::kvm_msi;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Most irqfds per VM.
pub const MAX_IRQFDS: u32 = 4096;

pub(crate) struct Irqfd {
    pub(crate) gsi: u32,
    pub(crate) efd: Arc<EventFd>,
    pub(crate) resample: Option<Arc<EventFd>>,
    attached: bool,
    /// Written through [`Vm::irqfd_trigger`] since the last lowering (a
    /// resampling irqfd outside the event thread's bookkeeping).
    triggered: AtomicBool,
}

pub(crate) struct Irqfds {
    pub(crate) map: HashMap<u32, Irqfd>,
    ids: IdAllocator,
}

/// Routing table and irqfds of a VM.
pub struct IrqState {
    pub(crate) routing: Mutex<RoutingTable>,
    pub(crate) irqfds: Mutex<Irqfds>,
}

impl IrqState {
    pub(crate) fn new(routing: RoutingTable) -> Self {
        IrqState {
            routing: Mutex::new(routing),
            irqfds: Mutex::new(Irqfds { map: HashMap::new(), ids: IdAllocator::new(1, MAX_IRQFDS) }),
        }
    }
}

/// MSI message of a KVM_SIGNAL_MSI.
fn msi(address: u64, data: u32) -> kvm_msi {
    kvm_msi { address_lo: address as u32, address_hi: (address >> 32) as u32, data, ..Default::default() }
}

impl Vm {
    /// KVM_IRQ_LINE (kernel irqchip).
    pub fn irq_line(&self, gsi: u32, level: bool) -> Result<()> {
        if self.config.irqchip != IrqchipMode::Kernel {
            return Err(Error::invalid("irq_line needs the in-kernel irqchip; split mode lines go to the userspace IOAPIC"));
        }
        if gsi >= routing::IOAPIC_PINS {
            return Err(Error::invalid(format!("GSI {gsi} is not an irqchip line")));
        }
        self.fd.set_irq_line(gsi, level).map_err(kvm_err("KVM_IRQ_LINE"))
    }

    /// KVM_SIGNAL_MSI. Returns KVM's result (>0 delivered, 0 blocked).
    pub fn signal_msi(&self, address: u64, data: u32) -> Result<i32> {
        if !routing::is_msi_address(address) {
            return Err(Error::invalid(format!("MSI address {address:#x} is outside 0xFEE00000..0xFEEFFFFF")));
        }
        self.fd.signal_msi(msi(address, data)).map_err(kvm_err("KVM_SIGNAL_MSI"))
    }

    /// Inject `vector` at LAPIC `destination` (callable from any thread).
    pub fn request_virtual_interrupt(&self, vector: u32, destination: u32, level: bool, logical: bool) -> Result<i32> {
        if !(16..=255).contains(&vector) {
            return Err(Error::invalid(format!("vector {vector} is not in 16..255")));
        }
        if destination > 255 {
            return Err(Error::invalid(format!("destination {destination} is not an xAPIC id")));
        }
        let (a, d) = routing::msi_message(vector as u8, destination as u8, level, logical);
        self.signal_msi(a, d)
    }

    /// Apply `change` to a copy of the routing table and commit it to KVM;
    /// the copy replaces ours only if KVM accepted it.
    fn update_routes<R>(&self, change: impl FnOnce(&mut RoutingTable) -> Result<(R, bool)>) -> Result<R> {
        let mut t = lock(&self.irq.routing);
        let mut next = t.clone();
        let (r, commit) = change(&mut next)?;
        if commit {
            self.fd.set_gsi_routing(&next.to_kvm()?).map_err(kvm_err("KVM_SET_GSI_ROUTING"))?;
        }
        *t = next;
        Ok(r)
    }

    /// Set an MSI route for `gsi` and commit the table.
    pub fn route_set_msi(&self, gsi: u32, address: u64, data: u32) -> Result<()> {
        self.update_routes(|t| t.set_msi(gsi, address, data).map(|_| ((), true)))
    }

    /// Remove the routes of `gsi` and commit (a no-op when it has none).
    pub fn route_clear(&self, gsi: u32) -> Result<()> {
        self.update_routes(|t| Ok(((), t.clear(gsi))))
    }

    /// Reserve the lowest free GSI for an MSI route.
    pub fn route_allocate(&self) -> Result<u32> {
        lock(&self.irq.routing).allocate_gsi()
    }

    /// Release an allocated GSI (and its routes) for reuse.
    pub fn route_release(&self, gsi: u32) -> Result<()> {
        self.update_routes(|t| t.release_gsi(gsi).map(|c| ((), c)))
    }

    /// The MSI route of `gsi`, if it has one.
    pub(crate) fn msi_route(&self, gsi: u32) -> Option<(u64, u32)> {
        lock(&self.irq.routing).get(gsi).iter().find_map(|r| match *r {
            routing::Route::Msi { address, data } => Some((address, data)),
            routing::Route::Irqchip { .. } => None,
        })
    }

    /// Register an irqfd on `gsi`; with `resample`, a level irqfd whose
    /// resample eventfd is signalled on EOI. With the in-kernel irqchip KVM
    /// de-asserts the line and signals it (KVM_IRQFD_FLAG_RESAMPLE); with
    /// the split irqchip the EOI reaches the userspace IOAPIC instead, so
    /// the irqfd is registered plain and [`Vm::resample_gsi`] signals the
    /// eventfd from the userspace EOI path.
    pub fn irqfd_create(&self, gsi: u32, resample: bool) -> Result<u32> {
        if gsi > routing::MAX_GSI {
            return Err(Error::invalid(format!("GSI {gsi} out of range")));
        }
        let mut g = lock(&self.irq.irqfds);
        let id = g.ids.allocate().ok_or_else(|| Error::invalid(format!("more than {MAX_IRQFDS} irqfds")))?;
        let made = self.make_irqfd(gsi, resample);
        match made {
            Ok(f) => {
                g.map.insert(id, f);
                Ok(id)
            }
            Err(e) => {
                g.ids.release(id);
                Err(e)
            }
        }
    }

    fn make_irqfd(&self, gsi: u32, resample: bool) -> Result<Irqfd> {
        let efd = EventFd::new(EFD_NONBLOCK).map_err(|e| Error::os("eventfd", e))?;
        let rfd = if resample {
            let r = EventFd::new(EFD_NONBLOCK).map_err(|e| Error::os("eventfd", e))?;
            match self.config.irqchip {
                IrqchipMode::Kernel => self
                    .fd
                    .register_irqfd_with_resample(&efd, &r, gsi)
                    .map_err(kvm_err("KVM_IRQFD(resample)"))?,
                IrqchipMode::Split => self.fd.register_irqfd(&efd, gsi).map_err(kvm_err("KVM_IRQFD"))?,
            }
            Some(Arc::new(r))
        } else {
            self.fd.register_irqfd(&efd, gsi).map_err(kvm_err("KVM_IRQFD"))?;
            None
        };
        Ok(Irqfd { gsi, efd: Arc::new(efd), resample: rfd, attached: true, triggered: AtomicBool::new(false) })
    }

    /// The eventfds of an irqfd (trigger, resample).
    pub(crate) fn irqfd_fds(&self, id: u32) -> Result<(Arc<EventFd>, Option<Arc<EventFd>>)> {
        let g = lock(&self.irq.irqfds);
        let f = g.map.get(&id).ok_or_else(|| Error::invalid(format!("no irqfd {id}")))?;
        Ok((f.efd.clone(), f.resample.clone()))
    }

    /// Split irqchip: the userspace IOAPIC retired a level interrupt on
    /// `gsi`; signal the resample eventfd of every resampling irqfd on it.
    /// Returns how many were signalled.
    pub fn resample_gsi(&self, gsi: u32) -> Result<u32> {
        let mut n = 0;
        for f in lock(&self.irq.irqfds).map.values() {
            if let (true, Some(r)) = (f.gsi == gsi, &f.resample) {
                r.write(1).map_err(|e| Error::os("resamplefd write", e))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Lower the lines of the resampling irqfds in `high` (and of those
    /// written through [`Vm::irqfd_trigger`]) and drop acknowledgements
    /// not yet read, after the irqchip state was replaced; the caller holds
    /// the event thread off ([`crate::events::Events::quiesced`], which
    /// says which lines may be high). KVM keeps a resampler's assertion
    /// outside the irqchip state that `KVM_SET_IRQCHIP` writes, and injects
    /// an irqfd asynchronously, so a tick sent just before or during a
    /// restore can leave the line asserted with its edge lost: every later
    /// assertion then coalesces. Only re-registering drops it: the deassign
    /// flushes the irqfd's pending injection and de-asserts the resampler's
    /// line; the assign puts the same eventfds back. It costs a KVM SRCU
    /// grace period (0.05-10 ms here), so lines known low are left alone.
    /// Split mode has no such line (MSI routes, injected synchronously).
    /// Returns the irqfds re-registered.
    pub(crate) fn lower_resampled_lines(&self, high: &[u32]) -> Result<u32> {
        let g = lock(&self.irq.irqfds);
        let mut n = 0;
        for (id, f) in &g.map {
            let Some(r) = &f.resample else { continue };
            let triggered = f.triggered.swap(false, Ordering::SeqCst);
            if self.config.irqchip == IrqchipMode::Kernel && f.attached && (triggered || high.contains(id)) {
                self.fd.unregister_irqfd(&f.efd, f.gsi).map_err(kvm_err("KVM_IRQFD(deassign)"))?;
                // A trigger left in the counter would inject at the assign.
                let _ = f.efd.read();
                self.fd.register_irqfd_with_resample(&f.efd, r, f.gsi).map_err(kvm_err("KVM_IRQFD(resample)"))?;
                n += 1;
            }
            let _ = r.read();
        }
        Ok(n)
    }

    /// Signal an irqfd (any thread).
    pub fn irqfd_trigger(&self, id: u32) -> Result<()> {
        let g = lock(&self.irq.irqfds);
        let f = g.map.get(&id).ok_or_else(|| Error::invalid(format!("no irqfd {id}")))?;
        f.triggered.store(true, Ordering::SeqCst);
        f.efd.write(1).map_err(|e| Error::os("irqfd write", e))
    }

    /// Detach (`attached` = false) an irqfd from KVM, or re-attach it.
    /// While detached its eventfd still counts writes, so a device thread
    /// never notices; used for masked MSI-X vectors (the route stays put).
    pub fn irqfd_attach(&self, id: u32, attached: bool) -> Result<()> {
        let mut g = lock(&self.irq.irqfds);
        let f = g.map.get_mut(&id).ok_or_else(|| Error::invalid(format!("no irqfd {id}")))?;
        if attached == f.attached {
            return Ok(());
        }
        if f.resample.is_some() {
            return Err(Error::invalid(format!("irqfd {id} resamples; it cannot be detached")));
        }
        if attached {
            self.fd.register_irqfd(&f.efd, f.gsi).map_err(kvm_err("KVM_IRQFD"))?;
        } else {
            self.fd.unregister_irqfd(&f.efd, f.gsi).map_err(kvm_err("KVM_IRQFD(deassign)"))?;
        }
        f.attached = attached;
        Ok(())
    }

    /// Consume the trigger eventfd of an (detached) irqfd: true when it was
    /// written since the last consume (a message pending while masked).
    pub fn irqfd_take(&self, id: u32) -> Result<bool> {
        let g = lock(&self.irq.irqfds);
        let f = g.map.get(&id).ok_or_else(|| Error::invalid(format!("no irqfd {id}")))?;
        Ok(f.efd.read().is_ok())
    }

    /// Unregister and close an irqfd; its id is reused.
    pub fn irqfd_destroy(&self, id: u32) -> Result<()> {
        let mut g = lock(&self.irq.irqfds);
        let f = g.map.remove(&id).ok_or_else(|| Error::invalid(format!("no irqfd {id}")))?;
        g.ids.release(id);
        if !f.attached {
            return Ok(());
        }
        // KVM_IRQFD deassign matches by eventfd and GSI, resampling or not.
        self.fd.unregister_irqfd(&f.efd, f.gsi).map_err(kvm_err("KVM_IRQFD(deassign)"))
    }

    /// Number of live irqfds.
    pub fn irqfd_count(&self) -> usize {
        lock(&self.irq.irqfds).map.len()
    }
}
