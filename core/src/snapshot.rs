//! Whole-VM machine state and guest memory for snapshots.
//!
//! **Machine state** is a versioned byte blob (layout documented on
//! [`crate::ffi::dv_vm_state_save`]): per vCPU the registers, segment and
//! control registers, FPU/XSAVE, XCRs, debug registers, MSRs (every MSR of
//! `KVM_GET_MSR_INDEX_LIST` the vCPU can read, plus the TSC-deadline MSR),
//! LAPIC, pending events and MP state; per VM the in-kernel irqchip (PIC
//! master, slave, IOAPIC) and the KVM clock. It is taken and put only with
//! each vCPU's run lock held (no vCPU in `KVM_RUN`), after completing the
//! vCPU's last exit: KVM finishes an I/O or MMIO instruction only on the
//! next `KVM_RUN`, so the core re-enters once with `immediate_exit` set
//! (KVM api.rst, "KVM_RUN ... immediate_exit") before reading or writing
//! any register.
//!
//! **Memory**: KVM dirty logging on the RAM slots (`KVM_MEM_LOG_DIRTY_PAGES`)
//! with a bitmap in host-mapping page order; saving RAM (all non-zero pages
//! or a bitmap's pages) to a sparse file with a CRC32; loading a memory
//! file into RAM either as a private copy-on-write mapping (`MAP_PRIVATE |
//! MAP_FIXED` over the RAM mapping: flat cost, clones share the page
//! cache) or by copying; and copying bitmap pages between RAM and a
//! caller's buffer (in-place rollback).

use crate::error::{Code, Error, Result};
use crate::vcpu::VcpuInner;
use crate::vm::{kvm_err, IrqchipMode, Vm};
use kvm_bindings::{
    kvm_clock_data, kvm_debugregs, kvm_fpu, kvm_irqchip, kvm_lapic_state, kvm_mp_state, kvm_msr_entry, kvm_regs, kvm_sregs,
    kvm_userspace_memory_region, kvm_vcpu_events, kvm_xcrs, kvm_xsave, Msrs,
};
use kvm_ioctls::Cap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

/// Page size of guest memory and of the dirty bitmaps.
const PAGE: usize = 4096;
/// "DVST" little-endian: first word of a state blob.
const STATE_MAGIC: u32 = u32::from_le_bytes(*b"DVST");
/// Version of the state blob layout.
const STATE_VERSION: u32 = 1;
/// Record `vcpu` field of VM-wide records.
const VM_WIDE: u32 = u32::MAX;
const MSR_IA32_TSC: u32 = 0x10;
const MSR_IA32_TSC_DEADLINE: u32 = 0x6e0;

/// Record kinds of a state blob. Values are ABI (stored in snapshot files).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateTag {
    /// `struct kvm_regs`.
    Regs = 1,
    /// `struct kvm_sregs`.
    Sregs = 2,
    /// `struct kvm_fpu`.
    Fpu = 3,
    /// `struct kvm_xsave` (when KVM has `KVM_CAP_XSAVE`).
    Xsave = 4,
    /// `struct kvm_xcrs` (when KVM has `KVM_CAP_XCRS`).
    Xcrs = 5,
    /// `struct kvm_lapic_state`.
    Lapic = 6,
    /// `struct kvm_vcpu_events`.
    Events = 7,
    /// `struct kvm_mp_state`.
    MpState = 8,
    /// `struct kvm_debugregs`.
    DebugRegs = 9,
    /// MSRs: `n` x (u32 index, u32 reserved, u64 value).
    Msrs = 10,
    /// `struct kvm_irqchip`, one record per chip (kernel irqchip only).
    Irqchip = 16,
    /// `struct kvm_clock_data`.
    Clock = 17,
}

impl StateTag {
    fn from_u32(v: u32) -> Option<StateTag> {
        use StateTag::*;
        [Regs, Sregs, Fpu, Xsave, Xcrs, Lapic, Events, MpState, DebugRegs, Msrs, Irqchip, Clock].into_iter().find(|t| *t as u32 == v)
    }
}

