//! Unit tests of the CPUID editor against a recorded supported-CPUID table.

use super::*;

/// `KVM_GET_SUPPORTED_CPUID` of the development host (nested KVM on AMD
/// EPYC), recorded by `record_supported_cpuid` below.
const FIXTURE: &str = include_str!("../fixtures/supported_cpuid_amd_epyc.txt");

/// Record this host's table: `DENOVMM_RECORD_CPUID=path cargo test --lib
/// record_supported_cpuid -- --ignored`.
#[test]
#[ignore]
fn record_supported_cpuid() {
    let Some(path) = std::env::var_os("DENOVMM_RECORD_CPUID") else { return };
    let kvm = kvm_ioctls::Kvm::new().unwrap();
    let c = kvm.get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES).unwrap();
    let entries: Vec<Entry> = c.as_slice().iter().map(Entry::from).collect();
    let mut text = String::from("# KVM_GET_SUPPORTED_CPUID: function index flags eax ebx ecx edx (hex)\n");
    text.push_str(&format_table(&entries));
    std::fs::write(path, text).unwrap();
}

fn supported() -> Vec<Entry> {
    parse_table(FIXTURE).unwrap()
}

/// The fixture as a host whose KVM also reports XSAVE and AVX.
fn with_xsave() -> Vec<Entry> {
    let mut t = supported();
    t.iter_mut().filter(|e| e.function == 1).for_each(|e| e.ecx |= (1 << 26) | (1 << 28));
    t
}

const M1: Machine = Machine { vcpus: 1, apic_id: 0, tsc_khz: Some(2_450_000), tsc_deadline: true };

fn build_spec(text: &str, m: &Machine) -> Result<Vec<Entry>> {
    build(&supported(), &CpuSpec::parse(text)?, m)
}

fn get(t: &[Entry], f: u32, i: u32) -> Option<Entry> {
    t.iter().find(|e| e.function == f && e.index == i).copied()
}

fn has(t: &[Entry], name: &str) -> bool {
    let f = lookup(name).unwrap();
    get(t, f.leaf, f.sub).is_some_and(|e| e.reg(f.reg) & (1 << f.bit) != 0)
}

fn vendor(t: &[Entry]) -> String {
    let e = get(t, 0, 0).unwrap();
    let b: Vec<u8> = [e.ebx, e.edx, e.ecx].iter().flat_map(|r| r.to_le_bytes()).collect();
    String::from_utf8(b).unwrap()
}

#[test]
fn fixture_parses_and_round_trips() {
    let t = supported();
    assert!(t.len() > 40);
    assert_eq!(parse_table(&format_table(&t)).unwrap(), t);
    assert!(parse_table("0x1 0x0 0x0 1 2 3").is_err());
    assert!(parse_table("0x1 0x0 0x0 1 2 3 zz").is_err());
}

#[test]
fn spec_parsing() {
    let s = CpuSpec::parse("host,-x2apic,+tsc_deadline_timer,pcid=off,vendor=intel,family=6,model=0x55,brand=Test CPU")
        .unwrap();
    assert_eq!(s.template, Template::Host);
    let names: Vec<(&str, bool)> = s.features.iter().map(|(f, on)| (f.name, *on)).collect();
    assert_eq!(names, [("x2apic", false), ("tsc-deadline", true), ("pcid", false)]);
    assert_eq!(&s.vendor.unwrap(), b"GenuineIntel");
    assert_eq!((s.family, s.model, s.stepping), (Some(6), Some(0x55), None));
    assert_eq!(s.brand.as_deref(), Some("Test CPU"));
    let s = CpuSpec::parse("baseline\nbrand=A, B\nkvm=off\ntsc-leaves=off").unwrap();
    assert_eq!((s.template, s.brand.as_deref(), s.kvm_leaves, s.tsc_leaves), (Template::Baseline, Some("A, B"), false, false));
    assert_eq!(CpuSpec::parse("").unwrap(), CpuSpec::default());
    for (text, needle) in [
        ("host,+x2apicc", "x2apicc"),
        ("host,frobnicate", "frobnicate"),
        ("-x2apic,baseline", "first"),
        ("vendor=Intel Inside", "vendor"),
        ("family=300", "family"),
        ("stepping=16", "stepping"),
        ("model=zz", "model"),
        ("kvm=maybe", "kvm"),
        ("template=fast", "fast"),
        ("x2apic", "+x2apic"),
        (&format!("brand={}", "x".repeat(48)), "brand"),
    ] {
        let e = CpuSpec::parse(text).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "{text}");
        assert!(e.message.contains(needle), "{text}: {}", e.message);
    }
}

