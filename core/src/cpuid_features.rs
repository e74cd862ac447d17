//! CPUID feature names: where each feature bit lives, which features the
//! `baseline` template keeps, and which features depend on which.
//!
//! Names follow QEMU's `-cpu` flags (`tsc-deadline`, `sse4.1`, `kvm-pv-eoi`)
//! with Linux `/proc/cpuinfo` spellings accepted as aliases (`pni`,
//! `tsc_deadline_timer`, `sse4_1`, `lahf_lm`): see [`lookup`].

/// A CPUID output register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reg {
    /// EAX.
    Eax,
    /// EBX.
    Ebx,
    /// ECX.
    Ecx,
    /// EDX.
    Edx,
}

/// Where a feature bit lives: leaf, subleaf, register, bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// Canonical name.
    pub name: &'static str,
    /// CPUID leaf (EAX input).
    pub leaf: u32,
    /// Subleaf (ECX input; 0 for leaves without subleaves).
    pub sub: u32,
    /// Output register.
    pub reg: Reg,
    /// Bit number.
    pub bit: u8,
}

const fn f(name: &'static str, leaf: u32, sub: u32, reg: Reg, bit: u8) -> Feature {
    Feature { name, leaf, sub, reg, bit }
}

use Reg::{Eax, Ebx, Ecx, Edx};

/// First leaf of the KVM paravirt range (signature "KVMKVMKVM").
pub const KVM_SIG_LEAF: u32 = 0x4000_0000;
/// KVM paravirt feature leaf.
pub const KVM_FEATURES_LEAF: u32 = 0x4000_0001;
/// Timing leaf (VMware convention, read by Linux and others): EAX = TSC
/// kHz, EBX = LAPIC bus kHz.
pub const TIMING_LEAF: u32 = 0x4000_0010;

