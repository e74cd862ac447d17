//! The CPUID editor: builds a vCPU's CPUID table from KVM's supported set
//! (`KVM_GET_SUPPORTED_CPUID`) and a [`CpuSpec`] (template, feature
//! on/off by name, vendor/family/model/stepping/brand, KVM paravirt leaves,
//! TSC frequency leaves), keeping the leaves consistent with each other
//! and with the machine (topology for the vCPU count and APIC ID, XSAVE
//! leaves for the XCR0 the enabled features allow). Pure: no KVM calls,
//! unit-tested against a recorded table in `core/fixtures/`.
//!
//! KVM enforces what the table hides where it matters for us: with
//! CPUID.1:ECX.x2APIC clear, setting IA32_APIC_BASE.EXTD is a #GP and the
//! x2APIC MSRs (0x800-0x8FF) #GP outside x2APIC mode, so hiding x2APIC
//! needs no MSR filter (see `guests/x2apic.c`).

use crate::cpuid_features::{lookup, normalize, Feature, Reg, BASELINE, DEPENDS, FEATURES, KVM_SIG_LEAF, TIMING_LEAF};
use crate::error::{Code, Error, Result};

/// `kvm_cpuid_entry2.flags`: the subleaf (ECX) selects the entry.
pub const FLAG_SIGNIFICANT_INDEX: u32 = 1;

/// One CPUID entry (the fields of `kvm_cpuid_entry2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Entry {
    /// Leaf (EAX input).
    pub function: u32,
    /// Subleaf (ECX input).
    pub index: u32,
    /// `KVM_CPUID_FLAG_*`.
    pub flags: u32,
    /// EAX output.
    pub eax: u32,
    /// EBX output.
    pub ebx: u32,
    /// ECX output.
    pub ecx: u32,
    /// EDX output.
    pub edx: u32,
}

impl Entry {
    fn reg(&self, r: Reg) -> u32 {
        match r {
            Reg::Eax => self.eax,
            Reg::Ebx => self.ebx,
            Reg::Ecx => self.ecx,
            Reg::Edx => self.edx,
        }
    }
    fn reg_mut(&mut self, r: Reg) -> &mut u32 {
        match r {
            Reg::Eax => &mut self.eax,
            Reg::Ebx => &mut self.ebx,
            Reg::Ecx => &mut self.ecx,
            Reg::Edx => &mut self.edx,
        }
    }
}

/// A CPU template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// Everything KVM supports on this host (plus TSC-deadline when KVM
    /// emulates it): the behaviour before templates existed.
    Host,
    /// A fixed conservative set ([`BASELINE`]), the same on every host
    /// that has it; a host that lacks part of it is an error.
    Baseline,
}

/// What the caller asked for. Parsed from text by [`CpuSpec::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuSpec {
    /// Starting set.
    pub template: Template,
    /// Per-feature changes, applied in order after the template.
    pub features: Vec<(&'static Feature, bool)>,
    /// 12-byte vendor string.
    pub vendor: Option<[u8; 12]>,
    /// Display family (e.g. 6, 0x19).
    pub family: Option<u32>,
    /// Display model.
    pub model: Option<u32>,
    /// Stepping.
    pub stepping: Option<u32>,
    /// Brand string (at most 48 ASCII characters).
    pub brand: Option<String>,
    /// Show the KVM paravirt leaves 0x40000000.. (default true).
    pub kvm_leaves: bool,
    /// Fill the TSC frequency leaves 0x15 (Intel vendor) and 0x40000010
    /// (default true).
    pub tsc_leaves: bool,
}

impl Default for CpuSpec {
    fn default() -> Self {
        CpuSpec {
            template: Template::Host,
            features: Vec::new(),
            vendor: None,
            family: None,
            model: None,
            stepping: None,
            brand: None,
            kvm_leaves: true,
            tsc_leaves: true,
        }
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::invalid(msg.into())
}

fn parse_num(key: &str, v: &str, max: u32) -> Result<u32> {
    let v = v.trim();
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => v.parse::<u32>(),
    }
    .map_err(|_| bad(format!("{key}={v}: not a number")))?;
    if n > max {
        return Err(bad(format!("{key}={v}: at most {max}")));
    }
    Ok(n)
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(bad(format!("{key}={v}: use on or off"))),
    }
}

