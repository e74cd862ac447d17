//! A VM: KVM VM fd, guest memory, irqchip mode, vCPUs, and the managers
//! of its other concerns, each in its own module as `impl Vm` blocks:
//! [`crate::vcpu`] (run loop, LAPIC access, injection), [`crate::irq`]
//! (lines, MSIs, GSI routes, irqfds), [`crate::sources`] (timers, level
//! sources, alarms on the event thread of [`crate::events`]).

use crate::error::{kvm, Code, Error, Result};
use crate::events::Events;
use crate::irq::IrqState;
use crate::kick::STOP;
use crate::layout::RamLayout;
use crate::loader;
use crate::ranges::{Action, RangeTable, Space};
use crate::routing::{self, RoutingTable};
use crate::vcpu::Vcpu;
use kvm_bindings::{kvm_enable_cap, kvm_userspace_memory_region};
use kvm_ioctls::{Cap, Kvm, VmFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion};

/// Interrupt controller arrangement. Values are part of the C ABI.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqchipMode {
    /// In-kernel PIC, IOAPIC and LAPIC.
    Kernel = 0,
    /// In-kernel LAPIC; IOAPIC and PIC in userspace.
    Split = 1,
}

impl IrqchipMode {
    /// Decode the FFI value.
    pub fn from_u32(v: u32) -> Result<Self> {
        match v {
            0 => Ok(IrqchipMode::Kernel),
            1 => Ok(IrqchipMode::Split),
            _ => Err(Error::invalid(format!("bad irqchip mode {v}"))),
        }
    }
}

/// VM creation options.
#[derive(Debug, Clone, Copy)]
pub struct VmConfig {
    /// Guest RAM in bytes.
    pub mem_size: u64,
    /// Irqchip arrangement.
    pub irqchip: IrqchipMode,
    /// Forward unclaimed accesses instead of answering all-ones.
    pub strict: bool,
    /// Host quirk (nested KVM): in split mode, re-signal a level MSI left
    /// without EOI for 1 ms when the LAPIC shows it neither requested nor
    /// in service (see [`crate::sources`]). Off on healthy hosts, where it
    /// would only add spurious interrupts.
    pub quirk_level_resignal: bool,
    /// vCPUs (1..=[`MAX_VCPUS`]); vCPU 0 is the bootstrap processor, the
    /// others wait for INIT/SIPI (see [`crate::smp`]).
    pub vcpus: u32,
}

/// Most vCPUs a VM may have.
pub const MAX_VCPUS: u32 = 64;

pub use crate::layout::{MAX_MEM, MIN_MEM};

/// A virtual machine. Field order matters for drop: vCPU fds and the VM fd
/// close before the guest memory they map is unmapped (`mem` only views
/// `ram`, which owns the mapping and drops last).
pub struct Vm {
    pub(crate) kvm: &'static Kvm,
    pub(crate) fd: VmFd,
    pub(crate) vcpus: Vec<Vcpu>,
    pub(crate) mem: GuestMemoryMmap,
    pub(crate) layout: RamLayout,
    pub(crate) config: VmConfig,
    pub(crate) ranges: RwLock<RangeTable>,
    pub(crate) irq: IrqState,
    pub(crate) events: Events,
    pub(crate) halt_poll_disabled: Mutex<bool>,
    /// AP threads and exit slots.
    pub(crate) aps: crate::smp::Aps,
    /// In-kernel irqchip state at creation (PIC master, slave, IOAPIC).
    initial_irqchip: Vec<kvm_bindings::kvm_irqchip>,
    /// In-kernel PIT state at creation (kernel irqchip only).
    pub(crate) initial_pit: Option<kvm_bindings::kvm_pit_state2>,
    tsc_deadline: bool,
    alive: AtomicBool,
    /// Guest RAM is a private (copy-on-write) mapping of a snapshot's
    /// memory file (see [`crate::snapshot_memory`]); zeroing it must replace the
    /// mapping, since MADV_DONTNEED would bring the file's pages back.
    pub(crate) file_backed: AtomicBool,
    /// The one host mapping of guest RAM (both KVM slots view it).
    ram: MmapRegion,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn kvm_err(context: &'static str) -> impl Fn(kvm_ioctls::Error) -> Error {
    kvm(context)
}

/// The process's `/dev/kvm` handle, opened on first use and shared by every
/// VM (one fd per process, not one per VM).
pub fn kvm_handle() -> Result<&'static Kvm> {
    static KVM: OnceLock<Kvm> = OnceLock::new();
    if let Some(k) = KVM.get() {
        return Ok(k);
    }
    let k = open_kvm()?;
    // A racing opener may have stored its handle first; ours then closes.
    let _ = KVM.set(k);
    Ok(KVM.get().expect("set above"))
}