/// Every named feature.
pub static FEATURES: &[Feature] = &[
    // CPUID.1:EDX
    f("fpu", 1, 0, Edx, 0),
    f("vme", 1, 0, Edx, 1),
    f("de", 1, 0, Edx, 2),
    f("pse", 1, 0, Edx, 3),
    f("tsc", 1, 0, Edx, 4),
    f("msr", 1, 0, Edx, 5),
    f("pae", 1, 0, Edx, 6),
    f("mce", 1, 0, Edx, 7),
    f("cx8", 1, 0, Edx, 8),
    f("apic", 1, 0, Edx, 9),
    f("sep", 1, 0, Edx, 11),
    f("mtrr", 1, 0, Edx, 12),
    f("pge", 1, 0, Edx, 13),
    f("mca", 1, 0, Edx, 14),
    f("cmov", 1, 0, Edx, 15),
    f("pat", 1, 0, Edx, 16),
    f("pse36", 1, 0, Edx, 17),
    f("clflush", 1, 0, Edx, 19),
    f("mmx", 1, 0, Edx, 23),
    f("fxsr", 1, 0, Edx, 24),
    f("sse", 1, 0, Edx, 25),
    f("sse2", 1, 0, Edx, 26),
    f("ss", 1, 0, Edx, 27),
    f("ht", 1, 0, Edx, 28),
    // CPUID.1:ECX
    f("sse3", 1, 0, Ecx, 0),
    f("pclmulqdq", 1, 0, Ecx, 1),
    f("dtes64", 1, 0, Ecx, 2),
    f("monitor", 1, 0, Ecx, 3),
    f("vmx", 1, 0, Ecx, 5),
    f("smx", 1, 0, Ecx, 6),
    f("ssse3", 1, 0, Ecx, 9),
    f("fma", 1, 0, Ecx, 12),
    f("cx16", 1, 0, Ecx, 13),
    f("pdcm", 1, 0, Ecx, 15),
    f("pcid", 1, 0, Ecx, 17),
    f("sse4.1", 1, 0, Ecx, 19),
    f("sse4.2", 1, 0, Ecx, 20),
    f("x2apic", 1, 0, Ecx, 21),
    f("movbe", 1, 0, Ecx, 22),
    f("popcnt", 1, 0, Ecx, 23),
    f("tsc-deadline", 1, 0, Ecx, 24),
    f("aes", 1, 0, Ecx, 25),
    f("xsave", 1, 0, Ecx, 26),
    f("avx", 1, 0, Ecx, 28),
    f("f16c", 1, 0, Ecx, 29),
    f("rdrand", 1, 0, Ecx, 30),
    f("hypervisor", 1, 0, Ecx, 31),
    // CPUID.(7,0):EBX
    f("fsgsbase", 7, 0, Ebx, 0),
    f("tsc-adjust", 7, 0, Ebx, 1),
    f("sgx", 7, 0, Ebx, 2),
    f("bmi1", 7, 0, Ebx, 3),
    f("hle", 7, 0, Ebx, 4),
    f("avx2", 7, 0, Ebx, 5),
    f("smep", 7, 0, Ebx, 7),
    f("bmi2", 7, 0, Ebx, 8),
    f("erms", 7, 0, Ebx, 9),
    f("invpcid", 7, 0, Ebx, 10),
    f("rtm", 7, 0, Ebx, 11),
    f("mpx", 7, 0, Ebx, 14),
    f("avx512f", 7, 0, Ebx, 16),
    f("avx512dq", 7, 0, Ebx, 17),
    f("rdseed", 7, 0, Ebx, 18),
    f("adx", 7, 0, Ebx, 19),
    f("smap", 7, 0, Ebx, 20),
    f("avx512ifma", 7, 0, Ebx, 21),
    f("clflushopt", 7, 0, Ebx, 23),
    f("clwb", 7, 0, Ebx, 24),
    f("intel-pt", 7, 0, Ebx, 25),
    f("avx512pf", 7, 0, Ebx, 26),
    f("avx512er", 7, 0, Ebx, 27),
    f("avx512cd", 7, 0, Ebx, 28),
    f("sha-ni", 7, 0, Ebx, 29),
    f("avx512bw", 7, 0, Ebx, 30),
    f("avx512vl", 7, 0, Ebx, 31),
    // CPUID.(7,0):ECX
    f("avx512vbmi", 7, 0, Ecx, 1),
    f("umip", 7, 0, Ecx, 2),
    f("pku", 7, 0, Ecx, 3),
    f("waitpkg", 7, 0, Ecx, 5),
    f("avx512vbmi2", 7, 0, Ecx, 6),
    f("shstk", 7, 0, Ecx, 7),
    f("gfni", 7, 0, Ecx, 8),
    f("vaes", 7, 0, Ecx, 9),
    f("vpclmulqdq", 7, 0, Ecx, 10),
    f("avx512vnni", 7, 0, Ecx, 11),
    f("avx512bitalg", 7, 0, Ecx, 12),
    f("avx512-vpopcntdq", 7, 0, Ecx, 14),
    f("la57", 7, 0, Ecx, 16),
    f("rdpid", 7, 0, Ecx, 22),
    f("cldemote", 7, 0, Ecx, 25),
    f("movdiri", 7, 0, Ecx, 27),
    f("movdir64b", 7, 0, Ecx, 28),
    // CPUID.(7,0):EDX
    f("avx512-4vnniw", 7, 0, Edx, 2),
    f("avx512-4fmaps", 7, 0, Edx, 3),
    f("fsrm", 7, 0, Edx, 4),
    f("avx512-vp2intersect", 7, 0, Edx, 8),
    f("md-clear", 7, 0, Edx, 10),
    f("serialize", 7, 0, Edx, 14),
    f("tsx-ldtrk", 7, 0, Edx, 16),
    f("arch-lbr", 7, 0, Edx, 19),
    f("ibt", 7, 0, Edx, 20),
    f("amx-bf16", 7, 0, Edx, 22),
    f("avx512-fp16", 7, 0, Edx, 23),
    f("amx-tile", 7, 0, Edx, 24),
    f("amx-int8", 7, 0, Edx, 25),
    f("spec-ctrl", 7, 0, Edx, 26),
    f("stibp", 7, 0, Edx, 27),
    f("flush-l1d", 7, 0, Edx, 28),
    f("arch-capabilities", 7, 0, Edx, 29),
    f("core-capability", 7, 0, Edx, 30),
    f("ssbd", 7, 0, Edx, 31),
    // CPUID.(7,1):EAX
    f("avx-vnni", 7, 1, Eax, 4),
    f("avx512-bf16", 7, 1, Eax, 5),
    f("fzrm", 7, 1, Eax, 10),
    f("fsrs", 7, 1, Eax, 11),
    f("fsrc", 7, 1, Eax, 12),
    // CPUID.(0xD,1):EAX
    f("xsaveopt", 0xd, 1, Eax, 0),
    f("xsavec", 0xd, 1, Eax, 1),
    f("xgetbv1", 0xd, 1, Eax, 2),
    f("xsaves", 0xd, 1, Eax, 3),
    // CPUID.0x80000001:ECX
    f("lahf-lm", 0x8000_0001, 0, Ecx, 0),
    f("cmp-legacy", 0x8000_0001, 0, Ecx, 1),
    f("svm", 0x8000_0001, 0, Ecx, 2),
    f("extapic", 0x8000_0001, 0, Ecx, 3),
    f("cr8legacy", 0x8000_0001, 0, Ecx, 4),
    f("abm", 0x8000_0001, 0, Ecx, 5),
    f("sse4a", 0x8000_0001, 0, Ecx, 6),
    f("misalignsse", 0x8000_0001, 0, Ecx, 7),
    f("3dnowprefetch", 0x8000_0001, 0, Ecx, 8),
    f("osvw", 0x8000_0001, 0, Ecx, 9),
    f("ibs", 0x8000_0001, 0, Ecx, 10),
    f("xop", 0x8000_0001, 0, Ecx, 11),
    f("skinit", 0x8000_0001, 0, Ecx, 12),
    f("wdt", 0x8000_0001, 0, Ecx, 13),
    f("lwp", 0x8000_0001, 0, Ecx, 15),
    f("fma4", 0x8000_0001, 0, Ecx, 16),
    f("tce", 0x8000_0001, 0, Ecx, 17),
    f("tbm", 0x8000_0001, 0, Ecx, 21),
    f("topoext", 0x8000_0001, 0, Ecx, 22),
    f("perfctr-core", 0x8000_0001, 0, Ecx, 23),
    f("perfctr-nb", 0x8000_0001, 0, Ecx, 24),
    // CPUID.0x80000001:EDX
    f("syscall", 0x8000_0001, 0, Edx, 11),
    f("nx", 0x8000_0001, 0, Edx, 20),
    f("mmxext", 0x8000_0001, 0, Edx, 22),
    f("fxsr-opt", 0x8000_0001, 0, Edx, 25),
    f("pdpe1gb", 0x8000_0001, 0, Edx, 26),
    f("rdtscp", 0x8000_0001, 0, Edx, 27),
    f("lm", 0x8000_0001, 0, Edx, 29),
    f("3dnowext", 0x8000_0001, 0, Edx, 30),
    f("3dnow", 0x8000_0001, 0, Edx, 31),
    // CPUID.0x80000007:EDX
    f("invtsc", 0x8000_0007, 0, Edx, 8),
    // CPUID.0x80000008:EBX
    f("clzero", 0x8000_0008, 0, Ebx, 0),
    f("xsaveerptr", 0x8000_0008, 0, Ebx, 2),
    f("wbnoinvd", 0x8000_0008, 0, Ebx, 9),
    f("ibpb", 0x8000_0008, 0, Ebx, 12),
    f("ibrs", 0x8000_0008, 0, Ebx, 14),
    f("amd-stibp", 0x8000_0008, 0, Ebx, 15),
    f("amd-ssbd", 0x8000_0008, 0, Ebx, 24),
    f("virt-ssbd", 0x8000_0008, 0, Ebx, 25),
    f("amd-no-ssb", 0x8000_0008, 0, Ebx, 26),
    // CPUID.0x40000001:EAX (KVM paravirt features)
    f("kvmclock", KVM_FEATURES_LEAF, 0, Eax, 0),
    f("kvm-nopiodelay", KVM_FEATURES_LEAF, 0, Eax, 1),
    f("kvm-mmu", KVM_FEATURES_LEAF, 0, Eax, 2),
    f("kvmclock2", KVM_FEATURES_LEAF, 0, Eax, 3),
    f("kvm-asyncpf", KVM_FEATURES_LEAF, 0, Eax, 4),
    f("kvm-steal-time", KVM_FEATURES_LEAF, 0, Eax, 5),
    f("kvm-pv-eoi", KVM_FEATURES_LEAF, 0, Eax, 6),
    f("kvm-pv-unhalt", KVM_FEATURES_LEAF, 0, Eax, 7),
    f("kvm-pv-tlb-flush", KVM_FEATURES_LEAF, 0, Eax, 9),
    f("kvm-asyncpf-vmexit", KVM_FEATURES_LEAF, 0, Eax, 10),
    f("kvm-pv-ipi", KVM_FEATURES_LEAF, 0, Eax, 11),
    f("kvm-poll-control", KVM_FEATURES_LEAF, 0, Eax, 12),
    f("kvm-pv-sched-yield", KVM_FEATURES_LEAF, 0, Eax, 13),
    f("kvm-asyncpf-int", KVM_FEATURES_LEAF, 0, Eax, 14),
    f("kvm-msi-ext-dest-id", KVM_FEATURES_LEAF, 0, Eax, 15),
    f("kvmclock-stable-bit", KVM_FEATURES_LEAF, 0, Eax, 24),
];