/// KVM UAPI structs made only of integers (and arrays/unions of them):
/// every bit pattern is a valid value and the kernel writes all their bytes.
///
/// # Safety
/// Implement only for such `#[repr(C)]` types.
unsafe trait Pod: Default {}
// SAFETY: all are bindgen `#[repr(C)]` structs of integers, arrays and
// unions of integers (x86-64 KVM UAPI).
unsafe impl Pod for kvm_regs {}
// SAFETY: as above.
unsafe impl Pod for kvm_sregs {}
// SAFETY: as above.
unsafe impl Pod for kvm_fpu {}
// SAFETY: as above.
unsafe impl Pod for kvm_xsave {}
// SAFETY: as above.
unsafe impl Pod for kvm_xcrs {}
// SAFETY: as above.
unsafe impl Pod for kvm_lapic_state {}
// SAFETY: as above.
unsafe impl Pod for kvm_vcpu_events {}
// SAFETY: as above.
unsafe impl Pod for kvm_mp_state {}
// SAFETY: as above.
unsafe impl Pod for kvm_debugregs {}
// SAFETY: as above.
unsafe impl Pod for kvm_irqchip {}
// SAFETY: as above.
unsafe impl Pod for kvm_clock_data {}

fn bytes_of<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: T is Pod (see the trait): its bytes are initialized and any
    // view of them as u8 is valid; the slice borrows `v`.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

fn from_bytes<T: Pod>(b: &[u8], what: &str) -> Result<T> {
    if b.len() != std::mem::size_of::<T>() {
        return Err(Error::invalid(format!(
            "machine state: {what} record is {} bytes, this host's struct is {}",
            b.len(),
            std::mem::size_of::<T>()
        )));
    }
    // SAFETY: b holds size_of::<T>() bytes (checked) and every bit pattern
    // is a valid T (Pod); read_unaligned copes with the blob's alignment.
    Ok(unsafe { b.as_ptr().cast::<T>().read_unaligned() })
}

struct Writer(Vec<u8>, u32);

impl Writer {
    fn record(&mut self, tag: StateTag, vcpu: u32, data: &[u8]) {
        for w in [tag as u32, vcpu, data.len() as u32, 0] {
            self.0.extend(w.to_le_bytes());
        }
        self.0.extend(data);
        self.0.resize(self.0.len().next_multiple_of(8), 0);
        self.1 += 1;
    }
}

/// One record of a parsed blob.
#[derive(Debug)]
struct Record<'a> {
    tag: StateTag,
    vcpu: u32,
    data: &'a [u8],
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Parse and check a state blob's framing (not its contents).
fn parse(blob: &[u8]) -> Result<(u32, u32, Vec<Record<'_>>)> {
    let bad = |m: String| Err(Error::invalid(format!("machine state: {m}")));
    if blob.len() < 16 {
        return bad(format!("{} bytes is shorter than its 16-byte header", blob.len()));
    }
    if u32_at(blob, 0) != STATE_MAGIC {
        return bad(format!("bad magic {:#010x} (expected \"DVST\")", u32_at(blob, 0)));
    }
    let version = u32_at(blob, 4);
    if version != STATE_VERSION {
        return bad(format!("layout version {version}, this core reads version {STATE_VERSION}"));
    }
    let count = u32_at(blob, 8);
    let flags = u32_at(blob, 12);
    let mut off = 16usize;
    let mut out = Vec::new();
    for i in 0..count {
        if blob.len() - off < 16 {
            return bad(format!("record {i} of {count}: truncated header"));
        }
        let (tag, vcpu, len) = (u32_at(blob, off), u32_at(blob, off + 4), u32_at(blob, off + 8) as usize);
        let Some(t) = StateTag::from_u32(tag) else {
            return bad(format!("record {i}: unknown tag {tag}"));
        };
        let start = off + 16;
        if blob.len() - start < len {
            return bad(format!("record {i} ({t:?}): {len} bytes, {} left", blob.len() - start));
        }
        out.push(Record { tag: t, vcpu, data: &blob[start..start + len] });
        off = (start + len).next_multiple_of(8).min(blob.len());
    }
    if off != blob.len() {
        return bad(format!("{} trailing bytes after {count} records", blob.len() - off));
    }
    Ok((count, flags, out))
}

/// Blob flag: the state includes in-kernel irqchip records.
const FLAG_KERNEL_IRQCHIP: u32 = 1;