/// Open `/dev/kvm` with a clear error.
pub fn open_kvm() -> Result<Kvm> {
    Kvm::new().map_err(|e| {
        let hint = match e.errno() {
            libc::ENOENT => "/dev/kvm is missing (no KVM on this host)",
            libc::EACCES | libc::EPERM => "/dev/kvm is not accessible (add the user to the kvm group)",
            _ => "cannot open /dev/kvm",
        };
        Error::new(Code::NoKvm, format!("{hint}: {e}"))
    })
}

impl Vm {
    /// Create a VM with `config.vcpus` vCPUs.
    pub fn new(config: VmConfig) -> Result<Vm> {
        if config.vcpus == 0 || config.vcpus > MAX_VCPUS {
            return Err(Error::invalid(format!("vcpus {} must be 1..{MAX_VCPUS}", config.vcpus)));
        }
        let layout = RamLayout::new(config.mem_size)?;
        let kvm = kvm_handle()?;
        let fd = kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?;
        // Intel VMX needs these three pages somewhere outside RAM.
        fd.set_tss_address(0xfffb_d000).map_err(kvm_err("KVM_SET_TSS_ADDR"))?;
        fd.set_identity_map_address(0xfffb_c000).map_err(kvm_err("KVM_SET_IDENTITY_MAP_ADDR"))?;
        let routing = match config.irqchip {
            IrqchipMode::Kernel => {
                fd.create_irq_chip().map_err(kvm_err("KVM_CREATE_IRQCHIP"))?;
                // KVM's i8254 (ports 0x40-0x43, and port 0x61 through the
                // dummy speaker: counter 2's gate and OUT2), counter 0 on
                // GSI 0. Reinjection stays KVM's default (on), as QEMU's
                // `lost_tick_policy=delay`: ticks the vCPU could not take are
                // delivered late rather than dropped, so a guest counting
                // IRQ0 keeps wall-clock time (after a host stall it sees a
                // burst). Must follow KVM_CREATE_IRQCHIP.
                let pit = kvm_bindings::kvm_pit_config { flags: kvm_bindings::KVM_PIT_SPEAKER_DUMMY, ..Default::default() };
                fd.create_pit2(pit).map_err(kvm_err("KVM_CREATE_PIT2"))?;
                RoutingTable::kernel_default()
            }
            IrqchipMode::Split => {
                if !kvm.check_extension(Cap::SplitIrqchip) {
                    return Err(Error::new(Code::Unsupported, "KVM_CAP_SPLIT_IRQCHIP is not supported"));
                }
                let mut cap = kvm_enable_cap { cap: kvm_bindings::KVM_CAP_SPLIT_IRQCHIP, ..Default::default() };
                cap.args[0] = routing::IOAPIC_PINS as u64;
                fd.enable_cap(&cap).map_err(kvm_err("KVM_ENABLE_CAP(SPLIT_IRQCHIP)"))?;
                RoutingTable::empty()
            }
        };
        let (ram, mem) = map_ram(kvm, &fd, &layout)?;
        let tsc_deadline = kvm.check_extension(Cap::TscDeadlineTimer);
        let mut initial_irqchip = Vec::new();
        let mut initial_pit = None;
        if config.irqchip == IrqchipMode::Kernel {
            initial_pit = Some(fd.get_pit2().map_err(kvm_err("KVM_GET_PIT2"))?);
            for chip in [kvm_bindings::KVM_IRQCHIP_PIC_MASTER, kvm_bindings::KVM_IRQCHIP_PIC_SLAVE, kvm_bindings::KVM_IRQCHIP_IOAPIC] {
                let mut c = kvm_bindings::kvm_irqchip { chip_id: chip, ..Default::default() };
                fd.get_irqchip(&mut c).map_err(kvm_err("KVM_GET_IRQCHIP"))?;
                initial_irqchip.push(c);
            }
        }
        let vcpus = (0..config.vcpus)
            .map(|i| Vcpu::new(kvm, &fd, i, config.vcpus, tsc_deadline))
            .collect::<Result<Vec<_>>>()?;
        let kicks = vcpus.iter().map(|v| v.kick.clone()).collect();
        let ctl = crate::ioctls::VmCtl::new(&fd)?;
        let split = config.irqchip == IrqchipMode::Split;
        let events = Events::new(kicks, split && config.quirk_level_resignal, Some(ctl), !split);
        Ok(Vm {
            aps: crate::smp::Aps::new(config.vcpus),
            vcpus,
            fd,
            mem,
            config,
            ranges: RwLock::new(RangeTable::new()),
            irq: IrqState::new(routing),
            events,
            halt_poll_disabled: Mutex::new(false),
            initial_irqchip,
            initial_pit,
            tsc_deadline,
            alive: AtomicBool::new(true),
            file_backed: AtomicBool::new(false),
            kvm,
            layout,
            ram,
        })
    }

