//! Guest memory for snapshots: KVM dirty logging on the RAM slots
//! (`KVM_MEM_LOG_DIRTY_PAGES`) with a bitmap in host-mapping page order;
//! saving RAM (all non-zero pages or a bitmap's pages) to a sparse file
//! with a CRC32; loading a memory file into RAM either as a private
//! copy-on-write mapping (`MAP_PRIVATE | MAP_FIXED` over the RAM mapping:
//! flat cost, clones share the page cache) or by copying; and copying
//! bitmap pages between RAM and a caller's buffer (in-place rollback).

use crate::crc32::Crc32;
use crate::error::{Error, Result};
use crate::vm::{kvm_err, Vm};
use kvm_bindings::kvm_userspace_memory_region;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

/// Page size of guest memory and of the dirty bitmaps.
const PAGE: usize = 4096;

impl Vm {
    /// Turn KVM dirty-page logging on or off for every RAM slot.
    pub fn dirty_log(&self, on: bool) -> Result<()> {
        let (host, _) = self.memory()?;
        for (slot, (gpa, off, len)) in self.layout.slots().into_iter().enumerate() {
            let region = kvm_userspace_memory_region {
                slot: slot as u32,
                guest_phys_addr: gpa,
                memory_size: len,
                userspace_addr: host + off,
                flags: if on { kvm_bindings::KVM_MEM_LOG_DIRTY_PAGES } else { 0 },
            };
            // SAFETY: the same slot over the same memory `map_ram`
            // registered (owned by the VM); only its flags change.
            unsafe { self.fd.set_user_memory_region(region) }.map_err(kvm_err("KVM_SET_USER_MEMORY_REGION(dirty log)"))?;
        }
        Ok(())
    }

    /// OR the pages the guest wrote since the last call (or since logging
    /// began) into `out` (bit i = page i of the RAM mapping) and clear
    /// KVM's log. Returns the number of pages KVM reported.
    pub fn dirty_bitmap(&self, out: &mut [u64]) -> Result<u64> {
        self.quiesce_detached_aps();
        let words = self.bitmap_words();
        if out.len() < words {
            return Err(Error::invalid(format!("dirty bitmap of {} words, RAM needs {words}", out.len())));
        }
        let mut n = 0u64;
        for (slot, (_, off, len)) in self.layout.slots().into_iter().enumerate() {
            let bm = self.fd.get_dirty_log(slot as u32, len as usize).map_err(|e| {
                if e.errno() == libc::ENOENT {
                    Error::invalid("dirty logging is off (enable it first)")
                } else {
                    Error::os("KVM_GET_DIRTY_LOG", e)
                }
            })?;
            let base = (off as usize / PAGE) / 64;
            for (i, w) in bm.iter().enumerate() {
                out[base + i] |= w;
                n += w.count_ones() as u64;
            }
        }
        Ok(n)
    }

    /// u64 words of a dirty bitmap covering RAM.
    pub fn bitmap_words(&self) -> usize {
        (self.layout.size() as usize / PAGE).div_ceil(64)
    }

    #[allow(clippy::mut_from_ref)] // guest RAM is shared memory by nature (see SAFETY)
    fn ram(&self) -> Result<&mut [u8]> {
        let (host, size) = self.memory()?;
        // SAFETY: the RAM mapping owned by this VM, alive while `self` is;
        // guest writes race with these bytes only while a vCPU runs, and
        // the callers take no vCPU lock for speed: copying while the guest
        // runs gives torn pages, which the API documents (snapshot a
        // stopped VM).
        Ok(unsafe { std::slice::from_raw_parts_mut(host as *mut u8, size as usize) })
    }

