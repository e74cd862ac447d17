//! End-to-end tests against /dev/kvm with the guests from `guests/build`.
//! Skipped (with a loud message) only when /dev/kvm is absent.

use denovmm_core::exit::{offsets, ExitRecord, Reason};
use denovmm_core::ranges::{Action, Space};
use denovmm_core::vm::{IrqchipMode, Vm, VmConfig};
use std::sync::Arc;

fn guest(name: &str) -> Option<Vec<u8>> {
    if !std::path::Path::new("/dev/kvm").exists() {
        eprintln!("SKIPPED: /dev/kvm is absent on this host; KVM tests did not run");
        return None;
    }
    let p = format!("{}/../guests/build/{name}.elf", env!("CARGO_MANIFEST_DIR"));
    Some(std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e} (run guests/build.sh first)")))
}

fn vm(mode: IrqchipMode) -> Arc<Vm> {
    Arc::new(Vm::new(VmConfig { mem_size: 16 << 20, irqchip: mode, strict: false, quirk_level_resignal: true, vcpus: 1 }).unwrap())
}

fn record(vm: &Vm) -> &ExitRecord {
    // SAFETY: the record lives as long as the VM and is only written by
    // run(), which is not running while we read.
    unsafe { &*(vm.record(0).unwrap() as *const ExitRecord) }
}

/// Run, printing serial output, until the debug-exit port is written.
fn run_to_exit(vm: &Arc<Vm>) -> (u64, String) {
    let mut out = String::new();
    vm.range_add(Space::Pio, 0x3f8, 8, Action::Forward { region: 0 }).unwrap();
    vm.range_add(Space::Pio, 0xf4, 4, Action::Forward { region: 0 }).unwrap();
    vm.alarm(denovmm_core::kick::TIMEOUT, 5_000_000_000).unwrap();
    loop {
        let r = vm.run(0).unwrap();
        let rec = record(vm);
        match r {
            Reason::Io if rec.address == 0xf4 && rec.is_write == 1 => {
                let v = u32::from_le_bytes(rec.data[..4].try_into().unwrap()) as u64;
                return (v * 2 + 1, out);
            }
            Reason::Io if rec.address == 0x3f8 && rec.is_write == 1 => out.push(rec.data[0] as char),
            Reason::Io if rec.address == 0x3fd => {
                // LSR: THRE | TEMT.
                // SAFETY: see `record`; the caller fills read data here.
                unsafe { (*(vm.record(0).unwrap() as *mut ExitRecord)).data[0] = 0x60 };
            }
            Reason::Io => {}
            other => panic!("unexpected exit {other:?}, serial so far: {out}"),
        }
    }
}

#[test]
fn hello_prints_and_exits() {
    let Some(elf) = guest("hello") else { return };
    let vm = vm(IrqchipMode::Kernel);
    vm.load_elf(&elf, [21, 0, 0, 0]).unwrap();
    let (status, out) = run_to_exit(&vm);
    assert!(out.contains("hello from denovmm"), "{out}");
    assert_eq!(status, 43);
}

#[test]
fn selfipi_is_delivered() {
    let Some(elf) = guest("selfipi") else { return };
    let vm = vm(IrqchipMode::Kernel);
    vm.load_elf(&elf, [0; 4]).unwrap();
    let (status, out) = run_to_exit(&vm);
    assert_eq!(status, 1, "{out}");
}

#[test]
fn stop_kicks_a_spinning_vcpu() {
    let Some(elf) = guest("spin") else { return };
    let vm = vm(IrqchipMode::Kernel);
    vm.load_elf(&elf, [0; 4]).unwrap();
    vm.range_add(Space::Pio, 0x3f8, 8, Action::Ignore { read_value: 0x60 }).unwrap();
    let v2 = vm.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        v2.kick(denovmm_core::kick::STOP);
    });
    assert_eq!(vm.run(0).unwrap(), Reason::Stopped);
    t.join().unwrap();
    // The stop was consumed by the run it ended: the next run resumes.
    vm.alarm(denovmm_core::kick::TIMEOUT, 20_000_000).unwrap();
    assert_eq!(vm.run(0).unwrap(), Reason::Timeout);
    // A stop before the run is not lost: exactly the next run returns it.
    vm.stop();
    assert_eq!(vm.run(0).unwrap(), Reason::Stopped);
    vm.alarm(denovmm_core::kick::TIMEOUT, 20_000_000).unwrap();
    assert_eq!(vm.run(0).unwrap(), Reason::Timeout);
}

