//! The GSI routing table (KVM_SET_GSI_ROUTING replaces the whole table, so
//! the core keeps the authoritative copy here) and MSI message helpers.

use crate::error::{Error, Result};
use kvm_bindings::{
    kvm_irq_routing_entry, KvmIrqRouting, KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
    KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQ_ROUTING_MSI,
};
use crate::ids::IdAllocator;
use std::collections::BTreeMap;

/// Number of IOAPIC pins (GSIs 0..24 belong to the IOAPIC).
pub const IOAPIC_PINS: u32 = 24;
/// Highest GSI the table accepts.
pub const MAX_GSI: u32 = 1023;

/// One route of a GSI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// To an in-kernel irqchip pin.
    Irqchip {
        /// KVM_IRQCHIP_*.
        chip: u32,
        /// Pin on that chip.
        pin: u32,
    },
    /// A message-signalled interrupt.
    Msi {
        /// Address (0xFEEx_xxxx).
        address: u64,
        /// Data.
        data: u32,
    },
}

/// The table: GSI → routes.
#[derive(Debug, Default, Clone)]
pub struct RoutingTable {
    routes: BTreeMap<u32, Vec<Route>>,
    /// GSIs above the IOAPIC pins handed out for MSI routes (reused).
    msi_gsis: IdAllocator,
}

impl Default for IdAllocator {
    fn default() -> Self {
        IdAllocator::new(IOAPIC_PINS, MAX_GSI)
    }
}

/// True when `address` targets the LAPIC MSI window (SDM 11.11.1).
pub fn is_msi_address(address: u64) -> bool {
    address >> 20 == 0xfee
}

/// Build an MSI message for a fixed or lowest-priority interrupt
/// (SDM 11.11.1/11.11.2). `level` sets trigger mode level + assert.
pub fn msi_message(vector: u8, destination: u8, level: bool, logical: bool) -> (u64, u32) {
    let address = 0xfee0_0000u64 | ((destination as u64) << 12) | if logical { 1 << 2 } else { 0 };
    let data = vector as u32 | if level { (1 << 15) | (1 << 14) } else { 0 };
    (address, data)
}

impl RoutingTable {
    /// Default routes of the in-kernel irqchip (what KVM_CREATE_IRQCHIP
    /// installs): GSI 0..15 to the PIC pair and the IOAPIC, 16..23 to the
    /// IOAPIC.
    pub fn kernel_default() -> Self {
        let mut t = Self::empty();
        for gsi in 0..IOAPIC_PINS {
            let mut v = Vec::new();
            if gsi < 8 {
                v.push(Route::Irqchip { chip: KVM_IRQCHIP_PIC_MASTER, pin: gsi });
            } else if gsi < 16 {
                v.push(Route::Irqchip { chip: KVM_IRQCHIP_PIC_SLAVE, pin: gsi - 8 });
            }
            v.push(Route::Irqchip { chip: KVM_IRQCHIP_IOAPIC, pin: gsi });
            t.routes.insert(gsi, v);
        }
        t
    }

    /// No routes (split irqchip: our IOAPIC installs MSI routes).
    pub fn empty() -> Self {
        RoutingTable { routes: BTreeMap::new(), msi_gsis: IdAllocator::default() }
    }

    /// Set the MSI route of `gsi`, replacing its previous routes.
    pub fn set_msi(&mut self, gsi: u32, address: u64, data: u32) -> Result<()> {
        if gsi > MAX_GSI {
            return Err(Error::invalid(format!("GSI {gsi} out of range")));
        }
        if !is_msi_address(address) {
            return Err(Error::invalid(format!("MSI address {address:#x} is outside 0xFEE00000..0xFEEFFFFF")));
        }
        self.routes.insert(gsi, vec![Route::Msi { address, data }]);
        Ok(())
    }

    /// Remove every route of `gsi`. Returns whether one existed.
    pub fn clear(&mut self, gsi: u32) -> bool {
        self.routes.remove(&gsi).is_some()
    }

    /// Reserve the lowest free GSI above the IOAPIC pins for an MSI route
    /// (GSIs released with [`RoutingTable::release_gsi`] are reused).
    pub fn allocate_gsi(&mut self) -> Result<u32> {
        loop {
            let g = self.msi_gsis.allocate().ok_or_else(|| Error::invalid("no free GSI"))?;
            // Skip a GSI the caller routed directly without allocating it.
            if !self.routes.contains_key(&g) {
                return Ok(g);
            }
        }
    }

