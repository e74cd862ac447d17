//! Unit tests of the machine-state blob: framing, and on /dev/kvm the
//! PIT round trip and a tick racing a restore.

use super::*;

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
    // Through the irqfd (the path without the in-kernel line): a tick
    // raised with KVM_IRQ_LINE is injected before the ioctl returns.
    vm.events.timer_use_irqfd(timer).unwrap();
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

#[test]
fn the_in_kernel_pit_travels_with_the_machine_state() {
    use crate::vm::VmConfig;
    if !std::path::Path::new("/dev/kvm").exists() {
        eprintln!("SKIPPED: no /dev/kvm");
        return;
    }
    let cfg = || VmConfig { mem_size: 16 << 20, irqchip: IrqchipMode::Kernel, strict: false, quirk_level_resignal: true, vcpus: 1 };
    let (a, b) = (Vm::new(cfg()).unwrap(), Vm::new(cfg()).unwrap());
    let mut pit = a.fd.get_pit2().unwrap();
    pit.channels[0].count = 0x1234;
    pit.channels[0].mode = 2;
    pit.channels[0].rw_mode = 3;
    a.fd.set_pit2(&pit).unwrap();
    let blob = a.state_save().unwrap();
    let (_, _, recs) = parse(&blob).unwrap();
    assert_eq!(recs.iter().filter(|r| r.tag == StateTag::Pit).count(), 1);
    b.state_load(&blob).unwrap();
    let got = b.fd.get_pit2().unwrap();
    assert_eq!((got.channels[0].count, got.channels[0].mode), (0x1234, 2));
}

/// Level sources' pending work is in the blob; a VM whose sources differ
/// refuses it before changing anything, one with the same gets its work.
#[test]
fn level_sources_pending_work_round_trips() {
    use crate::vm::VmConfig;
    if !std::path::Path::new("/dev/kvm").exists() {
        eprintln!("SKIPPED: no /dev/kvm");
        return;
    }
    let cfg = || VmConfig { mem_size: 16 << 20, irqchip: IrqchipMode::Kernel, strict: false, quirk_level_resignal: true, vcpus: 1 };
    let pending = |vm: &Vm, id: u32| vm.level_stats(id).unwrap()[2];
    let a = Vm::new(cfg()).unwrap();
    let src = a.level_create(10).unwrap();
    a.level_add(src, 6).unwrap();
    let blob = a.state_save().unwrap();
    a.level_add(src, 2).unwrap();
    assert_eq!(pending(&a, src), 8);
    a.state_load(&blob).unwrap();
    assert_eq!(pending(&a, src), 6);

    let none = Vm::new(cfg()).unwrap();
    let e = none.state_load(&blob).unwrap_err().to_string();
    assert!(e.contains("1 level sources (GSI 10), this VM 0 (GSI )"), "{e}");
    let other = Vm::new(cfg()).unwrap();
    let o = other.level_create(11).unwrap();
    other.level_add(o, 1).unwrap();
    assert!(other.state_load(&blob).unwrap_err().to_string().contains("this VM 1 (GSI 11)"));
    assert_eq!(pending(&other, o), 1, "a refused blob changes nothing");
}
