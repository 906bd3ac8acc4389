//! The C malloc family for allocbench's preload libraries.
//!
//! allocbench runs external programs under its built-in allocators by
//! preloading a shared library that defines `malloc` and friends:
//! `liballocbench_jemalloc.so` (crate `allocbench-preload-jemalloc`),
//! `liballocbench_mimalloc.so` (crate `allocbench-preload-mimalloc`) and
//! `liballocbench_snmalloc.so` (crate `allocbench-preload-snmalloc`). A
//! `cdylib` does not export the C symbols of the static libraries linked into
//! it, so each library defines its own exported wrappers; this crate holds
//! what they share.
//!
//! An allocator provides a few primitives ([`Allocator`]); the functions here
//! build the whole family on them with glibc's semantics, since the programs
//! measured were written against glibc:
//!
//! - `malloc`, `calloc`, `realloc`, `reallocarray` and the aligned
//!   allocations set `errno` to `ENOMEM` when they return `NULL` for want of
//!   memory; `calloc` and `reallocarray` detect `count * size` overflow.
//! - `realloc(NULL, n)` is `malloc(n)`; `realloc(p, 0)` frees `p` and returns
//!   `NULL`; a failed `realloc` leaves the block untouched.
//! - `posix_memalign` returns `EINVAL` unless the alignment is a power of two
//!   and a multiple of `sizeof(void *)`, and leaves `*memptr` alone on error.
//! - `aligned_alloc` requires a power-of-two alignment (`EINVAL` otherwise,
//!   like glibc 2.38 and later); `memalign` rounds any other alignment up to
//!   the next power of two, as glibc does.
//! - `valloc` aligns to the page; `pvalloc` also rounds the size up to a
//!   whole page.
//! - `malloc_usable_size(NULL)` is 0.
//!
//! [`export_malloc_family!`] defines the exported symbols for one allocator.

#![warn(missing_docs)]

use std::ffi::{c_int, c_void};

/// The primitives an allocator provides; everything else is built on them.
/// Each behaves as its C counterpart.
pub trait Allocator {
    /// C `malloc`.
    ///
    /// # Safety
    ///
    /// As C `malloc`.
    unsafe fn malloc(size: usize) -> *mut c_void;
    /// C `calloc`; `count * size` does not overflow.
    ///
    /// # Safety
    ///
    /// As C `calloc`.
    unsafe fn calloc(count: usize, size: usize) -> *mut c_void;
    /// C `realloc` for a non-null `ptr` and a non-zero `size`.
    ///
    /// # Safety
    ///
    /// `ptr` came from this allocator and is live.
    unsafe fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    /// C `free`, `NULL` included.
    ///
    /// # Safety
    ///
    /// `ptr` is null or came from this allocator and is live.
    unsafe fn free(ptr: *mut c_void);
    /// A block of `size` bytes (0 included) aligned to `alignment`, a power
    /// of two (1 included).
    ///
    /// # Safety
    ///
    /// `alignment` is a power of two.
    unsafe fn aligned_alloc(alignment: usize, size: usize) -> *mut c_void;
    /// C `malloc_usable_size` for a non-null `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` came from this allocator and is live.
    unsafe fn usable_size(ptr: *const c_void) -> usize;
}

fn set_errno(code: c_int) {
    // SAFETY: __errno_location returns this thread's errno.
    unsafe { *libc::__errno_location() = code };
}

/// `ptr`, setting `errno` to `ENOMEM` when it is null.
fn or_enomem(ptr: *mut c_void) -> *mut c_void {
    if ptr.is_null() {
        set_errno(libc::ENOMEM);
    }
    ptr
}

/// The system page size, which `valloc` and `pvalloc` align to.
pub fn page_size() -> usize {
    // SAFETY: sysconf only reads a value the loader recorded; it allocates
    // nothing, so it is safe inside malloc.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096)
}

/// `size` rounded up to a multiple of `page` (a power of two), or `None` on
/// overflow.
pub fn round_up_to_page(size: usize, page: usize) -> Option<usize> {
    Some(size.checked_add(page - 1)? & !(page - 1))
}