/// The MSRs this host lets us read from a vCPU: the index list plus the
/// TSC-deadline MSR, minus any `KVM_GET_MSRS` refuses (found once).
fn readable_msrs(vm: &Vm, g: &VcpuInner) -> Result<&'static [u32]> {
    static LIST: OnceLock<Vec<u32>> = OnceLock::new();
    if let Some(l) = LIST.get() {
        return Ok(l);
    }
    let list = vm.kvm.get_msr_index_list().map_err(kvm_err("KVM_GET_MSR_INDEX_LIST"))?;
    let mut idx: Vec<u32> = list.as_slice().to_vec();
    if !idx.contains(&MSR_IA32_TSC_DEADLINE) {
        idx.push(MSR_IA32_TSC_DEADLINE);
    }
    loop {
        let entries: Vec<kvm_msr_entry> = idx.iter().map(|&index| kvm_msr_entry { index, ..Default::default() }).collect();
        let mut msrs = Msrs::from_entries(&entries).map_err(|e| Error::invalid(format!("MSR list: {e:?}")))?;
        let n = g.fd.get_msrs(&mut msrs).map_err(kvm_err("KVM_GET_MSRS"))?;
        if n >= idx.len() {
            break;
        }
        idx.remove(n);
    }
    let _ = LIST.set(idx);
    Ok(LIST.get().expect("set above"))
}

/// Re-enter `KVM_RUN` once with `immediate_exit` so KVM completes the
/// vCPU's last I/O or MMIO exit (its pending read data copied in first);
/// no guest instruction runs. Busy if KVM exits again (a string I/O
/// instruction with more iterations to go).
fn complete_exit(g: &mut VcpuInner) -> Result<()> {
    if let Some(p) = g.pending.take() {
        // SAFETY: `p` was computed from a slice of this vCPU's kvm_run
        // mapping and the record's data area holds at least `len` bytes
        // (the same copy the run loop does before KVM_RUN).
        unsafe { std::ptr::copy_nonoverlapping(g.record.data.as_ptr(), (g.run_base + p.offset) as *mut u8, p.len) };
    }
    // SAFETY: run_base is this vCPU's kvm_run mapping (no reference made).
    let ie = unsafe { std::ptr::addr_of_mut!((*(g.run_base as *mut kvm_bindings::kvm_run)).immediate_exit) };
    // SAFETY: run_base is this vCPU's kvm_run mapping, alive with the vCPU;
    // we hold its run lock, so no KVM_RUN is in progress. A kicker may
    // also write 1 here; we put back what we found.
    let prev = unsafe { ie.read_volatile() };
    // SAFETY: as above.
    unsafe { ie.write_volatile(1) };
    let r = g.fd.run().map(|_| ());
    // SAFETY: as above.
    unsafe { ie.write_volatile(prev) };
    match r {
        Err(e) if e.errno() == libc::EINTR => Ok(()),
        Ok(()) => Err(Error::new(Code::Busy, "the vCPU is inside a string I/O instruction: run it on and retry")),
        Err(e) => Err(Error::os("KVM_RUN (completing the last exit)", e)),
    }
}

/// One vCPU's decoded machine state.
struct Cpu {
    regs: kvm_regs,
    sregs: kvm_sregs,
    fpu: kvm_fpu,
    xsave: Option<kvm_xsave>,
    xcrs: Option<kvm_xcrs>,
    debug: Option<kvm_debugregs>,
    lapic: kvm_lapic_state,
    msrs: Vec<kvm_msr_entry>,
    mp: kvm_mp_state,
    events: kvm_vcpu_events,
}

