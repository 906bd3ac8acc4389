//! `liballocbench_jemalloc.so`: allocbench's built-in jemalloc (from
//! `tikv-jemalloc-sys`) as a library any program can run under with
//! `LD_PRELOAD`, no system package needed.
//!
//! jemalloc is linked statically with its `_rjem_` prefix, and a `cdylib`
//! does not export the C symbols of a static library, so this crate exports
//! its own malloc family (see [`allocbench_preload`] for the semantics) on top
//! of `_rjem_malloc` and friends. It also exports `mallctl`,
//! `mallctlnametomib`, `mallctlbymib` and `malloc_stats_print`: allocbench's
//! probe recognises jemalloc by `mallctl` in the object that defines
//! `malloc`, and reads its version, arenas and ownership through it. jemalloc's
//! non-standard API (`mallocx`, `rallocx`, `sdallocx`, …) is not exported:
//! programs that use it link jemalloc themselves.
//!
//! The prefixed jemalloc reads its options from `_RJEM_MALLOC_CONF`, not
//! `MALLOC_CONF`. C++ `operator new` and `delete` in libstdc++ call `malloc`
//! and `free` (and `aligned_alloc` for over-aligned types), so they reach
//! jemalloc too. jemalloc makes itself fork-safe with `pthread_atfork`.

#![warn(missing_docs)]

use std::ffi::{c_char, c_int, c_void};

use allocbench_preload::Allocator;

/// jemalloc through its prefixed C API.
pub struct Jemalloc;

impl Allocator for Jemalloc {
    unsafe fn malloc(size: usize) -> *mut c_void {
        // SAFETY: jemalloc's `malloc` takes any size; the trait asks no more.
        unsafe { tikv_jemalloc_sys::malloc(size) }
    }

    unsafe fn calloc(count: usize, size: usize) -> *mut c_void {
        // SAFETY: jemalloc's `calloc` takes any count and size (the caller
        // has checked the product for overflow anyway).
        unsafe { tikv_jemalloc_sys::calloc(count, size) }
    }

    unsafe fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: the trait's contract: `ptr` is a live block of this
        // jemalloc (non-null, and `size` non-zero).
        unsafe { tikv_jemalloc_sys::realloc(ptr, size) }
    }

    unsafe fn free(ptr: *mut c_void) {
        // SAFETY: the trait's contract: `ptr` is null or a live block of this
        // jemalloc.
        unsafe { tikv_jemalloc_sys::free(ptr) }
    }

    unsafe fn aligned_alloc(alignment: usize, size: usize) -> *mut c_void {
        // SAFETY: jemalloc's aligned_alloc takes any power of two (the
        // trait's contract for `alignment`) and any size.
        unsafe { tikv_jemalloc_sys::aligned_alloc(alignment, size) }
    }

    unsafe fn usable_size(ptr: *const c_void) -> usize {
        // SAFETY: the trait's contract: `ptr` is a non-null live block of this
        // jemalloc.
        unsafe { tikv_jemalloc_sys::malloc_usable_size(ptr) }
    }
}

allocbench_preload::export_malloc_family!(Jemalloc);

/// jemalloc's `mallctl`: reads and writes its controls (`version`,
/// `arenas.narenas`, `arena.<i>.purge`, …).
///
/// # Safety
///
/// As jemalloc's `mallctl`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mallctl(
    name: *const c_char,
    oldp: *mut c_void,
    oldlenp: *mut usize,
    newp: *mut c_void,
    newlen: usize,
) -> c_int {
    // SAFETY: a pass-through: the C caller upholds `mallctl`'s contract
    // (a NUL-terminated name, buffers valid for the lengths given).
    unsafe { tikv_jemalloc_sys::mallctl(name, oldp, oldlenp, newp, newlen) }
}

/// jemalloc's `mallctlnametomib`.
///
/// # Safety
///
/// As jemalloc's `mallctlnametomib`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mallctlnametomib(
    name: *const c_char,
    mibp: *mut usize,
    miblenp: *mut usize,
) -> c_int {
    // SAFETY: a pass-through: the C caller upholds `mallctlnametomib`'s
    // contract (a NUL-terminated name, `mibp` holding `*miblenp` entries).
    unsafe { tikv_jemalloc_sys::mallctlnametomib(name, mibp, miblenp) }
}

/// jemalloc's `mallctlbymib`.
///
/// # Safety
///
/// As jemalloc's `mallctlbymib`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mallctlbymib(
    mib: *const usize,
    miblen: usize,
    oldp: *mut c_void,
    oldlenp: *mut usize,
    newp: *mut c_void,
    newlen: usize,
) -> c_int {
    // SAFETY: a pass-through: the C caller upholds `mallctlbymib`'s
    // contract (`mib` holding `miblen` entries, buffers valid for the
    // lengths given).
    unsafe { tikv_jemalloc_sys::mallctlbymib(mib, miblen, oldp, oldlenp, newp, newlen) }
}

/// jemalloc's `malloc_stats_print`.
///
/// # Safety
///
/// As jemalloc's `malloc_stats_print`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_stats_print(
    write_cb: Option<unsafe extern "C" fn(*mut c_void, *const c_char)>,
    cbopaque: *mut c_void,
    opts: *const c_char,
) {
    // SAFETY: a pass-through: the C caller upholds `malloc_stats_print`'s
    // contract (a callback safe to call with `cbopaque`, `opts` null or
    // NUL-terminated).
    unsafe { tikv_jemalloc_sys::malloc_stats_print(write_cb, cbopaque, opts) }
}
