//! `dv_baseline`: a pure-Rust port-I/O exit baseline (no Deno) for
//! `bench/run_exit_bench.ts`.
//!
//! ```text
//! dv_baseline <exits.elf> <port> <count> <rounds> [--forward]
//! ```
//!
//! Each round creates a fresh VM, loads the `exits` guest (arg0 = `port`,
//! arg1 = `count`), makes `port` a fast-path (`Ignore`) range, or with
//! `--forward` a `Forward` range that this loop "handles" (counts) and
//! re-enters `run` for, the same shape as the TypeScript plugin path, and
//! makes 0xF4 (isa-debug-exit) a `Forward` range. It times the whole run,
//! from the first `run` call to the return of the 0xF4 exit (VM creation
//! and loading excluded, nothing subtracted), and prints one JSON line per
//! round:
//!
//! ```text
//! {"mode":"fastpath","round":0,"ns":..., "exits":..., "ns_per_exit":..., ...}
//! ```
//!
//! `exits` is the run loop's count of all KVM exits of that run (the
//! `count` port writes plus the guest's few startup and exit accesses);
//! `ns_per_exit` = `ns / exits`.

use denovmm_core::exit::{ExitRecord, Reason};
use denovmm_core::ranges::{Action, Space};
use denovmm_core::vm::{IrqchipMode, Vm, VmConfig};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// The isa-debug-exit port the guest leaves through.
const DEBUG_EXIT_PORT: u64 = 0xf4;

struct Args {
    elf: String,
    port: u64,
    count: u64,
    rounds: u64,
    forward: bool,
}

fn usage() -> String {
    "usage: dv_baseline <exits.elf> <port> <count> <rounds> [--forward]".to_string()
}

fn parse_u64(s: &str, what: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("bad {what} {s:?}: {e}"))
}

fn parse_args() -> Result<Args, String> {
    let mut forward = false;
    let mut pos = Vec::new();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--forward" => forward = true,
            "-h" | "--help" => return Err(usage()),
            _ if a.starts_with("--") => return Err(format!("unknown option {a}\n{}", usage())),
            _ => pos.push(a),
        }
    }
    if pos.len() != 4 {
        return Err(usage());
    }
    let port = parse_u64(&pos[1], "port")?;
    if port > 0xffff || (DEBUG_EXIT_PORT..DEBUG_EXIT_PORT + 4).contains(&port) {
        return Err(format!("port {port:#x} must be a 16-bit port outside 0xF4..0xF7"));
    }
    Ok(Args {
        elf: pos[0].clone(),
        port,
        count: parse_u64(&pos[2], "count")?,
        rounds: parse_u64(&pos[3], "rounds")?,
        forward,
    })
}

/// Result of one round.
struct Round {
    ns: u128,
    exits: u64,
    fast_path: u64,
    forwarded: u64,
    handled: u64,
    status: u64,
}

fn round(elf: &[u8], a: &Args) -> Result<Round, String> {
    let e = |what: &'static str| move |err: denovmm_core::error::Error| format!("{what}: {err}");
    let vm = Arc::new(
        Vm::new(VmConfig { mem_size: 16 << 20, irqchip: IrqchipMode::Kernel, strict: false, quirk_level_resignal: false, vcpus: 1 }).map_err(e("create VM"))?,
    );
    let action = if a.forward { Action::Forward { region: 0 } } else { Action::Ignore { read_value: 0xffff_ffff } };
    vm.range_add(Space::Pio, a.port, 1, action).map_err(e("port range"))?;
    vm.range_add(Space::Pio, DEBUG_EXIT_PORT, 4, Action::Forward { region: 0 }).map_err(e("debug-exit range"))?;
    vm.load_elf(elf, [a.port, a.count, 0, 0]).map_err(e("load"))?;
    let rec = vm.record(0).map_err(e("record"))? as *const ExitRecord;
    let mut handled = 0u64;
    let start = Instant::now();
    let status = loop {
        let r = vm.run(0).map_err(e("run"))?;
        // SAFETY: the record lives as long as `vm` and is written only by
        // `run`, which has returned; nothing else runs this vCPU.
        let (address, is_write) = unsafe { ((*rec).address, (*rec).is_write) };
        match r {
            Reason::Io if address == a.port && is_write == 1 => handled += 1,
            Reason::Io if address == DEBUG_EXIT_PORT && is_write == 1 => {
                // SAFETY: as above; only the first four data bytes are read.
                let d = unsafe { [(*rec).data[0], (*rec).data[1], (*rec).data[2], (*rec).data[3]] };
                let v = u32::from_le_bytes(d) as u64;
                break (v << 1) | 1;
            }
            other => return Err(format!("unexpected exit {other:?} at {address:#x}")),
        }
    };
    let ns = start.elapsed().as_nanos();
    let c = vm.counters(0).map_err(e("counters"))?;
    Ok(Round { ns, exits: c.exits, fast_path: c.fast_path, forwarded: c.forwarded, handled, status })
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let elf = match std::fs::read(&a.elf) {
        Ok(b) => b,
        Err(err) => {
            eprintln!("{}: {err} (run guests/build.sh first)", a.elf);
            return ExitCode::from(2);
        }
    };
    let mode = if a.forward { "forward" } else { "fastpath" };
    for i in 0..a.rounds {
        match round(&elf, &a) {
            Ok(r) => {
                let per = if r.exits > 0 { r.ns as f64 / r.exits as f64 } else { 0.0 };
                println!(
                    "{{\"mode\":\"{mode}\",\"round\":{i},\"count\":{},\"ns\":{},\"exits\":{},\"ns_per_exit\":{per:.1},\"fast_path\":{},\"forwarded\":{},\"handled\":{},\"status\":{}}}",
                    a.count, r.ns, r.exits, r.fast_path, r.forwarded, r.handled, r.status
                );
                if r.status != 1 {
                    eprintln!("guest exit status {} (expected 1)", r.status);
                    return ExitCode::FAILURE;
                }
            }
            Err(msg) => {
                eprintln!("round {i}: {msg}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
