//! ELF64 guest loading and the 64-bit long-mode entry state.
//!
//! Guest memory the host writes ([`HOST_AREAS`], all below 1 MiB; segments
//! may load anywhere else in RAM, see [`crate::layout`]):
//! - `GDT_ADDR`: null, 64-bit code (0x08), data (0x10), TSS (0x18);
//! - the boot stack below `BOOT_STACK`;
//! - `PML4_ADDR`.. : identity page tables mapping 0..4 GiB with 2 MiB pages;
//!   the top GiB (LAPIC/IOAPIC/PCI holes) is mapped uncached. RAM above
//!   4 GiB is in the memory map; a guest maps it itself.

use crate::elf;
use crate::error::{Code, Error, Result};
use crate::layout::{HostArea, RamLayout};

/// GDT location.
pub const GDT_ADDR: u64 = 0x500;
/// PML4 location; PDPT and four page directories follow, 4 KiB each.
pub const PML4_ADDR: u64 = 0x9000;
/// Initial RSP the host sets (guests set their own).
pub const BOOT_STACK: u64 = 0x8ff0;

/// What the host writes for an ELF64 boot; segments must not overlap it.
pub const HOST_AREAS: [HostArea; 3] = [
    HostArea { start: GDT_ADDR, end: GDT_ADDR + 8 * 5, what: "GDT" },
    HostArea { start: BOOT_STACK & !0xfff, end: PML4_ADDR, what: "boot stack" },
    HostArea { start: PML4_ADDR, end: PML4_ADDR + 6 * 0x1000, what: "page tables" },
];

/// GDT selectors.
pub const CODE_SEL: u16 = 0x08;
/// Data selector.
pub const DATA_SEL: u16 = 0x10;
/// TSS selector.
pub const TSS_SEL: u16 = 0x18;

/// A parsed, validated ELF64 image: entry and PT_LOAD segments, each
/// inside the file and inside loadable guest RAM, clear of [`HOST_AREAS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Entry point.
    pub entry: u64,
    /// PT_LOAD segments.
    pub segments: Vec<elf::Segment>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::new(Code::BadImage, msg)
}

/// Parse and validate an ELF64 x86-64 executable for a guest whose RAM
/// lies as `layout` says (through [`elf::parse`], the one ELF parser).
pub fn parse_elf(bytes: &[u8], layout: &RamLayout) -> Result<Image> {
    if elf::is_elf(bytes) && bytes.get(4) == Some(&1) {
        return Err(bad("not an ELF64 file (an ELF32 kernel needs a Multiboot header)"));
    }
    let e = elf::parse(bytes)?;
    if !e.is64 {
        return Err(bad("not an ELF64 file (an ELF32 kernel needs a Multiboot header)"));
    }
    if e.machine != elf::EM_X86_64 {
        return Err(bad("ELF machine is not x86-64"));
    }
    for (i, s) in e.segments.iter().enumerate() {
        layout.check_load(&format!("segment {i}"), s.paddr, s.memsz, &HOST_AREAS)?;
    }
    if !e.segments.iter().any(|s| e.entry >= s.paddr && e.entry < s.paddr + s.memsz) {
        return Err(bad(format!("entry point {:#x} is outside every loaded segment", e.entry)));
    }
    Ok(Image { entry: e.entry, segments: e.segments })
}

/// The GDT: null, code64, data, and a 16-byte 64-bit TSS descriptor.
pub fn gdt() -> [u64; 5] {
    [
        0,
        0x00af_9a00_0000_ffff, // 64-bit code, present, DPL 0 (SDM 3.4.5)
        0x00cf_9200_0000_ffff, // data, writable, 4 GiB
        0x0000_8b00_0000_0067, // 64-bit TSS (busy), base 0, limit 0x67
        0,
    ]
}