#[test]
fn host_template_is_the_supported_set_made_consistent() {
    let sup = supported();
    let t = build_spec("host", &M1).unwrap();
    // Every named feature KVM reports stays as it is, TSC-deadline added
    // from the capability, HT/CMP-legacy from the vCPU count.
    for f in FEATURES {
        let want = match f.name {
            "tsc-deadline" => true,
            "ht" | "cmp-legacy" => false,
            _ => has(&sup, f.name),
        };
        assert_eq!(has(&t, f.name), want, "{}", f.name);
    }
    assert_eq!(vendor(&t), "AuthenticAMD");
    assert_eq!(get(&t, 1, 0).unwrap().eax, get(&sup, 1, 0).unwrap().eax);
    // Topology for one vCPU with APIC ID 0.
    let e1 = get(&t, 1, 0).unwrap();
    assert_eq!((e1.ebx >> 24, (e1.ebx >> 16) & 0xff), (0, 1));
    let b0 = get(&t, 0xb, 0).unwrap();
    let b1 = get(&t, 0xb, 1).unwrap();
    let b2 = get(&t, 0xb, 2).unwrap();
    assert_eq!((b0.eax, b0.ebx, b0.ecx, b0.edx), (0, 1, 0x100, 0));
    assert_eq!((b1.eax, b1.ebx, b1.ecx, b1.edx), (0, 1, 0x201, 0));
    assert_eq!((b2.ebx, (b2.ecx >> 8) & 0xff), (0, 0));
    assert!(t.iter().filter(|e| e.function == 0xb).all(|e| e.flags & FLAG_SIGNIFICANT_INDEX != 0));
    assert_eq!(get(&t, 0x8000_0008, 0).unwrap().ecx & 0xf0ff, 0);
    // This host's KVM reports leaf 0xD but not XSAVE itself: the leaf goes.
    assert!(!has(&sup, "xsave") && get(&sup, 0xd, 0).is_some());
    assert!(t.iter().all(|e| e.function != 0xd));
    // With XSAVE and AVX reported, the XSAVE leaves stay as they are.
    let t = build(&with_xsave(), &CpuSpec::default(), &M1).unwrap();
    let d0 = get(&t, 0xd, 0).unwrap();
    assert_eq!((d0.eax, d0.ecx), (7, 0x340));
    assert_eq!(get(&t, 0xd, 2), get(&sup, 0xd, 2));
    // TSC frequency in the timing leaf, announced by 0x40000000.
    assert_eq!(get(&t, 0x4000_0000, 0).unwrap().eax, 0x4000_0010);
    let tl = get(&t, 0x4000_0010, 0).unwrap();
    assert_eq!((tl.eax, tl.ebx), (2_450_000, 1_000_000));
    assert!(get(&t, 0x15, 0).is_none(), "0x15 is Intel's");
    // Sorted, no duplicates.
    assert!(t.windows(2).all(|w| (w[0].function, w[0].index) < (w[1].function, w[1].index)));
}