    /// Config this VM was created with.
    pub fn config(&self) -> VmConfig {
        self.config
    }

    /// False once [`Vm::shutdown`] ran: every operation then fails.
    #[inline]
    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Whether CPUID advertises the TSC-deadline timer.
    pub fn tsc_deadline(&self) -> bool {
        self.tsc_deadline
    }

    /// Host address and size of the one mapping of guest RAM: its first
    /// [`RamLayout::low_size`] bytes are GPA 0.., the rest GPA 4 GiB..
    pub fn memory(&self) -> Result<(u64, u64)> {
        Ok((self.ram.as_ptr() as u64, self.layout.size()))
    }

    /// Where RAM lies in guest-physical space.
    pub fn layout(&self) -> RamLayout {
        self.layout
    }

    /// Load an ELF64 image and set vCPU 0 to its long-mode entry with
    /// `args` in RDI, RSI, RDX, RCX.
    pub fn load_elf(&self, bytes: &[u8], args: [u64; 4]) -> Result<u64> {
        let img = loader::parse_elf(bytes, &self.layout)?;
        for s in &img.segments {
            self.mem.write_slice(s.data(bytes), GuestAddress(s.paddr)).map_err(|e| Error::os("load segment", e))?;
            let zeros = vec![0u8; (s.memsz - s.filesz) as usize];
            self.mem.write_slice(&zeros, GuestAddress(s.paddr + s.filesz)).map_err(|e| Error::os("zero bss", e))?;
        }
        self.write_gdt(&loader::gdt())?;
        for (addr, page) in loader::page_tables() {
            for (i, e) in page.iter().enumerate() {
                self.mem.write_obj(*e, GuestAddress(addr + 8 * i as u64)).map_err(|e| Error::os("page tables", e))?;
            }
        }
        let regs = kvm_bindings::kvm_regs {
            rip: img.entry,
            rsp: loader::BOOT_STACK,
            rflags: 0x2,
            rdi: args[0],
            rsi: args[1],
            rdx: args[2],
            rcx: args[3],
            ..Default::default()
        };
        self.set_entry_state(true, loader::gdt().len(), &regs)?;
        Ok(img.entry)
    }

