//! Snapshot functions of the C ABI: machine state blobs, dirty logging,
//! memory files. See `crate::snapshot` (machine state) and
//! `crate::snapshot_memory` (RAM) for what is captured and when.
//!
//! Dirty bitmaps are arrays of u64 words; bit `i` (word `i / 64`, bit
//! `i % 64`) is page `i` (4 KiB) of the RAM mapping of `dv_vm_memory`, whose
//! first `DV_RAM_HOLE_START` bytes are GPA 0.. and the rest GPA
//! `DV_RAM_HIGH_BASE`... `dv_vm_bitmap_words` gives the length.

use super::{guard, with_vm, write_out};
use crate::error::{Error, Result};
use crate::snapshot_memory::page_crc;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;

/// [`dv_vm_memory_load`] flag: map the file copy-on-write (`MAP_PRIVATE`)
/// instead of copying it.
pub const DV_MEMORY_MAP: u32 = 1;
/// [`dv_vm_memory_copy`] flag: copy the image into RAM (else RAM into the
/// image).
pub const DV_MEMORY_TO_RAM: u32 = 1;
/// Version of the machine-state blob layout ([`dv_vm_state_save`]).
pub const DV_STATE_VERSION: u32 = 1;

/// # Safety
/// `ptr` null or valid for `len` reads.
unsafe fn path_of<'a>(ptr: *const u8, len: usize) -> Result<&'a std::path::Path> {
    if ptr.is_null() || len == 0 {
        return Err(Error::invalid("empty memory file path"));
    }
    // SAFETY: forwarded from the caller's contract.
    let b = unsafe { std::slice::from_raw_parts(ptr, len) };
    Ok(std::path::Path::new(OsStr::from_bytes(b)))
}

/// # Safety
/// `ptr` null or valid for `words` u64 reads.
unsafe fn bitmap_of<'a>(ptr: *const u64, words: usize) -> Option<&'a [u64]> {
    if ptr.is_null() {
        None
    } else {
        // SAFETY: forwarded from the caller's contract.
        Some(unsafe { std::slice::from_raw_parts(ptr, words) })
    }
}

fn open_read(path: &std::path::Path) -> Result<File> {
    File::open(path).map_err(|e| Error::os(&format!("open {}", path.display()), e))
}

/// Save the machine state of every vCPU (registers, segments and control
/// registers, FPU, XSAVE, XCRs, debug registers, MSRs incl. TSC and
/// TSC-deadline, LAPIC, vcpu events, MP state), the in-kernel irqchip and PIT
/// (kernel mode) and the KVM clock into `buf` (`cap` bytes). Returns the
/// blob's length; when it exceeds `cap` nothing is written (call again
/// with a larger buffer). `DV_CODE_BUSY` while a vCPU runs. Each vCPU's
/// last I/O or MMIO exit is completed first (no guest instruction runs).
///
/// Layout (version [`DV_STATE_VERSION`], little-endian): u32 magic "DVST",
/// u32 version, u32 record count, u32 flags (bit 0: kernel irqchip); then
/// per record u32 tag (`DvStateTag`), u32 vCPU index (0xFFFFFFFF for VM
/// records), u32 length, u32 0, `length` bytes padded to 8. Record bodies
/// are the x86-64 KVM UAPI structs named by the tag; MSRs are n x (u32
/// index, u32 0, u64 value).
///
/// # Safety
/// `buf` must be valid for `cap` byte writes (or null with `cap` 0).
#[no_mangle]
pub unsafe extern "C" fn dv_vm_state_save(vm: u32, buf: *mut u8, cap: usize) -> i32 {
    with_vm(vm, |v| {
        let blob = v.state_save()?;
        let n = i32::try_from(blob.len()).map_err(|_| Error::invalid("machine state too large"))?;
        if blob.len() <= cap && !buf.is_null() {
            // SAFETY: buf holds cap >= blob.len() bytes (caller's contract).
            unsafe { std::ptr::copy_nonoverlapping(blob.as_ptr(), buf, blob.len()) };
        }
        Ok(n)
    })
}

/// Load a blob from [`dv_vm_state_save`] (`len` bytes). Checked whole
/// (framing, versions, record sizes, irqchip mode, every vCPU complete)
/// before anything changes; errors name the mismatch. Also drops a pending
/// interrupt-window request and queued kicks. Returns 0.
///
/// # Safety
/// `buf` must be valid for `len` byte reads.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_state_load(vm: u32, buf: *const u8, len: usize) -> i32 {
    with_vm(vm, |v| {
        if buf.is_null() {
            return Err(Error::invalid("null machine state"));
        }
        // SAFETY: caller's contract.
        v.state_load(unsafe { std::slice::from_raw_parts(buf, len) })?;
        Ok(0)
    })
}

/// Turn KVM dirty-page logging (`KVM_MEM_LOG_DIRTY_PAGES`) on (`on` = 1)
/// or off (0) for every RAM slot. Returns 0.
#[no_mangle]
pub extern "C" fn dv_vm_dirty_log(vm: u32, on: u32) -> i32 {
    with_vm(vm, |v| v.dirty_log(on != 0).map(|_| 0))
}

/// Number of u64 words of a dirty bitmap of this VM's RAM.
#[no_mangle]
pub extern "C" fn dv_vm_bitmap_words(vm: u32) -> i32 {
    with_vm(vm, |v| i32::try_from(v.bitmap_words()).map_err(|_| Error::invalid("bitmap too large")))
}

