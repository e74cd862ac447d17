//! Node-API binding of the denovmm core (napi-rs).
//!
//! Every export is one `dv_*` function of the C ABI (`core/include/denovmm.h`)
//! under the same name, with the same arguments in the same order and the
//! same return value (`>= 0` success, `< 0` a `DvCode`; the message through
//! `dv_last_error`). Each one calls that very function of `denovmm-core`:
//! nothing below this boundary is implemented twice, handles are the
//! process-wide ones (a VM created on one JS thread can be stopped from a
//! `worker_threads` worker), and panics are already caught by the core.
//!
//! What the C ABI passes as pointers arrives here as JS memory:
//! - `u64` / `size_t` values are a [`U64`]: a JS number (a non-negative safe
//!   integer) or a BigInt, so the Deno FFI call sites work unchanged;
//! - `T *` arguments are a [`Buf`]: a typed array, `DataView`, `ArrayBuffer`
//!   or `null`, checked against the bytes the function will touch (a
//!   too-short buffer is a `RangeError`, where C would corrupt memory).
//!
//! Two exports replace raw pointers, which JS cannot hold:
//! [`dv_vcpu_record_buffer`] and [`dv_vm_memory_buffer`] wrap the exit
//! record and guest RAM as *external* ArrayBuffers over the core's own
//! memory (zero copy; valid until `dv_vm_destroy`, as in C). A runtime
//! that forbids external buffers gets an error, never a silent copy.

#![deny(clippy::undocumented_unsafe_blocks)]

use denovmm_core::exit::ExitRecord;
use denovmm_core::ffi as dv;
use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, Error, Result, Status, ValueType};
use napi_derive::napi;
use std::mem::size_of;
use std::ptr;

mod raw;

/// A C `uint64_t` / `size_t` from JS: a non-negative safe-integer number or
/// a BigInt (the shapes Deno FFI accepts for `u64` / `usize`).
pub struct U64(pub u64);

impl TypeName for U64 {
    fn type_name() -> &'static str {
        "number | bigint"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ValidateNapiValue for U64 {}

impl FromNapiValue for U64 {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        let mut t = 0;
        // SAFETY: env and v come from the N-API callback that calls us.
        napi::check_status!(unsafe { sys::napi_typeof(env, v, &mut t) })?;
        if t == sys::ValueType::napi_bigint {
            let (mut out, mut lossless) = (0u64, false);
            // SAFETY: v is a BigInt (checked above); out pointers are locals.
            napi::check_status!(unsafe { sys::napi_get_value_bigint_uint64(env, v, &mut out, &mut lossless) })?;
            if !lossless {
                return Err(Error::new(Status::InvalidArg, "BigInt does not fit a u64".to_owned()));
            }
            return Ok(U64(out));
        }
        if t == sys::ValueType::napi_number {
            let mut d = 0f64;
            // SAFETY: v is a number (checked above); d is a local.
            napi::check_status!(unsafe { sys::napi_get_value_double(env, v, &mut d) })?;
            if !((0.0..=9_007_199_254_740_991.0).contains(&d) && d.fract() == 0.0) {
                return Err(Error::new(Status::InvalidArg, format!("{d} is not a u64 (a non-negative safe integer)")));
            }
            return Ok(U64(d as u64));
        }
        Err(Error::new(Status::InvalidArg, "expected a number or a BigInt for a u64".to_owned()))
    }
}

/// Caller memory for a C pointer argument: a typed array, `DataView`,
/// `ArrayBuffer`, or `null`/`undefined` (a null pointer). Valid for the
/// duration of the call (N-API does not move backing stores).
pub struct Buf {
    ptr: *mut u8,
    len: usize,
}