    fn write_gdt(&self, gdt: &[u64]) -> Result<()> {
        for (i, d) in gdt.iter().enumerate() {
            self.mem.write_obj(*d, GuestAddress(loader::GDT_ADDR + 8 * i as u64)).map_err(|e| Error::os("gdt", e))?;
        }
        Ok(())
    }

    /// Load a Multiboot v1 image (ELF32/ELF64 or a.out kludge) with its
    /// command line and modules, and set vCPU 0 to the protected-mode
    /// entry state of the Multiboot spec (3.2): flat 32-bit CS/DS/ES/FS/GS/
    /// SS, CR0.PE = 1, paging off, EFLAGS.IF = 0, EAX = 0x2BADB002, EBX =
    /// the info structure.
    pub fn load_multiboot(&self, bytes: &[u8], cmdline: &str, modules: &[crate::multiboot::MultibootModule]) -> Result<u32> {
        let boot = crate::multiboot::load(&self.mem, bytes, cmdline, modules, &self.layout)?;
        let gdt: [u64; 5] = [0, 0x00cf_9a00_0000_ffff, 0x00cf_9200_0000_ffff, loader::gdt()[3], 0];
        self.write_gdt(&gdt)?;
        let regs = kvm_bindings::kvm_regs {
            rip: boot.entry as u64,
            rax: crate::multiboot::BOOTLOADER_MAGIC as u64,
            rbx: boot.info_addr as u64,
            rflags: 0x2,
            ..Default::default()
        };
        self.set_entry_state(false, gdt.len(), &regs)?;
        Ok(boot.entry)
    }

    /// Add a range.
    pub fn range_add(&self, space: Space, base: u64, len: u64, action: Action) -> Result<()> {
        self.ranges.write().unwrap_or_else(|p| p.into_inner()).add(space, base, len, action)
    }

    /// Remove the range at `base`.
    pub fn range_remove(&self, space: Space, base: u64) -> Result<()> {
        self.ranges.write().unwrap_or_else(|p| p.into_inner()).remove(space, base).map(|_| ())
    }

    /// Kick every vCPU with `flags` (kick::STOP / WAKE).
    pub fn kick(&self, flags: u32) {
        for v in &self.vcpus {
            v.kick.kick(flags);
        }
    }

    /// Stop: every vCPU's current or next run returns `Stopped` (the flag
    /// is consumed by that return, never cleared at run entry, so a stop
    /// racing with the start of a run is not lost).
    pub fn stop(&self) {
        self.kick(STOP);
    }

    /// Return the VM to power-on state: every vCPU, the in-kernel irqchip,
    /// no timer armed, no alarm, and with `zero_memory` all guest RAM zero
    /// (released to the host with MADV_DONTNEED, so RSS drops too). Ranges,
    /// routes, irqfds and level sources (host configuration) stay. Busy if
    /// a vCPU runs.
    pub fn reset(&self, zero_memory: bool) -> Result<()> {
        self.quiesce_detached_aps();
        self.drop_parked_aps();
        // As a snapshot restore: no tick may land half-way, and no
        // resampled line may stay asserted into the power-on irqchip.
        self.events.quiesced(true, None, |high| {
            for i in 0..self.vcpus.len() as u32 {
                self.reset_vcpu(i)?;
            }
            for c in &self.initial_irqchip {
                self.fd.set_irqchip(c).map_err(kvm_err("KVM_SET_IRQCHIP"))?;
            }
            if let Some(p) = &self.initial_pit {
                self.fd.set_pit2(p).map_err(kvm_err("KVM_SET_PIT2"))?;
            }
            self.lower_resampled_lines(high).map(|_| ())
        })?;
        self.events.alarm(crate::kick::TIMEOUT, 0)?;
        self.events.alarm(crate::kick::WAKE, 0)?;
        if zero_memory {
            self.zero_ram()?;
        }
        Ok(())
    }