#[test]
fn feature_flags_turn_bits_off_and_on() {
    let t = build_spec("host,-x2apic,-pcid,-hypervisor,-kvm-pv-unhalt,-clwb", &M1).unwrap();
    for n in ["x2apic", "pcid", "hypervisor", "kvm-pv-unhalt", "clwb"] {
        assert!(!has(&t, n), "{n}");
    }
    assert!(has(&t, "kvmclock") && has(&t, "apic") && has(&t, "sse2"));
    let t = build_spec("host,-x2apic,+x2apic", &M1).unwrap();
    assert!(has(&t, "x2apic"));
    // TSC-deadline is offered from KVM_CAP_TSC_DEADLINE_TIMER, not the table.
    let no_cap = Machine { tsc_deadline: false, ..M1 };
    let mut sup = supported();
    sup.iter_mut().filter(|e| e.function == 1).for_each(|e| e.ecx &= !(1 << 24));
    assert!(!has(&build(&sup, &CpuSpec::default(), &no_cap).unwrap(), "tsc-deadline"));
    assert!(has(&build(&sup, &CpuSpec::default(), &M1).unwrap(), "tsc-deadline"));
    let e = build(&sup, &CpuSpec::parse("host,+tsc-deadline").unwrap(), &no_cap).unwrap_err();
    assert!(e.message.contains("tsc-deadline"), "{}", e.message);
    assert!(has(&build_spec("host,-tsc-deadline,+tsc-deadline", &M1).unwrap(), "tsc-deadline"));
    // Turning off a feature turns off what depends on it.
    let t = build_spec("host,-apic", &M1).unwrap();
    assert!(!has(&t, "x2apic") && !has(&t, "tsc-deadline"));
}

#[test]
fn unsupported_features_are_errors_naming_the_feature() {
    for name in ["pcid", "smx", "avx2", "sse3", "rdtscp"] {
        let e = build_spec(&format!("host,+{name}"), &M1).unwrap_err();
        assert_eq!(e.code, Code::Unsupported, "{name}");
        assert!(e.message.contains(&format!("\"{name}\"")), "{}", e.message);
        assert!(e.message.contains("KVM_GET_SUPPORTED_CPUID"), "{}", e.message);
    }
    let e = build(&with_xsave(), &CpuSpec::parse("host,-xsave,+avx").unwrap(), &M1).unwrap_err();
    assert!(e.message.contains("\"avx\" needs \"xsave\""), "{}", e.message);
}

#[test]
fn xsave_leaves_follow_the_features() {
    let x = |text: &str| build(&with_xsave(), &CpuSpec::parse(text).unwrap(), &M1).unwrap();
    let t = x("host,-avx");
    let d0 = get(&t, 0xd, 0).unwrap();
    assert_eq!((d0.eax, d0.edx, d0.ebx, d0.ecx), (3, 0, 576, 576));
    assert!(get(&t, 0xd, 2).is_none(), "the AVX state component is gone");
    let t = x("host,-xsave");
    assert!(t.iter().all(|e| e.function != 0xd));
    assert!(!has(&t, "avx") && !has(&t, "xsaveopt"));
}

#[test]
fn baseline_is_exactly_the_documented_set() {
    let t = build_spec("baseline", &M1).unwrap();
    for f in FEATURES {
        assert_eq!(has(&t, f.name), BASELINE.contains(&f.name), "{}", f.name);
    }
    // Registers holding feature bits carry no unnamed bits either.
    assert_eq!(get(&t, 1, 0).unwrap().ecx, (1 << 21) | (1 << 24) | (1 << 31));
    assert_eq!(get(&t, 7, 0).map(|e| (e.eax, e.ebx, e.ecx, e.edx)), Some((0, 0, 0, 0)));
    assert_eq!(get(&t, 0x8000_0001, 0).unwrap().ecx, 0);
    assert_eq!(get(&t, 0x8000_0008, 0).unwrap().ebx, 0);
    assert!(t.iter().all(|e| e.function != 0xd), "no XSAVE");
    assert!(t.iter().all(|e| !BASELINE_DROPPED.contains(&e.function)));
    // Still the host's identity and topology; flags apply on top.
    assert_eq!(vendor(&t), "AuthenticAMD");
    let t = build_spec("baseline,-x2apic,+clwb", &M1).unwrap();
    assert!(!has(&t, "x2apic") && has(&t, "clwb"));
    // A host lacking part of the baseline cannot offer it.
    let mut sup = supported();
    sup.iter_mut().filter(|e| e.function == 1).for_each(|e| e.edx &= !(1 << 26));
    let e = build(&sup, &CpuSpec::parse("baseline").unwrap(), &M1).unwrap_err();
    assert_eq!(e.code, Code::Unsupported);
    assert!(e.message.contains("missing sse2"), "{}", e.message);
}

