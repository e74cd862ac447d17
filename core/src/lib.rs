//! denovmm core: a small x86-64 KVM VMM core behind a C ABI.
//!
//! - [`vm`]: VM creation, guest memory, image loading;
//! - [`vcpu`]: vCPUs, the `KVM_RUN` loop, entry state, LAPIC access;
//! - [`irq`]: lines, MSIs, GSI routes, irqfds; [`routing`] the table;
//! - [`sources`]: timers, level sources, alarms on the VM's [`events`]
//!   thread ([`timer`], [`level_source`]);
//! - [`exit`]: the exit record shared with the caller; [`ranges`]: which
//!   accesses are forwarded or handled here;
//! - [`elf`], [`loader`], [`multiboot`]: images and entry state;
//! - [`kick`]: race-free vCPU kicks; [`lapic`]: LAPIC register images;
//!   [`ids`]: id allocation with reuse; [`ioctls`]: ioctls kvm-ioctls lacks;
//! - [`snapshot`]: machine state blobs, dirty logging, memory files;
//! - [`ffi`]: the only `extern "C"` surface (see `include/denovmm.h`).

pub mod cpuid;
pub mod cpuid_features;
pub mod crash;
pub mod crc32;
pub mod elf;
pub mod error;
pub mod events;
pub mod exit;
pub mod ffi;
pub mod handles;
pub mod ids;
pub mod ioctls;
pub mod irq;
pub mod kick;
pub mod layout;
pub mod lapic;
pub mod level_source;
pub mod loader;
pub mod multiboot;
pub mod ranges;
pub mod routing;
pub mod smp;
pub mod snapshot;
pub mod snapshot_memory;
pub mod sources;
pub mod timer;
pub mod vcpu;
pub mod vm;
