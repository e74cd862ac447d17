//! Crash-report pieces that need no KVM: the CPU mode from the control
//! registers, a guest page-table walk (bounds-checked through a physical
//! read callback), reading the instruction bytes at RIP, and recognising
//! the instructions this project's host cannot emulate.

/// Guest CPU mode. Values are part of the C ABI.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMode {
    /// CR0.PE = 0.
    Real = 0,
    /// Protected mode with RFLAGS.VM.
    V8086 = 1,
    /// Protected mode, 16-bit code segment.
    Protected16 = 2,
    /// Protected mode, 32-bit code segment.
    Protected32 = 3,
    /// Long mode, compatibility (16/32-bit) code segment.
    Compat = 4,
    /// Long mode, 64-bit code segment.
    Long64 = 5,
}

/// Instruction classes the development host's KVM cannot emulate (its
/// instruction emulator ends the run with an internal error). Values are
/// part of the C ABI.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsnHint {
    /// Nothing recognised.
    None = 0,
    /// `int3` (0xCC).
    Int3 = 1,
    /// `int n` (0xCD), `into`, `int1`.
    IntN = 2,
    /// 16/32-bit `iret` (0xCF without REX.W).
    Iret = 3,
    /// `cmpxchg16b`.
    Cmpxchg16b = 4,
    /// `xsave`, `xrstor`, `xsaveopt`, `xsavec`, `xsaves`, `xrstors`.
    Xsave = 5,
    /// `fxsave`, `fxrstor`, `ldmxcsr`, `stmxcsr`.
    Fxsave = 6,
    /// `xgetbv`, `xsetbv`.
    Xgetbv = 7,
    /// `vmcall`, `vmmcall`.
    Vmcall = 8,
}

/// Why the instruction bytes could not (all) be read. Values are ABI.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsnRead {
    /// All 15 bytes read.
    Ok = 0,
    /// A page on the way is not present in the guest's page tables.
    NotMapped = 1,
    /// A page-table entry or the code is outside guest RAM.
    OutsideRam = 2,
}

/// Registers the mode and the page walk depend on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// CR0.
    pub cr0: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// EFER.
    pub efer: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// CS.L.
    pub cs_l: bool,
    /// CS.D/B.
    pub cs_db: bool,
    /// CS base.
    pub cs_base: u64,
    /// RIP.
    pub rip: u64,
}

const CR0_PE: u64 = 1;
const CR0_PG: u64 = 1 << 31;
const CR4_PSE: u64 = 1 << 4;
const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;
const EFER_LMA: u64 = 1 << 10;
const RFLAGS_VM: u64 = 1 << 17;
const PHYS_MASK: u64 = 0x000f_ffff_ffff_f000;

impl Cpu {
    /// The mode (SDM vol. 3 2.2 and 9.8).
    pub fn mode(&self) -> CpuMode {
        if self.cr0 & CR0_PE == 0 {
            CpuMode::Real
        } else if self.efer & EFER_LMA != 0 {
            if self.cs_l {
                CpuMode::Long64
            } else {
                CpuMode::Compat
            }
        } else if self.rflags & RFLAGS_VM != 0 {
            CpuMode::V8086
        } else if self.cs_db {
            CpuMode::Protected32
        } else {
            CpuMode::Protected16
        }
    }

    /// Linear address of RIP: CS base + IP truncated to the code size
    /// (the base is ignored in 64-bit mode).
    pub fn rip_linear(&self) -> u64 {
        match self.mode() {
            CpuMode::Long64 => self.rip,
            CpuMode::Real | CpuMode::V8086 | CpuMode::Protected16 => {
                self.cs_base.wrapping_add(self.rip & 0xffff) & 0xffff_ffff
            }
            _ => self.cs_base.wrapping_add(self.rip & 0xffff_ffff) & 0xffff_ffff,
        }
    }