/// Whether `posix_memalign` accepts `alignment`.
pub fn is_posix_alignment(alignment: usize) -> bool {
    alignment.is_power_of_two() && alignment.is_multiple_of(size_of::<*mut c_void>())
}

/// C `malloc`.
///
/// # Safety
///
/// As C `malloc`.
pub unsafe fn malloc<A: Allocator>(size: usize) -> *mut c_void {
    // SAFETY: our caller upholds C `malloc`'s contract, which is `A::malloc`'s.
    or_enomem(unsafe { A::malloc(size) })
}

/// C `free`.
///
/// # Safety
///
/// As C `free`.
pub unsafe fn free<A: Allocator>(ptr: *mut c_void) {
    // SAFETY: as C `free`, `ptr` is null or a live block of this library's
    // allocator, which is `A`.
    unsafe { A::free(ptr) }
}

/// C `calloc`.
///
/// # Safety
///
/// As C `calloc`.
pub unsafe fn calloc<A: Allocator>(count: usize, size: usize) -> *mut c_void {
    if count.checked_mul(size).is_none() {
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    }
    // SAFETY: `count * size` was just checked not to overflow, as `A::calloc`
    // requires.
    or_enomem(unsafe { A::calloc(count, size) })
}

/// C `realloc`.
///
/// # Safety
///
/// As C `realloc`.
pub unsafe fn realloc<A: Allocator>(ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        // SAFETY: `realloc(NULL, n)` is `malloc(n)`, which has no
        // precondition beyond C's.
        return unsafe { malloc::<A>(size) };
    }
    if size == 0 {
        // SAFETY: `ptr` is non-null and, by C `realloc`'s contract, a live
        // block of this library's allocator `A`; it is not used again.
        unsafe { A::free(ptr) };
        return std::ptr::null_mut();
    }
    // SAFETY: `ptr` is non-null and a live block of `A` (C `realloc`'s
    // contract), and `size` is non-zero: `A::realloc`'s preconditions.
    or_enomem(unsafe { A::realloc(ptr, size) })
}

/// C `reallocarray`.
///
/// # Safety
///
/// As C `reallocarray`.
pub unsafe fn reallocarray<A: Allocator>(
    ptr: *mut c_void,
    count: usize,
    size: usize,
) -> *mut c_void {
    match count.checked_mul(size) {
        // SAFETY: `ptr` is as C `reallocarray` requires, which is what
        // `realloc` requires, and `total` did not overflow.
        Some(total) => unsafe { realloc::<A>(ptr, total) },
        None => {
            set_errno(libc::ENOMEM);
            std::ptr::null_mut()
        }
    }
}

/// C `posix_memalign`.
///
/// # Safety
///
/// As C `posix_memalign`: `memptr` is valid for a write.
pub unsafe fn posix_memalign<A: Allocator>(
    memptr: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    if !is_posix_alignment(alignment) {
        return libc::EINVAL;
    }
    // SAFETY: `is_posix_alignment` just checked that `alignment` is a power
    // of two.
    let ptr = unsafe { A::aligned_alloc(alignment, size) };
    if ptr.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: C `posix_memalign`'s caller passes a `memptr` valid for a
    // write of one pointer.
    unsafe { *memptr = ptr };
    0
}

/// C `aligned_alloc`.
///
/// # Safety
///
/// As C `aligned_alloc`.
pub unsafe fn aligned_alloc<A: Allocator>(alignment: usize, size: usize) -> *mut c_void {
    if !alignment.is_power_of_two() {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    }
    // SAFETY: `alignment` was just checked to be a power of two.
    or_enomem(unsafe { A::aligned_alloc(alignment, size) })
}

/// C `memalign`.
///
/// # Safety
///
/// As C `memalign`.
pub unsafe fn memalign<A: Allocator>(alignment: usize, size: usize) -> *mut c_void {
    // glibc rounds an alignment that is not a power of two up (0 becomes 1).
    match alignment.checked_next_power_of_two() {
        // SAFETY: `checked_next_power_of_two` returns a power of two.
        Some(alignment) => or_enomem(unsafe { A::aligned_alloc(alignment, size) }),
        None => {
            set_errno(libc::EINVAL);
            std::ptr::null_mut()
        }
    }
}

