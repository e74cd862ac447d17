//! vCPUs: creation (CPUID), the `KVM_RUN` loop, entry state, LAPIC access
//! and ExtINT injection. Run state sits behind a per-vCPU lock held only
//! by the running thread; the kick state is shared with every thread.

use crate::cpuid::{self, CpuSpec, Entry, Machine};
use crate::crash::{self, CpuMode, InsnHint, InsnRead};
use crate::error::{Code, Error, Result};
use crate::exit::{decode, Counters, Decision, ExitRecord, PendingRead, Reason};
use crate::kick::{Kick, POLL, STOP, TIMEOUT, WAKE};
use crate::lapic;
use crate::loader;
use crate::ranges::RangeTable;
use crate::vm::{kvm_err, IrqchipMode, Vm};
use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use std::sync::{Arc, Mutex, RwLock};
use vm_memory::{Bytes, GuestAddress};

pub(crate) struct VcpuInner {
    pub(crate) fd: VcpuFd,
    /// The caller asked for an interrupt window (an ExtINT is waiting):
    /// return `IrqWindow` at the first exit where KVM reports the vCPU ready
    /// for injection, including exits the fast path would have absorbed
    /// (KVM only checks the window itself between in-kernel exits).
    pub(crate) want_window: bool,
    pub(crate) record: Box<ExitRecord>,
    pub(crate) pending: Option<PendingRead>,
    counters: Counters,
    pub(crate) run_base: usize,
    /// Power-on state captured at creation, restored by [`Vm::reset`].
    initial: InitialState,
    /// `KVM_GET_SUPPORTED_CPUID` at creation.
    supported: Vec<Entry>,
    /// What the CPUID table must agree with.
    machine: Machine,
    /// The CPUID table in effect.
    cpuid: Vec<Entry>,
    /// `kvm_run.internal` of the last internal-error exit.
    last_internal: Option<InternalInfo>,
}

/// `kvm_run.internal` (suberror and data words) kept for the crash report.
#[derive(Debug, Clone, Copy, Default)]
pub struct InternalInfo {
    /// `KVM_INTERNAL_ERROR_*`.
    pub suberror: u32,
    /// Valid words in `data`.
    pub ndata: u32,
    /// Data words (meaning depends on the suberror).
    pub data: [u64; 16],
}

/// The state of a vCPU that stopped on a failure, for a person to read.
#[derive(Debug, Clone, Default)]
pub struct CrashState {
    /// General registers, RIP and RFLAGS.
    pub regs: kvm_bindings::kvm_regs,
    /// Segments, descriptor tables, control registers, EFER.
    pub sregs: kvm_bindings::kvm_sregs,
    /// Mode and the linear address of RIP.
    pub mode: u32,
    /// Linear address of RIP.
    pub linear: u64,
    /// Up to 15 instruction bytes at RIP, read through the guest's page tables.
    pub insn: Vec<u8>,
    /// Why fewer than 15 bytes were read ([`InsnRead`]).
    pub insn_read: u32,
    /// [`InsnHint`] for the bytes.
    pub hint: u32,
    /// The last internal error's data, when the run ended with one.
    pub internal: Option<InternalInfo>,
}

fn apply_cpuid(fd: &VcpuFd, table: &[Entry]) -> Result<()> {
    let entries: Vec<kvm_bindings::kvm_cpuid_entry2> = table.iter().map(Into::into).collect();
    let c = kvm_bindings::CpuId::from_entries(&entries)
        .map_err(|_| Error::invalid(format!("CPUID table of {} entries is too large", entries.len())))?;
    fd.set_cpuid2(&c).map_err(|e| {
        Error::os("KVM_SET_CPUID2 (CPUID can only change before the vCPU first runs)", e)
    })
}

/// The architectural state KVM gives a fresh vCPU.
struct InitialState {
    regs: kvm_bindings::kvm_regs,
    sregs: kvm_bindings::kvm_sregs,
    fpu: kvm_bindings::kvm_fpu,
    lapic: Option<kvm_bindings::kvm_lapic_state>,
    mp_state: kvm_bindings::kvm_mp_state,
    events: kvm_bindings::kvm_vcpu_events,
}