    /// Translate a linear address through the guest's page tables (SDM
    /// vol. 3 4.3-4.5): none, 32-bit (with 4 MiB pages), PAE, 4- and
    /// 5-level. `read(pa, width)` reads `width` (4 or 8) bytes of guest
    /// RAM, None outside it.
    pub fn translate(&self, linear: u64, read: &dyn Fn(u64, usize) -> Option<u64>) -> Result<u64, InsnRead> {
        if self.cr0 & CR0_PG == 0 {
            return Ok(linear & 0xffff_ffff);
        }
        let entry = |pa: u64, width: usize| -> Result<u64, InsnRead> {
            let e = read(pa, width).ok_or(InsnRead::OutsideRam)?;
            if e & 1 == 0 {
                return Err(InsnRead::NotMapped);
            }
            Ok(e)
        };
        if self.cr4 & CR4_PAE == 0 {
            let lin = linear & 0xffff_ffff;
            let pde = entry((self.cr3 & 0xffff_f000) + ((lin >> 22) & 0x3ff) * 4, 4)?;
            if pde & (1 << 7) != 0 && self.cr4 & CR4_PSE != 0 {
                return Ok((pde & 0xffc0_0000) | ((pde >> 13) & 0xff) << 32 | (lin & 0x3f_ffff));
            }
            let pte = entry((pde & 0xffff_f000) + ((lin >> 12) & 0x3ff) * 4, 4)?;
            return Ok((pte & 0xffff_f000) | (lin & 0xfff));
        }
        let (mut table, levels) = if self.efer & EFER_LMA == 0 {
            let lin = linear & 0xffff_ffff;
            let pdpte = entry((self.cr3 & 0xffff_ffe0) + ((lin >> 30) & 3) * 8, 8)?;
            (pdpte & PHYS_MASK, 2)
        } else if self.cr4 & CR4_LA57 != 0 {
            (self.cr3 & PHYS_MASK, 5)
        } else {
            (self.cr3 & PHYS_MASK, 4)
        };
        for level in (1..=levels).rev() {
            let shift = 12 + 9 * (level - 1);
            let e = entry(table + ((linear >> shift) & 0x1ff) * 8, 8)?;
            // Large pages: 1 GiB at level 3, 2 MiB at level 2.
            if (level == 2 || level == 3) && e & (1 << 7) != 0 {
                let size = 1u64 << shift;
                return Ok((e & PHYS_MASK & !(size - 1)) | (linear & (size - 1)));
            }
            table = e & PHYS_MASK;
        }
        Ok(table | (linear & 0xfff))
    }

    /// Read up to 15 instruction bytes at RIP, page by page; stops at the
    /// first byte that cannot be read and says why.
    pub fn read_insn(
        &self,
        read: &dyn Fn(u64, usize) -> Option<u64>,
        read_bytes: &dyn Fn(u64, &mut [u8]) -> bool,
    ) -> (Vec<u8>, InsnRead) {
        let mut out = Vec::with_capacity(15);
        let mut lin = self.rip_linear();
        while out.len() < 15 {
            let pa = match self.translate(lin, read) {
                Ok(pa) => pa,
                Err(e) => return (out, e),
            };
            let n = (0x1000 - (lin & 0xfff) as usize).min(15 - out.len());
            let mut buf = [0u8; 15];
            if !read_bytes(pa, &mut buf[..n]) {
                return (out, InsnRead::OutsideRam);
            }
            out.extend_from_slice(&buf[..n]);
            lin = lin.wrapping_add(n as u64);
        }
        (out, InsnRead::Ok)
    }
}