impl Vm {
    /// Machine state of every vCPU, the in-kernel irqchip and the KVM
    /// clock as a blob (see [`crate::ffi::dv_vm_state_save`]). Busy while
    /// a vCPU runs.
    pub fn state_save(&self) -> Result<Vec<u8>> {
        let mut w = Writer(Vec::with_capacity(16 << 10), 0);
        w.0.extend([0u8; 16]);
        let xsave = self.kvm.check_extension(Cap::Xsave);
        let xcrs = self.kvm.check_extension(Cap::Xcrs);
        for i in 0..self.vcpus.len() as u32 {
            self.with_vcpu(i, |g| {
                complete_exit(g)?;
                let fd = &g.fd;
                w.record(StateTag::Regs, i, bytes_of(&fd.get_regs().map_err(kvm_err("KVM_GET_REGS"))?));
                w.record(StateTag::Sregs, i, bytes_of(&fd.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?));
                w.record(StateTag::Fpu, i, bytes_of(&fd.get_fpu().map_err(kvm_err("KVM_GET_FPU"))?));
                if xsave {
                    w.record(StateTag::Xsave, i, bytes_of(&fd.get_xsave().map_err(kvm_err("KVM_GET_XSAVE"))?));
                }
                if xcrs {
                    w.record(StateTag::Xcrs, i, bytes_of(&fd.get_xcrs().map_err(kvm_err("KVM_GET_XCRS"))?));
                }
                w.record(StateTag::DebugRegs, i, bytes_of(&fd.get_debug_regs().map_err(kvm_err("KVM_GET_DEBUGREGS"))?));
                w.record(StateTag::Lapic, i, bytes_of(&fd.get_lapic().map_err(kvm_err("KVM_GET_LAPIC"))?));
                let idx = readable_msrs(self, g)?;
                let entries: Vec<kvm_msr_entry> = idx.iter().map(|&index| kvm_msr_entry { index, ..Default::default() }).collect();
                let mut msrs = Msrs::from_entries(&entries).map_err(|e| Error::invalid(format!("MSR list: {e:?}")))?;
                let n = g.fd.get_msrs(&mut msrs).map_err(kvm_err("KVM_GET_MSRS"))?;
                if n != idx.len() {
                    return Err(Error::os("KVM_GET_MSRS", format!("read {n} of {} MSRs", idx.len())));
                }
                let mut m = Vec::with_capacity(16 * n);
                for e in msrs.as_slice() {
                    m.extend(e.index.to_le_bytes());
                    m.extend(0u32.to_le_bytes());
                    m.extend(e.data.to_le_bytes());
                }
                w.record(StateTag::Msrs, i, &m);
                w.record(StateTag::MpState, i, bytes_of(&g.fd.get_mp_state().map_err(kvm_err("KVM_GET_MP_STATE"))?));
                w.record(StateTag::Events, i, bytes_of(&g.fd.get_vcpu_events().map_err(kvm_err("KVM_GET_VCPU_EVENTS"))?));
                Ok(())
            })?;
        }
        let mut flags = 0;
        if self.config.irqchip == IrqchipMode::Kernel {
            flags |= FLAG_KERNEL_IRQCHIP;
            for chip in [kvm_bindings::KVM_IRQCHIP_PIC_MASTER, kvm_bindings::KVM_IRQCHIP_PIC_SLAVE, kvm_bindings::KVM_IRQCHIP_IOAPIC] {
                let mut c = kvm_irqchip { chip_id: chip, ..Default::default() };
                self.fd.get_irqchip(&mut c).map_err(kvm_err("KVM_GET_IRQCHIP"))?;
                w.record(StateTag::Irqchip, VM_WIDE, bytes_of(&c));
            }
        }
        w.record(StateTag::Clock, VM_WIDE, bytes_of(&self.fd.get_clock().map_err(kvm_err("KVM_GET_CLOCK"))?));
        let count = w.1;
        let mut b = w.0;
        b[0..4].copy_from_slice(&STATE_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&STATE_VERSION.to_le_bytes());
        b[8..12].copy_from_slice(&count.to_le_bytes());
        b[12..16].copy_from_slice(&flags.to_le_bytes());
        Ok(b)
    }

    /// Put a blob from [`Vm::state_save`] back. The whole blob is parsed
    /// and checked (framing, record sizes, vCPU indices, irqchip mode,
    /// every vCPU complete) before anything is written. Busy while a vCPU
    /// runs.
    pub fn state_load(&self, blob: &[u8]) -> Result<()> {
        self.state_load_hooked(blob, &|| {})
    }