    /// Write RAM pages to `file` at `offset + page * 4096`: with `bitmap`,
    /// its pages; without, every non-zero page (zero pages stay holes of
    /// a sparse file, which must be new). The file is extended to `offset
    /// + RAM size`. Returns (pages written, CRC32 of them, see [`page_crc`]).
    pub fn memory_save(&self, file: &File, offset: u64, bitmap: Option<&[u64]>) -> Result<(u64, u32)> {
        self.quiesce_detached_aps();
        check_bitmap(self, bitmap)?;
        let ram = self.ram()?;
        file.set_len(offset + ram.len() as u64).map_err(|e| Error::os("extend memory file", e))?;
        let mut crc = Crc32::new();
        let mut written = 0u64;
        let mut run: Option<(usize, usize)> = None; // (first page, pages)
        let flush = |run: &mut Option<(usize, usize)>| -> Result<()> {
            if let Some((p, k)) = run.take() {
                file.write_all_at(&ram[p * PAGE..(p + k) * PAGE], offset + (p * PAGE) as u64)
                    .map_err(|e| Error::os("write memory file", e))?;
            }
            Ok(())
        };
        for p in 0..ram.len() / PAGE {
            let page = &ram[p * PAGE..(p + 1) * PAGE];
            let take = match bitmap {
                Some(b) => b[p / 64] >> (p % 64) & 1 == 1,
                None => !is_zero(page),
            };
            if !take {
                flush(&mut run)?;
                continue;
            }
            crc.page(p as u64, page);
            written += 1;
            run = match run {
                Some((s, k)) if s + k == p && k < 256 => Some((s, k + 1)),
                other => {
                    let mut o = other;
                    flush(&mut o)?;
                    Some((p, 1))
                }
            };
        }
        flush(&mut run)?;
        Ok((written, crc.finish()))
    }