impl TypeName for Buf {
    fn type_name() -> &'static str {
        "ArrayBufferView | ArrayBuffer | null"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ValidateNapiValue for Buf {}

impl FromNapiValue for Buf {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        let mut t = 0;
        // SAFETY: env and v come from the N-API callback that calls us.
        napi::check_status!(unsafe { sys::napi_typeof(env, v, &mut t) })?;
        if t == sys::ValueType::napi_null || t == sys::ValueType::napi_undefined {
            return Ok(Buf { ptr: ptr::null_mut(), len: 0 });
        }
        let (mut is_ta, mut is_dv, mut is_ab) = (false, false, false);
        let mut data: *mut std::ffi::c_void = ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: env/v are valid (from the N-API callback); every out
        // pointer is a local; each *_info call runs only after its is_*
        // check succeeded.
        unsafe {
            napi::check_status!(sys::napi_is_typedarray(env, v, &mut is_ta))?;
            if is_ta {
                let (mut ty, mut ab, mut off) = (0, ptr::null_mut(), 0usize);
                let mut count = 0usize;
                napi::check_status!(sys::napi_get_typedarray_info(env, v, &mut ty, &mut count, &mut data, &mut ab, &mut off))?;
                len = count * elem_size(ty);
            } else {
                napi::check_status!(sys::napi_is_dataview(env, v, &mut is_dv))?;
                if is_dv {
                    let (mut ab, mut off) = (ptr::null_mut(), 0usize);
                    napi::check_status!(sys::napi_get_dataview_info(env, v, &mut len, &mut data, &mut ab, &mut off))?;
                } else {
                    napi::check_status!(sys::napi_is_arraybuffer(env, v, &mut is_ab))?;
                    if !is_ab {
                        return Err(Error::new(Status::InvalidArg, "expected a typed array, DataView, ArrayBuffer or null".to_owned()));
                    }
                    napi::check_status!(sys::napi_get_arraybuffer_info(env, v, &mut data, &mut len))?;
                }
            }
        }
        Ok(Buf { ptr: data.cast(), len })
    }
}

/// Bytes per element of a `napi_typedarray_type` (0 for a kind this
/// binding does not know: such a view is treated as empty).
fn elem_size(ty: sys::napi_typedarray_type) -> usize {
    use sys::TypedarrayType as T;
    match ty {
        T::int8_array | T::uint8_array | T::uint8_clamped_array => 1,
        T::int16_array | T::uint16_array => 2,
        T::int32_array | T::uint32_array | T::float32_array => 4,
        T::float64_array | T::bigint64_array | T::biguint64_array => 8,
        _ => 0,
    }
}

impl Buf {
    /// The pointer, after checking `need` bytes are there (null stays null
    /// when `nullable`; the core reports null where it is an error).
    fn at<T>(&self, need: usize, what: &str, nullable: bool) -> Result<*mut T> {
        if self.ptr.is_null() && (nullable || self.len == 0) {
            return Ok(ptr::null_mut());
        }
        if self.len < need {
            return Err(Error::new(Status::InvalidArg, format!("{what}: buffer of {} bytes, needs {need}", self.len)));
        }
        Ok(self.ptr.cast())
    }
    /// Input bytes `len` long (null allowed: the core rejects it).
    fn input(&self, len: &U64, what: &str) -> Result<(*const u8, usize)> {
        let n = usize::try_from(len.0).map_err(|_| Error::new(Status::InvalidArg, format!("{what}: length too large")))?;
        Ok((self.at::<u8>(n, what, true)?.cast_const(), n))
    }
}

fn words(w: &U64) -> Result<usize> {
    usize::try_from(w.0).map_err(|_| Error::new(Status::InvalidArg, "word count too large".to_owned()))
}

/// `dv_abi_version`.
#[napi(js_name = "dv_abi_version")]
pub fn dv_abi_version() -> u32 {
    dv::dv_abi_version()
}

/// `dv_last_error(buf, cap)`: copies the calling thread's last error
/// message into `buf`; returns its full length.
#[napi(js_name = "dv_last_error")]
pub fn dv_last_error(buf: Buf, cap: U64) -> Result<f64> {
    let cap = words(&cap)?;
    let p = buf.at::<u8>(cap, "last error", true)?;
    // SAFETY: p is null or valid for cap bytes (checked by `at`).
    Ok(unsafe { dv::dv_last_error(p, cap) } as f64)
}

