//! Multiboot v1 (specification 0.6.96) image loading: header search, a.out
//! kludge or ELF32/ELF64 program-header loading, and the boot information
//! structure. Pure logic on guest memory; no KVM calls.
//!
//! The image is untrusted: every header field is bounds- and
//! overflow-checked against the file and guest RAM before anything is
//! written. What the loader writes:
//! - the image (and its bss) anywhere in loadable RAM below 4 GiB
//!   ([`crate::layout`]: conventional memory from 0x1000, or from 1 MiB),
//!   clear of [`HOST_AREAS`];
//! - the information structure, memory map, module list and strings in
//!   [`INFO_ADDR`]..[`INFO_END`] (below 1 MiB, above the host's GDT at
//!   0x500);
//! - modules, page-aligned, after the end of the image (bss included) and
//!   at or above 1 MiB.
//!
//! Entry state the caller must set (spec section 3.2): EAX =
//! [`BOOTLOADER_MAGIC`], EBX = [`MultibootBoot::info_addr`], CS a flat
//! 32-bit code segment, DS/ES/FS/GS/SS flat 32-bit data, CR0.PE = 1,
//! CR0.PG = 0, EFLAGS.IF = 0 and EFLAGS.VM = 0, EIP = [`MultibootBoot::entry`].

use crate::error::{Code, Error, Result};
use crate::layout::{HostArea, RamLayout, CONVENTIONAL_END, EXTENDED_BASE};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Magic value in the image's multiboot header.
pub const HEADER_MAGIC: u32 = 0x1BAD_B002;
/// Magic value the loader passes to the kernel in EAX.
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
/// The header must lie entirely in this many leading bytes of the image.
pub const HEADER_SEARCH: usize = 8192;
/// Address of the multiboot information structure.
pub const INFO_ADDR: u64 = 0x2_0000;
/// End (exclusive) of the area holding the information structure,
/// memory map, module list and strings.
pub const INFO_END: u64 = 0x3_0000;
/// What the host writes for a Multiboot boot; the image must not overlap
/// it.
pub const HOST_AREAS: [HostArea; 2] = [
    HostArea { start: crate::loader::GDT_ADDR, end: crate::loader::GDT_ADDR + 8 * 5, what: "GDT" },
    HostArea { start: INFO_ADDR, end: INFO_END, what: "boot information area" },
];
/// Name passed in `boot_loader_name`.
pub const BOOT_LOADER_NAME: &str = "denovmm";

/// Header flag bit 0: modules must be page-aligned (always honoured).
pub const HF_PAGE_ALIGN: u32 = 1 << 0;
/// Header flag bit 1: memory information required (always provided).
pub const HF_MEMORY_INFO: u32 = 1 << 1;
/// Header flag bit 2: video mode table requested (accepted; no video).
pub const HF_VIDEO_MODE: u32 = 1 << 2;
/// Header flag bit 16: the address fields (a.out kludge) are valid.
pub const HF_AOUT_KLUDGE: u32 = 1 << 16;

/// Info flag bit 0: `mem_lower` / `mem_upper` valid.
pub const MBI_MEMORY: u32 = 1 << 0;
/// Info flag bit 2: `cmdline` valid.
pub const MBI_CMDLINE: u32 = 1 << 2;
/// Info flag bit 3: `mods_count` / `mods_addr` valid.
pub const MBI_MODS: u32 = 1 << 3;
/// Info flag bit 6: `mmap_length` / `mmap_addr` valid.
pub const MBI_MMAP: u32 = 1 << 6;
/// Info flag bit 9: `boot_loader_name` valid.
pub const MBI_BOOT_LOADER_NAME: u32 = 1 << 9;


/// Bytes of the information structure (through the framebuffer fields).
const INFO_SIZE: u64 = 116;
/// Memory map location (up to 5 entries of 24 bytes, before the modules).
const MMAP_ADDR: u64 = INFO_ADDR + 0x80;
/// Bytes of one memory map entry, including its `size` field.
const MMAP_ENTRY: u64 = 24;
/// Module list location (16 bytes per module).
const MODS_ADDR: u64 = INFO_ADDR + 0x100;
/// Bytes of one module list entry.
const MOD_ENTRY: u64 = 16;
/// Page size used for module alignment.
const PAGE: u64 = 0x1000;

/// A boot module: its contents and its command line.
#[derive(Debug, Clone, Copy)]
pub struct MultibootModule<'a> {
    /// Module contents, copied to a page-aligned address after the image.
    pub bytes: &'a [u8],
    /// Module command line (no NUL bytes).
    pub cmdline: &'a str,
}

/// Where to start the kernel: EIP = `entry`, EAX = [`BOOTLOADER_MAGIC`],
/// EBX = `info_addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultibootBoot {
    /// Physical entry point (32-bit protected mode, paging off).
    pub entry: u32,
    /// Physical address of the multiboot information structure.
    pub info_addr: u32,
}