/// A vCPU.
pub struct Vcpu {
    inner: Mutex<VcpuInner>,
    record_ptr: usize,
    pub(crate) kick: Arc<Kick>,
}

/// KVM's supported CPUID, asked once per process (0.4 ms a call here, and
/// the same for every vCPU of every VM of this `/dev/kvm`).
fn supported_cpuid(kvm: &Kvm) -> Result<Vec<Entry>> {
    static SUPPORTED: std::sync::OnceLock<Vec<Entry>> = std::sync::OnceLock::new();
    if let Some(s) = SUPPORTED.get() {
        return Ok(s.clone());
    }
    let sup = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(kvm_err("KVM_GET_SUPPORTED_CPUID"))?;
    let v: Vec<Entry> = sup.as_slice().iter().map(Entry::from).collect();
    Ok(SUPPORTED.get_or_init(|| v).clone())
}

impl Vcpu {
    /// Create vCPU `index` of `vcpus` with the `host` CPU template (KVM's
    /// supported CPUID made consistent with the machine: APIC ID and
    /// topology, TSC-deadline when KVM emulates it, TSC frequency leaves).
    pub(crate) fn new(kvm: &Kvm, vm: &VmFd, index: u32, vcpus: u32, tsc_deadline: bool) -> Result<Vcpu> {
        let mut fd = vm.create_vcpu(index as u64).map_err(kvm_err("KVM_CREATE_VCPU"))?;
        let supported = supported_cpuid(kvm)?;
        let machine = Machine { vcpus, apic_id: index, tsc_khz: fd.get_tsc_khz().ok(), tsc_deadline };
        let table = cpuid::build(&supported, &CpuSpec::default(), &machine)?;
        apply_cpuid(&fd, &table)?;
        let initial = InitialState {
            regs: fd.get_regs().map_err(kvm_err("KVM_GET_REGS"))?,
            sregs: fd.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?,
            fpu: fd.get_fpu().map_err(kvm_err("KVM_GET_FPU"))?,
            lapic: fd.get_lapic().ok(),
            mp_state: fd.get_mp_state().map_err(kvm_err("KVM_GET_MP_STATE"))?,
            events: fd.get_vcpu_events().map_err(kvm_err("KVM_GET_VCPU_EVENTS"))?,
        };
        let run_base = fd.get_kvm_run() as *mut kvm_bindings::kvm_run;
        let mut record = Box::<ExitRecord>::default();
        record.vcpu = index;
        let record_ptr = &mut *record as *mut ExitRecord as usize;
        Ok(Vcpu {
            kick: Arc::new(Kick::new(run_base)),
            inner: Mutex::new(VcpuInner {
                fd,
                want_window: false,
                record,
                pending: None,
                counters: Counters::default(),
                run_base: run_base as usize,
                initial,
                supported,
                machine,
                cpuid: table,
                last_internal: None,
            }),
            record_ptr,
        })
    }
}

impl Vm {
    fn vcpu(&self, index: u32) -> Result<&Vcpu> {
        self.vcpus.get(index as usize).ok_or_else(|| Error::invalid(format!("no vCPU {index}")))
    }

    /// Run `f` on vCPU `index`'s run state; Busy while that vCPU runs.
    pub(crate) fn with_vcpu<R>(&self, index: u32, f: impl FnOnce(&mut VcpuInner) -> Result<R>) -> Result<R> {
        let v = self.vcpu(index)?;
        let mut g = match v.inner.try_lock() {
            Ok(g) => g,
            // vCPU threads left running between the caller's runs (see
            // `Vm::detach_aps`) give the vCPU back on demand.
            Err(_) if self.aps_detached() => {
                self.stop_aps();
                v.inner.try_lock().map_err(|_| Error::new(Code::Busy, format!("vCPU {index} is running")))?
            }
            Err(_) => return Err(Error::new(Code::Busy, format!("vCPU {index} is running"))),
        };
        f(&mut g)
    }