#[test]
fn identity_vendor_family_model_brand() {
    let t = build_spec("host,vendor=GenuineIntel,family=6,model=0x55,stepping=4,brand=denovmm test CPU", &M1).unwrap();
    assert_eq!(vendor(&t), "GenuineIntel");
    assert_eq!(get(&t, 1, 0).unwrap().eax, 0x0005_0654);
    let x = get(&t, 0x8000_0000, 0).unwrap();
    assert_eq!((x.ebx, x.ecx, x.edx), (0, 0, 0), "Intel's 0x80000000 carries no vendor");
    let brand: Vec<u8> = (0x8000_0002..=0x8000_0004)
        .flat_map(|l| {
            let e = get(&t, l, 0).unwrap();
            [e.eax, e.ebx, e.ecx, e.edx].into_iter().flat_map(|r| r.to_le_bytes())
        })
        .collect();
    assert_eq!(&brand[..17], b"denovmm test CPU\0");
    // Intel vendor: TSC/crystal leaf 0x15 gives the TSC frequency.
    assert!(get(&t, 0, 0).unwrap().eax >= 0x15);
    let l15 = get(&t, 0x15, 0).unwrap();
    assert_eq!(l15.ecx as u64 * l15.ebx as u64 / l15.eax as u64, 2_450_000_000);
    // Family >= 0xf uses the extended family field; partial changes keep the rest.
    let t = build_spec("host,family=0x19,model=0x21", &M1).unwrap();
    assert_eq!(get(&t, 1, 0).unwrap().eax, 0x00a2_0f11);
    assert_eq!(get(&t, 0x8000_0001, 0).unwrap().eax, 0x00a2_0f11, "AMD mirrors the signature");
    let t = build_spec("host,stepping=2", &M1).unwrap();
    assert_eq!(get(&t, 1, 0).unwrap().eax, 0x00a0_0f12);
    let e = build_spec("host,family=5,model=0x20", &M1).unwrap_err();
    assert!(e.message.contains("model"), "{}", e.message);
}

#[test]
fn paravirt_and_tsc_leaves_can_be_hidden() {
    let t = build_spec("host,kvm=off", &M1).unwrap();
    assert!(t.iter().all(|e| !(0x4000_0000..0x4000_0100).contains(&e.function)));
    assert!(has(&t, "hypervisor"), "the hypervisor bit is a separate flag");
    let t = build_spec("host,tsc-leaves=off", &M1).unwrap();
    assert_eq!(get(&t, 0x4000_0000, 0).unwrap().eax, 0x4000_0001);
    assert!(get(&t, 0x4000_0010, 0).is_none());
    let t = build_spec("host", &Machine { tsc_khz: None, ..M1 }).unwrap();
    assert!(get(&t, 0x4000_0010, 0).is_none());
}

#[test]
fn topology_follows_the_vcpu_count() {
    let m = Machine { vcpus: 4, apic_id: 2, ..M1 };
    let t = build_spec("host", &m).unwrap();
    let e1 = get(&t, 1, 0).unwrap();
    assert_eq!((e1.ebx >> 24, (e1.ebx >> 16) & 0xff), (2, 4));
    assert!(has(&t, "ht") && has(&t, "cmp-legacy"));
    let b1 = get(&t, 0xb, 1).unwrap();
    assert_eq!((b1.eax, b1.ebx, b1.edx), (2, 4, 2));
    assert_eq!(get(&t, 0xb, 0).unwrap().edx, 2);
    let c = get(&t, 0x8000_0008, 0).unwrap().ecx;
    assert_eq!((c & 0xff, (c >> 12) & 0xf), (3, 2));
    assert_eq!(get(&t, 0x8000_001e, 0).unwrap().eax, 2);
    let t = build_spec("host", &Machine { vcpus: 3, ..m }).unwrap();
    assert_eq!(get(&t, 0xb, 1).unwrap().eax, 2, "shift rounds up");
    assert_eq!((get(&t, 1, 0).unwrap().ebx >> 16) & 0xff, 4);
}