#[test]
fn fast_path_exits_stay_in_rust() {
    let Some(elf) = guest("exits") else { return };
    let vm = vm(IrqchipMode::Kernel);
    vm.range_add(Space::Pio, 0x80, 1, Action::Ignore { read_value: 0 }).unwrap();
    vm.load_elf(&elf, [0x80, 1000, 0, 0]).unwrap();
    let (status, _) = run_to_exit(&vm);
    assert_eq!(status, 1);
    let c = vm.counters(0).unwrap();
    assert!(c.fast_path >= 1000, "{c:?}");
    assert_eq!(offsets::DATA, 64);
}

#[test]
fn split_irqchip_boots() {
    let Some(elf) = guest("hello") else { return };
    let vm = vm(IrqchipMode::Split);
    vm.load_elf(&elf, [0; 4]).unwrap();
    let (status, out) = run_to_exit(&vm);
    assert_eq!(status, 1, "{out}");
}

fn run_level(mode: IrqchipMode, delay_ms: u64) -> (u64, [u64; 7]) {
    let elf = guest("level_irq").unwrap();
    let vm = vm(mode);
    vm.range_add(Space::Pio, 0x2f1, 1, Action::Forward { region: 0 }).unwrap();
    vm.range_add(Space::Pio, 0x3f8, 8, Action::Ignore { read_value: 0x60 }).unwrap();
    vm.range_add(Space::Pio, 0xf4, 4, Action::Forward { region: 0 }).unwrap();
    vm.range_add(Space::Mmio, 0xfec0_0000, 0x100, Action::Forward { region: 0 }).unwrap();
    vm.load_elf(&elf, [10, 0x70, 5, 100]).unwrap();
    vm.alarm(denovmm_core::kick::TIMEOUT, 3_000_000_000).unwrap();
    let mut id = None;
    // a minimal userspace IOAPIC: remember the redirection entry writes
    let mut sel = 0u32;
    loop {
        let r = vm.run(0).unwrap();
        let rec = record(&vm);
        match r {
            Reason::Io if rec.address == 0x2f1 => {
                let l = vm.level_create(10).unwrap();
                vm.level_add(l, 5).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(delay_ms));
                id = Some(l);
            }
            Reason::Io if rec.address == 0xf4 => {
                let v = u32::from_le_bytes(rec.data[..4].try_into().unwrap()) as u64;
                // The device thread retires the last item when it reads the
                // resample eventfd, which can lag the guest's exit a little.
                let id = id.unwrap();
                for _ in 0..200 {
                    if vm.level_stats(id).unwrap()[2] == 0 {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                return (v * 2 + 1, vm.level_stats(id).unwrap());
            }
            Reason::Mmio if rec.is_write == 1 => {
                let v = u32::from_le_bytes(rec.data[..4].try_into().unwrap());
                if rec.address == 0xfec0_0000 {
                    sel = v;
                } else if sel == 0x10 + 20 && mode == IrqchipMode::Split && v & 0x10000 == 0 {
                    vm.route_set_msi(10, 0xfee0_0000, (v & 0xff) | 0xc000).unwrap();
                }
            }
            Reason::Mmio => {}
            Reason::IoapicEoi => {
                vm.resample_gsi(10).unwrap();
            }
            other => panic!("unexpected {other:?}, level stats {:?}", id.map(|i| vm.level_stats(i).unwrap())),
        }
    }
}

/// A host thread drives a level line through irqfd + resamplefd; the
/// guest must see exactly one interrupt per work item in both modes (in
/// split mode this harness plays the userspace IOAPIC: MSI route from the
/// redirection entry, resample on KVM_EXIT_IOAPIC_EOI).
#[test]
fn level_source_resamples() {
    if guest("level_irq").is_none() {
        return;
    }
    for mode in [IrqchipMode::Kernel, IrqchipMode::Split] {
        for delay in [0, 5] {
            let (status, stats) = run_level(mode, delay);
            eprintln!("{mode:?} delay {delay}: status {status} stats {stats:?}");
            assert_eq!(status, 1, "guest saw exactly 5 interrupts");
            match mode {
                IrqchipMode::Kernel => assert_eq!(&stats[..3], &[5, 5, 0], "5 asserts, 5 EOIs, none pending"),
                // Split mode on this nested host: a level MSI from an irqfd
                // may reach the guest without its EOI exit reaching us; the
                // vCPU's poll then re-signals it, and that copy can arrive
                // after the guest stopped taking interrupts. The guest's
                // exact count above is what matters.
                IrqchipMode::Split => {
                    assert!(stats[0] >= 5 && stats[1] >= 4 && stats[2] <= 1, "{stats:?}");
                    if stats[1] < 5 {
                        assert!(stats[6] >= 1, "a missing EOI implies a re-signal: {stats:?}");
                    }
                }
            }
        }
    }
}

/// A detached irqfd keeps counting writes (a masked MSI-X vector's
/// message is held, not lost) and re-attaches without a route change.
#[test]
fn irqfd_detach_holds_messages() {
    if guest("hello").is_none() {
        return;
    }
    let vm = vm(IrqchipMode::Split);
    let gsi = vm.route_allocate().unwrap();
    vm.route_set_msi(gsi, 0xfee0_0000, 0x41).unwrap();
    let id = vm.irqfd_create(gsi, false).unwrap();
    assert!(!vm.irqfd_take(id).unwrap(), "nothing fired yet");
    vm.irqfd_attach(id, false).unwrap();
    vm.irqfd_attach(id, false).unwrap(); // idempotent
    vm.irqfd_trigger(id).unwrap();
    vm.irqfd_trigger(id).unwrap();
    assert!(vm.irqfd_take(id).unwrap(), "held while detached");
    assert!(!vm.irqfd_take(id).unwrap(), "consumed");
    vm.irqfd_attach(id, true).unwrap();
    vm.irqfd_destroy(id).unwrap();
    // a detached irqfd can be destroyed too
    let id = vm.irqfd_create(gsi, false).unwrap();
    vm.irqfd_attach(id, false).unwrap();
    vm.irqfd_destroy(id).unwrap();
    assert!(vm.irqfd_trigger(id).is_err());
}

#[test]
fn a_thousand_racing_stops_are_never_lost() {
    let Some(elf) = guest("spin") else { return };
    let vm = vm(IrqchipMode::Kernel);
    vm.load_elf(&elf, [0; 4]).unwrap();
    vm.range_add(Space::Pio, 0x3f8, 8, Action::Ignore { read_value: 0x60 }).unwrap();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..1000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Stop from another thread before, at or during the start of run():
        // exactly this run must end with Stopped (a generous timeout turns a
        // lost stop into a failure instead of a hang).
        let delay = std::time::Duration::from_micros(x % 300);
        let v2 = vm.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(delay);
            v2.stop();
        });
        vm.alarm(denovmm_core::kick::TIMEOUT, 5_000_000_000).unwrap();
        let r = vm.run(0).unwrap();
        t.join().unwrap();
        vm.alarm(denovmm_core::kick::TIMEOUT, 0).unwrap();
        assert_eq!(r, Reason::Stopped, "iteration {i}");
    }
}

