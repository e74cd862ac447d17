//! The exit record shared with TypeScript and the decoding of KVM exits
//! into "handled here" or "return to the caller".
//!
//! The record is a fixed `#[repr(C)]` block that TypeScript reads through a
//! `DataView` over its memory: no allocation or marshalling per exit.

use crate::ranges::{Action, RangeTable, Space};
use kvm_ioctls::VcpuExit;

/// Why `run()` returned. Values are part of the FFI contract.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A port access in a forwarded range (record holds the access).
    Io = 1,
    /// An MMIO access in a forwarded range.
    Mmio = 2,
    /// The guest executed `hlt` and KVM returned it to userspace.
    Hlt = 3,
    /// Triple fault / shutdown.
    Shutdown = 4,
    /// KVM could not emulate or handle something (`arg` = suberror).
    InternalError = 5,
    /// `stop()` was called.
    Stopped = 6,
    /// The run deadline passed.
    Timeout = 7,
    /// Split irqchip: the guest EOI'd a level vector (`arg` = vector).
    IoapicEoi = 8,
    /// VM entry failed (`arg` = hardware reason).
    FailEntry = 9,
    /// KVM system event (`arg` = type).
    SystemEvent = 10,
    /// Strict mode: an access no one claimed (record holds the access).
    Unclaimed = 11,
    /// A host-side wake-up was requested (`kick`).
    Wake = 12,
    /// The interrupt window opened after `request_interrupt_window`.
    IrqWindow = 13,
    /// An exit this core does not know (`arg` = KVM exit reason).
    Unknown = 14,
}

/// Size of the data area in the record (a whole kvm_run page fits).
pub const DATA_LEN: usize = 4096;

/// Byte offsets of the record fields (mirrored in `ffi/exit_record.ts`).
pub mod offsets {
    /// u32 [`super::Reason`].
    pub const REASON: usize = 0;
    /// u32 vCPU index.
    pub const VCPU: usize = 4;
    /// u64 port or guest-physical address.
    pub const ADDRESS: usize = 8;
    /// u32 bytes per element.
    pub const SIZE: usize = 16;
    /// u32 element count (string I/O).
    pub const COUNT: usize = 20;
    /// u32 1 = write/out, 0 = read/in.
    pub const IS_WRITE: usize = 24;
    /// u32 0 = pio, 1 = mmio.
    pub const SPACE: usize = 28;
    /// u64 reason-specific argument.
    pub const ARG: usize = 32;
    /// u64 second argument.
    pub const ARG2: usize = 40;
    /// u32 region tag of a forwarded access (the caller's index of the
    /// range, given when it was added), so the caller never searches again.
    pub const REGION: usize = 48;
    /// data bytes.
    pub const DATA: usize = 64;
}

/// The record itself.
#[repr(C)]
#[derive(Debug, Clone)]
pub struct ExitRecord {
    /// See [`Reason`].
    pub reason: u32,
    /// vCPU index.
    pub vcpu: u32,
    /// Port or guest-physical address.
    pub address: u64,
    /// Bytes per element.
    pub size: u32,
    /// Element count.
    pub count: u32,
    /// 1 for writes.
    pub is_write: u32,
    /// 0 pio, 1 mmio.
    pub space: u32,
    /// Reason-specific argument.
    pub arg: u64,
    /// Second argument.
    pub arg2: u64,
    /// Region tag of a forwarded access ([`offsets::REGION`]).
    pub region: u32,
    /// Reserved (zero).
    pub reserved: [u32; 3],
    /// Access data (writes: what the guest wrote; reads: filled by the caller).
    pub data: [u8; DATA_LEN],
}

impl Default for ExitRecord {
    fn default() -> Self {
        ExitRecord {
            reason: 0,
            vcpu: 0,
            address: 0,
            size: 0,
            count: 0,
            is_write: 0,
            space: 0,
            arg: 0,
            arg2: 0,
            region: 0,
            reserved: [0; 3],
            data: [0; DATA_LEN],
        }
    }
}