/// Recognise an instruction this host cannot emulate from its bytes.
pub fn classify(bytes: &[u8], mode: CpuMode) -> InsnHint {
    let mut i = 0;
    let mut rex_w = false;
    while let Some(&b) = bytes.get(i) {
        match b {
            0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3 => i += 1,
            0x40..=0x4f if mode == CpuMode::Long64 => {
                rex_w = b & 8 != 0;
                i += 1;
            }
            _ => break,
        }
    }
    let at = |k: usize| bytes.get(i + k).copied();
    let modrm_reg = |m: u8| (m >> 3) & 7;
    let is_mem = |m: u8| m >> 6 != 3;
    match at(0) {
        Some(0xcc) => InsnHint::Int3,
        Some(0xcd | 0xce | 0xf1) => InsnHint::IntN,
        Some(0xcf) if !(rex_w && mode == CpuMode::Long64) => InsnHint::Iret,
        Some(0x0f) => match (at(1), at(2)) {
            (Some(0x01), Some(0xc1 | 0xd9)) => InsnHint::Vmcall,
            (Some(0x01), Some(0xd0 | 0xd1)) => InsnHint::Xgetbv,
            (Some(0xae), Some(m)) if is_mem(m) && (4..=6).contains(&modrm_reg(m)) => InsnHint::Xsave,
            (Some(0xae), Some(m)) if is_mem(m) && modrm_reg(m) <= 3 => InsnHint::Fxsave,
            (Some(0xc7), Some(m)) if is_mem(m) && modrm_reg(m) == 1 && rex_w => InsnHint::Cmpxchg16b,
            (Some(0xc7), Some(m)) if is_mem(m) && (3..=5).contains(&modrm_reg(m)) => InsnHint::Xsave,
            _ => InsnHint::None,
        },
        _ => InsnHint::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A sparse fake guest RAM of `size` bytes.
    struct Ram {
        size: u64,
        words: HashMap<u64, u64>,
        bytes: HashMap<u64, u8>,
    }

    impl Ram {
        fn new(size: u64) -> Ram {
            Ram { size, words: HashMap::new(), bytes: HashMap::new() }
        }
        fn read(&self, pa: u64, width: usize) -> Option<u64> {
            if pa + width as u64 > self.size {
                return None;
            }
            let v = self.words.get(&pa).copied().unwrap_or(0);
            Some(if width == 4 { v & 0xffff_ffff } else { v })
        }
        fn read_bytes(&self, pa: u64, buf: &mut [u8]) -> bool {
            if pa + buf.len() as u64 > self.size {
                return false;
            }
            for (i, b) in buf.iter_mut().enumerate() {
                *b = self.bytes.get(&(pa + i as u64)).copied().unwrap_or(0x90);
            }
            true
        }
    }

    fn long64(rip: u64, cr3: u64) -> Cpu {
        Cpu { cr0: 0x8001_0033, cr3, cr4: 0x20, efer: 0x500, rflags: 2, cs_l: true, cs_db: false, cs_base: 0, rip }
    }

    #[test]
    fn modes() {
        let real = Cpu { cr0: 0x10, cs_base: 0xf0000, rip: 0xfff0, ..Default::default() };
        assert_eq!(real.mode(), CpuMode::Real);
        assert_eq!(real.rip_linear(), 0xffff0);
        let p32 = Cpu { cr0: 0x11, cs_db: true, cs_base: 0x1000, rip: 0x20, ..Default::default() };
        assert_eq!((p32.mode(), p32.rip_linear()), (CpuMode::Protected32, 0x1020));
        assert_eq!(Cpu { cs_db: false, ..p32 }.mode(), CpuMode::Protected16);
        assert_eq!(Cpu { rflags: RFLAGS_VM, ..p32 }.mode(), CpuMode::V8086);
        let l = long64(0xffff_ffff_8000_0000, 0x9000);
        assert_eq!((l.mode(), l.rip_linear()), (CpuMode::Long64, 0xffff_ffff_8000_0000));
        assert_eq!(Cpu { cs_l: false, cs_db: true, ..l }.mode(), CpuMode::Compat);
    }

    #[test]
    fn four_level_walk_with_4k_2m_and_1g_pages() {
        let mut ram = Ram::new(16 << 20);
        // PML4 at 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000.
        ram.words.insert(0x1000, 0x2003);
        ram.words.insert(0x2000, 0x3003);
        ram.words.insert(0x2008, 0x4000_0083); // 1 GiB page at 1 GiB
        ram.words.insert(0x3000, 0x4003);
        ram.words.insert(0x3008, 0x0060_0083); // 2 MiB page: 2 MiB -> 6 MiB
        ram.words.insert(0x4000 + 5 * 8, 0x0070_0003); // 4 KiB page 5 -> 7 MiB
        let cpu = long64(0, 0x1000);
        let r = |pa, w| ram.read(pa, w);
        assert_eq!(cpu.translate(0x5123, &r), Ok(0x70_0123));
        assert_eq!(cpu.translate(0x20_0042, &r), Ok(0x60_0042));
        assert_eq!(cpu.translate(0x4000_1234, &r), Ok(0x4000_1234));
        assert_eq!(cpu.translate(0x6000, &r), Err(InsnRead::NotMapped));
        assert_eq!(cpu.translate(0x80_0000_0000, &r), Err(InsnRead::NotMapped), "PML4 entry 1 absent");
        // A table pointer past the end of RAM is refused, not followed.
        ram.words.insert(0x3010, 0x7fff_f003);
        let r = |pa, w| ram.read(pa, w);
        assert_eq!(cpu.translate(0x40_0000, &r), Err(InsnRead::OutsideRam));
        // CR3 itself outside RAM.
        assert_eq!(long64(0, 0x1_0000_0000).translate(0, &r), Err(InsnRead::OutsideRam));
    }

    #[test]
    fn legacy_pae_and_five_level_walks() {
        let mut ram = Ram::new(8 << 20);
        // 32-bit paging: PD at 0x1000, a 4 MiB page and a 4 KiB page.
        ram.words.insert(0x1000 + 4, 0x0040_0083); // 4 MiB page 1 -> 4 MiB
        ram.words.insert(0x1000, 0x2003);
        ram.words.insert(0x2000 + 3 * 4, 0x5003);
        let c32 = Cpu { cr0: 0x8000_0011, cr3: 0x1000, cr4: CR4_PSE, cs_db: true, ..Default::default() };
        let r = |pa, w| ram.read(pa, w);
        assert_eq!(c32.translate(0x40_1234, &r), Ok(0x40_1234));
        assert_eq!(c32.translate(0x3abc, &r), Ok(0x5abc));
        // PAE: PDPT at 0x3000 (32-byte aligned), PD 0x4000, 2 MiB page.
        ram.words.insert(0x3000, 0x4001);
        ram.words.insert(0x4000 + 8, 0x0020_0083);
        let pae = Cpu { cr4: CR4_PAE, cr3: 0x3000, ..c32 };
        let r = |pa, w| ram.read(pa, w);
        assert_eq!(pae.translate(0x20_0010, &r), Ok(0x20_0010));
        // Paging off: linear is physical.
        assert_eq!(Cpu { cr0: 0x11, ..c32 }.translate(0x1234, &r), Ok(0x1234));
        // 5-level: PML5 0x6000 -> PML4 0x7000 -> PDPT 1 GiB page.
        ram.words.insert(0x6000, 0x7003);
        ram.words.insert(0x7000, 0x8003);
        ram.words.insert(0x8000, 0x83);
        let l5 = Cpu { cr4: CR4_PAE | CR4_LA57, ..long64(0, 0x6000) };
        let r = |pa, w| ram.read(pa, w);
        assert_eq!(l5.translate(0x1234_5678, &r), Ok(0x1234_5678));
    }

    #[test]
    fn instruction_bytes_across_pages_and_at_the_end_of_ram() {
        let mut ram = Ram::new(0x20_0000);
        ram.words.insert(0x1000, 0x2003);
        ram.words.insert(0x2000, 0x3003);
        ram.words.insert(0x3000, 0x4003);
        ram.words.insert(0x4000 + 8 * 0x10, 0x1_0003); // page 0x10 -> 0x10000
        ram.words.insert(0x4000 + 8 * 0x11, 0x5_0003); // page 0x11 -> 0x50000
        ram.words.insert(0x4000 + 8 * 0x20, 0x1f_f003); // last page of RAM
        ram.bytes.insert(0x10ffe, 0xcc);
        ram.bytes.insert(0x10fff, 0x0f);
        ram.bytes.insert(0x50000, 0xa2);
        let r = |pa, w| ram.read(pa, w);
        let rb = |pa, b: &mut [u8]| ram.read_bytes(pa, b);
        let (b, why) = long64(0x10ffe, 0x1000).read_insn(&r, &rb);
        assert_eq!((b.len(), why), (15, InsnRead::Ok));
        assert_eq!(&b[..3], &[0xcc, 0x0f, 0xa2]);
        // Page 0x12 is not mapped: 2 bytes, then NotMapped.
        let (b, why) = long64(0x11ffe, 0x1000).read_insn(&r, &rb);
        assert_eq!((b.len(), why), (2, InsnRead::NotMapped));
        // Paging off, RIP 4 bytes before the end of RAM: those 4, no more.
        let flat = Cpu { cr0: 0x11, cs_db: true, rip: 0x1f_fffc, ..Default::default() };
        let (b, why) = flat.read_insn(&r, &rb);
        assert_eq!((b.len(), why), (4, InsnRead::OutsideRam));
        let (b, why) = Cpu { rip: 0x20_0000, ..flat }.read_insn(&r, &rb);
        assert_eq!((b.len(), why), (0, InsnRead::OutsideRam));
        let (b, why) = Cpu { rip: 0x1f_f000, ..flat }.read_insn(&r, &rb);
        assert_eq!((b.len(), why), (15, InsnRead::Ok));
    }

    #[test]
    fn forbidden_instructions_are_recognised() {
        use CpuMode::*;
        use InsnHint::*;
        let cases: &[(&[u8], CpuMode, InsnHint)] = &[
            (&[0xcc], Long64, Int3),
            (&[0xcd, 0x80], Long64, IntN),
            (&[0xcd, 0x03], Protected32, IntN),
            (&[0xf1], Long64, IntN),
            (&[0xcf], Protected32, Iret),
            (&[0xcf], Long64, Iret),
            (&[0x48, 0xcf], Long64, None),
            (&[0xf0, 0x48, 0x0f, 0xc7, 0x0f], Long64, Cmpxchg16b),
            (&[0x0f, 0xc7, 0x0f], Long64, None), // cmpxchg8b is fine
            (&[0x0f, 0xae, 0x27], Long64, Xsave),
            (&[0x48, 0x0f, 0xae, 0x2f], Long64, Xsave), // xrstor64
            (&[0x0f, 0xae, 0x37], Long64, Xsave),
            (&[0x0f, 0xc7, 0x2f], Long64, Xsave), // xsaves
            (&[0x0f, 0xae, 0x07], Long64, Fxsave),
            (&[0x0f, 0xae, 0xf0], Long64, None), // mfence (mod = 3)
            (&[0x0f, 0x01, 0xd0], Long64, Xgetbv),
            (&[0x0f, 0x01, 0xd1], Protected32, Xgetbv),
            (&[0x0f, 0x01, 0xc1], Long64, Vmcall),
            (&[0x0f, 0x01, 0xd9], Long64, Vmcall),
            (&[0x90], Long64, None),
            (&[0x66, 0x66], Long64, None),
            (&[], Long64, None),
            (&[0x48], Protected32, None), // dec eax outside long mode
        ];
        for (bytes, mode, want) in cases {
            assert_eq!(classify(bytes, *mode), *want, "{bytes:02x?} in {mode:?}");
        }
    }
}