/// A validated, located multiboot header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Header {
    /// File offset of the header.
    offset: usize,
    flags: u32,
    header_addr: u32,
    load_addr: u32,
    load_end_addr: u32,
    bss_end_addr: u32,
    entry_addr: u32,
}

/// One piece of the image to copy, then zero-fill up to `memsz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    paddr: u64,
    offset: u64,
    filesz: u64,
    memsz: u64,
}

/// The validated layout of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    entry: u32,
    segments: Vec<Segment>,
    /// First byte after every segment (bss included).
    end: u64,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::new(Code::BadImage, msg)
}

fn rd32(b: &[u8], o: u64) -> Option<u32> {
    let o = usize::try_from(o).ok()?;
    Some(u32::from_le_bytes(b.get(o..o.checked_add(4)?)?.try_into().ok()?))
}

/// Find and validate the multiboot header.
fn find_header(bytes: &[u8]) -> Result<Header> {
    let limit = bytes.len().min(HEADER_SEARCH);
    let mut bad_checksum_at = None;
    let mut off = 0usize;
    while off + 12 <= limit {
        let magic = rd32(bytes, off as u64).unwrap_or(0);
        if magic == HEADER_MAGIC {
            let flags = rd32(bytes, off as u64 + 4).unwrap_or(0);
            let checksum = rd32(bytes, off as u64 + 8).unwrap_or(0);
            if magic.wrapping_add(flags).wrapping_add(checksum) == 0 {
                return parse_header(bytes, off, limit, flags);
            }
            bad_checksum_at.get_or_insert(off);
        }
        off += 4;
    }
    match bad_checksum_at {
        Some(o) => Err(bad(format!("multiboot header at offset {o:#x} has a bad checksum"))),
        None => Err(bad(format!("no multiboot header in the first {HEADER_SEARCH} bytes"))),
    }
}

fn parse_header(bytes: &[u8], offset: usize, limit: usize, flags: u32) -> Result<Header> {
    let known_required = HF_PAGE_ALIGN | HF_MEMORY_INFO | HF_VIDEO_MODE;
    let unknown = flags & 0xffff & !known_required;
    if unknown != 0 {
        return Err(bad(format!("multiboot header requires unsupported features (flags {unknown:#x})")));
    }
    let mut h = Header { offset, flags, ..Default::default() };
    if flags & HF_AOUT_KLUDGE != 0 {
        if offset + 32 > limit {
            return Err(bad("multiboot header address fields lie past the first 8192 bytes"));
        }
        let f = |i: u64| rd32(bytes, offset as u64 + i).unwrap_or(0);
        h.header_addr = f(12);
        h.load_addr = f(16);
        h.load_end_addr = f(20);
        h.bss_end_addr = f(24);
        h.entry_addr = f(28);
    }
    Ok(h)
}

/// Layout from the a.out kludge address fields (spec 3.1.3).
fn plan_aout(bytes: &[u8], h: &Header, layout: &RamLayout) -> Result<Plan> {
    let (header_addr, load_addr) = (h.header_addr as u64, h.load_addr as u64);
    if header_addr < load_addr {
        return Err(bad(format!("header_addr {header_addr:#x} is below load_addr {load_addr:#x}")));
    }
    let delta = header_addr - load_addr;
    let Some(file_start) = (h.offset as u64).checked_sub(delta) else {
        return Err(bad("load_addr points before the start of the file"));
    };
    let file_len = bytes.len() as u64;
    let load_end = if h.load_end_addr == 0 { load_addr + (file_len - file_start) } else { h.load_end_addr as u64 };
    if load_end < load_addr {
        return Err(bad(format!("load_end_addr {load_end:#x} is below load_addr {load_addr:#x}")));
    }
    let filesz = load_end - load_addr;
    if file_start.checked_add(filesz).is_none_or(|e| e > file_len) {
        return Err(bad("load_end_addr lies past the end of the file"));
    }
    let end = if h.bss_end_addr == 0 { load_end } else { h.bss_end_addr as u64 };
    if end < load_end {
        return Err(bad(format!("bss_end_addr {end:#x} is below load_end_addr {load_end:#x}")));
    }
    let seg = Segment { paddr: load_addr, offset: file_start, filesz, memsz: end - load_addr };
    check_segment(&seg, "a.out image", layout)?;
    let entry = h.entry_addr;
    if (entry as u64) < load_addr || entry as u64 >= end {
        return Err(bad(format!("entry_addr {entry:#x} is outside the image [{load_addr:#x}, {end:#x})")));
    }
    Ok(Plan { entry, segments: vec![seg], end })
}

fn check_segment(s: &Segment, what: &str, layout: &RamLayout) -> Result<()> {
    layout.check_load(what, s.paddr, s.memsz, &HOST_AREAS)?;
    if s.paddr + s.memsz > 1 << 32 {
        return Err(bad(format!(
            "{what} at {:#x}+{:#x} lies above 4 GiB, out of reach of a kernel entered with paging off",
            s.paddr, s.memsz
        )));
    }
    Ok(())
}

