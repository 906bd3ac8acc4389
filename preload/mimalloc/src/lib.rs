//! `liballocbench_mimalloc.so`: allocbench's built-in mimalloc (from
//! `libmimalloc-sys`) as a library any program can run under with
//! `LD_PRELOAD`, no system package needed.
//!
//! mimalloc is linked statically without its `override` feature, and a
//! `cdylib` does not export the C symbols of a static library, so this crate
//! exports its own malloc family (see [`allocbench_preload`] for the
//! semantics) on top of `mi_malloc` and friends. It also exports mimalloc's
//! own `mi_version`, `mi_collect` and `mi_is_in_heap_region`: allocbench's
//! probe recognises mimalloc by these three in the object that defines
//! `malloc`, and uses them for its version, release call and ownership check.
//! Wrappers of the same names would clash with mimalloc's, so `build.rs`
//! exports the originals with a version script (which needs lld). The rest of
//! mimalloc's API is not exported.
//!
//! mimalloc reads its options from `MIMALLOC_*` variables as usual. C++
//! `operator new` and `delete` in libstdc++ call `malloc` and `free` (and
//! `aligned_alloc` for over-aligned types), so they reach mimalloc too.
//!
//! Around `fork` this library adds nothing, like mimalloc's own: mimalloc
//! registers no fork handlers, relying on thread-local heaps; its few locks
//! are held only while it reserves an arena or creates or deletes a thread's
//! heap.

#![warn(missing_docs)]

use std::ffi::c_void;

use allocbench_preload::Allocator;
use libmimalloc_sys as mi;

/// mimalloc through its C API.
pub struct Mimalloc;

impl Allocator for Mimalloc {
    unsafe fn malloc(size: usize) -> *mut c_void {
        // SAFETY: `mi_malloc` takes any size; the trait asks no more.
        unsafe { mi::mi_malloc(size) }
    }

    unsafe fn calloc(count: usize, size: usize) -> *mut c_void {
        // SAFETY: `mi_calloc` takes any count and size (it checks the
        // product for overflow itself).
        unsafe { mi::mi_calloc(count, size) }
    }

    unsafe fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: the trait's contract: `ptr` is a live block of this
        // mimalloc.
        unsafe { mi::mi_realloc(ptr, size) }
    }

    unsafe fn free(ptr: *mut c_void) {
        // SAFETY: the trait's contract: `ptr` is null or a live block of
        // this mimalloc.
        unsafe { mi::mi_free(ptr) }
    }

    unsafe fn aligned_alloc(alignment: usize, size: usize) -> *mut c_void {
        // SAFETY: `mi_malloc_aligned` takes any power-of-two alignment (the
        // trait's contract) and any size; note its argument order.
        unsafe { mi::mi_malloc_aligned(size, alignment) }
    }

    unsafe fn usable_size(ptr: *const c_void) -> usize {
        // SAFETY: the trait's contract: `ptr` is a non-null live block of
        // this mimalloc.
        unsafe { mi::mi_usable_size(ptr) }
    }
}

allocbench_preload::export_malloc_family!(Mimalloc);
