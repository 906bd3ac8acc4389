//! `liballocbench_snmalloc.so`: allocbench's built-in snmalloc (from
//! `snmalloc-sys`) as a library any program can run under with
//! `LD_PRELOAD`, no system package needed.
//!
//! snmalloc is linked statically with its C API prefixed `sn_` (the crate's
//! `libc-api` feature), and a `cdylib` does not export the C symbols of a
//! static library, so this crate exports its own malloc family (see
//! [`allocbench_preload`] for the semantics) on top of `sn_malloc` and
//! friends. It also exports `__malloc_end_pointer`, snmalloc's own extension,
//! by which allocbench's probe recognises snmalloc in the object that defines
//! `malloc` (snmalloc's `libsnmallocshim.so` exports it too), and
//! `allocbench_snmalloc_version`, since snmalloc has no version call. The
//! probe asks `malloc_usable_size` whether a block is snmalloc's: snmalloc's
//! page map gives memory it does not own a size of 0.
//!
//! snmalloc reads no environment variables and has no release call. C++
//! `operator new` and `delete` in libstdc++ call `malloc` and `free` (and
//! `aligned_alloc` for over-aligned types), so they reach snmalloc too.
//!
//! Around `fork` this library adds nothing, like snmalloc's own default
//! build (without `SNMALLOC_PTHREAD_FORK_PROTECTION`): its thread-local
//! allocators need no lock, and its few global locks are held only while it
//! takes address space or chunks from the shared pool.

#![warn(missing_docs)]

use std::ffi::{c_char, c_void};

use allocbench_preload::Allocator;
use snmalloc_sys as sn;

/// The version of the snmalloc carried: that of the `snmalloc-sys` crate,
/// which holds snmalloc's source (allocbench's probe checks it against the
/// built-in snmalloc's).
const VERSION: &std::ffi::CStr = c"0.7.6";

unsafe extern "C" {
    /// snmalloc's `__malloc_end_pointer`, prefixed (from `libc-api`).
    fn sn___malloc_end_pointer(ptr: *mut c_void) -> *mut c_void;
}

/// snmalloc through its prefixed C API.
pub struct Snmalloc;

impl Allocator for Snmalloc {
    unsafe fn malloc(size: usize) -> *mut c_void {
        // SAFETY: `sn_malloc` takes any size; the trait asks no more.
        unsafe { sn::sn_malloc(size) }
    }

    unsafe fn calloc(count: usize, size: usize) -> *mut c_void {
        // SAFETY: `sn_calloc` takes any count and size (it checks the
        // product for overflow itself).
        unsafe { sn::sn_calloc(count, size) }
    }

    unsafe fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: the trait's contract: `ptr` is a live block of this
        // snmalloc.
        unsafe { sn::sn_realloc(ptr, size) }
    }

    unsafe fn free(ptr: *mut c_void) {
        // SAFETY: the trait's contract: `ptr` is null or a live block of
        // this snmalloc.
        unsafe { sn::sn_free(ptr) }
    }

    unsafe fn aligned_alloc(alignment: usize, size: usize) -> *mut c_void {
        // snmalloc rounds a size up to a size class aligned to it; at size 0
        // the rounding gives 0, a block of the smallest class and alignment,
        // so ask for one byte.
        // SAFETY: `sn_rust_alloc` takes a power-of-two alignment (the
        // trait's contract) and a non-zero size; any snmalloc block is freed
        // by `sn_free`, which needs no size.
        unsafe { sn::sn_rust_alloc(alignment, size.max(1)) }
    }

    unsafe fn usable_size(ptr: *const c_void) -> usize {
        // SAFETY: the trait's contract: `ptr` is a non-null live block of
        // this snmalloc.
        unsafe { sn::sn_malloc_usable_size(ptr) }
    }
}

allocbench_preload::export_malloc_family!(Snmalloc);

/// snmalloc's `__malloc_end_pointer`: one past the end of the block that
/// holds `ptr`.
///
/// # Safety
///
/// As snmalloc's: `ptr` points into a live snmalloc block.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __malloc_end_pointer(ptr: *mut c_void) -> *mut c_void {
    // SAFETY: a pass-through: the C caller upholds its contract.
    unsafe { sn___malloc_end_pointer(ptr) }
}

/// The version of the snmalloc this library carries, as a static string.
#[unsafe(no_mangle)]
pub extern "C" fn allocbench_snmalloc_version() -> *const c_char {
    VERSION.as_ptr()
}