/// The calling thread's last error message (a convenience over
/// `dv_last_error` for JS callers).
#[napi(js_name = "dv_last_error_string")]
pub fn dv_last_error_string() -> String {
    // SAFETY: a null buffer with cap 0 only measures.
    let n = unsafe { dv::dv_last_error(ptr::null_mut(), 0) };
    let mut b = vec![0u8; n];
    // SAFETY: b holds n bytes.
    let m = unsafe { dv::dv_last_error(b.as_mut_ptr(), n) };
    b.truncate(m.min(n));
    String::from_utf8_lossy(&b).into_owned()
}

/// `dv_vm_create(config, out)`: `config` a `DvVmCreateConfig`,
/// `out` receives the u32 handle.
#[napi(js_name = "dv_vm_create")]
pub fn dv_vm_create(config: Buf, out: Buf) -> Result<i32> {
    let c = config.at::<dv::VmCreateConfig>(size_of::<dv::VmCreateConfig>(), "VM config", false)?;
    let o = out.at::<u32>(4, "VM handle out", false)?;
    // SAFETY: c and o are null or hold the sizes the function reads/writes.
    Ok(unsafe { dv::dv_vm_create(c, o) })
}

/// `dv_vm_load_elf(vm, image, len, args)`.
#[napi(js_name = "dv_vm_load_elf")]
pub fn dv_vm_load_elf(vm: u32, image: Buf, len: U64, args: Buf) -> Result<i32> {
    let (p, n) = image.input(&len, "ELF image")?;
    let a = args.at::<u64>(32, "ELF args", true)?;
    // SAFETY: p holds n bytes (or is null); a is null or holds 4 u64.
    Ok(unsafe { dv::dv_vm_load_elf(vm, p, n, a) })
}

/// `dv_vm_load_multiboot(vm, image, len, extras, extras_len)`.
#[napi(js_name = "dv_vm_load_multiboot")]
pub fn dv_vm_load_multiboot(vm: u32, image: Buf, len: U64, extras: Buf, extras_len: U64) -> Result<i32> {
    let (p, n) = image.input(&len, "Multiboot image")?;
    let (e, m) = extras.input(&extras_len, "Multiboot extras")?;
    // SAFETY: both buffers hold the lengths passed (or are null).
    Ok(unsafe { dv::dv_vm_load_multiboot(vm, p, n, e, m) })
}

/// `dv_vm_memory(vm, out)`: RAM address and size into two u64.
#[napi(js_name = "dv_vm_memory")]
pub fn dv_vm_memory(vm: u32, out: Buf) -> Result<i32> {
    let o = out.at::<u64>(16, "memory out", false)?;
    // SAFETY: o is null or holds two u64.
    Ok(unsafe { dv::dv_vm_memory(vm, o) })
}

/// `dv_vcpu_record(vm, vcpu, out)`: the record's address into one u64.
#[napi(js_name = "dv_vcpu_record")]
pub fn dv_vcpu_record(vm: u32, vcpu: u32, out: Buf) -> Result<i32> {
    let o = out.at::<u64>(8, "record out", false)?;
    // SAFETY: o is null or holds one u64.
    Ok(unsafe { dv::dv_vcpu_record(vm, vcpu, o) })
}

fn last_error(what: &str, rc: i32) -> Error {
    Error::new(Status::GenericFailure, format!("{what}: {} (code {rc})", dv_last_error_string()))
}

/// An external ArrayBuffer over core memory that lives until the VM is
/// destroyed (the contract of `dv_vcpu_record` / `dv_vm_memory`). Made
/// with `napi_create_external_arraybuffer` directly: no finalizer (the core
/// owns the memory), the same memory may back several buffers, and a
/// runtime that refuses external buffers is an error, never a copy.
pub struct ExternalBuffer {
    ptr: *mut u8,
    len: usize,
    what: &'static str,
}

impl TypeName for ExternalBuffer {
    fn type_name() -> &'static str {
        "ArrayBuffer"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for ExternalBuffer {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: env is the calling N-API env; ptr/len describe core memory
        // valid until dv_vm_destroy, which the caller must not outlive (the
        // C ABI's rule); no finalizer, so nothing is freed by the engine.
        let status = unsafe { sys::napi_create_external_arraybuffer(env, val.ptr.cast(), val.len, None, ptr::null_mut(), &mut out) };
        if status == sys::Status::napi_no_external_buffers_allowed {
            return Err(Error::new(
                Status::GenericFailure,
                format!("{}: this runtime does not allow external ArrayBuffers (a copy would not be shared)", val.what),
            ));
        }
        napi::check_status!(status, "{}: cannot create an external ArrayBuffer", val.what)?;
        Ok(out)
    }
}

