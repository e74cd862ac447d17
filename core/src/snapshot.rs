//! Whole-VM machine state for snapshots: a versioned byte blob (layout
//! documented on [`crate::ffi::dv_vm_state_save`]): per vCPU the
//! registers, segment and control registers, FPU/XSAVE, XCRs, debug
//! registers, MSRs (every MSR of `KVM_GET_MSR_INDEX_LIST` the vCPU can
//! read, plus the TSC-deadline MSR), LAPIC, pending events and MP state;
//! per VM the in-kernel irqchip (PIC master, slave, IOAPIC, PIT) and the
//! KVM clock. It is taken and put only with each vCPU's run lock held (no vCPU
//! in `KVM_RUN`), after completing the vCPU's last exit: KVM finishes an
//! I/O or MMIO instruction only on the next `KVM_RUN`, so the core
//! re-enters once with `immediate_exit` set (KVM api.rst, "KVM_RUN ...
//! immediate_exit") before reading or writing any register. Putting it
//! back holds the event thread off and lowers resampled lines (see
//! [`crate::events::Events::quiesced`]). Guest memory is
//! [`crate::snapshot_memory`].

use crate::error::{Code, Error, Result};
use crate::vcpu::VcpuInner;
use crate::vm::{kvm_err, IrqchipMode, Vm};
use kvm_bindings::{
    kvm_clock_data, kvm_debugregs, kvm_pit_state2, kvm_fpu, kvm_irqchip, kvm_lapic_state, kvm_mp_state, kvm_msr_entry, kvm_regs, kvm_sregs,
    kvm_vcpu_events, kvm_xcrs, kvm_xsave, Msrs,
};
use kvm_ioctls::Cap;
use std::sync::OnceLock;

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
    /// `struct kvm_pit_state2` (kernel irqchip; optional on load: blobs of
    /// earlier cores lack it and keep the PIT's power-on state).
    Pit = 18,
    /// Host level sources, in id order: `n` x (u32 GSI, u32 reserved, u64
    /// work items pending). Optional on load: blobs of earlier cores lack
    /// it and keep the live sources' pending work.
    LevelSources = 19,
}

impl StateTag {
    fn from_u32(v: u32) -> Option<StateTag> {
        use StateTag::*;
        [Regs, Sregs, Fpu, Xsave, Xcrs, Lapic, Events, MpState, DebugRegs, Msrs, Irqchip, Clock, Pit, LevelSources]
            .into_iter().find(|t| *t as u32 == v)
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
// SAFETY: as above.
unsafe impl Pod for kvm_pit_state2 {}

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
        self.quiesce_detached_aps();
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
            if self.initial_pit.is_some() {
                w.record(StateTag::Pit, VM_WIDE, bytes_of(&self.fd.get_pit2().map_err(kvm_err("KVM_GET_PIT2"))?));
            }
        }
        w.record(StateTag::Clock, VM_WIDE, bytes_of(&self.fd.get_clock().map_err(kvm_err("KVM_GET_CLOCK"))?));
        let mut levels = Vec::new();
        for (gsi, pending) in self.events.level_pending() {
            levels.extend(gsi.to_le_bytes());
            levels.extend(0u32.to_le_bytes());
            levels.extend(pending.to_le_bytes());
        }
        w.record(StateTag::LevelSources, VM_WIDE, &levels);
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
        self.quiesce_detached_aps();
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
            let vm_wide = matches!(r.tag, StateTag::Irqchip | StateTag::Clock | StateTag::Pit | StateTag::LevelSources);
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
        let pit: Option<kvm_pit_state2> = recs.iter().find(|r| r.tag == StateTag::Pit).map(|r| from_bytes(r.data, "pit")).transpose()?;
        if pit.is_some() && self.initial_pit.is_none() {
            return Err(Error::invalid("machine state has in-kernel PIT state; this VM has no in-kernel PIT"));
        }
        let clock: Option<kvm_clock_data> =
            recs.iter().find(|r| r.tag == StateTag::Clock).map(|r| from_bytes(r.data, "clock")).transpose()?;
        let levels = recs.iter().find(|r| r.tag == StateTag::LevelSources).map(|r| self.check_levels(r.data)).transpose()?;
        if cpus.iter().any(|c| c.xsave.is_some()) && !self.kvm.check_extension(Cap::Xsave) {
            return Err(Error::new(Code::Unsupported, "machine state has XSAVE state; this host's KVM lacks KVM_CAP_XSAVE"));
        }
        self.events.quiesced(false, levels.as_deref(), |high| {
            if let Some(mut c) = clock {
                // Resume the clock where it stood, not at wall time.
                c.flags = 0;
                self.fd.set_clock(&c).map_err(kvm_err("KVM_SET_CLOCK"))?;
            }
            for c in &chips {
                self.fd.set_irqchip(c).map_err(kvm_err("KVM_SET_IRQCHIP"))?;
            }
            if let Some(p) = &pit {
                self.fd.set_pit2(p).map_err(kvm_err("KVM_SET_PIT2"))?;
            }
            between();
            self.put_vcpus(&cpus)?;
            // Last: a tick injected into the irqchip above reached a LAPIC
            // that `put_vcpus` overwrote; its line must not stay asserted.
            self.lower_resampled_lines(high).map(|_| ())
        })
    }

    /// The pending work of a `LevelSources` record, checked against this
    /// VM's level sources (same count and lines, in id order).
    fn check_levels(&self, data: &[u8]) -> Result<Vec<u64>> {
        if !data.len().is_multiple_of(16) {
            return Err(Error::invalid(format!("machine state: level-source record of {} bytes is not n x 16", data.len())));
        }
        let saved: Vec<(u32, u64)> =
            data.chunks_exact(16).map(|c| (u32_at(c, 0), u64::from_le_bytes(c[8..16].try_into().expect("16-byte chunk")))).collect();
        let live = self.events.level_gsis();
        let saved_gsis: Vec<u32> = saved.iter().map(|&(g, _)| g).collect();
        if saved_gsis != live {
            let list = |v: &[u32]| v.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(", ");
            return Err(Error::invalid(format!(
                "machine state has {} level sources (GSI {}), this VM {} (GSI {})",
                saved.len(),
                list(&saved_gsis),
                live.len(),
                list(&live)
            )));
        }
        Ok(saved.into_iter().map(|(_, p)| p).collect())
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
        self.drop_parked_aps();
        Ok(())
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

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