/// Canonical 12-byte vendor strings for the short names.
fn vendor_bytes(v: &str) -> Result<[u8; 12]> {
    let s = match v.trim().to_ascii_lowercase().as_str() {
        "intel" => "GenuineIntel".to_string(),
        "amd" => "AuthenticAMD".to_string(),
        "hygon" => "HygonGenuine".to_string(),
        _ => v.trim().to_string(),
    };
    let b = s.as_bytes();
    if b.len() != 12 || !b.iter().all(|c| c.is_ascii_graphic()) {
        return Err(bad(format!(
            "vendor \"{v}\": 12 printable ASCII characters (GenuineIntel, AuthenticAMD) or intel/amd/hygon"
        )));
    }
    let mut out = [0u8; 12];
    out.copy_from_slice(b);
    Ok(out)
}

impl CpuSpec {
    /// Parse a spec: items separated by newlines (or, when the text has
    /// no newline, by commas). The first item may be a template (`host`,
    /// `baseline`); then `+name`/`-name` (or `name=on|off`) for features,
    /// `vendor=`, `family=`, `model=`, `stepping=` (decimal or 0x hex),
    /// `brand=`, `kvm=on|off` (paravirt leaves), `tsc-leaves=on|off`.
    pub fn parse(text: &str) -> Result<CpuSpec> {
        let mut spec = CpuSpec::default();
        let items: Vec<&str> =
            if text.contains('\n') { text.split('\n').collect() } else { text.split(',').collect() };
        for (i, raw) in items.iter().enumerate() {
            let item = raw.trim();
            if item.is_empty() {
                continue;
            }
            if let Some(name) = item.strip_prefix('+').or_else(|| item.strip_prefix('-')) {
                let f = lookup(name).ok_or_else(|| bad(format!("unknown CPU feature \"{name}\"")))?;
                spec.features.push((f, item.starts_with('+')));
                continue;
            }
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (normalize(k), Some(v)),
                None => (normalize(item), None),
            };
            match (key.as_str(), value) {
                ("host", None) | ("template", Some("host")) if i == 0 || key == "template" => {
                    spec.template = Template::Host
                }
                ("baseline", None) | ("template", Some("baseline")) if i == 0 || key == "template" => {
                    spec.template = Template::Baseline
                }
                ("template", Some(v)) => return Err(bad(format!("unknown template \"{v}\" (host or baseline)"))),
                ("vendor", Some(v)) => spec.vendor = Some(vendor_bytes(v)?),
                ("family", Some(v)) => spec.family = Some(parse_num("family", v, 0xf + 0xff)?),
                ("model", Some(v)) => spec.model = Some(parse_num("model", v, 0xff)?),
                ("stepping", Some(v)) => spec.stepping = Some(parse_num("stepping", v, 0xf)?),
                ("brand", Some(v)) => {
                    if v.len() > 47 || !v.bytes().all(|c| (0x20..0x7f).contains(&c)) {
                        return Err(bad(format!("brand \"{v}\": at most 47 printable ASCII characters")));
                    }
                    spec.brand = Some(v.to_string());
                }
                ("kvm", Some(v)) => spec.kvm_leaves = parse_bool("kvm", v)?,
                ("tsc-leaves", Some(v)) => spec.tsc_leaves = parse_bool("tsc-leaves", v)?,
                (_, Some(v)) if lookup(&key).is_some() => {
                    spec.features.push((lookup(&key).unwrap_or(&FEATURES[0]), parse_bool(&key, v)?));
                }
                ("host" | "baseline", None) => {
                    return Err(bad(format!("template \"{key}\" must be the first item")));
                }
                (_, None) if lookup(&key).is_some() => {
                    return Err(bad(format!("\"{item}\": write +{item} or -{item}")));
                }
                _ => return Err(bad(format!("unknown item \"{item}\""))),
            }
        }
        Ok(spec)
    }
}