/// The exit record of vCPU `vcpu` as an external ArrayBuffer (zero copy,
/// `sizeof(DvExitRecord)` bytes, layout of `ffi/exit_record.ts`). Throws
/// with the core's message on error. Valid until `dv_vm_destroy`.
#[napi(js_name = "dv_vcpu_record_buffer", ts_return_type = "ArrayBuffer")]
pub fn dv_vcpu_record_buffer(vm: u32, vcpu: u32) -> Result<ExternalBuffer> {
    let mut p = 0u64;
    // SAFETY: p is a local u64.
    let rc = unsafe { dv::dv_vcpu_record(vm, vcpu, &mut p) };
    if rc < 0 {
        return Err(last_error("exit record", rc));
    }
    Ok(ExternalBuffer { ptr: p as usize as *mut u8, len: size_of::<ExitRecord>(), what: "exit record" })
}

/// Guest RAM as an external ArrayBuffer (zero copy; host writes are guest
/// writes). Throws with the core's message on error. Valid until
/// `dv_vm_destroy`.
#[napi(js_name = "dv_vm_memory_buffer", ts_return_type = "ArrayBuffer")]
pub fn dv_vm_memory_buffer(vm: u32) -> Result<ExternalBuffer> {
    let mut o = [0u64; 2];
    // SAFETY: o holds two u64.
    let rc = unsafe { dv::dv_vm_memory(vm, o.as_mut_ptr()) };
    if rc < 0 {
        return Err(last_error("guest memory", rc));
    }
    let len = usize::try_from(o[1]).map_err(|_| Error::new(Status::GenericFailure, "RAM too large".to_owned()))?;
    Ok(ExternalBuffer { ptr: o[0] as usize as *mut u8, len, what: "guest memory" })
}

/// Converts one argument of a plain function to its C type.
macro_rules! plain {
    (@v $a:ident U64) => { $a.0 };
    (@v $a:ident u32) => { $a };
}

/// Exports `dv_*` functions whose arguments are all integers, some of
/// them `u64` (napi-derive needs the JS name as a string literal, hence the
/// name twice). Those with only `u32` arguments are raw callbacks in
/// `raw.rs` (no per-call native-borrow scope).
macro_rules! plain_fns {
    ($($name:ident = $js:literal ($($arg:ident: $ty:ident),*);)*) => {$(
        #[doc = concat!("`", $js, "` of the C ABI.")]
        #[napi(js_name = $js)]
        pub fn $name($($arg: $ty),*) -> i32 {
            dv::$name($(plain!(@v $arg $ty)),*)
        }
    )*};
}

plain_fns! {
    dv_vm_count = "dv_vm_count"();
    dv_vm_range_add = "dv_vm_range_add"(vm: u32, space: u32, base: U64, len: U64, action: u32, region: u32, read_value: U64);
    dv_vm_range_remove = "dv_vm_range_remove"(vm: u32, space: u32, base: U64);
    dv_vm_set_timeout = "dv_vm_set_timeout"(vm: u32, ns: U64);
    dv_vm_set_wake = "dv_vm_set_wake"(vm: u32, ns: U64);
    dv_level_add = "dv_level_add"(vm: u32, id: u32, items: U64);
    dv_timer_arm = "dv_timer_arm"(vm: u32, id: u32, period_ns: U64);
    dv_timer_set_policy = "dv_timer_set_policy"(vm: u32, id: u32, policy: u32, cap_ns: U64);
}

/// `dv_vm_take_parked(vm, out, cap)`: the vCPUs whose exits wait for the
/// JS thread, up to `cap` of them into `out` (u32 each).
#[napi(js_name = "dv_vm_take_parked")]
pub fn dv_vm_take_parked(vm: u32, out: Buf, cap: u32) -> Result<i32> {
    let o = out.at::<u32>((cap as usize).saturating_mul(4), "parked vCPUs", false)?;
    // SAFETY: o holds `cap` u32s or is null.
    Ok(unsafe { dv::dv_vm_take_parked(vm, o, cap) })
}