#[test]
fn cpu_model_applies_before_the_first_run_only() {
    let Some(elf) = guest("hello") else { return };
    let vm = vm(IrqchipMode::Kernel);
    assert!(vm.cpuid(0, 1, 0).unwrap().unwrap().ecx & (1 << 21) != 0, "host offers x2APIC");
    vm.set_cpu(0, "host\n-x2apic").unwrap();
    assert_eq!(vm.cpuid(0, 1, 0).unwrap().unwrap().ecx & (1 << 21), 0);
    let e = vm.set_cpu(0, "host,+smx").unwrap_err();
    assert!(e.message.contains("\"smx\""), "{}", e.message);
    assert_eq!(vm.cpuid(0, 1, 0).unwrap().unwrap().ecx & (1 << 21), 0, "a refused spec changes nothing");
    vm.load_elf(&elf, [0; 4]).unwrap();
    run_to_exit(&vm);
    let e = vm.set_cpu(0, "baseline").unwrap_err();
    assert!(e.message.contains("before the vCPU first runs"), "{}", e.message);
}

#[test]
fn forbidden_instruction_crash_state() {
    let Some(elf) = guest("forbidden") else { return };
    let vm = vm(IrqchipMode::Kernel);
    vm.load_elf(&elf, [0; 4]).unwrap();
    vm.range_add(Space::Pio, 0x3f8, 8, Action::Ignore { read_value: 0x60 }).unwrap();
    vm.alarm(denovmm_core::kick::TIMEOUT, 5_000_000_000).unwrap();
    let r = vm.run(0).unwrap();
    let s = vm.crash_state(0).unwrap();
    assert_eq!(s.regs.r12, 0xdead_beef_cafe_f00d);
    assert_eq!(s.linear, s.regs.rip);
    match r {
        Reason::InternalError => {
            assert_eq!(s.insn[0], 0xcc);
            assert_eq!(s.insn.len(), 15);
            assert_eq!(s.hint, denovmm_core::crash::InsnHint::Int3 as u32);
            assert_eq!(s.internal.unwrap().suberror, 1);
        }
        // A host that executes int3: no IDT, so a triple fault.
        other => assert_eq!(other, Reason::Shutdown),
    }
}