/// Facts about the machine the table must agree with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// vCPUs in the VM (one socket, one thread per core).
    pub vcpus: u32,
    /// This vCPU's APIC ID (its index).
    pub apic_id: u32,
    /// TSC frequency in kHz, when known.
    pub tsc_khz: Option<u32>,
    /// KVM emulates the TSC-deadline timer (`KVM_CAP_TSC_DEADLINE_TIMER`),
    /// which `KVM_GET_SUPPORTED_CPUID` does not report.
    pub tsc_deadline: bool,
}

/// Leaves whose subleaf matters (KVM_CPUID_FLAG_SIGNIFCANT_INDEX).
const INDEXED: &[u32] =
    &[4, 7, 0xb, 0xd, 0xf, 0x10, 0x12, 0x14, 0x17, 0x18, 0x1d, 0x1e, 0x1f, 0x20, 0x23, 0x24, 0x8000_001d, 0x8000_0020];

/// Leaves of features outside the baseline, dropped by it.
const BASELINE_DROPPED: &[u32] =
    &[0x12, 0x14, 0x19, 0x1b, 0x1d, 0x1e, 0x20, 0x23, 0x24, 0x8000_001f, 0x8000_0020, 0x8000_0021, 0x8000_0022];

/// A table under construction.
struct Table(Vec<Entry>);

impl Table {
    fn get(&self, function: u32, index: u32) -> Option<&Entry> {
        self.0.iter().find(|e| e.function == function && e.index == index)
    }
    fn get_mut(&mut self, function: u32, index: u32) -> Option<&mut Entry> {
        self.0.iter_mut().find(|e| e.function == function && e.index == index)
    }
    /// The entry, created (zero) when missing.
    fn entry(&mut self, function: u32, index: u32) -> &mut Entry {
        if self.get(function, index).is_none() {
            let flags = if INDEXED.contains(&function) { FLAG_SIGNIFICANT_INDEX } else { 0 };
            self.0.push(Entry { function, index, flags, ..Default::default() });
        }
        let i = self.0.iter().position(|e| e.function == function && e.index == index).unwrap_or(0);
        &mut self.0[i]
    }
    fn has(&self, f: &Feature) -> bool {
        self.get(f.leaf, f.sub).is_some_and(|e| e.reg(f.reg) & (1 << f.bit) != 0)
    }
    fn set(&mut self, f: &Feature, on: bool) {
        if !on && self.get(f.leaf, f.sub).is_none() {
            return;
        }
        let r = self.entry(f.leaf, f.sub).reg_mut(f.reg);
        if on {
            *r |= 1 << f.bit;
        } else {
            *r &= !(1 << f.bit);
        }
    }
    fn remove(&mut self, keep: impl Fn(&Entry) -> bool) {
        self.0.retain(keep);
    }
    fn max_leaf(&self, base: u32) -> u32 {
        self.get(base, 0).map_or(0, |e| e.eax)
    }
    fn raise_max_leaf(&mut self, base: u32, leaf: u32) {
        let e = self.entry(base, 0);
        e.eax = e.eax.max(leaf);
    }
    fn vendor(&self) -> [u8; 12] {
        let mut v = [0u8; 12];
        if let Some(e) = self.get(0, 0) {
            v[0..4].copy_from_slice(&e.ebx.to_le_bytes());
            v[4..8].copy_from_slice(&e.edx.to_le_bytes());
            v[8..12].copy_from_slice(&e.ecx.to_le_bytes());
        }
        v
    }
}

fn feature(name: &str) -> &'static Feature {
    lookup(name).unwrap_or(&FEATURES[0])
}

/// Turn `f` off, and everything that depends on it.
fn clear_with_dependents(t: &mut Table, f: &'static Feature) {
    t.set(f, false);
    for (a, b) in DEPENDS {
        if *b == f.name {
            clear_with_dependents(t, feature(a));
        }
    }
}

/// Is this a KVM paravirt leaf?
fn is_kvm_leaf(function: u32) -> bool {
    (KVM_SIG_LEAF..KVM_SIG_LEAF + 0x100).contains(&function)
}

fn ceil_log2(n: u32) -> u32 {
    if n <= 1 {
        0
    } else {
        32 - (n - 1).leading_zeros()
    }
}

