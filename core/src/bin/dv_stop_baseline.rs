//! `dv_stop_baseline`: stop → run-return latency of the core alone (no
//! Deno), the reference for `bench/run_stop_bench.ts`.
//!
//! ```text
//! dv_stop_baseline <spin.elf> <stops>
//! ```
//!
//! A vCPU thread runs the `spin` guest; the main thread waits until the
//! vCPU is inside `run`, lets it spin 0.2–2 ms, calls [`Vm::stop`] and
//! takes the time; the vCPU thread takes the time when `run` returns
//! `Stopped`. Prints one JSON line with every latency in nanoseconds.

use denovmm_core::exit::Reason;
use denovmm_core::vm::{IrqchipMode, Vm, VmConfig};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(elf), Some(stops)) = (args.first(), args.get(1).and_then(|s| s.parse::<usize>().ok())) else {
        eprintln!("usage: dv_stop_baseline <spin.elf> <stops>");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(elf) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{elf}: {e} (run guests/build.sh first)");
            return ExitCode::from(2);
        }
    };
    match run(&bytes, stops) {
        Ok(ns) => {
            let list: Vec<String> = ns.iter().map(|n| n.to_string()).collect();
            println!("{{\"method\":\"core\",\"stops\":{stops},\"ns\":[{}]}}", list.join(","));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(elf: &[u8], stops: usize) -> Result<Vec<u128>, String> {
    let e = |what: &'static str| move |err: denovmm_core::error::Error| format!("{what}: {err}");
    let config = VmConfig { mem_size: 16 << 20, irqchip: IrqchipMode::Kernel, strict: false, quirk_level_resignal: false, vcpus: 1 };
    let vm = Arc::new(Vm::new(config).map_err(e("create VM"))?);
    vm.load_elf(elf, [0; 4]).map_err(e("load"))?;
    let in_run = Arc::new(AtomicBool::new(false));
    let (go_tx, go_rx) = mpsc::channel::<bool>();
    let (done_tx, done_rx) = mpsc::channel::<Result<Instant, String>>();
    let vcpu = {
        let (vm, in_run) = (vm.clone(), in_run.clone());
        std::thread::spawn(move || {
            while go_rx.recv() == Ok(true) {
                in_run.store(true, Ordering::Release);
                let r = loop {
                    match vm.run(0) {
                        Ok(Reason::Stopped) => break Ok(Instant::now()),
                        Ok(_) => continue, // the guest's serial output
                        Err(err) => break Err(format!("run: {err}")),
                    }
                };
                in_run.store(false, Ordering::Release);
                if done_tx.send(r).is_err() {
                    return;
                }
            }
        })
    };
    let mut out = Vec::with_capacity(stops);
    let mut seed = 0x9e37_79b9u32;
    for _ in 0..stops {
        go_tx.send(true).map_err(|_| "vCPU thread gone")?;
        while !in_run.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        std::thread::sleep(Duration::from_micros(200 + (seed % 1800) as u64));
        let t0 = Instant::now();
        vm.stop();
        let t1 = done_rx.recv().map_err(|_| "vCPU thread gone")??;
        out.push(t1.saturating_duration_since(t0).as_nanos());
    }
    drop(go_tx);
    let _ = vcpu.join();
    Ok(out)
}