    /// Pointer to vCPU `index`'s exit record (valid while the VM lives).
    pub fn record(&self, index: u32) -> Result<usize> {
        Ok(self.vcpu(index)?.record_ptr)
    }

    /// Run vCPU `index` until an exit the caller must see.
    pub fn run(&self, index: u32) -> Result<Reason> {
        let v = self.vcpu(index)?;
        let guard =
            v.inner.try_lock().map_err(|_| Error::new(Code::Busy, format!("vCPU {index} is already running")))?;
        self.run_locked(index, v, guard)
    }

    /// [`Vm::run`] for a vCPU's own thread (see [`crate::smp`]): waits
    /// for the vCPU's run state instead of failing, since the caller may
    /// hold it for a moment (reading the LAPIC of a vCPU it believes
    /// parked, see `lapicHasVector`).
    pub(crate) fn run_on_thread(&self, index: u32) -> Result<Reason> {
        let v = self.vcpu(index)?;
        self.run_locked(index, v, crate::vm::lock(&v.inner))
    }

    fn run_locked(&self, index: u32, v: &Vcpu, mut guard: std::sync::MutexGuard<'_, VcpuInner>) -> Result<Reason> {
        let inner = &mut *guard;
        v.kick.enter();
        let r = run_loop(inner, &v.kick, &self.ranges, self.config.strict, &|fd| self.poll_levels(index, fd));
        v.kick.leave();
        r
    }

    /// Set vCPU 0's segments, control registers and `regs` for a flat
    /// entry: 64-bit long mode with the host's page tables (`long`), or
    /// 32-bit protected mode with paging off (Multiboot). The GDT at
    /// `GDT_ADDR` with `gdt_entries` descriptors must already be written.
    pub(crate) fn set_entry_state(&self, long: bool, gdt_entries: usize, regs: &kvm_bindings::kvm_regs) -> Result<()> {
        self.with_vcpu(0, |inner| {
            let mut sregs = inner.fd.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
            let code = kvm_bindings::kvm_segment {
                base: 0,
                limit: 0xffff_ffff,
                selector: loader::CODE_SEL,
                type_: 0xb,
                present: 1,
                dpl: 0,
                db: (!long) as u8,
                s: 1,
                l: long as u8,
                g: 1,
                avl: 0,
                unusable: 0,
                padding: 0,
            };
            let data = kvm_bindings::kvm_segment { selector: loader::DATA_SEL, type_: 0x3, db: 1, l: 0, ..code };
            let tss =
                kvm_bindings::kvm_segment { selector: loader::TSS_SEL, type_: 0xb, s: 0, db: 0, l: 0, g: 0, limit: 0x67, ..code };
            sregs.cs = code;
            sregs.ds = data;
            sregs.es = data;
            sregs.fs = data;
            sregs.gs = data;
            sregs.ss = data;
            sregs.tr = tss;
            sregs.gdt.base = loader::GDT_ADDR;
            sregs.gdt.limit = (8 * gdt_entries - 1) as u16;
            sregs.idt.base = 0;
            sregs.idt.limit = 0;
            if long {
                sregs.cr0 = loader::cr::CR0;
                sregs.cr3 = loader::PML4_ADDR;
                sregs.cr4 = loader::cr::CR4;
                sregs.efer = loader::cr::EFER;
            } else {
                sregs.cr0 = 0x11; // PE | ET (Multiboot spec 3.2: paging off)
                sregs.cr3 = 0;
                sregs.cr4 = 0;
                sregs.efer = 0;
            }
            inner.fd.set_sregs(&sregs).map_err(kvm_err("KVM_SET_SREGS"))?;
            inner.fd.set_regs(regs).map_err(kvm_err("KVM_SET_REGS"))
        })
    }