/// XCR0 bits a feature set allows: x87 and SSE always, then YMM (AVX),
/// BNDREGS/BNDCSR (MPX), opmask/ZMM (AVX-512), PKRU (PKU), tile state (AMX).
fn xcr0_allowed(t: &Table) -> u64 {
    let mut m = 0b11u64;
    let on = |n: &str| t.has(feature(n));
    if on("avx") {
        m |= 1 << 2;
    }
    if on("mpx") {
        m |= 0b11 << 3;
    }
    if on("avx512f") {
        m |= 0b111 << 5;
    }
    if on("pku") {
        m |= 1 << 9;
    }
    if on("amx-tile") {
        m |= 0b11 << 17;
    }
    m
}

/// Make leaf 0xD agree with the enabled features: XCR0 (sub 0 EAX/EDX),
/// the maximum save-area size (sub 0 ECX, and EBX for the reset XCR0 of
/// x87 only: KVM updates EBX when the guest writes XCR0), IA32_XSS (sub 1
/// ECX/EDX, only with XSAVES) and one subleaf per enabled component.
fn fix_xsave(t: &mut Table) {
    if !t.has(feature("xsave")) {
        t.remove(|e| e.function != 0xd);
        return;
    }
    let host_xcr0 = t.get(0xd, 0).map_or(0, |e| e.eax as u64 | (e.edx as u64) << 32);
    let xcr0 = host_xcr0 & xcr0_allowed(t);
    let xss = if t.has(feature("xsaves")) {
        t.get(0xd, 1).map_or(0, |e| e.ecx as u64 | (e.edx as u64) << 32)
    } else {
        0
    };
    t.remove(|e| e.function != 0xd || e.index < 2 || (xcr0 | xss) & (1u64 << e.index.min(63)) != 0);
    let max = t
        .0
        .iter()
        .filter(|e| e.function == 0xd && e.index >= 2 && xcr0 & (1u64 << e.index.min(63)) != 0)
        .map(|e| e.ebx + e.eax)
        .max()
        .unwrap_or(0)
        .max(576);
    let s0 = t.entry(0xd, 0);
    s0.eax = xcr0 as u32;
    s0.edx = (xcr0 >> 32) as u32;
    s0.ecx = max;
    s0.ebx = 576;
    let s1 = t.entry(0xd, 1);
    s1.ecx = xss as u32;
    s1.edx = (xss >> 32) as u32;
    if xss == 0 {
        s1.ebx = 0;
    }
}

/// Topology for `m.vcpus` vCPUs, one thread per core, one socket: leaves
/// 0x1 (APIC ID, logical count, HTT), 0x4 (cores sharing caches), 0xB and
/// 0x1F (x2APIC topology, when present), 0x80000008 (AMD core count) and
/// 0x8000001E (AMD extended APIC ID).
fn fix_topology(t: &mut Table, m: &Machine) {
    let n = m.vcpus.max(1);
    let shift = ceil_log2(n);
    let amd = matches!(&t.vendor(), b"AuthenticAMD" | b"HygonGenuine");
    if let Some(e) = t.get_mut(1, 0) {
        let count = if n > 1 { n.next_power_of_two().min(255) } else { 1 };
        e.ebx = (e.ebx & 0x0000_ffff) | (count << 16) | (m.apic_id << 24);
    }
    t.set(feature("ht"), n > 1);
    if amd {
        t.set(feature("cmp-legacy"), n > 1);
    }
    for e in t.0.iter_mut().filter(|e| e.function == 4) {
        let level = (e.eax >> 5) & 7;
        let sharing = if level >= 3 { n - 1 } else { 0 };
        e.eax = (e.eax & 0x0000_3fff) | ((n - 1).min(63) << 26) | (sharing.min(0xfff) << 14);
    }
    for leaf in [0xb, 0x1f] {
        if t.get(leaf, 0).is_none() {
            continue;
        }
        t.remove(|e| e.function != leaf);
        let levels = [(0u32, 1u32, 1u32), (shift, n, 2), (0, 0, 0)];
        for (i, (s, count, kind)) in levels.into_iter().enumerate() {
            let e = t.entry(leaf, i as u32);
            e.flags = FLAG_SIGNIFICANT_INDEX;
            e.eax = s;
            e.ebx = count;
            e.ecx = (kind << 8) | i as u32;
            e.edx = m.apic_id;
        }
    }
    if let Some(e) = t.get_mut(0x8000_0008, 0) {
        e.ecx = (e.ecx & !0xf0ff) | (shift << 12) | (n - 1).min(255);
    }
    if let Some(e) = t.get_mut(0x8000_001e, 0) {
        e.eax = m.apic_id;
        e.ebx = m.apic_id & 0xff;
        e.ecx = 0;
    }
}

