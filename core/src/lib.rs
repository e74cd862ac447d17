//! denovmm core: a small x86-64 KVM VMM core behind a C ABI for Deno FFI.
//!
//! - [`vm`]: VM and vCPU setup, the `KVM_RUN` loop, interrupts, timers;
//! - [`exit`]: the exit record shared with TypeScript and exit decoding;
//! - [`ranges`]: which port/MMIO ranges are forwarded or handled here;
//! - [`routing`]: the GSI routing table and MSI helpers;
//! - [`loader`]: ELF64 loading and long-mode entry state;
//! - [`timer`]: drift-free timerfd tick threads;
//! - [`kick`]: race-free vCPU kicks;
//! - [`level_source`]: host-thread level interrupts on irqfd + resamplefd;
//! - [`ioctls`]: typed wrappers for ioctls kvm-ioctls lacks;
//! - [`ffi`]: the only `extern "C"` surface.

pub mod elf;
pub mod error;
pub mod exit;
pub mod ffi;
pub mod handles;
pub mod ioctls;
pub mod kick;
pub mod level_source;
pub mod loader;
pub mod multiboot;
pub mod ranges;
pub mod routing;
pub mod timer;
pub mod vm;