    /// Return vCPU `index` to its power-on state: registers, segments, FPU,
    /// LAPIC, MP state and pending events as KVM created them; no pending
    /// read, no interrupt window, counters zeroed, kicks dropped.
    pub(crate) fn reset_vcpu(&self, index: u32) -> Result<()> {
        let kick = self.vcpu(index)?.kick.clone();
        self.with_vcpu(index, |g| {
            let i = &g.initial;
            g.fd.set_sregs(&i.sregs).map_err(kvm_err("KVM_SET_SREGS"))?;
            g.fd.set_regs(&i.regs).map_err(kvm_err("KVM_SET_REGS"))?;
            g.fd.set_fpu(&i.fpu).map_err(kvm_err("KVM_SET_FPU"))?;
            if let Some(l) = &i.lapic {
                g.fd.set_lapic(l).map_err(kvm_err("KVM_SET_LAPIC"))?;
            }
            g.fd.set_mp_state(i.mp_state).map_err(kvm_err("KVM_SET_MP_STATE"))?;
            g.fd.set_vcpu_events(&i.events).map_err(kvm_err("KVM_SET_VCPU_EVENTS"))?;
            g.fd.get_kvm_run().request_interrupt_window = 0;
            g.want_window = false;
            g.pending = None;
            g.last_internal = None;
            g.counters = Counters::default();
            kick.take(u32::MAX);
            kick.clear_immediate_exit();
            Ok(())
        })
    }

    /// Set vCPU `index`'s CPUID from a spec (see [`CpuSpec::parse`]),
    /// validated against `KVM_GET_SUPPORTED_CPUID`. Only before the vCPU
    /// first runs (KVM refuses later changes).
    pub fn set_cpu(&self, index: u32, spec: &str) -> Result<()> {
        let spec = CpuSpec::parse(spec)?;
        self.with_vcpu(index, |g| {
            let table = cpuid::build(&g.supported, &spec, &g.machine)?;
            apply_cpuid(&g.fd, &table)?;
            g.cpuid = table;
            Ok(())
        })
    }

    /// The CPUID entry vCPU `index` answers for `leaf`/`subleaf` (the
    /// subleaf only where it matters), or None when the table has none.
    pub fn cpuid(&self, index: u32, leaf: u32, subleaf: u32) -> Result<Option<Entry>> {
        self.with_vcpu(index, |g| {
            Ok(g.cpuid
                .iter()
                .find(|e| {
                    e.function == leaf && (e.flags & cpuid::FLAG_SIGNIFICANT_INDEX == 0 || e.index == subleaf)
                })
                .copied())
        })
    }

    /// The state of vCPU `index` for a crash report: registers, mode, the
    /// instruction bytes at RIP (through the guest's page tables, bounded
    /// by guest RAM), a hint when the instruction is one the host cannot
    /// emulate, and the last internal error's data words.
    pub fn crash_state(&self, index: u32) -> Result<CrashState> {
        self.with_vcpu(index, |g| {
            let regs = g.fd.get_regs().map_err(kvm_err("KVM_GET_REGS"))?;
            let sregs = g.fd.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
            let cpu = crash::Cpu {
                cr0: sregs.cr0,
                cr3: sregs.cr3,
                cr4: sregs.cr4,
                efer: sregs.efer,
                rflags: regs.rflags,
                cs_l: sregs.cs.l != 0,
                cs_db: sregs.cs.db != 0,
                cs_base: sregs.cs.base,
                rip: regs.rip,
            };
            let mem = &self.mem;
            let read = |pa: u64, width: usize| -> Option<u64> {
                if width == 4 {
                    mem.read_obj::<u32>(GuestAddress(pa)).ok().map(u64::from)
                } else {
                    mem.read_obj::<u64>(GuestAddress(pa)).ok()
                }
            };
            let read_bytes = |pa: u64, buf: &mut [u8]| mem.read_slice(buf, GuestAddress(pa)).is_ok();
            let (insn, why) = cpu.read_insn(&read, &read_bytes);
            let mode: CpuMode = cpu.mode();
            let hint: InsnHint = crash::classify(&insn, mode);
            let why: InsnRead = why;
            Ok(CrashState {
                regs,
                sregs,
                mode: mode as u32,
                linear: cpu.rip_linear(),
                insn,
                insn_read: why as u32,
                hint: hint as u32,
                internal: g.last_internal,
            })
        })
    }

