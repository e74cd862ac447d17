//! The hot integer-only exports as raw Node-API callbacks.
//!
//! napi-rs wraps every `#[napi]` function that takes arguments in a
//! native-borrow scope (a thread-local scope stack, a mutex-guarded
//! storage and a heap-allocated guard list per call), ~130-200 ns per call
//! on the development machine against ~55 ns for a call without
//! arguments. `dv_vcpu_run` is called once per forwarded exit, and the
//! interrupt and AP functions once per event, so these functions skip that
//! layer: each is one `extern "C"` callback doing what the generated one
//! does for integers (`napi_get_cb_info`, `napi_get_value_uint32` per
//! argument, the `dv_*` call, `napi_create_int32`), nothing else. Their
//! arguments are all `u32`, so no JS memory is borrowed and there is
//! nothing for a scope to guard.
//!
//! Same JS contract as the napi-rs versions: a missing or non-number
//! argument throws a `TypeError`; numbers convert like `ToUint32` (what
//! `napi_get_value_uint32` does for napi-rs's `u32` too). Panics cannot
//! come out: the core catches them at its C ABI boundary and the rest is
//! Node-API calls. Their TypeScript declarations are in
//! `dts-header.d.ts` (napi-rs generates them only for `#[napi]` items);
//! `napi/test/abi.test.mjs` checks every header function is exported and
//! declared.

// napi-derive registers the module-exports hook only outside `cfg(test)`,
// so under `cargo test` nothing reaches these callbacks
#![cfg_attr(test, allow(dead_code))]

use denovmm_core::ffi as dv;
use napi::bindgen_prelude::Object;
use napi::{sys, JsValue, Result};
use napi_derive::napi;
use std::ffi::CStr;
use std::ptr;

/// Reads the `N` arguments of a call as `u32`; on a missing or non-number
/// argument throws a `TypeError` naming `name` and returns `None`.
///
/// # Safety
/// `env` and `info` are those of the Node-API callback being run.
unsafe fn args<const N: usize>(env: sys::napi_env, info: sys::napi_callback_info, name: &CStr) -> Option<[u32; N]> {
    let mut argv = [ptr::null_mut(); N];
    let mut argc = N;
    // SAFETY: argv holds N slots and argc says so; missing arguments are
    // filled with `undefined` by Node-API.
    let st = unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()) };
    let mut out = [0u32; N];
    let mut ok = st == sys::Status::napi_ok;
    for (v, o) in argv.iter().zip(out.iter_mut()) {
        // SAFETY: v is a value of this callback (or undefined); o is a local.
        ok = ok && unsafe { sys::napi_get_value_uint32(env, *v, o) } == sys::Status::napi_ok;
    }
    if ok {
        return Some(out);
    }
    // SAFETY: env is valid; both strings are NUL-terminated.
    unsafe { sys::napi_throw_type_error(env, ptr::null(), name.as_ptr()) };
    None
}

/// The callback's result: `rc` as a JS number (null, i.e. `undefined`, if
/// even that fails: nothing else is left to report it with).
///
/// # Safety
/// `env` is that of the Node-API callback being run.
unsafe fn int(env: sys::napi_env, rc: i32) -> sys::napi_value {
    let mut out = ptr::null_mut();
    // SAFETY: env is valid; out is a local.
    unsafe { sys::napi_create_int32(env, rc, &mut out) };
    out
}

/// A raw Node-API function callback.
type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// Defines the raw callbacks and [`RAW`], the `(name, callback)` table the
/// module-exports hook installs.
macro_rules! raw_fns {
    ($($name:ident($($arg:ident),+);)*) => {
        $(
            #[doc = concat!("`", stringify!($name), "` of the C ABI as a raw Node-API callback.")]
            unsafe extern "C" fn $name(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
                const MSG: &CStr = match CStr::from_bytes_with_nul(
                    concat!(stringify!($name), "(", stringify!($($arg),+), "): every argument must be a number (u32)\0").as_bytes(),
                ) {
                    Ok(s) => s,
                    Err(_) => panic!("message has an inner NUL"),
                };
                // SAFETY: env/info are this callback's.
                let Some([$($arg),+]) = (unsafe { args(env, info, MSG) }) else {
                    return ptr::null_mut();
                };
                // SAFETY: env is this callback's.
                unsafe { int(env, dv::$name($($arg),+)) }
            }
        )*
        /// Name (NUL-terminated) and callback of each raw export.
        const RAW: &[(&str, Callback)] =
            &[$((concat!(stringify!($name), "\0"), $name)),*];
    };
}