    /// [`Vm::state_load`] with `between` called after the irqchip state is
    /// in and before the vCPUs' (tests put a racing tick there).
    pub(crate) fn state_load_hooked(&self, blob: &[u8], between: &dyn Fn()) -> Result<()> {
        let (_, flags, recs) = parse(blob)?;
        let kernel = flags & FLAG_KERNEL_IRQCHIP != 0;
        if kernel != (self.config.irqchip == IrqchipMode::Kernel) {
            let mode = |k: bool| if k { "kernel" } else { "split" };
            return Err(Error::invalid(format!(
                "machine state: taken with the {} irqchip, this VM has the {} irqchip",
                mode(kernel),
                mode(!kernel)
            )));
        }
        let n = self.vcpus.len() as u32;
        for r in &recs {
            let vm_wide = matches!(r.tag, StateTag::Irqchip | StateTag::Clock);
            if vm_wide != (r.vcpu == VM_WIDE) || (!vm_wide && r.vcpu >= n) {
                return Err(Error::invalid(format!("machine state: {:?} record for vCPU {} (this VM has {n})", r.tag, r.vcpu)));
            }
        }
        for i in 0..n {
            for t in [StateTag::Regs, StateTag::Sregs, StateTag::Fpu, StateTag::Lapic, StateTag::Msrs, StateTag::MpState, StateTag::Events] {
                if !recs.iter().any(|r| r.tag == t && r.vcpu == i) {
                    return Err(Error::invalid(format!("machine state: vCPU {i} has no {t:?} record")));
                }
            }
        }
        if kernel && recs.iter().filter(|r| r.tag == StateTag::Irqchip).count() != 3 {
            return Err(Error::invalid("machine state: the kernel irqchip needs 3 chip records (PIC master, slave, IOAPIC)"));
        }
        // Decode everything before touching KVM.
        let get = |t: StateTag, i: u32| recs.iter().find(|r| r.tag == t && r.vcpu == i).map(|r| r.data);
        let mut cpus = Vec::new();
        for i in 0..n {
            let req = |t: StateTag| get(t, i).expect("checked above");
            let m = req(StateTag::Msrs);
            if m.len() % 16 != 0 {
                return Err(Error::invalid(format!("machine state: MSR record of {} bytes is not n x 16", m.len())));
            }
            let msrs = m
                .chunks_exact(16)
                .map(|c| kvm_msr_entry {
                    index: u32_at(c, 0),
                    data: u64::from_le_bytes(c[8..16].try_into().expect("16-byte chunk")),
                    ..Default::default()
                })
                .collect();
            cpus.push(Cpu {
                regs: from_bytes(req(StateTag::Regs), "regs")?,
                sregs: from_bytes(req(StateTag::Sregs), "sregs")?,
                fpu: from_bytes(req(StateTag::Fpu), "fpu")?,
                xsave: get(StateTag::Xsave, i).map(|b| from_bytes(b, "xsave")).transpose()?,
                xcrs: get(StateTag::Xcrs, i).map(|b| from_bytes(b, "xcrs")).transpose()?,
                debug: get(StateTag::DebugRegs, i).map(|b| from_bytes(b, "debugregs")).transpose()?,
                lapic: from_bytes(req(StateTag::Lapic), "lapic")?,
                msrs,
                mp: from_bytes(req(StateTag::MpState), "mp_state")?,
                events: from_bytes(req(StateTag::Events), "vcpu_events")?,
            });
        }
        let chips: Vec<kvm_irqchip> =
            recs.iter().filter(|r| r.tag == StateTag::Irqchip).map(|r| from_bytes(r.data, "irqchip")).collect::<Result<_>>()?;
        let clock: Option<kvm_clock_data> =
            recs.iter().find(|r| r.tag == StateTag::Clock).map(|r| from_bytes(r.data, "clock")).transpose()?;
        if cpus.iter().any(|c| c.xsave.is_some()) && !self.kvm.check_extension(Cap::Xsave) {
            return Err(Error::new(Code::Unsupported, "machine state has XSAVE state; this host's KVM lacks KVM_CAP_XSAVE"));
        }
        self.events.quiesced(false, |high| {
            if let Some(mut c) = clock {
                // Resume the clock where it stood, not at wall time.
                c.flags = 0;
                self.fd.set_clock(&c).map_err(kvm_err("KVM_SET_CLOCK"))?;
            }
            for c in &chips {
                self.fd.set_irqchip(c).map_err(kvm_err("KVM_SET_IRQCHIP"))?;
            }
            between();
            self.put_vcpus(&cpus)?;
            // Last: a tick injected into the irqchip above reached a LAPIC
            // that `put_vcpus` overwrote; its line must not stay asserted.
            self.lower_resampled_lines(high).map(|_| ())
        })
    }