/// Counters kept by the run loop.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// All KVM exits seen.
    pub exits: u64,
    /// Exits handled in the Rust fast path.
    pub fast_path: u64,
    /// Exits returned to the caller.
    pub forwarded: u64,
    /// Reads of unclaimed addresses (answered with all-ones).
    pub unclaimed_reads: u64,
    /// Writes to unclaimed addresses (ignored).
    pub unclaimed_writes: u64,
}

/// What the run loop does after decoding one exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Handled; enter the guest again.
    Resume,
    /// Return to the caller with this reason (record filled). For reads,
    /// `pending` is the byte length the caller must supply in `data`.
    Return(Reason),
    /// `KVM_EXIT_INTR`: check the kick flags, then resume.
    Interrupted,
}

/// A read the caller must complete: copy `len` bytes of `record.data` to
/// the kvm_run page at `offset` before the next `KVM_RUN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingRead {
    /// Offset of the destination inside the kvm_run mapping.
    pub offset: usize,
    /// Bytes to copy.
    pub len: usize,
}

fn fill_access(rec: &mut ExitRecord, space: Space, addr: u64, size: usize, count: usize, write: bool, data: &[u8]) {
    rec.space = space as u32;
    rec.address = addr;
    rec.size = size as u32;
    rec.count = count as u32;
    rec.is_write = write as u32;
    let n = data.len().min(DATA_LEN);
    if write {
        rec.data[..n].copy_from_slice(&data[..n]);
    } else {
        rec.data[..n].fill(0);
    }
}

