//! Guest-physical memory layout of the PC machine: where RAM lies around
//! the MMIO hole below 4 GiB, the memory map a guest is told (e820 /
//! Multiboot), and where an image may load.
//!
//! RAM is one host mapping of `size` bytes, split in two KVM slots: the
//! first [`RAM_HOLE_START`] bytes at GPA 0, the rest at [`RAM_HIGH_BASE`].
//! The hole between them holds the PCI ECAM window (0xB000_0000), PCI BARs
//! (from 0xC000_0000), the IOAPIC, HPET and LAPIC pages and pc-testdev's
//! iomem, which must be MMIO, never RAM.

use crate::error::{Code, Error, Result};

/// Smallest RAM: conventional memory plus 1 MiB above the legacy hole.
pub const MIN_MEM: u64 = 0x20_0000;
/// Largest RAM (1 TiB). The mapping is reserved lazily (`MAP_NORESERVE`);
/// the host's guest-physical width may allow less, checked at creation.
pub const MAX_MEM: u64 = 0x100_0000_0000;
/// Start of the MMIO hole below 4 GiB: RAM beyond it continues at
/// [`RAM_HIGH_BASE`].
pub const RAM_HOLE_START: u64 = 0xB000_0000;
/// Guest-physical address of RAM above the hole.
pub const RAM_HIGH_BASE: u64 = 0x1_0000_0000;
/// End of conventional memory (639 KiB); the EBDA follows.
pub const CONVENTIONAL_END: u64 = 0x9_FC00;
/// Lowest address an image may load at: page 0 holds the real-mode IVT and
/// the BIOS data area, which a kernel may read.
pub const CONVENTIONAL_LOAD_MIN: u64 = 0x1000;
/// Start of RAM above the legacy (VGA/ROM) hole.
pub const EXTENDED_BASE: u64 = 0x10_0000;
/// The BIOS ROM area at the top of the first MiB (reserved; host-built
/// tables such as ACPI's RSDP live here).
pub const BIOS_AREA: u64 = 0xF_0000;

/// Kind of a memory map entry; values are the e820 / Multiboot types.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemKind {
    /// Usable RAM.
    Ram = 1,
    /// Reserved: the guest must not use it as RAM.
    Reserved = 2,
}

/// One memory map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemEntry {
    /// First guest-physical address.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
    /// What the range is.
    pub kind: MemKind,
}

/// A range the loader writes itself (GDT, page tables, boot information):
/// an image must not overlap it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostArea {
    /// First byte.
    pub start: u64,
    /// First byte after.
    pub end: u64,
    /// What it is, for error messages.
    pub what: &'static str,
}

/// Where `size` bytes of RAM lie in guest-physical space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamLayout {
    size: u64,
}

impl RamLayout {
    /// Validate `size` (a multiple of 4 KiB in [`MIN_MEM`, `MAX_MEM`]).
    pub fn new(size: u64) -> Result<RamLayout> {
        if !(MIN_MEM..=MAX_MEM).contains(&size) || !size.is_multiple_of(0x1000) {
            return Err(Error::invalid(format!(
                "memory size {size:#x} must be a multiple of 4 KiB in [{MIN_MEM:#x}, {MAX_MEM:#x}]"
            )));
        }
        Ok(RamLayout { size })
    }

    /// RAM size in bytes (both regions).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes of RAM below the hole, at GPA 0.
    pub fn low_size(&self) -> u64 {
        self.size.min(RAM_HOLE_START)
    }

    /// Bytes of RAM above 4 GiB.
    pub fn high_size(&self) -> u64 {
        self.size - self.low_size()
    }

    /// Highest guest-physical address of RAM plus one.
    pub fn end(&self) -> u64 {
        if self.high_size() == 0 {
            self.low_size()
        } else {
            RAM_HIGH_BASE + self.high_size()
        }
    }

    /// KVM memory slots as (guest-physical base, offset in the host
    /// mapping, length).
    pub fn slots(&self) -> Vec<(u64, u64, u64)> {
        let mut v = vec![(0, 0, self.low_size())];
        if self.high_size() > 0 {
            v.push((RAM_HIGH_BASE, self.low_size(), self.high_size()));
        }
        v
    }

    /// Offset in the host mapping of `[gpa, gpa + len)`, when the range
    /// lies inside one RAM region.
    pub fn offset(&self, gpa: u64, len: u64) -> Option<u64> {
        let end = gpa.checked_add(len)?;
        self.slots().into_iter().find(|&(base, _, size)| gpa >= base && end <= base + size).map(|(base, off, _)| off + gpa - base)
    }

    /// The PC memory map: conventional RAM, the EBDA and BIOS area
    /// reserved, RAM from 1 MiB to the hole, RAM above 4 GiB.
    pub fn memory_map(&self) -> Vec<MemEntry> {
        let mut v = vec![
            MemEntry { base: 0, len: CONVENTIONAL_END, kind: MemKind::Ram },
            MemEntry { base: CONVENTIONAL_END, len: 0xA_0000 - CONVENTIONAL_END, kind: MemKind::Reserved },
            MemEntry { base: BIOS_AREA, len: EXTENDED_BASE - BIOS_AREA, kind: MemKind::Reserved },
            MemEntry { base: EXTENDED_BASE, len: self.low_size() - EXTENDED_BASE, kind: MemKind::Ram },
        ];
        if self.high_size() > 0 {
            v.push(MemEntry { base: RAM_HIGH_BASE, len: self.high_size(), kind: MemKind::Ram });
        }
        v
    }