/// Build the table for one vCPU.
pub fn build(supported: &[Entry], spec: &CpuSpec, m: &Machine) -> Result<Vec<Entry>> {
    let mut host = Table(supported.to_vec());
    if m.tsc_deadline {
        host.set(feature("tsc-deadline"), true);
    }
    let mut t = Table(host.0.clone());
    if spec.template == Template::Baseline {
        let missing: Vec<&str> = BASELINE.iter().copied().filter(|n| !host.has(feature(n))).collect();
        if !missing.is_empty() {
            return Err(Error::new(
                Code::Unsupported,
                format!("this host's KVM cannot offer the baseline CPU: missing {}", missing.join(", ")),
            ));
        }
        // Every register that holds named feature bits keeps only the
        // baseline's bits (unnamed bits included).
        for f in FEATURES {
            if let Some(e) = t.get_mut(f.leaf, f.sub) {
                let keep = BASELINE
                    .iter()
                    .map(|n| feature(n))
                    .filter(|b| (b.leaf, b.sub, b.reg) == (f.leaf, f.sub, f.reg))
                    .fold(0u32, |acc, b| acc | 1 << b.bit);
                *e.reg_mut(f.reg) &= keep;
            }
        }
        t.remove(|e| !(BASELINE_DROPPED.contains(&e.function) || (e.function == 7 && e.index > 0)));
        if let Some(e) = t.get_mut(7, 0) {
            e.eax = 0;
        }
        if let Some(e) = t.get_mut(0x8000_0007, 0) {
            e.edx = 0;
        }
    }
    for (f, on) in &spec.features {
        if *on {
            if !host.has(f) {
                return Err(Error::new(
                    Code::Unsupported,
                    format!(
                        "feature \"{}\" is not supported by this host's KVM (KVM_GET_SUPPORTED_CPUID lacks CPUID.{:#x}.{}:{:?}[{}])",
                        f.name, f.leaf, f.sub, f.reg, f.bit
                    ),
                ));
            }
            for (a, b) in DEPENDS {
                if *a == f.name && !t.has(feature(b)) {
                    return Err(bad(format!("feature \"{}\" needs \"{b}\", which is off", f.name)));
                }
            }
            t.set(f, true);
        } else {
            clear_with_dependents(&mut t, f);
        }
    }
    fix_xsave(&mut t);
    if let Some(v) = spec.vendor {
        let e = t.entry(0, 0);
        e.ebx = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
        e.edx = u32::from_le_bytes([v[4], v[5], v[6], v[7]]);
        e.ecx = u32::from_le_bytes([v[8], v[9], v[10], v[11]]);
        let amd = matches!(&v, b"AuthenticAMD" | b"HygonGenuine");
        let (b, c, d) = if amd { (e.ebx, e.ecx, e.edx) } else { (0, 0, 0) };
        if let Some(x) = t.get_mut(0x8000_0000, 0) {
            (x.ebx, x.ecx, x.edx) = (b, c, d);
        }
    }
    if spec.family.is_some() || spec.model.is_some() || spec.stepping.is_some() {
        let old = t.get(1, 0).map_or(0, |e| e.eax);
        let old_family = ((old >> 8) & 0xf) + if (old >> 8) & 0xf == 0xf { (old >> 20) & 0xff } else { 0 };
        let old_model = ((old >> 4) & 0xf) | ((old >> 12) & 0xf0);
        let family = spec.family.unwrap_or(old_family);
        let model = spec.model.unwrap_or(old_model);
        let stepping = spec.stepping.unwrap_or(old & 0xf);
        if model > 0xf && family != 6 && family < 0xf {
            return Err(bad(format!("model {model:#x} > 0xf needs family 6 or >= 0xf (family is {family:#x})")));
        }
        let (base_f, ext_f) = if family >= 0xf { (0xf, family - 0xf) } else { (family, 0) };
        let sig = stepping | (model & 0xf) << 4 | base_f << 8 | (model >> 4) << 16 | ext_f << 20;
        t.entry(1, 0).eax = sig;
        if matches!(&t.vendor(), b"AuthenticAMD" | b"HygonGenuine") {
            if let Some(x) = t.get_mut(0x8000_0001, 0) {
                x.eax = sig;
            }
        }
    }
    if let Some(brand) = &spec.brand {
        if t.max_leaf(0x8000_0000) < 0x8000_0004 {
            return Err(Error::new(Code::Unsupported, "this host's CPUID has no brand-string leaves"));
        }
        let mut b = [0u8; 48];
        b[..brand.len()].copy_from_slice(brand.as_bytes());
        for i in 0..3u32 {
            let w = |k: usize| {
                let o = (i as usize) * 16 + k * 4;
                u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
            };
            let e = t.entry(0x8000_0002 + i, 0);
            (e.eax, e.ebx, e.ecx, e.edx) = (w(0), w(1), w(2), w(3));
        }
    }
    fix_topology(&mut t, m);
    if !spec.kvm_leaves {
        t.remove(|e| !is_kvm_leaf(e.function));
    }
    if let (true, Some(khz)) = (spec.tsc_leaves, m.tsc_khz.filter(|k| *k > 0)) {
        if spec.kvm_leaves && t.get(KVM_SIG_LEAF, 0).is_some() {
            t.raise_max_leaf(KVM_SIG_LEAF, TIMING_LEAF);
            let e = t.entry(TIMING_LEAF, 0);
            // EAX: TSC kHz; EBX: LAPIC bus kHz (KVM's APIC timer runs at 1 GHz).
            (e.eax, e.ebx, e.ecx, e.edx) = (khz, 1_000_000, 0, 0);
        }
        if &t.vendor() == b"GenuineIntel" {
            // TSC = ECX (crystal Hz) * EBX / EAX = 25 MHz * khz / 25000.
            t.raise_max_leaf(0, 0x15);
            let e = t.entry(0x15, 0);
            (e.eax, e.ebx, e.ecx, e.edx) = (25_000, khz, 25_000_000, 0);
        }
    }
    t.0.sort_by_key(|e| (e.function, e.index));
    Ok(t.0)
}