/// Decode one exit. `run_base` is the address of the kvm_run mapping, used
/// to locate read destinations; `strict` forwards unclaimed accesses;
/// `io_elem` is `kvm_run.io.size` for port exits (string I/O arrives as
/// `size * count` bytes).
#[allow(clippy::too_many_arguments)]
pub fn decode(
    exit: VcpuExit<'_>,
    io_elem: usize,
    ranges: &RangeTable,
    strict: bool,
    rec: &mut ExitRecord,
    counters: &mut Counters,
    run_base: usize,
    pending: &mut Option<PendingRead>,
) -> Decision {
    counters.exits += 1;
    type Access<'b> = (Space, u64, Option<&'b [u8]>, Option<&'b mut [u8]>);
    let (space, addr, data_ro, data_rw): Access<'_> = match exit {
        VcpuExit::IoOut(port, data) => (Space::Pio, port as u64, Some(data), None),
        VcpuExit::IoIn(port, data) => (Space::Pio, port as u64, None, Some(data)),
        VcpuExit::MmioWrite(a, data) => (Space::Mmio, a, Some(data), None),
        VcpuExit::MmioRead(a, data) => (Space::Mmio, a, None, Some(data)),
        VcpuExit::Hlt => return ret(rec, counters, Reason::Hlt, 0, 0),
        VcpuExit::Shutdown => return ret(rec, counters, Reason::Shutdown, 0, 0),
        VcpuExit::InternalError => return ret(rec, counters, Reason::InternalError, 0, 0),
        VcpuExit::FailEntry(r, cpu) => return ret(rec, counters, Reason::FailEntry, r, cpu as u64),
        VcpuExit::IoapicEoi(v) => return ret(rec, counters, Reason::IoapicEoi, v as u64, 0),
        VcpuExit::SystemEvent(t, _) => return ret(rec, counters, Reason::SystemEvent, t as u64, 0),
        VcpuExit::IrqWindowOpen => return ret(rec, counters, Reason::IrqWindow, 0, 0),
        VcpuExit::Intr => return Decision::Interrupted,
        VcpuExit::Unsupported(r) => return ret(rec, counters, Reason::Unknown, r as u64, 0),
        _ => return ret(rec, counters, Reason::Unknown, u64::MAX, 0),
    };
    let total = data_ro.as_ref().map(|d| d.len()).or(data_rw.as_ref().map(|d| d.len())).unwrap_or(0);
    // MMIO accesses are one element; port I/O may be a string of
    // `total / io_elem` elements of `io_elem` bytes.
    let size = if space == Space::Pio && io_elem > 0 && io_elem <= total { io_elem } else { total.max(1) };
    match ranges.lookup(space, addr, size as u64) {
        Some(e) => match e.action {
            Action::Ignore { read_value } => {
                counters.fast_path += 1;
                if let Some(d) = data_rw {
                    let bytes = read_value.to_le_bytes();
                    for (i, b) in d.iter_mut().enumerate() {
                        *b = bytes[i % 8];
                    }
                }
                Decision::Resume
            }
            Action::Forward { region } => {
                rec.region = region;
                forward(space, addr, size, data_ro, data_rw, rec, counters, run_base, pending, false)
            }
        },
        None => {
            if strict {
                return forward(space, addr, size, data_ro, data_rw, rec, counters, run_base, pending, true);
            }
            if let Some(d) = data_rw {
                counters.unclaimed_reads += 1;
                d.fill(0xff);
            } else {
                counters.unclaimed_writes += 1;
            }
            Decision::Resume
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn forward(
    space: Space,
    addr: u64,
    size: usize,
    data_ro: Option<&[u8]>,
    data_rw: Option<&mut [u8]>,
    rec: &mut ExitRecord,
    counters: &mut Counters,
    run_base: usize,
    pending: &mut Option<PendingRead>,
    unclaimed: bool,
) -> Decision {
    counters.forwarded += 1;
    let reason = if unclaimed {
        Reason::Unclaimed
    } else if space == Space::Pio {
        Reason::Io
    } else {
        Reason::Mmio
    };
    rec.reason = reason as u32;
    match (data_ro, data_rw) {
        (Some(d), _) => {
            fill_access(rec, space, addr, size, d.len() / size, true, d);
            *pending = None;
        }
        (None, Some(d)) => {
            fill_access(rec, space, addr, size, d.len() / size, false, d);
            let len = d.len().min(DATA_LEN);
            // Unclaimed strict reads still complete with all-ones if the
            // caller resumes instead of failing.
            if unclaimed {
                rec.data[..len].fill(0xff);
            }
            *pending = Some(PendingRead { offset: (d.as_ptr() as usize).wrapping_sub(run_base), len });
        }
        (None, None) => {}
    }
    Decision::Return(reason)
}

fn ret(rec: &mut ExitRecord, counters: &mut Counters, reason: Reason, arg: u64, arg2: u64) -> Decision {
    counters.forwarded += 1;
    rec.reason = reason as u32;
    rec.arg = arg;
    rec.arg2 = arg2;
    Decision::Return(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn record_layout_matches_offsets() {
        assert_eq!(offset_of!(ExitRecord, reason), offsets::REASON);
        assert_eq!(offset_of!(ExitRecord, vcpu), offsets::VCPU);
        assert_eq!(offset_of!(ExitRecord, address), offsets::ADDRESS);
        assert_eq!(offset_of!(ExitRecord, size), offsets::SIZE);
        assert_eq!(offset_of!(ExitRecord, count), offsets::COUNT);
        assert_eq!(offset_of!(ExitRecord, is_write), offsets::IS_WRITE);
        assert_eq!(offset_of!(ExitRecord, space), offsets::SPACE);
        assert_eq!(offset_of!(ExitRecord, arg), offsets::ARG);
        assert_eq!(offset_of!(ExitRecord, arg2), offsets::ARG2);
        assert_eq!(offset_of!(ExitRecord, region), offsets::REGION);
        assert_eq!(offset_of!(ExitRecord, data), offsets::DATA);
    }

    fn table() -> RangeTable {
        let mut t = RangeTable::new();
        t.add(Space::Pio, 0x3f8, 8, Action::Forward { region: 0 }).unwrap();
        t.add(Space::Pio, 0x80, 1, Action::Ignore { read_value: 0x1234_5678 }).unwrap();
        t.add(Space::Mmio, 0xd000_0000, 16, Action::Forward { region: 0 }).unwrap();
        t
    }

    #[test]
    fn forwarded_out_fills_record() {
        let (mut rec, mut c, mut p) = (ExitRecord::default(), Counters::default(), None);
        let d = decode(VcpuExit::IoOut(0x3f8, &[0x41]), 1, &table(), false, &mut rec, &mut c, 0, &mut p);
        assert_eq!(d, Decision::Return(Reason::Io));
        assert_eq!((rec.address, rec.size, rec.is_write, rec.data[0]), (0x3f8, 1, 1, 0x41));
        assert_eq!(p, None);
        assert_eq!((c.exits, c.forwarded), (1, 1));
    }

    #[test]
    fn forwarded_in_records_pending_read() {
        let mut page = [0u8; 64];
        let base = page.as_ptr() as usize;
        let (mut rec, mut c, mut p) = (ExitRecord::default(), Counters::default(), None);
        let d = decode(VcpuExit::IoIn(0x3fd, &mut page[40..41]), 1, &table(), false, &mut rec, &mut c, base, &mut p);
        assert_eq!(d, Decision::Return(Reason::Io));
        assert_eq!(rec.is_write, 0);
        assert_eq!(p, Some(PendingRead { offset: 40, len: 1 }));
        let d = decode(VcpuExit::MmioRead(0xd000_0008, &mut page[8..16]), 1, &table(), false, &mut rec, &mut c, base, &mut p);
        assert_eq!(d, Decision::Return(Reason::Mmio));
        assert_eq!((rec.size, rec.space), (8, 1));
        assert_eq!(p, Some(PendingRead { offset: 8, len: 8 }));
    }

    #[test]
    fn fast_path_and_unclaimed_are_handled_here() {
        let (mut rec, mut c, mut p) = (ExitRecord::default(), Counters::default(), None);
        let mut buf = [0u8; 2];
        assert_eq!(decode(VcpuExit::IoIn(0x80, &mut buf[..1]), 1, &table(), false, &mut rec, &mut c, 0, &mut p), Decision::Resume);
        assert_eq!(buf[0], 0x78);
        assert_eq!(decode(VcpuExit::IoOut(0x80, &[1]), 1, &table(), false, &mut rec, &mut c, 0, &mut p), Decision::Resume);
        assert_eq!(decode(VcpuExit::IoIn(0x1234, &mut buf), 1, &table(), false, &mut rec, &mut c, 0, &mut p), Decision::Resume);
        assert_eq!(buf, [0xff, 0xff]);
        assert_eq!(decode(VcpuExit::MmioWrite(0x1000, &[1, 2]), 1, &table(), false, &mut rec, &mut c, 0, &mut p), Decision::Resume);
        assert_eq!((c.fast_path, c.unclaimed_reads, c.unclaimed_writes, c.forwarded), (2, 1, 1, 0));
    }

    #[test]
    fn strict_forwards_unclaimed() {
        let (mut rec, mut c, mut p) = (ExitRecord::default(), Counters::default(), None);
        let d = decode(VcpuExit::IoOut(0x1234, &[7]), 1, &table(), true, &mut rec, &mut c, 0, &mut p);
        assert_eq!(d, Decision::Return(Reason::Unclaimed));
        assert_eq!(rec.address, 0x1234);
    }

    #[test]
    fn non_io_exits() {
        let (mut rec, mut c, mut p) = (ExitRecord::default(), Counters::default(), None);
        let t = table();
        assert_eq!(decode(VcpuExit::Hlt, 1, &t, false, &mut rec, &mut c, 0, &mut p), Decision::Return(Reason::Hlt));
        assert_eq!(decode(VcpuExit::IoapicEoi(0x51), 1, &t, false, &mut rec, &mut c, 0, &mut p), Decision::Return(Reason::IoapicEoi));
        assert_eq!(rec.arg, 0x51);
        assert_eq!(decode(VcpuExit::FailEntry(7, 0), 1, &t, false, &mut rec, &mut c, 0, &mut p), Decision::Return(Reason::FailEntry));
        assert_eq!(rec.arg, 7);
        assert_eq!(decode(VcpuExit::Intr, 1, &t, false, &mut rec, &mut c, 0, &mut p), Decision::Interrupted);
        assert_eq!(decode(VcpuExit::Unsupported(99), 1, &t, false, &mut rec, &mut c, 0, &mut p), Decision::Return(Reason::Unknown));
        assert_eq!(rec.arg, 99);
    }
}