    /// Load guest RAM from `file` at `offset`: `map` makes RAM a private
    /// copy-on-write mapping of the file (flat cost; pages are read on
    /// first touch and copied on first write); otherwise the file's pages
    /// (with `bitmap` only those) are copied into RAM, and without a
    /// bitmap RAM is zeroed first and only the file's data extents are read.
    pub fn memory_load(&self, file: &File, offset: u64, map: bool, bitmap: Option<&[u64]>) -> Result<()> {
        self.quiesce_detached_aps();
        check_bitmap(self, bitmap)?;
        let (host, size) = self.memory()?;
        let have = file.metadata().map_err(|e| Error::os("memory file", e))?.len();
        if have < offset + size {
            return Err(Error::invalid(format!(
                "memory file is truncated: {have} bytes, RAM of {size} bytes at offset {offset} needs {}",
                offset + size
            )));
        }
        if map {
            if bitmap.is_some() || !(offset as usize).is_multiple_of(PAGE) {
                return Err(Error::invalid("a mapped memory file takes no bitmap and a page-aligned offset"));
            }
            // SAFETY: [host, host + size) is exactly this VM's RAM mapping
            // (owned by `Vm::ram`, unmapped only at drop with the same
            // range); MAP_FIXED replaces it in place, so KVM's slots and
            // every view keep their addresses (KVM follows through its MMU
            // notifier). The file's length covers the range (checked).
            let p = unsafe {
                libc::mmap(
                    host as *mut libc::c_void,
                    size as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED | libc::MAP_NORESERVE,
                    file.as_raw_fd(),
                    offset as libc::off_t,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(Error::os("mmap(memory file, MAP_PRIVATE)", std::io::Error::last_os_error()));
            }
            self.file_backed.store(true, Ordering::Release);
            return Ok(());
        }
        let ram = self.ram()?;
        if let Some(b) = bitmap {
            for (p, k) in BitRuns::new(b, ram.len() / PAGE) {
                file.read_exact_at(&mut ram[p * PAGE..(p + k) * PAGE], offset + (p * PAGE) as u64)
                    .map_err(|e| Error::os("read memory file", e))?;
            }
            return Ok(());
        }
        self.zero_ram()?;
        let ram = self.ram()?;
        let end = offset + size;
        let mut pos = offset;
        while pos < end {
            let Some(data) = seek(file, pos, libc::SEEK_DATA)? else { break };
            if data >= end {
                break;
            }
            let hole = seek(file, data, libc::SEEK_HOLE)?.unwrap_or(end).min(end);
            let (a, b) = ((data - offset) as usize, (hole - offset) as usize);
            file.read_exact_at(&mut ram[a..b], data).map_err(|e| Error::os("read memory file", e))?;
            pos = hole;
        }
        Ok(())
    }

    /// Copy bitmap pages between RAM and `buf` (a RAM-sized image):
    /// `to_ram` copies buf → RAM, else RAM → buf. Without a bitmap, every
    /// page; RAM → buf then skips zero pages (`buf` must be zeroed).
    /// Returns the pages copied.
    pub fn memory_copy(&self, buf: &mut [u8], bitmap: Option<&[u64]>, to_ram: bool) -> Result<u64> {
        self.quiesce_detached_aps();
        check_bitmap(self, bitmap)?;
        let ram = self.ram()?;
        if buf.len() != ram.len() {
            return Err(Error::invalid(format!("memory image of {} bytes, RAM is {}", buf.len(), ram.len())));
        }
        let pages = ram.len() / PAGE;
        if let Some(b) = bitmap {
            // Rollback's hot path: whole runs of set bits, one copy each.
            let mut n = 0;
            for (p, k) in BitRuns::new(b, pages) {
                let r = p * PAGE..(p + k) * PAGE;
                if to_ram {
                    ram[r.clone()].copy_from_slice(&buf[r]);
                } else {
                    buf[r.clone()].copy_from_slice(&ram[r]);
                }
                n += k as u64;
            }
            return Ok(n);
        }
        if to_ram {
            ram.copy_from_slice(buf);
            return Ok(pages as u64);
        }
        let mut n = 0;
        for p in 0..pages {
            let r = p * PAGE..(p + 1) * PAGE;
            if !is_zero(&ram[r.clone()]) {
                buf[r.clone()].copy_from_slice(&ram[r]);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Zero guest RAM and return its pages to the host: MADV_DONTNEED on
    /// the anonymous mapping, or a fresh anonymous mapping in place of a
    /// memory file's (where MADV_DONTNEED would bring the file back).
    pub(crate) fn zero_ram(&self) -> Result<()> {
        let (host, size) = self.memory()?;
        if self.file_backed.swap(false, Ordering::AcqRel) {
            // SAFETY: replaces exactly this VM's RAM mapping in place (see
            // `memory_load`) with the flags `map_ram` used.
            let p = unsafe {
                libc::mmap(
                    host as *mut libc::c_void,
                    size as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(Error::os("mmap(anonymous RAM)", std::io::Error::last_os_error()));
            }
            return Ok(());
        }
        // SAFETY: [host, host + size) is the private anonymous mapping
        // owned by the VM; MADV_DONTNEED only replaces its pages with
        // zero-fill-on-demand pages (a racing run sees zeroed guest memory,
        // never host memory).
        let r = unsafe { libc::madvise(host as *mut libc::c_void, size as usize, libc::MADV_DONTNEED) };
        if r != 0 {
            return Err(Error::os("madvise(MADV_DONTNEED)", std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

/// Runs of set bits of a page bitmap as (first page, pages), ascending,
/// below `pages`: words are skipped whole when zero and walked with
/// `trailing_zeros` otherwise.
pub(crate) struct BitRuns<'a> {
    words: &'a [u64],
    pages: usize,
    /// Next page to look at.
    at: usize,
}

impl<'a> BitRuns<'a> {
    pub(crate) fn new(words: &'a [u64], pages: usize) -> Self {
        BitRuns { words, pages: pages.min(words.len() * 64), at: 0 }
    }

    /// First set bit at or after `p`, if any below `pages`.
    fn next_set(&self, mut p: usize) -> Option<usize> {
        while p < self.pages {
            let w = self.words[p / 64] >> (p % 64);
            if w != 0 {
                let q = p + w.trailing_zeros() as usize;
                return (q < self.pages).then_some(q);
            }
            p = (p / 64 + 1) * 64;
        }
        None
    }

    /// First clear bit at or after `p` (or `pages`).
    fn next_clear(&self, mut p: usize) -> usize {
        while p < self.pages {
            let w = !self.words[p / 64] >> (p % 64);
            if w != 0 {
                return (p + w.trailing_zeros() as usize).min(self.pages);
            }
            p = (p / 64 + 1) * 64;
        }
        self.pages
    }
}

impl Iterator for BitRuns<'_> {
    type Item = (usize, usize);
    fn next(&mut self) -> Option<(usize, usize)> {
        let first = self.next_set(self.at)?;
        let end = self.next_clear(first);
        self.at = end;
        Some((first, end - first))
    }
}

fn check_bitmap(vm: &Vm, bitmap: Option<&[u64]>) -> Result<()> {
    match bitmap {
        Some(b) if b.len() < vm.bitmap_words() => {
            Err(Error::invalid(format!("bitmap of {} words, RAM needs {}", b.len(), vm.bitmap_words())))
        }
        _ => Ok(()),
    }
}

fn seek(file: &File, pos: u64, whence: libc::c_int) -> Result<Option<u64>> {
    // SAFETY: plain syscall on an fd we own; the result is checked.
    let r = unsafe { libc::lseek(file.as_raw_fd(), pos as libc::off_t, whence) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENXIO) { Ok(None) } else { Err(Error::os("lseek(memory file)", e)) };
    }
    Ok(Some(r as u64))
}

fn is_zero(page: &[u8]) -> bool {
    // SAFETY: u8 -> u128 reinterpretation of initialized bytes; align_to
    // only hands out the aligned middle.
    let (a, m, b) = unsafe { page.align_to::<u128>() };
    a.iter().all(|&x| x == 0) && m.iter().all(|&x| x == 0) && b.iter().all(|&x| x == 0)
}

/// CRC32 of a memory file as [`Vm::memory_save`] computes it: over each
/// counted page in order, its page index (u64 LE) then its 4096 bytes.
/// Counted pages are the bitmap's, or without one every non-zero page of
/// `[offset, offset + size)`.
pub fn page_crc(file: &File, offset: u64, size: u64, bitmap: Option<&[u64]>) -> Result<(u64, u32)> {
    let have = file.metadata().map_err(|e| Error::os("memory file", e))?.len();
    if have < offset + size {
        return Err(Error::invalid(format!("memory file is truncated: {have} bytes, needs {}", offset + size)));
    }
    let pages = size as usize / PAGE;
    if let Some(b) = bitmap {
        if b.len() < pages.div_ceil(64) {
            return Err(Error::invalid("bitmap shorter than the memory"));
        }
    }
    let mut crc = Crc32::new();
    let mut n = 0;
    let mut buf = vec![0u8; 256 * PAGE];
    let mut p = 0;
    while p < pages {
        let k = (pages - p).min(256);
        if let Some(b) = bitmap {
            if b[p / 64] == 0 && p.is_multiple_of(64) {
                p += 64.min(pages - p);
                continue;
            }
        }
        let chunk = &mut buf[..k * PAGE];
        file.read_exact_at(chunk, offset + (p * PAGE) as u64).map_err(|e| Error::os("read memory file", e))?;
        for j in 0..k {
            let page = &chunk[j * PAGE..(j + 1) * PAGE];
            let q = p + j;
            let take = match bitmap {
                Some(b) => b[q / 64] >> (q % 64) & 1 == 1,
                None => !is_zero(page),
            };
            if take {
                crc.page(q as u64, page);
                n += 1;
            }
        }
        p += k;
    }
    Ok((n, crc.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_runs_match_a_bit_by_bit_walk() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for pages in [0usize, 1, 63, 64, 65, 130, 640] {
            for density in [0u64, 1, 3, 7, 15] {
                let mut b = vec![0u64; pages.div_ceil(64) + 1];
                for w in b.iter_mut() {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    *w = match density {
                        0 => 0,
                        15 => !0,
                        d => x & (x >> d) & (x >> (2 * d)),
                    };
                }
                let want: Vec<usize> = (0..pages).filter(|&p| b[p / 64] >> (p % 64) & 1 == 1).collect();
                let got: Vec<usize> = BitRuns::new(&b, pages).flat_map(|(p, k)| p..p + k).collect();
                assert_eq!(got, want, "pages {pages} density {density}");
                let runs: Vec<_> = BitRuns::new(&b, pages).collect();
                assert!(runs.windows(2).all(|w| w[0].0 + w[0].1 < w[1].0), "runs are maximal");
            }
        }
    }
}
