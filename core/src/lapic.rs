//! Registers of a `KVM_GET_LAPIC` image (SDM 11.4.1, table 11-1).

use crate::error::{Error, Result};
use kvm_bindings::kvm_lapic_state;

/// In-service register (8 words, vectors 32*i..32*i+31 in word i).
pub const ISR: usize = 0x100;
/// Interrupt request register.
pub const IRR: usize = 0x200;

/// A 32-bit register (`off` must be in range).
pub fn reg(st: &kvm_lapic_state, off: usize) -> u32 {
    u32::from_le_bytes([st.regs[off] as u8, st.regs[off + 1] as u8, st.regs[off + 2] as u8, st.regs[off + 3] as u8])
}

/// A 32-bit register at a caller-given offset, checked.
pub fn checked_reg(st: &kvm_lapic_state, off: usize) -> Result<u32> {
    if !off.is_multiple_of(16) || off + 4 > st.regs.len() {
        return Err(Error::invalid(format!("bad LAPIC register offset {off:#x}")));
    }
    Ok(reg(st, off))
}

/// Write a 32-bit register.
pub fn set_reg(st: &mut kvm_lapic_state, off: usize, v: u32) {
    for (k, b) in v.to_le_bytes().into_iter().enumerate() {
        st.regs[off + k] = b as libc::c_char;
    }
}

/// Bit `vector` of a 256-bit register array (ISR, TMR, IRR) at `base`.
pub fn vector_bit(st: &kvm_lapic_state, base: usize, vector: usize) -> bool {
    reg(st, base + 0x10 * (vector / 32)) >> (vector % 32) & 1 == 1
}

/// Clear the highest in-service vector; returns it.
pub fn retire_highest_isr(st: &mut kvm_lapic_state) -> Option<u8> {
    for i in (0..8).rev() {
        let off = ISR + 0x10 * i;
        let w = reg(st, off);
        if w != 0 {
            let bit = 31 - w.leading_zeros();
            set_reg(st, off, w & !(1 << bit));
            return Some((i as u32 * 32 + bit) as u8);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isr_bits_and_retire() {
        let mut st = kvm_lapic_state::default();
        set_reg(&mut st, ISR + 0x10, 1 << 4); // vector 36
        set_reg(&mut st, ISR + 0x70, 1 << 31); // vector 255
        assert!(vector_bit(&st, ISR, 36) && vector_bit(&st, ISR, 255) && !vector_bit(&st, ISR, 37));
        assert_eq!(retire_highest_isr(&mut st), Some(255));
        assert_eq!(retire_highest_isr(&mut st), Some(36));
        assert_eq!(retire_highest_isr(&mut st), None);
        assert!(checked_reg(&st, 0x31).is_err());
        assert!(checked_reg(&st, 0x400).is_err());
        assert_eq!(checked_reg(&st, 0x100).unwrap(), 0);
    }
}