    /// Release an allocated GSI and its routes. Returns whether routes
    /// were removed (the table must then be committed).
    pub fn release_gsi(&mut self, gsi: u32) -> Result<bool> {
        if !self.msi_gsis.release(gsi) {
            return Err(Error::invalid(format!("GSI {gsi} was not allocated")));
        }
        Ok(self.clear(gsi))
    }

    /// Routes of one GSI.
    pub fn get(&self, gsi: u32) -> &[Route] {
        self.routes.get(&gsi).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// The table as KVM entries.
    pub fn entries(&self) -> Vec<kvm_irq_routing_entry> {
        let mut out = Vec::new();
        for (&gsi, routes) in &self.routes {
            for r in routes {
                let mut e = kvm_irq_routing_entry { gsi, ..Default::default() };
                match *r {
                    Route::Irqchip { chip, pin } => {
                        e.type_ = KVM_IRQ_ROUTING_IRQCHIP;
                        e.u.irqchip.irqchip = chip;
                        e.u.irqchip.pin = pin;
                    }
                    Route::Msi { address, data } => {
                        e.type_ = KVM_IRQ_ROUTING_MSI;
                        e.u.msi.address_lo = address as u32;
                        e.u.msi.address_hi = (address >> 32) as u32;
                        e.u.msi.data = data;
                    }
                }
                out.push(e);
            }
        }
        out
    }

    /// The table as the KVM_SET_GSI_ROUTING argument.
    pub fn to_kvm(&self) -> Result<KvmIrqRouting> {
        let entries = self.entries();
        let mut r = KvmIrqRouting::new(entries.len()).map_err(|e| Error::invalid(format!("routing table: {e:?}")))?;
        r.as_mut_slice().copy_from_slice(&entries);
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_default_matches_kvm() {
        let t = RoutingTable::kernel_default();
        assert_eq!(t.get(0).len(), 2);
        assert_eq!(t.get(9)[0], Route::Irqchip { chip: KVM_IRQCHIP_PIC_SLAVE, pin: 1 });
        assert_eq!(t.get(20), &[Route::Irqchip { chip: KVM_IRQCHIP_IOAPIC, pin: 20 }]);
        assert_eq!(t.entries().len(), 16 * 2 + 8);
        assert_eq!(t.to_kvm().unwrap().as_slice().len(), 40);
    }

    #[test]
    fn msi_routes_and_allocation() {
        let mut t = RoutingTable::kernel_default();
        let g = t.allocate_gsi().unwrap();
        assert_eq!(g, 24);
        let (a, d) = msi_message(0x20, 0, false, false);
        t.set_msi(g, a, d).unwrap();
        assert_eq!(t.allocate_gsi().unwrap(), 25);
        let e = t.entries().into_iter().find(|e| e.gsi == 24).unwrap();
        assert_eq!(e.type_, KVM_IRQ_ROUTING_MSI);
        // SAFETY: the entry was just built as an MSI route.
        let msi = unsafe { e.u.msi };
        assert_eq!((msi.address_lo, msi.data), (0xfee0_0000, 0x20));
        assert!(t.set_msi(3, 0xdead_0000, 0).is_err(), "non-LAPIC address");
        assert!(t.set_msi(5000, 0xfee0_0000, 0).is_err());
        t.set_msi(3, 0xfee0_1000, 0x8030).unwrap();
        assert_eq!(t.get(3).len(), 1, "MSI route replaces irqchip routes");
        assert!(t.clear(3));
        assert!(!t.clear(3));
        // Released GSIs are reused, lowest first.
        assert!(t.release_gsi(24).unwrap(), "its route is removed");
        assert!(t.release_gsi(24).is_err(), "double release");
        assert_eq!(t.allocate_gsi().unwrap(), 24);
        t.set_msi(26, a, d).unwrap();
        assert_eq!(t.allocate_gsi().unwrap(), 27, "a directly routed GSI is skipped");
    }

    #[test]
    fn msi_encoding() {
        assert_eq!(msi_message(0x41, 3, true, false), (0xfee0_3000, 0xc041));
        assert_eq!(msi_message(0x41, 1, false, true).0, 0xfee0_1004);
    }
}