/// Other spellings (Linux `/proc/cpuinfo`, QEMU aliases) -> canonical name.
static ALIASES: &[(&str, &str)] = &[
    ("pni", "sse3"),
    ("pclmuldq", "pclmulqdq"),
    ("sse4-1", "sse4.1"),
    ("sse4-2", "sse4.2"),
    ("tsc-deadline-timer", "tsc-deadline"),
    ("lahf", "lahf-lm"),
    ("lzcnt", "abm"),
    ("sha", "sha-ni"),
    ("avx512vpopcntdq", "avx512-vpopcntdq"),
    ("pdpe1g", "pdpe1gb"),
    ("constant-tsc", "invtsc"),
    ("xd", "nx"),
    ("i64", "lm"),
    ("kvm-pv-send-ipi", "kvm-pv-ipi"),
];

/// Normalize a user-written name: lower case, `_` as `-`.
pub fn normalize(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// Find a feature by canonical name or alias (case-insensitive, `_` = `-`).
pub fn lookup(name: &str) -> Option<&'static Feature> {
    let n = normalize(name);
    let canon = ALIASES.iter().find(|(a, _)| *a == n).map(|(_, c)| *c).unwrap_or(n.as_str());
    FEATURES.iter().find(|f| f.name == canon)
}

/// Features the `baseline` template keeps: the x86-64 psABI baseline
/// (x86-64-v1: x87, CX8, CMOV, FXSR, MMX, SSE, SSE2, SYSCALL, NX, long
/// mode) with the platform pieces every KVM host emulates (APIC, x2APIC,
/// TSC-deadline, the hypervisor bit, kvmclock, PV EOI and unhalt).
/// Everything else is hidden: SSE3 and later vector extensions, XSAVE
/// (so no AVX state), PCID/INVPCID, TSX, invariant TSC, PKU, LA57, RDTSCP,
/// 1 GiB pages, vendor extensions and side-channel controls. A guest
/// built for generic x86-64 runs on it, and it is the same set on every
/// host (even this project's emulated one, which lacks SSE3).
pub static BASELINE: &[&str] = &[
    "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
    "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "x2apic", "tsc-deadline", "hypervisor", "syscall", "nx", "lm",
    "kvmclock", "kvm-nopiodelay", "kvmclock2", "kvm-pv-eoi", "kvm-pv-unhalt", "kvmclock-stable-bit",
];