/// OR the pages the guest wrote since the last call (or since logging was
/// turned on) into `out` (`words` u64, see the module docs) and clear
/// KVM's log. Host writes to RAM are not in it. Returns the number of
/// pages KVM reported.
///
/// # Safety
/// `out` must be valid for `words` u64 reads and writes.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_dirty_bitmap(vm: u32, out: *mut u64, words: usize) -> i32 {
    with_vm(vm, |v| {
        if out.is_null() {
            return Err(Error::invalid("null bitmap"));
        }
        // SAFETY: caller's contract.
        let b = unsafe { std::slice::from_raw_parts_mut(out, words) };
        Ok(v.dirty_bitmap(b)? as i32)
    })
}

/// Write RAM to the file at `path` (`path_len` bytes, created with mode
/// 0600 if missing, never truncated) at `offset + page * 4096`: the pages
/// of `bitmap` (`words` u64; may be null), or without one every non-zero
/// page (leave zero pages as holes: the file should be new). The file is
/// extended to `offset` + RAM size. Writes pages written and their CRC32
/// (see [`dv_memory_file_crc`]) to `out[0..2]`. Returns 0.
///
/// # Safety
/// `path` valid for `path_len` reads, `bitmap` null or `words` u64 reads,
/// `out` two u64 writes.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_memory_save(
    vm: u32,
    path: *const u8,
    path_len: usize,
    offset: u64,
    bitmap: *const u64,
    words: usize,
    out: *mut u64,
) -> i32 {
    with_vm(vm, |v| {
        // SAFETY: caller's contract.
        let (path, bitmap) = unsafe { (path_of(path, path_len)?, bitmap_of(bitmap, words)) };
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::os(&format!("open {}", path.display()), e))?;
        let (n, crc) = v.memory_save(&f, offset, bitmap)?;
        // SAFETY: caller's contract.
        unsafe { write_out(out.cast::<[u64; 2]>(), [n, crc as u64]) }?;
        Ok(0)
    })
}

/// Load RAM from the file at `path` at `offset`: with [`DV_MEMORY_MAP`]
/// RAM becomes a private copy-on-write mapping of the file (`offset` page
/// aligned, no bitmap; flat cost, pages read on first touch); otherwise the
/// pages of `bitmap` (may be null: the whole file, RAM zeroed first and
/// holes skipped) are copied into RAM. A file shorter than `offset` + RAM
/// is an error. Returns 0.
///
/// # Safety
/// `path` valid for `path_len` reads, `bitmap` null or `words` u64 reads.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_memory_load(
    vm: u32,
    path: *const u8,
    path_len: usize,
    offset: u64,
    flags: u32,
    bitmap: *const u64,
    words: usize,
) -> i32 {
    with_vm(vm, |v| {
        if flags & !DV_MEMORY_MAP != 0 {
            return Err(Error::invalid(format!("unknown memory load flags {flags:#x}")));
        }
        // SAFETY: caller's contract.
        let (path, bitmap) = unsafe { (path_of(path, path_len)?, bitmap_of(bitmap, words)) };
        v.memory_load(&open_read(path)?, offset, flags & DV_MEMORY_MAP != 0, bitmap)?;
        Ok(0)
    })
}

/// Copy pages between RAM and `buf` (`len` bytes = RAM size): with
/// [`DV_MEMORY_TO_RAM`] buf → RAM, else RAM → buf. With `bitmap` (may be
/// null) only its pages; without, every page (RAM → buf skips zero pages:
/// `buf` must be zeroed). Returns the pages copied. Copying while a vCPU
/// runs gives torn pages: stop the VM first.
///
/// # Safety
/// `buf` valid for `len` reads and writes, `bitmap` null or `words` reads.
#[no_mangle]
pub unsafe extern "C" fn dv_vm_memory_copy(
    vm: u32,
    buf: *mut u8,
    len: usize,
    bitmap: *const u64,
    words: usize,
    flags: u32,
) -> i32 {
    with_vm(vm, |v| {
        if buf.is_null() || flags & !DV_MEMORY_TO_RAM != 0 {
            return Err(Error::invalid("null image or unknown memory copy flags"));
        }
        // SAFETY: caller's contract.
        let (b, bitmap) = unsafe { (std::slice::from_raw_parts_mut(buf, len), bitmap_of(bitmap, words)) };
        Ok(v.memory_copy(b, bitmap, flags & DV_MEMORY_TO_RAM != 0)? as i32)
    })
}

/// CRC32 (zlib's) of a memory file as [`dv_vm_memory_save`] computes it:
/// over each counted page in order, its index (u64 LE) then its 4096
/// bytes; counted pages are `bitmap`'s (may be null), or every non-zero
/// page of `[offset, offset + size)`. Writes pages counted and the CRC to
/// `out[0..2]`. Returns 0.
///
/// # Safety
/// `path` valid for `path_len` reads, `bitmap` null or `words` u64 reads,
/// `out` two u64 writes.
#[no_mangle]
pub unsafe extern "C" fn dv_memory_file_crc(
    path: *const u8,
    path_len: usize,
    offset: u64,
    size: u64,
    bitmap: *const u64,
    words: usize,
    out: *mut u64,
) -> i32 {
    guard(|| {
        // SAFETY: caller's contract.
        let (path, bitmap) = unsafe { (path_of(path, path_len)?, bitmap_of(bitmap, words)) };
        let (n, crc) = page_crc(&open_read(path)?, offset, size, bitmap)?;
        // SAFETY: caller's contract.
        unsafe { write_out(out.cast::<[u64; 2]>(), [n, crc as u64]) }?;
        Ok(0)
    })
}