/// C `valloc`.
///
/// # Safety
///
/// As C `valloc`.
pub unsafe fn valloc<A: Allocator>(size: usize) -> *mut c_void {
    // SAFETY: `page_size` returns a power of two (4096 when sysconf says
    // otherwise).
    or_enomem(unsafe { A::aligned_alloc(page_size(), size) })
}

/// C `pvalloc`.
///
/// # Safety
///
/// As C `pvalloc`.
pub unsafe fn pvalloc<A: Allocator>(size: usize) -> *mut c_void {
    let page = page_size();
    match round_up_to_page(size, page) {
        // SAFETY: `page_size` returns a power of two.
        Some(size) => or_enomem(unsafe { A::aligned_alloc(page, size) }),
        None => {
            set_errno(libc::ENOMEM);
            std::ptr::null_mut()
        }
    }
}

/// C `malloc_usable_size`.
///
/// # Safety
///
/// As C `malloc_usable_size`.
pub unsafe fn malloc_usable_size<A: Allocator>(ptr: *const c_void) -> usize {
    if ptr.is_null() {
        return 0;
    }
    // SAFETY: `ptr` is non-null and, by C `malloc_usable_size`'s contract, a
    // live block of this library's allocator `A`.
    unsafe { A::usable_size(ptr) }
}