/// Page tables as (guest address, 4 KiB page) pairs: PML4, PDPT and four
/// page directories identity-mapping 0..4 GiB with 2 MiB pages.
pub fn page_tables() -> Vec<(u64, [u64; 512])> {
    const P: u64 = 1;
    const RW: u64 = 2;
    const PWT: u64 = 1 << 3;
    const PCD: u64 = 1 << 4;
    const PS: u64 = 1 << 7;
    let pdpt = PML4_ADDR + 0x1000;
    let mut out = Vec::new();
    let mut pml4 = [0u64; 512];
    pml4[0] = pdpt | P | RW;
    out.push((PML4_ADDR, pml4));
    let mut pdpt_page = [0u64; 512];
    for g in 0..4u64 {
        let pd = pdpt + 0x1000 * (g + 1);
        pdpt_page[g as usize] = pd | P | RW;
    }
    out.push((pdpt, pdpt_page));
    for g in 0..4u64 {
        let mut pd = [0u64; 512];
        for (i, e) in pd.iter_mut().enumerate() {
            let addr = (g << 30) | ((i as u64) << 21);
            *e = addr | P | RW | PS | if g == 3 { PCD | PWT } else { 0 };
        }
        out.push((pdpt + 0x1000 * (g + 1), pd));
    }
    out
}

/// Control-register values for long mode (SDM 9.8.5).
pub mod cr {
    /// CR0: PE | MP | ET | NE | WP | PG.
    pub const CR0: u64 = 0x8001_0033;
    /// CR4: PAE.
    pub const CR4: u64 = 0x20;
    /// EFER: LME | LMA.
    pub const EFER: u64 = 0x500;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(entry: u64, paddr: u64, filesz: u64, memsz: u64) -> Vec<u8> {
        crate::elf::tests::elf(true, crate::elf::EM_X86_64, entry, paddr, filesz, memsz)
    }

    #[test]
    fn accepts_valid() {
        let mem = RamLayout::new(16 << 20).unwrap();
        let img = parse_elf(&elf(0x100000, 0x100000, 0x40, 0x1000), &mem).unwrap();
        assert_eq!(img.entry, 0x100000);
        assert_eq!(img.segments.len(), 1);
    }

    #[test]
    fn rejects_hostile_headers() {
        let size = 16 << 20;
        let mem = &RamLayout::new(size).unwrap();
        assert!(parse_elf(b"hello", mem).is_err());
        let e = crate::elf::tests::elf(false, crate::elf::EM_386, 0x100000, 0x100000, 0x40, 0x1000);
        assert!(parse_elf(&e, mem).unwrap_err().message.contains("ELF64"));
        assert!(parse_elf(&e, mem).is_err());
        let e = parse_elf(&elf(0x9100, 0x9000, 0x40, 0x1000), mem).unwrap_err();
        assert!(e.message.contains("overlaps the page tables"), "{}", e.message);
        assert!(parse_elf(&elf(0x10, 0, 0x40, 0x1000), mem).is_err(), "page 0");
        assert!(parse_elf(&elf(0x100000, 0x100000, 0x40, u64::MAX), mem).is_err(), "overflow");
        assert!(parse_elf(&elf(0x100000, size - 0x10, 0x40, 0x40), mem).is_err(), "past RAM");
        let mut e = elf(0x100000, 0x100000, 0x40, 0x1000);
        e[64 + 32..64 + 40].copy_from_slice(&0x1000u64.to_le_bytes());
        assert!(parse_elf(&e, mem).is_err(), "past file");
        assert!(parse_elf(&elf(0x100000, 0x100000, 0x80, 0x40), mem).is_err(), "filesz > memsz");
        assert!(parse_elf(&elf(0x300000, 0x100000, 0x40, 0x40), mem).is_err(), "entry outside");
        let mut e = elf(0x100000, 0x100000, 0x40, 0x40);
        e[56..58].copy_from_slice(&0xffffu16.to_le_bytes());
        assert!(parse_elf(&e, mem).is_err(), "phnum past file");
    }

    #[test]
    fn page_tables_identity_map_4g() {
        let pts = page_tables();
        assert_eq!(pts.len(), 6);
        let (_, pd3) = pts[5];
        assert_eq!(pd3[511] & !0xfff, 0xffe0_0000);
        assert_ne!(pd3[511] & (1 << 4), 0, "top GiB uncached");
        let (_, pd0) = pts[2];
        assert_eq!(pd0[1] & !0xfff, 0x20_0000);
        assert!(pts.iter().all(|(a, _)| HOST_AREAS[2].start <= *a && *a + 0x1000 <= HOST_AREAS[2].end));
    }

    #[test]
    fn loads_into_conventional_memory() {
        let mem = RamLayout::new(16 << 20).unwrap();
        let img = parse_elf(&elf(0x10000, 0x10000, 0x40, 0x1000), &mem).unwrap();
        assert_eq!(img.segments[0].paddr, 0x10000);
    }
}