/// Feature `a` needs feature `b`: turning `b` off turns `a` off; asking
/// for `a` with `b` off is an error.
pub static DEPENDS: &[(&str, &str)] = &[
    ("avx", "xsave"),
    ("xsaveopt", "xsave"),
    ("xsavec", "xsave"),
    ("xgetbv1", "xsave"),
    ("xsaves", "xsave"),
    ("fma", "avx"),
    ("f16c", "avx"),
    ("avx2", "avx"),
    ("vaes", "avx"),
    ("vpclmulqdq", "avx"),
    ("avx-vnni", "avx2"),
    ("avx512f", "avx2"),
    ("avx512dq", "avx512f"),
    ("avx512ifma", "avx512f"),
    ("avx512pf", "avx512f"),
    ("avx512er", "avx512f"),
    ("avx512cd", "avx512f"),
    ("avx512bw", "avx512f"),
    ("avx512vl", "avx512f"),
    ("avx512vbmi", "avx512f"),
    ("avx512vbmi2", "avx512f"),
    ("avx512vnni", "avx512f"),
    ("avx512bitalg", "avx512f"),
    ("avx512-vpopcntdq", "avx512f"),
    ("avx512-4vnniw", "avx512f"),
    ("avx512-4fmaps", "avx512f"),
    ("avx512-vp2intersect", "avx512f"),
    ("avx512-fp16", "avx512f"),
    ("avx512-bf16", "avx512f"),
    ("amx-bf16", "amx-tile"),
    ("amx-int8", "amx-tile"),
    ("invpcid", "pcid"),
    ("tsc-deadline", "apic"),
    ("x2apic", "apic"),
    ("sse2", "sse"),
    ("sse3", "sse2"),
    ("ssse3", "sse3"),
    ("sse4.1", "ssse3"),
    ("sse4.2", "sse4.1"),
    ("aes", "sse2"),
    ("pclmulqdq", "sse2"),
    ("xop", "avx"),
    ("fma4", "avx"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_resolvable() {
        for (i, a) in FEATURES.iter().enumerate() {
            assert!(FEATURES[i + 1..].iter().all(|b| b.name != a.name), "duplicate {}", a.name);
            assert!(
                FEATURES[i + 1..].iter().all(|b| (b.leaf, b.sub, b.reg, b.bit) != (a.leaf, a.sub, a.reg, a.bit)),
                "two names for the bit of {}",
                a.name
            );
            assert_eq!(lookup(a.name), Some(a));
        }
        for (a, c) in ALIASES {
            assert!(lookup(a).is_some_and(|f| f.name == *c), "alias {a}");
        }
        for n in BASELINE.iter().chain(DEPENDS.iter().flat_map(|(a, b)| [a, b])) {
            assert!(lookup(n).is_some(), "{n}");
        }
        assert_eq!(lookup("TSC_DEADLINE_TIMER").unwrap().name, "tsc-deadline");
        assert_eq!(lookup("sse4_1").unwrap().name, "sse4.1");
        assert!(lookup("x2apicc").is_none());
    }
}