    fn put_vcpus(&self, cpus: &[Cpu]) -> Result<()> {
        for (i, c) in cpus.iter().enumerate() {
            let kick = self.vcpus[i].kick.clone();
            self.with_vcpu(i as u32, |g| {
                complete_exit(g)?;
                let fd = &g.fd;
                fd.set_sregs(&c.sregs).map_err(kvm_err("KVM_SET_SREGS"))?;
                fd.set_regs(&c.regs).map_err(kvm_err("KVM_SET_REGS"))?;
                fd.set_fpu(&c.fpu).map_err(kvm_err("KVM_SET_FPU"))?;
                if let Some(x) = &c.xsave {
                    // SAFETY: a legacy 4 KiB kvm_xsave taken by KVM_GET_XSAVE
                    // on this kind of host (checked for KVM_CAP_XSAVE above);
                    // KVM validates its contents.
                    unsafe { fd.set_xsave(x) }.map_err(kvm_err("KVM_SET_XSAVE"))?;
                }
                if let Some(x) = &c.xcrs {
                    fd.set_xcrs(x).map_err(kvm_err("KVM_SET_XCRS"))?;
                }
                if let Some(d) = &c.debug {
                    fd.set_debug_regs(d).map_err(kvm_err("KVM_SET_DEBUGREGS"))?;
                }
                // TSC first (the deadline is relative to it), LAPIC before
                // the deadline (KVM ignores the deadline MSR unless the
                // LVT timer is in TSC-deadline mode).
                let (deadline, rest): (Vec<_>, Vec<_>) = c.msrs.iter().partition(|m| m.index == MSR_IA32_TSC_DEADLINE);
                let mut rest: Vec<kvm_msr_entry> = rest;
                rest.sort_by_key(|m| m.index != MSR_IA32_TSC);
                set_msrs(fd, &rest)?;
                fd.set_lapic(&c.lapic).map_err(kvm_err("KVM_SET_LAPIC"))?;
                set_msrs(fd, &deadline)?;
                fd.set_mp_state(c.mp).map_err(kvm_err("KVM_SET_MP_STATE"))?;
                fd.set_vcpu_events(&c.events).map_err(kvm_err("KVM_SET_VCPU_EVENTS"))?;
                g.fd.get_kvm_run().request_interrupt_window = 0;
                g.want_window = false;
                g.pending = None;
                kick.take(u32::MAX);
                kick.clear_immediate_exit();
                Ok(())
            })?;
        }
        Ok(())
    }

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

fn set_msrs(fd: &kvm_ioctls::VcpuFd, entries: &[kvm_msr_entry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let msrs = Msrs::from_entries(entries).map_err(|e| Error::invalid(format!("MSR list: {e:?}")))?;
    let n = fd.set_msrs(&msrs).map_err(kvm_err("KVM_SET_MSRS"))?;
    if n < entries.len() {
        return Err(Error::new(
            Code::Unsupported,
            format!("KVM_SET_MSRS refused MSR {:#x} (= {:#x}); was the snapshot taken on another CPU?", entries[n].index, entries[n].data),
        ));
    }
    Ok(())
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

/// CRC-32 (IEEE 802.3, reflected 0xEDB88320, the one of zlib and
/// `node:zlib`'s `crc32`), slice-by-8.
pub struct Crc32(u32);

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

static CRC: [[u32; 256]; 8] = crc_tables();

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// A fresh CRC.
    pub fn new() -> Self {
        Crc32(!0)
    }
    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.0;
        let mut chunks = data.chunks_exact(8);
        for ch in &mut chunks {
            let lo = c ^ u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]);
            let hi = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
            c = CRC[7][(lo & 0xff) as usize]
                ^ CRC[6][(lo >> 8 & 0xff) as usize]
                ^ CRC[5][(lo >> 16 & 0xff) as usize]
                ^ CRC[4][(lo >> 24) as usize]
                ^ CRC[3][(hi & 0xff) as usize]
                ^ CRC[2][(hi >> 8 & 0xff) as usize]
                ^ CRC[1][(hi >> 16 & 0xff) as usize]
                ^ CRC[0][(hi >> 24) as usize];
        }
        for &b in chunks.remainder() {
            c = CRC[0][((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }
    /// Feed one memory page as [`page_crc`] defines it.
    pub fn page(&mut self, index: u64, page: &[u8]) {
        self.update(&index.to_le_bytes());
        self.update(page);
    }
    /// The CRC of everything fed.
    pub fn finish(&self) -> u32 {
        !self.0
    }
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
    fn crc32_is_zlibs() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
        let mut c = Crc32::new();
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        c.update(&data[..3]);
        c.update(&data[3..]);
        let mut d = Crc32::new();
        for &b in &data {
            d.update(&[b]);
        }
        assert_eq!(c.finish(), d.finish());
    }

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

    #[test]
    fn blob_framing_is_checked() {
        let mut w = Writer(vec![0; 16], 0);
        w.record(StateTag::Regs, 0, &[1, 2, 3]);
        w.record(StateTag::Clock, VM_WIDE, &[4; 8]);
        let mut b = w.0;
        b[0..4].copy_from_slice(&STATE_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&STATE_VERSION.to_le_bytes());
        b[8..12].copy_from_slice(&2u32.to_le_bytes());
        let (n, _, recs) = parse(&b).unwrap();
        assert_eq!((n, recs[0].data, recs[1].tag), (2, &[1u8, 2, 3][..], StateTag::Clock));
        for cut in 0..b.len() {
            assert!(parse(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut v = b.clone();
        v[4] = 9;
        assert!(parse(&v).unwrap_err().message.contains("version 9"));
        let mut t = b.clone();
        t[16] = 99;
        assert!(parse(&t).unwrap_err().message.contains("unknown tag 99"));
        assert!(from_bytes::<kvm_regs>(&[0; 3], "regs").unwrap_err().message.contains("regs record is 3 bytes"));
    }
    /// A tick sent just before a restore, injected by KVM (asynchronously)
    /// after the irqchip state went in: its edge reaches the LAPIC that the
    /// vCPU state then overwrites. The restore must leave the line low, so
    /// the next tick is an edge again: not one coalesced into a line that
    /// stays asserted forever (the 16-clone test's occasional hang).
    #[test]
    fn a_tick_racing_a_restore_leaves_no_line_asserted() {
        use crate::vm::VmConfig;
        if !std::path::Path::new("/dev/kvm").exists() {
            eprintln!("SKIPPED: no /dev/kvm");
            return;
        }
        let vm = Vm::new(VmConfig { mem_size: 16 << 20, irqchip: IrqchipMode::Kernel, strict: false, quirk_level_resignal: true, vcpus: 1 })
            .unwrap();
        let mut blob = vm.state_save().unwrap();
        let (lapic, ioapic) = {
            let (_, _, recs) = parse(&blob).unwrap();
            let at = |r: &Record| r.data.as_ptr() as usize - blob.as_ptr() as usize;
            let l = recs.iter().find(|r| r.tag == StateTag::Lapic).map(at).unwrap();
            let i = recs.iter().filter(|r| r.tag == StateTag::Irqchip).find(|r| u32_at(r.data, 0) == 2).map(at).unwrap();
            (l, i)
        };
        // LAPIC software-enabled (SVR); IOAPIC pin 0: vector 0x20, fixed,
        // physical, edge, unmasked, to APIC 0 (as the snapshot guest sets).
        blob[lapic + 0xf0..lapic + 0xf4].copy_from_slice(&0x1ffu32.to_le_bytes());
        blob[ioapic + 32..ioapic + 40].copy_from_slice(&0x20u64.to_le_bytes());
        // A catch-up tick source on GSI 0 (a resampling irqfd) that sent a
        // tick: the guest has not acknowledged it (the pin was masked).
        let timer = vm.timer_create(crate::sources::TimerTarget::Gsi, 0, 0, 0).unwrap();
        vm.timer_set_policy(timer, crate::timer::TickPolicy::Catchup, 1_000_000_000).unwrap();
        vm.timer_arm(timer, 1_000_000).unwrap();
        while vm.timer_stats(timer).unwrap().ticks == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        vm.timer_disarm(timer).unwrap();
        let (_, irqfd, _) = vm.events.timer_info(timer).unwrap();
        let (efd, _) = vm.irqfd_fds(irqfd).unwrap();
        let irr_has_tick = || {
            vm.with_vcpu(0, |g| Ok(crate::lapic::vector_bit(&g.fd.get_lapic().unwrap(), crate::lapic::IRR, 0x20))).unwrap()
        };
        // KVM injects that tick late, after the irqchip state went in (as
        // its irqfd worker does under load): modelled by a write here.
        vm.state_load_hooked(&blob, &|| {
            efd.write(1).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        })
        .unwrap();
        // The next tick must arrive as an edge.
        let mut spins = 0;
        let _ = efd.write(1);
        while !irr_has_tick() {
            spins += 1;
            assert!(spins < 200, "a tick after the restore never reached the LAPIC: the line stayed asserted");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