/// Parse a recorded table: one entry per line, `function index flags eax
/// ebx ecx edx` in hex; `#` starts a comment.
pub fn parse_table(text: &str) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let v: Vec<u32> = line
            .split_whitespace()
            .map(|w| u32::from_str_radix(w.trim_start_matches("0x"), 16))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::invalid(format!("cpuid table line {}: not hex", n + 1)))?;
        if v.len() != 7 {
            return Err(Error::invalid(format!("cpuid table line {}: 7 fields expected", n + 1)));
        }
        out.push(Entry { function: v[0], index: v[1], flags: v[2], eax: v[3], ebx: v[4], ecx: v[5], edx: v[6] });
    }
    Ok(out)
}

/// Write a table in the format [`parse_table`] reads.
pub fn format_table(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| {
            format!(
                "{:#010x} {:#x} {:#x} {:#010x} {:#010x} {:#010x} {:#010x}\n",
                e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx
            )
        })
        .collect()
}

/// Convert to and from KVM's `kvm_cpuid_entry2`.
impl From<&kvm_bindings::kvm_cpuid_entry2> for Entry {
    fn from(e: &kvm_bindings::kvm_cpuid_entry2) -> Self {
        Entry { function: e.function, index: e.index, flags: e.flags, eax: e.eax, ebx: e.ebx, ecx: e.ecx, edx: e.edx }
    }
}

impl From<&Entry> for kvm_bindings::kvm_cpuid_entry2 {
    fn from(e: &Entry) -> Self {
        kvm_bindings::kvm_cpuid_entry2 {
            function: e.function,
            index: e.index,
            flags: e.flags,
            eax: e.eax,
            ebx: e.ebx,
            ecx: e.ecx,
            edx: e.edx,
            ..Default::default()
        }
    }
}

#[cfg(test)]
#[path = "cpuid_tests.rs"]
mod tests;