    /// Record a failed run of vCPU `index` (an AP thread's `KVM_RUN`
    /// error) as an internal error in its exit record.
    pub(crate) fn mark_failed(&self, index: u32) {
        let _ = self.with_vcpu(index, |g| {
            g.record.reason = Reason::InternalError as u32;
            g.record.arg = 0;
            Ok(())
        });
    }

    /// vCPU `index`'s `KVM_MP_STATE` (0 runnable, 1 uninitialized: an AP
    /// waiting for INIT/SIPI, 2 INIT received, 3 halted, 4 SIPI received).
    pub fn mp_state(&self, index: u32) -> Result<u32> {
        self.with_vcpu(index, |g| Ok(g.fd.get_mp_state().map_err(kvm_err("KVM_GET_MP_STATE"))?.mp_state))
    }

    /// Run-loop counters of a vCPU (only while it is not running).
    pub fn counters(&self, index: u32) -> Result<Counters> {
        self.with_vcpu(index, |g| Ok(g.counters))
    }

    /// Retire the highest in-service vector of the in-kernel LAPIC (the
    /// effect of a guest write to the LAPIC EOI register, SDM 11.8.5).
    /// Returns the vector retired, or None when none was in service.
    pub fn lapic_eoi(&self, index: u32) -> Result<Option<u8>> {
        self.with_vcpu(index, |g| {
            let mut st = g.fd.get_lapic().map_err(kvm_err("KVM_GET_LAPIC"))?;
            let v = lapic::retire_highest_isr(&mut st);
            if v.is_some() {
                g.fd.set_lapic(&st).map_err(kvm_err("KVM_SET_LAPIC"))?;
            }
            Ok(v)
        })
    }

    /// Registers of a vCPU's in-kernel LAPIC, by offset (SDM 11.4.1): for
    /// example 0x30 version, 0xF0 spurious-vector (SVR), 0x100.. ISR.
    pub fn lapic_regs(&self, index: u32, offsets: &[usize]) -> Result<Vec<u32>> {
        self.with_vcpu(index, |g| {
            let st = g.fd.get_lapic().map_err(kvm_err("KVM_GET_LAPIC"))?;
            offsets.iter().map(|&off| lapic::checked_reg(&st, off)).collect()
        })
    }

    /// TSC frequency of a vCPU in kHz.
    pub fn tsc_khz(&self, index: u32) -> Result<u32> {
        self.with_vcpu(index, |g| g.fd.get_tsc_khz().map_err(kvm_err("KVM_GET_TSC_KHZ")))
    }

    /// Whether KVM reported, at the last exit, that vCPU `index` can take an
    /// injected interrupt now (`kvm_run.ready_for_interrupt_injection`).
    pub fn ready_for_injection(&self, index: u32) -> Result<bool> {
        self.with_vcpu(index, |g| Ok(g.fd.get_kvm_run().ready_for_interrupt_injection != 0))
    }

    /// Split irqchip: inject the PIC's ExtINT `vector` (KVM_INTERRUPT) if the
    /// vCPU can take it now (`ready_for_interrupt_injection`). Returns false
    /// when it cannot (ask for an interrupt window and retry).
    pub fn inject_extint(&self, index: u32, vector: u8) -> Result<bool> {
        if self.config.irqchip != IrqchipMode::Split {
            return Err(Error::invalid("ExtINT injection needs the split irqchip (the in-kernel PIC injects itself)"));
        }
        self.with_vcpu(index, |g| {
            if g.fd.get_kvm_run().ready_for_interrupt_injection == 0 {
                return Ok(false);
            }
            crate::ioctls::interrupt(&g.fd, vector)?;
            Ok(true)
        })
    }

    /// Kick vCPU `index` out of `KVM_RUN` with a wake-up (any thread).
    pub fn wake_vcpu(&self, index: u32) -> Result<()> {
        self.vcpu(index)?.kick.kick(WAKE);
        Ok(())
    }

