//! The one ELF parser of the core: bounds-checked ELF32/ELF64 executable
//! headers and PT_LOAD program headers. Callers ([`crate::loader`] for
//! ELF64 long-mode guests, [`crate::multiboot`] for Multiboot kernels) add
//! their own policy (machine, where segments may load, entry translation).

use crate::error::{Code, Error, Result};

/// `e_machine` of i386.
pub const EM_386: u16 = 3;
/// `e_machine` of x86-64.
pub const EM_X86_64: u16 = 62;
const ET_EXEC: u16 = 2;
const PT_LOAD: u32 = 1;

/// One PT_LOAD segment whose file bytes lie inside the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// File offset.
    pub offset: u64,
    /// Virtual address.
    pub vaddr: u64,
    /// Physical load address.
    pub paddr: u64,
    /// Bytes from the file.
    pub filesz: u64,
    /// Bytes in memory (the rest is zeroed).
    pub memsz: u64,
}

/// A parsed executable: class, machine, entry and non-empty PT_LOAD segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elf {
    /// True for ELF64, false for ELF32.
    pub is64: bool,
    /// `e_machine`.
    pub machine: u16,
    /// `e_entry` (virtual).
    pub entry: u64,
    /// PT_LOAD segments with `memsz > 0`, in file order.
    pub segments: Vec<Segment>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::new(Code::BadImage, msg)
}

/// A little-endian reader that fails instead of panicking past the end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&self, off: u64) -> Result<[u8; N]> {
        let start = usize::try_from(off).map_err(|_| bad("ELF offset out of range"))?;
        start
            .checked_add(N)
            .and_then(|end| self.0.get(start..end))
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| bad(format!("ELF truncated: {N} bytes at offset {off:#x} lie outside the file")))
    }
    fn u16(&self, off: u64) -> Result<u16> {
        Ok(u16::from_le_bytes(self.bytes(off)?))
    }
    fn u32(&self, off: u64) -> Result<u32> {
        Ok(u32::from_le_bytes(self.bytes(off)?))
    }
    fn u64(&self, off: u64) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes(off)?))
    }
    /// A word of the file's class: u64 for ELF64, u32 for ELF32.
    fn word(&self, is64: bool, off: u64) -> Result<u64> {
        if is64 {
            self.u64(off)
        } else {
            self.u32(off).map(u64::from)
        }
    }
}

/// True when `bytes` starts with the ELF magic.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Parse a little-endian ELF32 or ELF64 executable (ET_EXEC). Every offset
/// and size is checked against the file; segment addresses are not (that
/// is the caller's policy).
pub fn parse(bytes: &[u8]) -> Result<Elf> {
    if !is_elf(bytes) {
        return Err(bad("not an ELF file"));
    }
    let r = Reader(bytes);
    let [class, data] = r.bytes::<2>(4)?;
    if data != 1 {
        return Err(bad("ELF is not little-endian"));
    }
    let is64 = match class {
        1 => false,
        2 => true,
        c => return Err(bad(format!("unknown ELF class {c}"))),
    };
    if r.u16(16)? != ET_EXEC {
        return Err(bad("ELF is not an executable (ET_EXEC)"));
    }
    let machine = r.u16(18)?;
    let entry = r.word(is64, 24)?;
    let (phoff, phentsize, phnum) = if is64 {
        (r.u64(32)?, r.u16(54)? as u64, r.u16(56)? as u64)
    } else {
        (r.u32(28)? as u64, r.u16(42)? as u64, r.u16(44)? as u64)
    };
    let min_ph = if is64 { 56 } else { 32 };
    if phentsize < min_ph {
        return Err(bad(format!("unexpected program header size {phentsize}")));
    }
    let ph_end = phnum.checked_mul(phentsize).and_then(|n| n.checked_add(phoff));
    if ph_end.is_none_or(|e| e > bytes.len() as u64) {
        return Err(bad("program headers lie outside the file"));
    }
    let mut segments = Vec::new();
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if r.u32(o)? != PT_LOAD {
            continue;
        }
        let s = if is64 {
            Segment {
                offset: r.u64(o + 8)?,
                vaddr: r.u64(o + 16)?,
                paddr: r.u64(o + 24)?,
                filesz: r.u64(o + 32)?,
                memsz: r.u64(o + 40)?,
            }
        } else {
            Segment {
                offset: r.u32(o + 4)? as u64,
                vaddr: r.u32(o + 8)? as u64,
                paddr: r.u32(o + 12)? as u64,
                filesz: r.u32(o + 16)? as u64,
                memsz: r.u32(o + 20)? as u64,
            }
        };
        if s.memsz == 0 {
            continue;
        }
        if s.filesz > s.memsz {
            return Err(bad(format!("segment {i}: file size exceeds memory size")));
        }
        if s.offset.checked_add(s.filesz).is_none_or(|e| e > bytes.len() as u64) {
            return Err(bad(format!("segment {i}: data lies outside the file")));
        }
        if s.paddr.checked_add(s.memsz).is_none() || s.vaddr.checked_add(s.memsz).is_none() {
            return Err(bad(format!("segment {i}: address + size overflows")));
        }
        segments.push(s);
    }
    if segments.is_empty() {
        return Err(bad("ELF has no loadable segment"));
    }
    Ok(Elf { is64, machine, entry, segments })
}