    /// RAM an image may load into: conventional memory above page 0, RAM
    /// from 1 MiB to the hole, RAM above 4 GiB.
    pub fn loadable(&self) -> Vec<(u64, u64)> {
        let mut v = vec![(CONVENTIONAL_LOAD_MIN, CONVENTIONAL_END), (EXTENDED_BASE, self.low_size())];
        if self.high_size() > 0 {
            v.push((RAM_HIGH_BASE, self.end()));
        }
        v
    }

    /// Check that `what` at `[paddr, paddr + len)` lies in one loadable
    /// range and overlaps none of `host` (what the loader writes itself).
    /// Errors are [`Code::BadImage`] naming the range and the conflict.
    pub fn check_load(&self, what: &str, paddr: u64, len: u64, host: &[HostArea]) -> Result<()> {
        let bad = |m: String| Err(Error::new(Code::BadImage, m));
        let Some(end) = paddr.checked_add(len) else {
            return bad(format!("{what} at {paddr:#x}+{len:#x} overflows"));
        };
        if !self.loadable().iter().any(|&(s, e)| paddr >= s && end <= e) {
            let ranges: Vec<String> = self.loadable().iter().map(|(s, e)| format!("[{s:#x}, {e:#x})")).collect();
            return bad(format!("{what} at {paddr:#x}+{len:#x} does not fit guest RAM (loadable: {})", ranges.join(", ")));
        }
        if let Some(a) = host.iter().find(|a| paddr < a.end && a.start < end) {
            return bad(format!(
                "{what} at {paddr:#x}+{len:#x} overlaps the {} the loader places at [{:#x}, {:#x})",
                a.what, a.start, a.end
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_validated() {
        assert!(RamLayout::new(MIN_MEM - 0x1000).is_err());
        assert!(RamLayout::new(MAX_MEM + 0x1000).is_err());
        assert!(RamLayout::new((16 << 20) + 1).is_err());
        assert!(RamLayout::new(MAX_MEM).is_ok());
    }

    #[test]
    fn small_ram_is_one_region_below_the_hole() {
        let l = RamLayout::new(16 << 20).unwrap();
        assert_eq!(l.slots(), vec![(0, 0, 16 << 20)]);
        assert_eq!(l.end(), 16 << 20);
        assert_eq!(l.offset(0x1000, 8), Some(0x1000));
        assert_eq!(l.offset((16 << 20) - 4, 8), None);
        assert_eq!(l.memory_map().len(), 4);
        assert_eq!(l.memory_map()[3], MemEntry { base: EXTENDED_BASE, len: (16 << 20) - EXTENDED_BASE, kind: MemKind::Ram });
    }

    #[test]
    fn ram_past_the_hole_continues_at_4_gib() {
        let l = RamLayout::new(4 << 30).unwrap();
        assert_eq!(l.low_size(), RAM_HOLE_START);
        assert_eq!(l.high_size(), (4 << 30) - RAM_HOLE_START);
        assert_eq!(l.slots()[1], (RAM_HIGH_BASE, RAM_HOLE_START, (4 << 30) - RAM_HOLE_START));
        assert_eq!(l.offset(RAM_HIGH_BASE, 16), Some(RAM_HOLE_START));
        assert_eq!(l.offset(RAM_HOLE_START, 1), None, "the hole is not RAM");
        assert_eq!(l.offset(RAM_HOLE_START - 8, 16), None, "no access spans the hole");
        assert_eq!(l.offset(u64::MAX, 2), None);
        let map = l.memory_map();
        assert_eq!(map.last().unwrap(), &MemEntry { base: RAM_HIGH_BASE, len: l.high_size(), kind: MemKind::Ram });
        let ram: u64 = map.iter().filter(|e| e.kind == MemKind::Ram).map(|e| e.len).sum();
        assert_eq!(ram, l.size() - (EXTENDED_BASE - CONVENTIONAL_END), "everything but the legacy hole is RAM");
    }

    #[test]
    fn loads_anywhere_in_ram_but_over_host_structures() {
        let l = RamLayout::new(16 << 20).unwrap();
        let pt = [HostArea { start: 0x9000, end: 0xF000, what: "page tables" }];
        assert!(l.check_load("segment 0", 0x8000, 0x286c, &[]).is_ok(), "conventional memory");
        let e = l.check_load("segment 0", 0x8000, 0x286c, &pt).unwrap_err();
        assert!(e.message.contains("overlaps the page tables"), "{}", e.message);
        assert!(l.check_load("s", 0, 0x100, &[]).is_err(), "page 0");
        assert!(l.check_load("s", 0x9F000, 0x1000, &[]).is_err(), "into the EBDA");
        assert!(l.check_load("s", 0xA0000, 0x10, &[]).is_err(), "legacy hole");
        assert!(l.check_load("s", 0x100000, 0x1000, &pt).is_ok());
        assert!(l.check_load("s", (16 << 20) - 0x10, 0x20, &[]).is_err(), "past RAM");
        assert!(l.check_load("s", u64::MAX, 2, &[]).unwrap_err().message.contains("overflows"));
        let big = RamLayout::new(4 << 30).unwrap();
        assert!(big.check_load("s", RAM_HIGH_BASE, 0x1000, &[]).is_ok());
        assert!(big.check_load("s", RAM_HOLE_START - 0x1000, 0x2000, &[]).is_err(), "spans the hole");
    }
}