raw_fns! {
    dv_vcpu_run(vm, vcpu);
    dv_vm_destroy(vm);
    dv_vm_stop(vm);
    dv_vm_reset(vm, flags);
    dv_vm_dirty_log(vm, on);
    dv_vm_bitmap_words(vm);
    dv_vcpu_tsc_khz(vm, vcpu);
    dv_vcpu_lapic_eoi(vm, vcpu);
    dv_vcpu_set_irq_window(vm, vcpu, on);
    dv_vcpu_ready_for_injection(vm, vcpu);
    dv_vcpu_inject_extint(vm, vcpu, vector);
    dv_irq_line(vm, gsi, level);
    dv_irq_signal_msi(vm, address_lo, address_hi, data);
    dv_irq_request(vm, vector, destination, flags);
    dv_route_set_msi(vm, gsi, address_lo, address_hi, data);
    dv_route_clear(vm, gsi);
    dv_route_allocate(vm);
    dv_route_release(vm, gsi);
    dv_irqfd_create(vm, gsi, flags);
    dv_irqfd_trigger(vm, id);
    dv_irqfd_set_attached(vm, id, attached);
    dv_irqfd_take_pending(vm, id);
    dv_irqfd_resample_gsi(vm, gsi);
    dv_irqfd_destroy(vm, id);
    dv_level_create(vm, gsi);
    dv_level_destroy(vm, id);
    dv_timer_create(vm, target, gsi, vector, destination);
    dv_timer_disarm(vm, id);
    dv_timer_set_pacing(vm, id, pacing);
    dv_timer_destroy(vm, id);
    dv_vcpu_mp_state(vm, vcpu);
    dv_vm_start_aps(vm);
    dv_vm_stop_aps(vm);
    dv_vm_detach_aps(vm);
    dv_vm_release_ap(vm, vcpu);
    dv_vcpu_wake(vm, vcpu);
}

/// `dv_buffer_detach(buffer)`: detaches an ArrayBuffer in place
/// (`napi_detach_arraybuffer`: every view of it throws or reads as empty
/// from now on; the memory is neither copied nor freed). The addon's
/// `dv_vcpu_record_buffer` / `dv_vm_memory_buffer` buffers are detached
/// with it before `dv_vm_destroy` unmaps their memory: on Node 20, which
/// has no `ArrayBuffer.prototype.transfer`, a transferring
/// `structuredClone` neither detaches such an external buffer nor avoids a
/// copy (it clones all of guest RAM). Not a C ABI function. Throws a
/// `TypeError` for anything but a detachable ArrayBuffer.
unsafe extern "C" fn dv_buffer_detach(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    let mut argv = [ptr::null_mut(); 1];
    let mut argc = 1;
    // SAFETY: argv holds one slot and argc says so; a missing argument is
    // filled with `undefined`.
    let st = unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()) };
    let mut is_ab = false;
    // SAFETY: argv[0] is a value of this callback; is_ab is a local.
    let ok = st == sys::Status::napi_ok
        && unsafe { sys::napi_is_arraybuffer(env, argv[0], &mut is_ab) } == sys::Status::napi_ok
        && is_ab
        // SAFETY: argv[0] is an ArrayBuffer (checked above).
        && unsafe { sys::napi_detach_arraybuffer(env, argv[0]) } == sys::Status::napi_ok;
    if !ok {
        // SAFETY: env is valid; the message is NUL-terminated.
        unsafe { sys::napi_throw_type_error(env, ptr::null(), c"dv_buffer_detach(buffer): not a detachable ArrayBuffer".as_ptr()) };
    }
    ptr::null_mut()
}

/// Adds the raw callbacks to `exports` (napi-rs runs this hook after
/// registering the `#[napi]` functions).
#[napi(module_exports)]
pub fn raw_exports(exports: Object) -> Result<()> {
    let (env, obj) = (exports.value().env, exports.raw());
    let detach: (&str, Callback) = ("dv_buffer_detach\0", dv_buffer_detach);
    for (name, cb) in RAW.iter().chain([&detach]) {
        let mut f = ptr::null_mut();
        // SAFETY: env/exports are the module's, from the registration hook;
        // name is NUL-terminated ('static); cb has the callback signature.
        unsafe {
            napi::check_status!(
                sys::napi_create_function(env, name.as_ptr().cast(), name.len() as isize - 1, Some(*cb), ptr::null_mut(), &mut f),
                "cannot create {}",
                name
            )?;
            napi::check_status!(sys::napi_set_named_property(env, obj, name.as_ptr().cast(), f), "cannot export {}", name)?;
        }
    }
    Ok(())
}