    /// Ask KVM for an IRQ-window exit (`kvm_run.request_interrupt_window`).
    pub fn request_interrupt_window(&self, index: u32, on: bool) -> Result<()> {
        self.with_vcpu(index, |g| {
            g.fd.get_kvm_run().request_interrupt_window = on as u8;
            g.want_window = on;
            Ok(())
        })
    }
}

fn run_loop(
    inner: &mut VcpuInner,
    kick: &Kick,
    ranges: &RwLock<RangeTable>,
    strict: bool,
    poll: &dyn Fn(&VcpuFd),
) -> Result<Reason> {
    loop {
        if let Some(p) = inner.pending.take() {
            // SAFETY: `p` was computed from a slice of this vCPU's kvm_run
            // mapping (offset + len inside the mapping), and the record's
            // data area holds at least `len` bytes (len <= DATA_LEN).
            unsafe {
                std::ptr::copy_nonoverlapping(inner.record.data.as_ptr(), (inner.run_base + p.offset) as *mut u8, p.len);
            }
        }
        if kick.take(POLL) != 0 {
            if kick.flags() == 0 {
                kick.clear_immediate_exit();
            }
            poll(&inner.fd);
            continue;
        }
        let flags = kick.flags();
        if flags != 0 {
            kick.clear_immediate_exit();
            // A stop is consumed by the run it ends (see `Vm::stop`).
            let reason = if kick.take(STOP) != 0 {
                Reason::Stopped
            } else if kick.take(TIMEOUT) != 0 {
                Reason::Timeout
            } else {
                kick.take(WAKE);
                Reason::Wake
            };
            inner.record.reason = reason as u32;
            return Ok(reason);
        }
        let exit = match inner.fd.run() {
            Ok(e) => e,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                // With no flag pending, `immediate_exit` is stale (left by a
                // kick whose flag was already consumed): drop it. A kick
                // racing with this is caught by the flag check at the top of
                // the loop, which runs before the next KVM_RUN.
                if kick.flags() == 0 {
                    kick.clear_immediate_exit();
                }
                continue;
            }
            Err(e) => return Err(Error::os("KVM_RUN", e)),
        };
        // Taken after KVM_RUN, not across it: an AP may sit in the guest
        // (halted, or waiting for SIPI) indefinitely, and a range change
        // from the caller's thread must not wait for it.
        let ranges_guard = ranges.read().unwrap_or_else(|p| p.into_inner());
        // SAFETY: KVM has just written the exit; for KVM_EXIT_IO the `io`
        // member of the union is the active one.
        let io_elem = unsafe {
            let run = inner.run_base as *const kvm_bindings::kvm_run;
            if (*run).exit_reason == kvm_bindings::KVM_EXIT_IO { (*run).__bindgen_anon_1.io.size as usize } else { 0 }
        };
        let d = decode(
            exit,
            io_elem,
            &ranges_guard,
            strict,
            &mut inner.record,
            &mut inner.counters,
            inner.run_base,
            &mut inner.pending,
        );
        match d {
            Decision::Resume | Decision::Interrupted => {
                // SAFETY: run_base is this vCPU's kvm_run mapping; KVM sets
                // ready_for_interrupt_injection on every exit.
                let ready = unsafe { (*(inner.run_base as *const kvm_bindings::kvm_run)).ready_for_interrupt_injection };
                if inner.want_window && ready != 0 {
                    inner.record.reason = Reason::IrqWindow as u32;
                    return Ok(Reason::IrqWindow);
                }
                continue;
            }
            Decision::Return(r) => {
                if r == Reason::InternalError {
                    // SAFETY: for KVM_EXIT_INTERNAL_ERROR the `internal`
                    // member of the union is the active one.
                    let internal = unsafe { (*(inner.run_base as *const kvm_bindings::kvm_run)).__bindgen_anon_1.internal };
                    let ndata = internal.ndata.min(16);
                    let mut data = [0u64; 16];
                    data[..ndata as usize].copy_from_slice(&internal.data[..ndata as usize]);
                    inner.last_internal = Some(InternalInfo { suberror: internal.suberror, ndata, data });
                    inner.record.arg = internal.suberror as u64;
                }
                return Ok(r);
            }
        }
    }
}
