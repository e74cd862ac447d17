//! Typed wrappers for the few KVM ioctls kvm-ioctls 0.25 does not wrap.
//!
//! Each number is declared with vmm-sys-util's ioctl macros, exactly as
//! kvm-ioctls declares its own, from the KVM API documentation
//! (Documentation/virt/kvm/api.rst).

use crate::error::{Error, Result};
use kvm_bindings::{kvm_enable_cap, kvm_interrupt, kvm_irq_level, KVMIO};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use kvm_ioctls::VcpuFd;
use vmm_sys_util::ioctl::ioctl_with_ref;
use vmm_sys_util::ioctl_iow_nr;

mod nr {
    #![allow(missing_docs)]
    use super::*;
    // api.rst 4.16 KVM_INTERRUPT: _IOW(KVMIO, 0x86, struct kvm_interrupt).
    ioctl_iow_nr!(KVM_INTERRUPT, KVMIO, 0x86, kvm_interrupt);
}
use nr::KVM_INTERRUPT;

/// KVM_INTERRUPT: queue an external interrupt `vector` on the vCPU. With
/// a split irqchip it becomes the vCPU's pending ExtINT (delivered through
/// LAPIC LINT0 when that is in ExtINT mode); the caller waits for
/// `ready_for_interrupt_injection` (an interrupt-window exit) first.
pub fn interrupt(vcpu: &VcpuFd, vector: u8) -> Result<()> {
    let irq = kvm_interrupt { irq: vector as u32 };
    // SAFETY: `vcpu` is a valid vCPU fd and `irq` a valid kvm_interrupt
    // that KVM only reads; the return value is checked.
    let r = unsafe { ioctl_with_ref(vcpu, KVM_INTERRUPT(), &irq) };
    if r < 0 {
        return Err(Error::os("KVM_INTERRUPT", std::io::Error::last_os_error()));
    }
    Ok(())
}

mod vm_nr {
    #![allow(missing_docs)]
    use super::*;
    // api.rst 4.25 KVM_IRQ_LINE: _IOW(KVMIO, 0x61, struct kvm_irq_level).
    ioctl_iow_nr!(KVM_IRQ_LINE, KVMIO, 0x61, kvm_irq_level);
    // api.rst 4.37 KVM_ENABLE_CAP: _IOW(KVMIO, 0xa3, struct kvm_enable_cap).
    ioctl_iow_nr!(KVM_ENABLE_CAP, KVMIO, 0xa3, kvm_enable_cap);
}

/// The event thread's own handle on its VM (a duplicate of the VM fd), for
/// what it does without the [`kvm_ioctls::VmFd`]'s owner: drive an
/// in-kernel irqchip line synchronously (KVM_IRQ_LINE, without the irqfd's
/// kworker hop) and set the VM's halt polling.
#[derive(Debug)]
pub struct VmCtl(OwnedFd);

impl VmCtl {
    /// Duplicate `vm`'s fd.
    pub fn new(vm: &kvm_ioctls::VmFd) -> Result<Self> {
        // SAFETY: the VmFd is open for the duration of this borrow; the
        // clone is an independent descriptor of the same KVM VM.
        let fd = unsafe { BorrowedFd::borrow_raw(vm.as_raw_fd()) };
        fd.try_clone_to_owned().map(VmCtl).map_err(|e| Error::os("dup(vm fd)", e))
    }

    /// Set irqchip line `gsi` to `level` (userspace source).
    pub fn set(&self, gsi: u32, level: bool) -> Result<()> {
        let mut l = kvm_irq_level::default();
        l.__bindgen_anon_1.irq = gsi;
        l.level = level as u32;
        // SAFETY: the fd is a KVM VM fd we own; `l` is a valid
        // kvm_irq_level that KVM only reads; the result is checked.
        let r = unsafe { ioctl_with_ref(&self.0, vm_nr::KVM_IRQ_LINE(), &l) };
        if r < 0 {
            return Err(Error::os("KVM_IRQ_LINE", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// One edge on line `gsi`: raise, then lower.
    pub fn pulse(&self, gsi: u32) -> Result<()> {
        self.set(gsi, true)?;
        self.set(gsi, false)
    }

    /// KVM_CAP_HALT_POLL: the VM's vCPUs poll up to `max_ns` in HLT
    /// before sleeping (0: never).
    pub fn halt_poll(&self, max_ns: u64) -> Result<()> {
        let mut cap = kvm_enable_cap { cap: kvm_bindings::KVM_CAP_HALT_POLL, ..Default::default() };
        cap.args[0] = max_ns;
        // SAFETY: the fd is a KVM VM fd we own; `cap` is a valid
        // kvm_enable_cap that KVM only reads; the result is checked.
        let r = unsafe { ioctl_with_ref(&self.0, vm_nr::KVM_ENABLE_CAP(), &cap) };
        if r < 0 {
            return Err(Error::os("KVM_ENABLE_CAP(HALT_POLL)", std::io::Error::last_os_error()));
        }
        Ok(())
    }
}