/// With 2 vCPUs every vCPU runs on its own thread and the caller only
/// waits: vCPU 0's port exits, a stop from another thread, the run
/// timeout and a wake-up all arrive through `wait_exits`; stopping the
/// threads counts a taken exit as handled; a stop between runs is not
/// lost; waiting without threads is an error.
#[test]
fn smp_caller_waits_for_every_vcpu_exit() {
    let Some(elf) = guest("hello") else { return };
    let cfg = VmConfig { mem_size: 16 << 20, irqchip: IrqchipMode::Kernel, strict: false, quirk_level_resignal: true, vcpus: 2 };
    let vm = Arc::new(Vm::new(cfg).unwrap());
    vm.load_elf(&elf, [21, 0, 0, 0]).unwrap();
    vm.range_add(Space::Pio, 0x3f8, 8, Action::Forward { region: 0 }).unwrap();
    vm.range_add(Space::Pio, 0xf4, 4, Action::Forward { region: 0 }).unwrap();
    vm.start_aps().unwrap();
    assert_eq!(vm.ap_threads(), 1);
    let (mut ids, mut released, mut out, mut status) = ([0u32; 64], 0usize, String::new(), None);
    while status.is_none() {
        let release: Vec<u32> = ids[..released].to_vec();
        let n = vm.wait_exits(&release, &mut ids).unwrap();
        assert!(n >= 1);
        for &i in &ids[..n] {
            assert_eq!(i, 0, "the AP waits for SIPI: only vCPU 0 exits");
            // SAFETY: vCPU 0's exit is taken: its thread does not touch the
            // record until released.
            let rec = unsafe { &mut *(vm.record(0).unwrap() as *mut ExitRecord) };
            assert_eq!(rec.reason, Reason::Io as u32);
            match rec.address {
                0xf4 => status = Some(u32::from_le_bytes(rec.data[..4].try_into().unwrap())),
                0x3f8 if rec.is_write == 1 => out.push(rec.data[0] as char),
                0x3fd => rec.data[0] = 0x60,
                _ => {}
            }
        }
        released = n;
    }
    vm.stop_aps();
    assert_eq!(vm.ap_threads(), 0);
    assert_eq!(status, Some(21), "{out}");
    assert!(out.contains("hello from denovmm"), "{out}");

    // A spinning guest: a stop from another thread reaches the caller as
    // vCPU 0's exit.
    let Some(spin) = guest("spin") else { return };
    vm.reset(false).unwrap();
    vm.load_elf(&spin, [0; 4]).unwrap();
    vm.range_remove(Space::Pio, 0x3f8).unwrap();
    vm.range_add(Space::Pio, 0x3f8, 8, Action::Ignore { read_value: 0x60 }).unwrap();
    let wait_for = |want: Reason| {
        let mut ids = [0u32; 64];
        let n = vm.wait_exits(&[], &mut ids).unwrap();
        assert_eq!(&ids[..n], &[0]);
        // SAFETY: as above (taken).
        assert_eq!(unsafe { (*(vm.record(0).unwrap() as *const ExitRecord)).reason }, want as u32);
    };
    vm.start_aps().unwrap();
    let v2 = vm.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        v2.stop();
    });
    wait_for(Reason::Stopped);
    t.join().unwrap();
    vm.release_ap(0).unwrap();
    vm.alarm(denovmm_core::kick::TIMEOUT, 20_000_000).unwrap();
    wait_for(Reason::Timeout);
    vm.release_ap(0).unwrap();
    vm.wake_vcpu(0).unwrap();
    wait_for(Reason::Wake);
    // Stopping with vCPU 0's wake-up taken counts it as handled (it is
    // not handed over again); a stop between runs ends the next at once.
    vm.stop_aps();
    vm.stop();
    vm.start_aps().unwrap();
    wait_for(Reason::Stopped);
    vm.release_ap(0).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    vm.stop_aps();
    // No thread: waiting is an error, not a hang.
    assert!(vm.wait_exits(&[], &mut [0u32; 4]).is_err());
}