/// Layout from ELF32 or ELF64 program headers (PT_LOAD, physical
/// addresses), parsed by [`crate::elf::parse`].
fn plan_elf(bytes: &[u8], layout: &RamLayout) -> Result<Plan> {
    if !crate::elf::is_elf(bytes) {
        return Err(bad("not an ELF file and the multiboot header has no address fields (flag bit 16)"));
    }
    let e = crate::elf::parse(bytes)?;
    let want = if e.is64 { crate::elf::EM_X86_64 } else { crate::elf::EM_386 };
    if e.machine != want {
        return Err(bad(format!("ELF machine {} is not {}", e.machine, if e.is64 { "x86-64" } else { "i386" })));
    }
    let mut segments = Vec::new();
    let mut phys_entry = None;
    let mut end = 0u64;
    for (i, s) in e.segments.iter().enumerate() {
        let seg = Segment { paddr: s.paddr, offset: s.offset, filesz: s.filesz, memsz: s.memsz };
        check_segment(&seg, &format!("segment {i}"), layout)?;
        // The entry point is virtual; translate it through the segment
        // that contains it (as GRUB does), else take it as physical.
        if phys_entry.is_none() {
            if e.entry >= s.vaddr && e.entry < s.vaddr + s.memsz {
                phys_entry = Some(e.entry - s.vaddr + s.paddr);
            } else if e.entry >= s.paddr && e.entry < s.paddr + s.memsz {
                phys_entry = Some(e.entry);
            }
        }
        end = end.max(s.paddr + s.memsz);
        segments.push(seg);
    }
    let Some(entry) = phys_entry else {
        return Err(bad(format!("entry point {:#x} is outside every loaded segment", e.entry)));
    };
    // Segments lie below 4 GiB (check_segment).
    let entry = u32::try_from(entry).map_err(|_| bad("entry point is above 4 GiB"))?;
    Ok(Plan { entry, segments, end })
}

fn write(mem: &GuestMemoryMmap, data: &[u8], addr: u64) -> Result<()> {
    mem.write_slice(data, GuestAddress(addr))
        .map_err(|e| Error::new(Code::BadImage, format!("guest memory write at {addr:#x}: {e}")))
}

fn zero(mem: &GuestMemoryMmap, mut addr: u64, mut len: u64) -> Result<()> {
    const CHUNK: usize = 0x1_0000;
    let zeros = [0u8; CHUNK];
    while len > 0 {
        let n = len.min(CHUNK as u64);
        write(mem, &zeros[..n as usize], addr)?;
        addr += n;
        len -= n;
    }
    Ok(())
}

fn check_string(what: &str, s: &str) -> Result<()> {
    if s.as_bytes().contains(&0) {
        return Err(Error::invalid(format!("{what} contains a NUL byte")));
    }
    Ok(())
}

/// Round `v` up to a page boundary (overflow-checked).
fn page_up(v: u64) -> Option<u64> {
    v.checked_add(PAGE - 1).map(|x| x & !(PAGE - 1))
}