/// Defines and exports the malloc family for the [`Allocator`] `$alloc`:
/// `malloc`, `free`, `calloc`, `realloc`, `reallocarray`, `posix_memalign`,
/// `aligned_alloc`, `memalign`, `valloc`, `pvalloc`, `malloc_usable_size`,
/// and C23's `free_sized` and `free_aligned_sized` (the size is only a hint;
/// `free` is always correct). Use it once, in the `cdylib` crate.
///
/// glibc's introspection and tuning calls (`malloc_trim`, `mallinfo`,
/// `mallinfo2`, `malloc_info`, `malloc_stats`, `mallopt`) are not defined:
/// they would have to answer for another allocator. A program that calls them
/// reaches glibc's own, which report and trim glibc's (unused) heap and never
/// touch a block of `$alloc`.
#[macro_export]
macro_rules! export_malloc_family {
    ($alloc:ty) => {
        /// C `malloc`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn malloc(size: usize) -> *mut ::std::ffi::c_void {
            // SAFETY: the C caller upholds `malloc`'s contract, which is what
            // `$crate::malloc` requires; `$alloc` is this library's allocator.
            unsafe { $crate::malloc::<$alloc>(size) }
        }

        /// C `free`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn free(ptr: *mut ::std::ffi::c_void) {
            // SAFETY: the C caller upholds `free`'s contract, which is what
            // `$crate::free` requires; `$alloc` is this library's allocator.
            unsafe { $crate::free::<$alloc>(ptr) }
        }

        /// C23 `free_sized`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn free_sized(ptr: *mut ::std::ffi::c_void, _size: usize) {
            // SAFETY: C23 `free_sized` takes what `free` takes (null or a
            // live block from this library) plus a hint we ignore.
            unsafe { $crate::free::<$alloc>(ptr) }
        }

        /// C23 `free_aligned_sized`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn free_aligned_sized(
            ptr: *mut ::std::ffi::c_void,
            _alignment: usize,
            _size: usize,
        ) {
            // SAFETY: C23 `free_aligned_sized` takes what `free` takes (null
            // or a live block from this library) plus hints we ignore.
            unsafe { $crate::free::<$alloc>(ptr) }
        }

        /// C `calloc`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut ::std::ffi::c_void {
            // SAFETY: the C caller upholds `calloc`'s contract, which is what
            // `$crate::calloc` requires; `$alloc` is this library's allocator.
            unsafe { $crate::calloc::<$alloc>(count, size) }
        }

        /// C `realloc`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn realloc(
            ptr: *mut ::std::ffi::c_void,
            size: usize,
        ) -> *mut ::std::ffi::c_void {
            // SAFETY: the C caller upholds `realloc`'s contract, which is what
            // `$crate::realloc` requires; `$alloc` is this library's allocator.
            unsafe { $crate::realloc::<$alloc>(ptr, size) }
        }

        /// C `reallocarray`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn reallocarray(
            ptr: *mut ::std::ffi::c_void,
            count: usize,
            size: usize,
        ) -> *mut ::std::ffi::c_void {
            // SAFETY: the C caller upholds `reallocarray`'s contract, which is what
            // `$crate::reallocarray` requires; `$alloc` is this library's allocator.
            unsafe { $crate::reallocarray::<$alloc>(ptr, count, size) }
        }

        /// C `posix_memalign`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn posix_memalign(
            memptr: *mut *mut ::std::ffi::c_void,
            alignment: usize,
            size: usize,
        ) -> ::std::ffi::c_int {
            // SAFETY: the C caller upholds `posix_memalign`'s contract, which is what
            // `$crate::posix_memalign` requires; `$alloc` is this library's allocator.
            unsafe { $crate::posix_memalign::<$alloc>(memptr, alignment, size) }
        }

        /// C `aligned_alloc`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn aligned_alloc(
            alignment: usize,
            size: usize,
        ) -> *mut ::std::ffi::c_void {
            // SAFETY: the C caller upholds `aligned_alloc`'s contract, which is what
            // `$crate::aligned_alloc` requires; `$alloc` is this library's allocator.
            unsafe { $crate::aligned_alloc::<$alloc>(alignment, size) }
        }

        /// C `memalign`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memalign(
            alignment: usize,
            size: usize,
        ) -> *mut ::std::ffi::c_void {
            // SAFETY: the C caller upholds `memalign`'s contract, which is what
            // `$crate::memalign` requires; `$alloc` is this library's allocator.
            unsafe { $crate::memalign::<$alloc>(alignment, size) }
        }

        /// C `valloc`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn valloc(size: usize) -> *mut ::std::ffi::c_void {
            // SAFETY: the C caller upholds `valloc`'s contract, which is what
            // `$crate::valloc` requires; `$alloc` is this library's allocator.
            unsafe { $crate::valloc::<$alloc>(size) }
        }

        /// C `pvalloc`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn pvalloc(size: usize) -> *mut ::std::ffi::c_void {
            // SAFETY: the C caller upholds `pvalloc`'s contract, which is what
            // `$crate::pvalloc` requires; `$alloc` is this library's allocator.
            unsafe { $crate::pvalloc::<$alloc>(size) }
        }

        /// C `malloc_usable_size`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn malloc_usable_size(ptr: *const ::std::ffi::c_void) -> usize {
            // SAFETY: the C caller upholds `malloc_usable_size`'s contract, which is what
            // `$crate::malloc_usable_size` requires; `$alloc` is this library's allocator.
            unsafe { $crate::malloc_usable_size::<$alloc>(ptr) }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_whole_pages() {
        assert_eq!(round_up_to_page(0, 4096), Some(0));
        assert_eq!(round_up_to_page(1, 4096), Some(4096));
        assert_eq!(round_up_to_page(4096, 4096), Some(4096));
        assert_eq!(round_up_to_page(4097, 65536), Some(65536));
        assert_eq!(round_up_to_page(usize::MAX - 10, 4096), None);
    }

    #[test]
    fn posix_alignments_are_powers_of_two_and_pointer_multiples() {
        let word = size_of::<*mut c_void>();
        for ok in [word, 2 * word, 4096, 1 << 20] {
            assert!(is_posix_alignment(ok), "{ok}");
        }
        for bad in [0, 1, word / 2, 3 * word, 4095] {
            assert!(!is_posix_alignment(bad), "{bad}");
        }
    }

    #[test]
    fn the_page_size_is_the_systems() {
        let page = page_size();
        assert!(page.is_power_of_two() && page >= 4096, "{page}");
    }
}