/// `dv_vm_wait_exits(vm, buf, released, cap)`: release the vCPUs in
/// `buf[0..released)`, wait for parked exits and take them into `buf`.
#[napi(js_name = "dv_vm_wait_exits")]
pub fn dv_vm_wait_exits(vm: u32, buf: Buf, released: u32, cap: u32) -> Result<i32> {
    let o = buf.at::<u32>((cap as usize).saturating_mul(4), "vCPU indices", false)?;
    // SAFETY: o holds `cap` u32s or is null.
    Ok(unsafe { dv::dv_vm_wait_exits(vm, o, released, cap) })
}

/// Exports `dv_*` functions that write one fixed-size struct to `out`.
macro_rules! out_struct {
    ($($name:ident = $js:literal ($($arg:ident),*) -> $t:ty;)*) => {$(
        #[doc = concat!("`", $js, "` of the C ABI (`out` receives the struct).")]
        #[napi(js_name = $js)]
        pub fn $name($($arg: u32,)* out: Buf) -> Result<i32> {
            let o = out.at::<$t>(size_of::<$t>(), $js, false)?;
            // SAFETY: o is null or holds one struct (checked by `at`).
            Ok(unsafe { dv::$name($($arg,)* o) })
        }
    )*};
}

out_struct! {
    dv_vm_info = "dv_vm_info"(vm) -> dv::VmInfo;
    dv_vcpu_counters = "dv_vcpu_counters"(vm, vcpu) -> dv::VcpuCounters;
    dv_vcpu_crash_report = "dv_vcpu_crash_report"(vm, vcpu) -> dv::CrashReport;
    dv_level_stats = "dv_level_stats"(vm, id) -> dv::LevelStats;
    dv_timer_stats = "dv_timer_stats"(vm, id) -> dv::TimerStats;
    dv_timer_catchup_stats = "dv_timer_catchup_stats"(vm, id) -> dv::TimerCatchupStats;
}

/// `dv_vcpu_lapic_read(vm, vcpu, offsets, count, out)`.
#[napi(js_name = "dv_vcpu_lapic_read")]
pub fn dv_vcpu_lapic_read(vm: u32, vcpu: u32, offsets: Buf, count: U64, out: Buf) -> Result<i32> {
    let n = words(&count)?;
    let need = n.checked_mul(4).ok_or_else(|| Error::new(Status::InvalidArg, "count too large".to_owned()))?;
    let i = offsets.at::<u32>(need, "LAPIC offsets", false)?;
    let o = out.at::<u32>(need, "LAPIC out", false)?;
    // SAFETY: both hold `count` u32.
    Ok(unsafe { dv::dv_vcpu_lapic_read(vm, vcpu, i, n, o) })
}

/// `dv_vcpu_set_cpu(vm, vcpu, spec, len)`.
#[napi(js_name = "dv_vcpu_set_cpu")]
pub fn dv_vcpu_set_cpu(vm: u32, vcpu: u32, spec: Buf, len: U64) -> Result<i32> {
    let (p, n) = spec.input(&len, "CPU spec")?;
    // SAFETY: p holds n bytes or is null.
    Ok(unsafe { dv::dv_vcpu_set_cpu(vm, vcpu, p, n) })
}

/// `dv_vcpu_cpuid(vm, vcpu, leaf, subleaf, out)`: EAX..EDX into 4 u32.
#[napi(js_name = "dv_vcpu_cpuid")]
pub fn dv_vcpu_cpuid(vm: u32, vcpu: u32, leaf: u32, subleaf: u32, out: Buf) -> Result<i32> {
    let o = out.at::<u32>(16, "CPUID out", false)?;
    // SAFETY: o is null or holds 4 u32.
    Ok(unsafe { dv::dv_vcpu_cpuid(vm, vcpu, leaf, subleaf, o) })
}