    /// Short timer periods disable KVM halt polling for this VM: polling
    /// would burn a host core between ticks.
    pub(crate) fn disable_halt_polling(&self) {
        let mut done = lock(&self.halt_poll_disabled);
        if !*done && self.kvm.check_extension_raw(kvm_bindings::KVM_CAP_HALT_POLL as libc::c_ulong) > 0 {
            let cap = kvm_enable_cap { cap: kvm_bindings::KVM_CAP_HALT_POLL, ..Default::default() };
            *done = self.fd.enable_cap(&cap).is_ok();
            if *done {
                self.events.halt_poll_off();
            }
        }
    }

    /// Mark the VM dead, stop its vCPUs and its event thread. Idempotent;
    /// also done on drop.
    pub fn shutdown(&self) {
        self.alive.store(false, Ordering::Release);
        self.kick(STOP);
        self.stop_aps();
        self.events.shutdown();
    }
}

/// Map `layout.size()` bytes of anonymous memory once and register its two
/// parts with KVM as slots 0 (GPA 0) and 1 (GPA 4 GiB, when RAM reaches past
/// the hole). Returns the owning mapping and the guest-memory view of it.
fn map_ram(kvm: &Kvm, fd: &VmFd, layout: &RamLayout) -> Result<(MmapRegion, GuestMemoryMmap)> {
    if layout.high_size() > 0 {
        let bits = phys_bits(kvm);
        if layout.end() > 1 << bits {
            return Err(Error::new(
                Code::Unsupported,
                format!(
                    "memory size {:#x} puts RAM up to {:#x}, past this host's {bits}-bit guest-physical space",
                    layout.size(),
                    layout.end()
                ),
            ));
        }
    }
    let ram = MmapRegion::new(layout.size() as usize).map_err(|e| Error::os("guest memory mmap", e))?;
    let mut regions = Vec::new();
    for (slot, (gpa, off, len)) in layout.slots().into_iter().enumerate() {
        // SAFETY: [off, off + len) lies inside `ram` (RamLayout::slots
        // splits its size), whose prot/flags these are; `ram` outlives the
        // view (it is the last field of `Vm` to drop).
        let view = unsafe {
            MmapRegion::build_raw(
                ram.as_ptr().add(off as usize),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_PRIVATE,
            )
        }
        .map_err(|e| Error::os("guest memory view", e))?;
        regions.push(GuestRegionMmap::new(view, GuestAddress(gpa)).ok_or_else(|| Error::invalid("guest region overflows"))?);
        let region = kvm_userspace_memory_region {
            slot: slot as u32,
            guest_phys_addr: gpa,
            memory_size: len,
            // SAFETY: inside the mapping, as above.
            userspace_addr: unsafe { ram.as_ptr().add(off as usize) } as u64,
            flags: 0,
        };
        // SAFETY: the slot maps memory owned by `ram`, which lives as long
        // as the VM (field order drops `fd` before `ram`).
        unsafe { fd.set_user_memory_region(region) }.map_err(kvm_err("KVM_SET_USER_MEMORY_REGION"))?;
    }
    let mem = GuestMemoryMmap::from_regions(regions).map_err(|e| Error::invalid(format!("guest memory: {e}")))?;
    Ok((ram, mem))
}

/// Guest-physical address width KVM offers (CPUID 0x8000_0008 EAX[7:0]);
/// 36 when the leaf is missing (the architectural minimum).
fn phys_bits(kvm: &Kvm) -> u32 {
    kvm.get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
        .ok()
        .and_then(|c| c.as_slice().iter().find(|e| e.function == 0x8000_0008).map(|e| e.eax & 0xff))
        .filter(|&b| b >= 32)
        .unwrap_or(36)
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.shutdown();
    }
}
