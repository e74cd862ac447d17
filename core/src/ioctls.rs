//! Typed wrappers for the few KVM ioctls kvm-ioctls 0.25 does not wrap.
//!
//! Each number is declared with vmm-sys-util's ioctl macros, exactly as
//! kvm-ioctls declares its own, from the KVM API documentation
//! (Documentation/virt/kvm/api.rst).

use crate::error::{Error, Result};
use kvm_bindings::{kvm_interrupt, KVMIO};
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