impl Segment {
    /// The file bytes of this segment (checked by [`parse`]).
    pub fn data<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        &file[self.offset as usize..(self.offset + self.filesz) as usize]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF of `class` (1 or 2) with one PT_LOAD segment.
    pub(crate) fn elf(is64: bool, machine: u16, entry: u64, paddr: u64, filesz: u64, memsz: u64) -> Vec<u8> {
        let (eh, ph) = if is64 { (64usize, 56usize) } else { (52, 32) };
        let mut b = vec![0u8; eh + ph + filesz as usize];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = if is64 { 2 } else { 1 };
        b[5] = 1;
        b[16..18].copy_from_slice(&2u16.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        let off = (eh + ph) as u64;
        if is64 {
            b[24..32].copy_from_slice(&entry.to_le_bytes());
            b[32..40].copy_from_slice(&(eh as u64).to_le_bytes());
            b[54..56].copy_from_slice(&(ph as u16).to_le_bytes());
            b[56..58].copy_from_slice(&1u16.to_le_bytes());
            let p = eh;
            b[p..p + 4].copy_from_slice(&1u32.to_le_bytes());
            b[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
            b[p + 16..p + 24].copy_from_slice(&paddr.to_le_bytes());
            b[p + 24..p + 32].copy_from_slice(&paddr.to_le_bytes());
            b[p + 32..p + 40].copy_from_slice(&filesz.to_le_bytes());
            b[p + 40..p + 48].copy_from_slice(&memsz.to_le_bytes());
        } else {
            b[24..28].copy_from_slice(&(entry as u32).to_le_bytes());
            b[28..32].copy_from_slice(&(eh as u32).to_le_bytes());
            b[42..44].copy_from_slice(&(ph as u16).to_le_bytes());
            b[44..46].copy_from_slice(&1u16.to_le_bytes());
            let p = eh;
            b[p..p + 4].copy_from_slice(&1u32.to_le_bytes());
            b[p + 4..p + 8].copy_from_slice(&(off as u32).to_le_bytes());
            b[p + 8..p + 12].copy_from_slice(&(paddr as u32).to_le_bytes());
            b[p + 12..p + 16].copy_from_slice(&(paddr as u32).to_le_bytes());
            b[p + 16..p + 20].copy_from_slice(&(filesz as u32).to_le_bytes());
            b[p + 20..p + 24].copy_from_slice(&(memsz as u32).to_le_bytes());
        }
        b
    }

    #[test]
    fn parses_both_classes() {
        for is64 in [false, true] {
            let b = elf(is64, if is64 { EM_X86_64 } else { EM_386 }, 0x10_0000, 0x10_0000, 16, 32);
            let e = parse(&b).unwrap();
            assert_eq!((e.is64, e.entry, e.segments.len()), (is64, 0x10_0000, 1));
            assert_eq!(e.segments[0].data(&b).len(), 16);
        }
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        for is64 in [false, true] {
            let b = elf(is64, EM_X86_64, 0x10_0000, 0x10_0000, 16, 32);
            for cut in 0..b.len() {
                assert!(parse(&b[..cut]).is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn hostile_headers_are_refused() {
        let good = elf(true, EM_X86_64, 0x10_0000, 0x10_0000, 16, 32);
        let mut b = good.clone();
        b[32..40].copy_from_slice(&u64::MAX.to_le_bytes()); // phoff
        assert!(parse(&b).is_err());
        let mut b = good.clone();
        b[64 + 8..64 + 16].copy_from_slice(&u64::MAX.to_le_bytes()); // p_offset
        assert!(parse(&b).is_err());
        let mut b = good.clone();
        b[64 + 32..64 + 40].copy_from_slice(&64u64.to_le_bytes()); // filesz > memsz
        assert!(parse(&b).is_err());
        let mut b = good.clone();
        b[64 + 24..64 + 32].copy_from_slice(&(u64::MAX - 4).to_le_bytes()); // paddr overflow
        assert!(parse(&b).is_err());
        let mut b = good;
        b[5] = 2;
        assert!(parse(&b).is_err());
        // pseudo-random garbage never panics
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut g = elf(true, EM_X86_64, 0x10_0000, 0x10_0000, 8, 8);
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % g.len();
                g[i] = (x >> 32) as u8;
            }
            let _ = parse(&g);
        }
    }
}