/// Find the multiboot header in the first 8192 bytes (4-byte aligned, magic
/// 0x1BADB002, valid checksum), load the image into `mem` either from the
/// a.out-kludge address fields (header flag bit 16) or from ELF32/ELF64
/// PT_LOAD program headers (at `p_paddr`), zero-fill bss, place `modules`
/// page-aligned after the image, and build the multiboot information
/// structure at [`INFO_ADDR`]: `mem_lower`/`mem_upper` (bit 0), `cmdline`
/// (bit 2), modules (bit 3), the PC memory map of
/// [`RamLayout::memory_map`] (bit 6) and `boot_loader_name` (bit 9).
/// Returns the physical entry point and the information structure's
/// address.
///
/// `mem` must cover `layout`'s RAM. Image errors are
/// [`Code::BadImage`]; a command line with a NUL byte or too many/too long
/// module command lines are [`Code::InvalidArgument`].
pub fn load(
    mem: &GuestMemoryMmap,
    bytes: &[u8],
    cmdline: &str,
    modules: &[MultibootModule],
    layout: &RamLayout,
) -> Result<MultibootBoot> {
    check_string("command line", cmdline)?;
    for (i, m) in modules.iter().enumerate() {
        check_string(&format!("module {i} command line"), m.cmdline)?;
    }

    // ---- validate everything before writing anything ------------------------
    let header = find_header(bytes)?;
    let plan = if header.flags & HF_AOUT_KLUDGE != 0 {
        plan_aout(bytes, &header, layout)?
    } else {
        plan_elf(bytes, layout)?
    };

    // Modules: page-aligned, one after another, after the image, in RAM
    // from 1 MiB to the hole (32-bit addresses).
    let mut placed = Vec::with_capacity(modules.len());
    let mut next = page_up(plan.end.max(EXTENDED_BASE)).ok_or_else(|| bad("image end overflows"))?;
    for (i, m) in modules.iter().enumerate() {
        let start = next;
        let end = start.checked_add(m.bytes.len() as u64);
        match end {
            Some(e) if e <= layout.low_size() => {
                placed.push((start, e));
                next = page_up(e).ok_or_else(|| bad("module end overflows"))?;
            }
            _ => {
                return Err(Error::invalid(format!(
                    "module {i} ({} bytes at {start:#x}) does not fit guest RAM below {:#x}",
                    m.bytes.len(),
                    layout.low_size()
                )))
            }
        }
    }

    // Low area: info | mmap | module list | strings.
    let strings_start = MODS_ADDR
        .checked_add((modules.len() as u64).checked_mul(MOD_ENTRY).ok_or_else(|| Error::invalid("too many modules"))?)
        .ok_or_else(|| Error::invalid("too many modules"))?;
    let strings_len = [BOOT_LOADER_NAME, cmdline]
        .into_iter()
        .chain(modules.iter().map(|m| m.cmdline))
        .try_fold(0u64, |acc, s| acc.checked_add(s.len() as u64 + 1));
    if strings_len.and_then(|l| l.checked_add(strings_start)).is_none_or(|e| e > INFO_END) {
        return Err(Error::invalid(format!(
            "command lines and module list do not fit the {} KiB boot information area",
            (INFO_END - INFO_ADDR) >> 10
        )));
    }

    // ---- write ----------------------------------------------------------------
    for s in &plan.segments {
        // Bounds checked in plan_*: offset + filesz <= len, filesz <= memsz.
        let data = &bytes[s.offset as usize..(s.offset + s.filesz) as usize];
        write(mem, data, s.paddr)?;
        zero(mem, s.paddr + s.filesz, s.memsz - s.filesz)?;
    }
    for (m, (start, _)) in modules.iter().zip(&placed) {
        write(mem, m.bytes, *start)?;
    }

    zero(mem, INFO_ADDR, INFO_END - INFO_ADDR)?;
    let mut str_at = strings_start;
    let mut put_str = |s: &str| -> Result<u32> {
        let at = str_at;
        write(mem, s.as_bytes(), at)?;
        // The terminating NUL is already there (area zeroed).
        str_at += s.len() as u64 + 1;
        Ok(at as u32)
    };
    let name_addr = put_str(BOOT_LOADER_NAME)?;
    let cmdline_addr = put_str(cmdline)?;
    for (i, (m, (start, end))) in modules.iter().zip(&placed).enumerate() {
        let s = put_str(m.cmdline)?;
        let mut e = [0u8; MOD_ENTRY as usize];
        e[0..4].copy_from_slice(&(*start as u32).to_le_bytes());
        e[4..8].copy_from_slice(&(*end as u32).to_le_bytes());
        e[8..12].copy_from_slice(&s.to_le_bytes());
        write(mem, &e, MODS_ADDR + MOD_ENTRY * i as u64)?;
    }

    let map = layout.memory_map();
    for (i, m) in map.iter().enumerate() {
        let mut e = [0u8; MMAP_ENTRY as usize];
        e[0..4].copy_from_slice(&((MMAP_ENTRY - 4) as u32).to_le_bytes());
        e[4..12].copy_from_slice(&m.base.to_le_bytes());
        e[12..20].copy_from_slice(&m.len.to_le_bytes());
        e[20..24].copy_from_slice(&(m.kind as u32).to_le_bytes());
        write(mem, &e, MMAP_ADDR + MMAP_ENTRY * i as u64)?;
    }

    let mut info = [0u8; INFO_SIZE as usize];
    let mut set = |o: usize, v: u32| info[o..o + 4].copy_from_slice(&v.to_le_bytes());
    set(0, MBI_MEMORY | MBI_CMDLINE | MBI_MODS | MBI_MMAP | MBI_BOOT_LOADER_NAME);
    set(4, (CONVENTIONAL_END >> 10) as u32);
    set(8, ((layout.low_size() - EXTENDED_BASE) >> 10) as u32);
    set(16, cmdline_addr);
    set(20, modules.len() as u32);
    set(24, MODS_ADDR as u32);
    set(44, (MMAP_ENTRY * map.len() as u64) as u32);
    set(48, MMAP_ADDR as u32);
    set(64, name_addr);
    write(mem, &info, INFO_ADDR)?;

    Ok(MultibootBoot { entry: plan.entry, info_addr: INFO_ADDR as u32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEM: u64 = 16 << 20;

    fn layout() -> RamLayout {
        RamLayout::new(MEM).unwrap()
    }

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap()
    }
    fn r32(m: &GuestMemoryMmap, a: u64) -> u32 {
        m.read_obj::<u32>(GuestAddress(a)).unwrap()
    }
    fn r64(m: &GuestMemoryMmap, a: u64) -> u64 {
        m.read_obj::<u64>(GuestAddress(a)).unwrap()
    }
    fn rbytes(m: &GuestMemoryMmap, a: u64, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        m.read_slice(&mut v, GuestAddress(a)).unwrap();
        v
    }
    fn cstr(m: &GuestMemoryMmap, a: u64) -> String {
        let mut s = Vec::new();
        for i in 0..4096 {
            let b = rbytes(m, a + i, 1)[0];
            if b == 0 {
                break;
            }
            s.push(b);
        }
        String::from_utf8(s).unwrap()
    }
    fn put32(b: &mut [u8], o: usize, v: u32) {
        b[o..o + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn put64(b: &mut [u8], o: usize, v: u64) {
        b[o..o + 8].copy_from_slice(&v.to_le_bytes());
    }
    fn header(b: &mut [u8], o: usize, flags: u32) {
        put32(b, o, HEADER_MAGIC);
        put32(b, o + 4, flags);
        put32(b, o + 8, 0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags));
    }

    /// Flat a.out-kludge image: header at offset 0x10, loaded at 1 MiB,
    /// 0x200 bytes of file, bss to 0x101000, entry at 0x100040.
    fn aout() -> Vec<u8> {
        let mut b = vec![0u8; 0x200];
        for (i, x) in b.iter_mut().enumerate().skip(0x40) {
            *x = (i as u8) | 1;
        }
        header(&mut b, 0x10, HF_AOUT_KLUDGE | HF_PAGE_ALIGN | HF_MEMORY_INFO);
        put32(&mut b, 0x10 + 12, 0x100010); // header_addr
        put32(&mut b, 0x10 + 16, 0x100000); // load_addr
        put32(&mut b, 0x10 + 20, 0x100200); // load_end_addr
        put32(&mut b, 0x10 + 24, 0x101000); // bss_end_addr
        put32(&mut b, 0x10 + 28, 0x100040); // entry_addr
        b
    }

    /// ELF32 i386 executable: one PT_LOAD at paddr, vaddr = paddr +
    /// 0xC0000000 (higher-half style), data at file offset 0x1000.
    fn elf32(paddr: u32, filesz: u32, memsz: u32) -> Vec<u8> {
        let mut b = vec![0u8; 0x1000 + filesz as usize];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 1;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        b[18..20].copy_from_slice(&3u16.to_le_bytes()); // EM_386
        put32(&mut b, 24, 0xC000_0000 + paddr + 4); // e_entry (virtual)
        put32(&mut b, 28, 52); // e_phoff
        b[42..44].copy_from_slice(&32u16.to_le_bytes());
        b[44..46].copy_from_slice(&1u16.to_le_bytes());
        let o = 52;
        put32(&mut b, o, 1); // PT_LOAD
        put32(&mut b, o + 4, 0x1000);
        put32(&mut b, o + 8, 0xC000_0000 + paddr);
        put32(&mut b, o + 12, paddr);
        put32(&mut b, o + 16, filesz);
        put32(&mut b, o + 20, memsz);
        header(&mut b, 0x100, HF_PAGE_ALIGN | HF_MEMORY_INFO);
        for (i, x) in b.iter_mut().enumerate().skip(0x1000) {
            *x = 0xA0 | (i as u8 & 0xF);
        }
        b
    }

    fn elf64(paddr: u64, filesz: u64, memsz: u64) -> Vec<u8> {
        let mut b = vec![0u8; 0x1000 + filesz as usize];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16..18].copy_from_slice(&2u16.to_le_bytes());
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        put64(&mut b, 24, paddr);
        put64(&mut b, 32, 64);
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        let o = 64;
        put32(&mut b, o, 1);
        put64(&mut b, o + 8, 0x1000);
        put64(&mut b, o + 16, paddr);
        put64(&mut b, o + 24, paddr);
        put64(&mut b, o + 32, filesz);
        put64(&mut b, o + 40, memsz);
        header(&mut b, 0x200, 0);
        b
    }

    #[test]
    fn aout_kludge_loads_and_zeroes_bss() {
        let m = mem();
        m.write_slice(&[0xEE; 0x1000], GuestAddress(0x100200)).unwrap(); // dirty bss
        let img = aout();
        let boot = load(&m, &img, "", &[], &layout()).unwrap();
        assert_eq!(boot, MultibootBoot { entry: 0x100040, info_addr: INFO_ADDR as u32 });
        assert_eq!(rbytes(&m, 0x100000, 0x200), img);
        assert!(rbytes(&m, 0x100200, 0xE00).iter().all(|&b| b == 0), "bss zeroed");
        assert_eq!(rbytes(&m, 0x101000, 4), [0xEE; 4], "nothing past bss_end");
    }

    #[test]
    fn aout_header_addr_offset_into_file() {
        // File starts with 0x100 bytes of junk not loaded: load_addr maps to
        // file offset 0x100 because the header (at 0x110) sits 0x10 in.
        let mut img = vec![0x55u8; 0x100];
        img.extend(aout());
        put32(&mut img, 0x110 + 20, 0); // load_end_addr 0: to end of file
        put32(&mut img, 0x110 + 24, 0); // no bss
        put32(&mut img, 0x110 + 12, 0x100010);
        let m = mem();
        let boot = load(&m, &img, "", &[], &layout()).unwrap();
        assert_eq!(boot.entry, 0x100040);
        assert_eq!(rbytes(&m, 0x100000, 0x200), img[0x100..]);
    }

    #[test]
    fn aout_rejects_bad_fields() {
        let m = mem();
        let mut i = aout();
        for (o, v) in [(12, 0x9F010), (16, 0x9F000), (20, 0x9F200), (24, 0xA1000), (28, 0x9F040)] {
            put32(&mut i, 0x10 + o, v); // bss into the EBDA and the legacy hole
        }
        assert!(load(&m, &i, "", &[], &layout()).unwrap_err().message.contains("does not fit"));
        let mut i = aout();
        put32(&mut i, 0x10 + 20, 0x100400); // past the end of file
        assert!(load(&m, &i, "", &[], &layout()).unwrap_err().message.contains("past the end"));
        let mut i = aout();
        put32(&mut i, 0x10 + 24, 0x100100); // bss_end < load_end
        assert!(load(&m, &i, "", &[], &layout()).is_err());
        let mut i = aout();
        put32(&mut i, 0x10 + 28, 0x200000); // entry outside
        assert!(load(&m, &i, "", &[], &layout()).unwrap_err().message.contains("entry_addr"));
        let mut i = aout();
        put32(&mut i, 0x10 + 12, 0x1000F0); // header_addr - load_addr > offset
        assert!(load(&m, &i, "", &[], &layout()).unwrap_err().message.contains("before the start"));
        let mut i = aout();
        put32(&mut i, 0x10 + 12, 0x0F0000); // header_addr < load_addr
        assert!(load(&m, &i, "", &[], &layout()).is_err());
        let mut i = aout();
        put32(&mut i, 0x10 + 24, 0xFFFF_F000); // bss past RAM
        assert!(load(&m, &i, "", &[], &layout()).unwrap_err().message.contains("does not fit"));
        // Address fields truncated by the 8 KiB limit.
        let mut i = vec![0u8; 0x2100];
        header(&mut i, 0x1FF0, HF_AOUT_KLUDGE);
        assert!(load(&m, &i, "", &[], &layout()).unwrap_err().message.contains("8192"));
    }

    #[test]
    fn loads_into_conventional_memory_with_modules_above_1_mib() {
        let m = mem();
        let mut i = aout();
        for (o, v) in [(12, 0x8010), (16, 0x8000), (20, 0x8200), (24, 0xA86C), (28, 0x8040)] {
            put32(&mut i, 0x10 + o, v); // a real-mode-era kernel at 0x8000
        }
        let module = MultibootModule { bytes: b"mod", cmdline: "m" };
        let boot = load(&m, &i, "", &[module], &layout()).unwrap();
        assert_eq!(boot.entry, 0x8040);
        assert_eq!(rbytes(&m, 0x8000, 0x200), i);
        assert_eq!(r32(&m, INFO_ADDR + 24) as u64, MODS_ADDR);
        assert_eq!(r32(&m, MODS_ADDR), 0x100000, "module at 1 MiB, not in the EBDA");
    }

    #[test]
    fn elf32_loads_by_paddr_and_translates_entry() {
        let m = mem();
        m.write_slice(&[0xEE; 0x100], GuestAddress(0x200100)).unwrap();
        let img = elf32(0x200000, 0x100, 0x2000);
        let boot = load(&m, &img, "x", &[], &layout()).unwrap();
        assert_eq!(boot.entry, 0x200004);
        assert_eq!(rbytes(&m, 0x200000, 0x100), img[0x1000..0x1100]);
        assert!(rbytes(&m, 0x200100, 0x1F00).iter().all(|&b| b == 0));
    }

    #[test]
    fn elf64_loads() {
        let m = mem();
        let img = elf64(0x300000, 0x80, 0x80);
        let boot = load(&m, &img, "", &[], &layout()).unwrap();
        assert_eq!(boot.entry, 0x300000);
        assert_eq!(rbytes(&m, 0x300000, 0x80), img[0x1000..0x1080]);
    }

    #[test]
    fn elf_rejects_hostile_headers() {
        let m = mem();
        let e = |img: &[u8]| load(&m, img, "", &[], &layout()).unwrap_err();
        assert!(e(&elf32(0x9F000, 0x100, 0x1000)).message.contains("does not fit"), "into the EBDA");
        assert!(e(&elf32(0x20000, 0x100, 0x100)).message.contains("overlaps the boot information area"));
        assert!(e(&elf32(0x0, 0x100, 0x100)).message.contains("does not fit"), "page 0");
        assert!(e(&elf32(0xFF_FF00, 0x100, 0x200)).message.contains("does not fit"), "past RAM");
        assert!(e(&elf32(0x100000, 0x100, 0xFFFF_FFFF)).message.contains("does not fit"));
        assert!(e(&elf64(0x100000, 0x80, u64::MAX)).message.contains("overflows"), "overflow");
        let mut i = elf32(0x100000, 0x100, 0x100);
        put32(&mut i, 52 + 16, 0x200); // filesz > memsz
        assert!(e(&i).message.contains("exceeds"));
        let mut i = elf32(0x100000, 0x100, 0x1000);
        put32(&mut i, 52 + 16, 0x800); // data past the file
        assert!(e(&i).message.contains("outside the file"));
        let mut i = elf32(0x100000, 0x100, 0x100);
        i[44..46].copy_from_slice(&0xFFFFu16.to_le_bytes()); // phnum
        assert!(e(&i).message.contains("program headers"));
        let mut i = elf32(0x100000, 0x100, 0x100);
        put32(&mut i, 28, 0xFFFF_FFF0); // phoff
        assert!(e(&i).message.contains("program headers"));
        let mut i = elf32(0x100000, 0x100, 0x100);
        put32(&mut i, 24, 0x500000); // entry in no segment
        assert!(e(&i).message.contains("entry point"));
        let mut i = elf32(0x100000, 0x100, 0x100);
        i[18] = 62; // ELF32 claiming x86-64
        assert!(e(&i).message.contains("machine"));
        let mut i = elf32(0x100000, 0x100, 0x100);
        i[16] = 3; // ET_DYN
        assert!(e(&i).message.contains("ET_EXEC"));
        let mut i = elf32(0x100000, 0x100, 0x100);
        i[0] = 0; // not ELF, no address fields
        assert!(e(&i).message.contains("not an ELF"));
    }

    #[test]
    fn rejects_bad_checksum_and_missing_header() {
        let m = mem();
        let mut i = aout();
        put32(&mut i, 0x10 + 8, 0x1234);
        assert!(load(&m, &i, "", &[], &layout()).unwrap_err().message.contains("checksum"));
        assert_eq!(load(&m, &i, "", &[], &layout()).unwrap_err().code, Code::BadImage);
        assert!(load(&m, b"", "", &[], &layout()).unwrap_err().message.contains("no multiboot header"));
        assert!(load(&m, &[0u8; 11], "", &[], &layout()).is_err());
        // A header that is not 4-byte aligned is not found.
        let mut i = vec![0u8; 0x300];
        header(&mut i, 0x12, 0);
        assert!(load(&m, &i, "", &[], &layout()).unwrap_err().message.contains("no multiboot header"));
    }

    #[test]
    fn rejects_header_past_8k() {
        let m = mem();
        let mut img = vec![0u8; 0x2000];
        img.extend(aout());
        assert!(load(&m, &img, "", &[], &layout()).unwrap_err().message.contains("no multiboot header"));
        // The last aligned slot that still fits 12 bytes is accepted (and
        // then fails only for lack of an ELF header).
        let mut img = vec![0u8; 0x3000];
        header(&mut img, 0x2000 - 12, 0);
        assert!(load(&m, &img, "", &[], &layout()).unwrap_err().message.contains("not an ELF"));
        let mut img = vec![0u8; 0x3000];
        header(&mut img, 0x2000 - 8, 0);
        assert!(load(&m, &img, "", &[], &layout()).unwrap_err().message.contains("no multiboot header"));
    }

    #[test]
    fn required_flags() {
        let m = mem();
        let mut i = aout();
        header(&mut i, 0x10, HF_AOUT_KLUDGE | HF_VIDEO_MODE);
        assert!(load(&m, &i, "", &[], &layout()).is_ok(), "video mode request accepted (no video)");
        assert_eq!(r32(&m, INFO_ADDR) & (1 << 11), 0, "no VBE info");
        header(&mut i, 0x10, HF_AOUT_KLUDGE | (1 << 5));
        assert!(load(&m, &i, "", &[], &layout()).unwrap_err().message.contains("unsupported"));
        header(&mut i, 0x10, HF_AOUT_KLUDGE | (1 << 20));
        assert!(load(&m, &i, "", &[], &layout()).is_ok(), "unknown optional bits ignored");
    }

    #[test]
    fn info_structure_contents() {
        let m = mem();
        load(&m, &aout(), "kernel arg=42", &[], &layout()).unwrap();
        let i = INFO_ADDR;
        assert_eq!(r32(&m, i), MBI_MEMORY | MBI_CMDLINE | MBI_MODS | MBI_MMAP | MBI_BOOT_LOADER_NAME);
        assert_eq!(r32(&m, i + 4), 639);
        assert_eq!(r32(&m, i + 8), ((MEM - 0x100000) >> 10) as u32);
        assert_eq!(cstr(&m, r32(&m, i + 16) as u64), "kernel arg=42");
        assert_eq!(r32(&m, i + 20), 0);
        assert_eq!(cstr(&m, r32(&m, i + 64) as u64), "denovmm");
        let (len, addr) = (r32(&m, i + 44) as u64, r32(&m, i + 48) as u64);
        assert_eq!(len, 96);
        let mut entries = Vec::new();
        let mut a = addr;
        while a < addr + len {
            let size = r32(&m, a) as u64;
            entries.push((r64(&m, a + 4), r64(&m, a + 12), r32(&m, a + 20)));
            a += size + 4;
        }
        assert_eq!(
            entries,
            [(0, 0x9FC00, 1), (0x9FC00, 0xA0000 - 0x9FC00, 2), (0xF0000, 0x10000, 2), (0x100000, MEM - 0x100000, 1)]
        );
        // Everything in the low area, above the host's structures.
        for p in [r32(&m, i + 16), r32(&m, i + 24), r32(&m, i + 48), r32(&m, i + 64)] {
            assert!((0x10000..INFO_END).contains(&(p as u64)));
        }
    }

    #[test]
    fn modules_and_cmdlines() {
        let m = mem();
        let m0 = b"MODULE0 payload".to_vec();
        let m1 = vec![0x42u8; 0x1801];
        let m2: Vec<u8> = Vec::new();
        let mods = [
            MultibootModule { bytes: &m0, cmdline: "mod0 a=1" },
            MultibootModule { bytes: &m1, cmdline: "" },
            MultibootModule { bytes: &m2, cmdline: "empty" },
        ];
        load(&m, &aout(), "denovmm-multiboot-test arg=42", &mods, &layout()).unwrap();
        assert_eq!(r32(&m, INFO_ADDR + 20), 3);
        let list = r32(&m, INFO_ADDR + 24) as u64;
        let ent = |k: u64| (r32(&m, list + 16 * k), r32(&m, list + 16 * k + 4), r32(&m, list + 16 * k + 8));
        let (s0, e0, c0) = ent(0);
        let (s1, e1, c1) = ent(1);
        let (s2, e2, c2) = ent(2);
        assert_eq!(s0, 0x101000, "first module page-aligned after bss_end");
        assert_eq!(e0 - s0, m0.len() as u32);
        assert_eq!(rbytes(&m, s0 as u64, m0.len()), m0);
        assert_eq!(s1, 0x102000);
        assert_eq!(e1, 0x103801);
        assert_eq!(rbytes(&m, s1 as u64, m1.len()), m1);
        assert_eq!((s2, e2), (0x104000, 0x104000));
        assert_eq!(cstr(&m, c0 as u64), "mod0 a=1");
        assert_eq!(cstr(&m, c1 as u64), "");
        assert_eq!(cstr(&m, c2 as u64), "empty");
        assert_eq!(cstr(&m, r32(&m, INFO_ADDR + 16) as u64), "denovmm-multiboot-test arg=42");
    }

    #[test]
    fn rejects_bad_arguments() {
        let m = mem();
        let big = vec![0u8; MEM as usize];
        let e = load(&m, &aout(), "", &[MultibootModule { bytes: &big, cmdline: "" }], &layout()).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert!(e.message.contains("does not fit"));
        assert!(load(&m, &aout(), "a\0b", &[], &layout()).is_err());
        let long = "x".repeat(0x10000);
        assert!(load(&m, &aout(), &long, &[], &layout()).unwrap_err().message.contains("boot information area"));
    }

    #[test]
    fn ram_past_the_hole_is_in_the_map_at_4_gib() {
        let m = mem();
        let big = RamLayout::new(5 << 30).unwrap();
        load(&m, &aout(), "", &[], &big).unwrap();
        assert_eq!(r32(&m, INFO_ADDR + 8) as u64, (crate::layout::RAM_HOLE_START - 0x100000) >> 10, "mem_upper");
        let (len, addr) = (r32(&m, INFO_ADDR + 44) as u64, r32(&m, INFO_ADDR + 48) as u64);
        assert_eq!(len, 5 * MMAP_ENTRY);
        assert!(addr + len <= MODS_ADDR, "map ends before the module list");
        let last = addr + 4 * MMAP_ENTRY;
        assert_eq!((r64(&m, last + 4), r64(&m, last + 12), r32(&m, last + 20)), (1 << 32, (5 << 30) - 0xB000_0000, 1));
    }

    #[test]
    fn nothing_written_on_error() {
        let m = mem();
        let mut i = aout();
        put32(&mut i, 0x10 + 28, 0x200000);
        assert!(load(&m, &i, "cmd", &[], &layout()).is_err());
        assert!(rbytes(&m, 0x100000, 0x200).iter().all(|&b| b == 0));
        assert!(rbytes(&m, INFO_ADDR, 0x100).iter().all(|&b| b == 0));
    }
}