/// `dv_vm_state_save(vm, buf, cap)`.
#[napi(js_name = "dv_vm_state_save")]
pub fn dv_vm_state_save(vm: u32, buf: Buf, cap: U64) -> Result<i32> {
    let n = words(&cap)?;
    let p = buf.at::<u8>(n, "state buffer", true)?;
    // SAFETY: p is null or holds cap bytes.
    Ok(unsafe { dv::dv_vm_state_save(vm, p, n) })
}

/// `dv_vm_state_load(vm, buf, len)`.
#[napi(js_name = "dv_vm_state_load")]
pub fn dv_vm_state_load(vm: u32, buf: Buf, len: U64) -> Result<i32> {
    let (p, n) = buf.input(&len, "state blob")?;
    // SAFETY: p holds n bytes or is null.
    Ok(unsafe { dv::dv_vm_state_load(vm, p, n) })
}

/// `dv_vm_dirty_bitmap(vm, out, words)`.
#[napi(js_name = "dv_vm_dirty_bitmap")]
pub fn dv_vm_dirty_bitmap(vm: u32, out: Buf, words_: U64) -> Result<i32> {
    let w = words(&words_)?;
    let o = out.at::<u64>(w.saturating_mul(8), "dirty bitmap", false)?;
    // SAFETY: o holds `words` u64 or is null.
    Ok(unsafe { dv::dv_vm_dirty_bitmap(vm, o, w) })
}

fn bitmap(b: &Buf, w: &U64) -> Result<(*const u64, usize)> {
    let w = words(w)?;
    Ok((b.at::<u64>(w.saturating_mul(8), "bitmap", true)?.cast_const(), w))
}

/// `dv_vm_memory_save(vm, path, path_len, offset, bitmap, words, out)`.
#[napi(js_name = "dv_vm_memory_save")]
#[allow(clippy::too_many_arguments)]
pub fn dv_vm_memory_save(vm: u32, path: Buf, path_len: U64, offset: U64, bits: Buf, words_: U64, out: Buf) -> Result<i32> {
    let (p, n) = path.input(&path_len, "path")?;
    let (b, w) = bitmap(&bits, &words_)?;
    let o = out.at::<u64>(16, "memory save out", false)?;
    // SAFETY: every buffer holds what its length argument says (or is null).
    Ok(unsafe { dv::dv_vm_memory_save(vm, p, n, offset.0, b, w, o) })
}

/// `dv_vm_memory_load(vm, path, path_len, offset, flags, bitmap, words)`.
#[napi(js_name = "dv_vm_memory_load")]
pub fn dv_vm_memory_load(vm: u32, path: Buf, path_len: U64, offset: U64, flags: u32, bits: Buf, words_: U64) -> Result<i32> {
    let (p, n) = path.input(&path_len, "path")?;
    let (b, w) = bitmap(&bits, &words_)?;
    // SAFETY: every buffer holds what its length argument says (or is null).
    Ok(unsafe { dv::dv_vm_memory_load(vm, p, n, offset.0, flags, b, w) })
}

/// `dv_vm_memory_copy(vm, buf, len, bitmap, words, flags)`.
#[napi(js_name = "dv_vm_memory_copy")]
pub fn dv_vm_memory_copy(vm: u32, buf: Buf, len: U64, bits: Buf, words_: U64, flags: u32) -> Result<i32> {
    let (p, n) = buf.input(&len, "image")?;
    let (b, w) = bitmap(&bits, &words_)?;
    // SAFETY: every buffer holds what its length argument says (or is null).
    Ok(unsafe { dv::dv_vm_memory_copy(vm, p.cast_mut(), n, b, w, flags) })
}

/// `dv_memory_file_crc(path, path_len, offset, size, bitmap, words, out)`.
#[napi(js_name = "dv_memory_file_crc")]
pub fn dv_memory_file_crc(path: Buf, path_len: U64, offset: U64, size: U64, bits: Buf, words_: U64, out: Buf) -> Result<i32> {
    let (p, n) = path.input(&path_len, "path")?;
    let (b, w) = bitmap(&bits, &words_)?;
    let o = out.at::<u64>(16, "CRC out", false)?;
    // SAFETY: every buffer holds what its length argument says (or is null).
    Ok(unsafe { dv::dv_memory_file_crc(p, n, offset.0, size.0, b, w, o) })
}
