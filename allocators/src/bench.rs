//! Allocation entry points for benchmarks.
//!
//! The criterion benchmarks (`allocators/benches/allocators.rs`) put libc
//! malloc, the built-in jemalloc and the built-in mimalloc side by side in one
//! process, calling each one directly rather than through the global
//! allocator. [`BenchAllocator`] is that call; [`BenchAllocator::owner_check`]
//! shows that an entry's memory comes from the allocator it is named after,
//! so a benchmark measures what it names. The benchmarks and their test share
//! this module.

use std::alloc::{GlobalAlloc, Layout, handle_alloc_error};
use std::ffi::c_void;

use mimalloc::MiMalloc;
use tikv_jemallocator::Jemalloc;

use crate::probe::{
    builtin_jemalloc_owns, builtin_jemalloc_version, glibc_in_use, libc_malloc_owns,
    mimalloc_version_string, probe,
};

/// The alignment every benchmark allocation asks for: what `malloc`
/// guarantees on x86-64 and aarch64, so the three entries promise the same.
/// From this size up, the built-ins take their plain `malloc` path (below
/// it, jemalloc takes its aligned one), so benchmark sizes start here.
pub const ALIGN: usize = 16;

/// One benchmark entry: an allocator called directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchAllocator {
    /// libc `malloc`/`free`/`realloc`: glibc, or the library `LD_PRELOAD`
    /// puts in front of it.
    System,
    /// The built-in jemalloc (`tikv_jemallocator::Jemalloc` as `GlobalAlloc`).
    Jemalloc,
    /// The built-in mimalloc (`mimalloc::MiMalloc` as `GlobalAlloc`).
    Mimalloc,
}

/// Why an entry's memory is not from the allocator it names
/// ([`BenchAllocator::owner_check`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum OwnerError {
    /// The `system` entry, but the probe finds a built-in allocator behind
    /// libc `malloc`.
    #[error(
        "libc malloc is not this process's allocator: the probe reports the built-in {name} (is {} set?)",
        crate::SELECT_ENV
    )]
    Builtin {
        /// The allocator the probe names.
        name: String,
    },
    /// The allocators' claims on a block of the entry's.
    #[error("the {} entry's memory is not from {}: {claims:?}", entry.name(), entry.label())]
    NotOwned {
        /// The entry checked.
        entry: BenchAllocator,
        /// Who claimed its block.
        claims: Claims,
    },
}

/// Who claims a fresh allocation made through an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    /// The built-in jemalloc's `arenas.lookup` finds it.
    pub builtin_jemalloc: bool,
    /// The built-in mimalloc's `mi_is_in_heap_region` says yes.
    pub builtin_mimalloc: bool,
    /// glibc's `mallinfo2()` in-use counters grew by at least its size.
    pub glibc_counted: bool,
    /// For the `system` entry: the answer of the allocator that defines
    /// libc `malloc`, when it can be asked (a preloaded jemalloc, mimalloc
    /// or tcmalloc; not glibc).
    pub libc_malloc: Option<bool>,
}

/// Larger than glibc's tcache sizes, below its mmap threshold: served from
/// a glibc heap, so the `mallinfo2()` counters see it.
const CHECK_SIZE: usize = 8192;

impl BenchAllocator {
    /// Every entry, in report order.
    pub const ALL: [BenchAllocator; 3] = [
        BenchAllocator::System,
        BenchAllocator::Jemalloc,
        BenchAllocator::Mimalloc,
    ];

    /// `system`, `jemalloc` or `mimalloc`.
    pub fn name(self) -> &'static str {
        match self {
            BenchAllocator::System => "system",
            BenchAllocator::Jemalloc => "jemalloc",
            BenchAllocator::Mimalloc => "mimalloc",
        }
    }

    /// The entry's name in reports, saying what really serves it:
    /// `system (glibc 2.36)`, `system (jemalloc 5.3.0)`,
    /// `jemalloc (built-in 5.3.1)`, `mimalloc (built-in 3.3.2)`. For
    /// `system` it is [`probe`]'s answer, which in a process whose global
    /// allocator is libc malloc names the library defining `malloc`.
    pub fn label(self) -> String {
        // jemalloc's version carries a git suffix: "5.3.0-0-g54eaed1d…".
        let short = |v: String| v.split('-').next().unwrap_or_default().to_owned();
        match self {
            BenchAllocator::System => {
                let id = probe();
                let what = match id.version {
                    Some(v) => format!("{} {}", id.name, short(v)),
                    None => match id.library {
                        Some(lib) if id.name == "unknown" => lib,
                        _ => id.name,
                    },
                };
                format!("system ({what})")
            }
            BenchAllocator::Jemalloc => format!(
                "jemalloc (built-in {})",
                short(builtin_jemalloc_version().unwrap_or_else(|| "unknown".into()))
            ),
            BenchAllocator::Mimalloc => format!(
                "mimalloc (built-in {})",
                // SAFETY: mi_version takes nothing and returns a constant.
                mimalloc_version_string(unsafe { libmimalloc_sys::mi_version() })
            ),
        }
    }

    /// Allocates `size` bytes (not zero) aligned to [`ALIGN`]; aborts
    /// through `handle_alloc_error` when out of memory.
    #[inline]
    pub fn alloc(self, size: usize) -> *mut u8 {
        let layout = layout(size);
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe {
            match self {
                BenchAllocator::System => libc::malloc(size).cast(),
                BenchAllocator::Jemalloc => Jemalloc.alloc(layout),
                BenchAllocator::Mimalloc => MiMalloc.alloc(layout),
            }
        };
        if ptr.is_null() {
            handle_alloc_error(layout);
        }
        ptr
    }

    /// Frees a block.
    ///
    /// # Safety
    /// `ptr` came from this entry's [`alloc`](Self::alloc) or
    /// [`realloc`](Self::realloc) with `size` as its current size, and is
    /// not used afterwards.
    #[inline]
    pub unsafe fn free(self, ptr: *mut u8, size: usize) {
        // SAFETY: the caller's contract: `ptr` is a live block of this entry
        // with `size` bytes, so `layout(size)` is the layout it was made with.
        unsafe {
            match self {
                BenchAllocator::System => libc::free(ptr.cast()),
                BenchAllocator::Jemalloc => Jemalloc.dealloc(ptr, layout(size)),
                BenchAllocator::Mimalloc => MiMalloc.dealloc(ptr, layout(size)),
            }
        }
    }

    /// Resizes a block from `old_size` to `new_size` (not zero) bytes.
    ///
    /// # Safety
    /// As for [`free`](Self::free); on return `ptr` is no longer valid.
    #[inline]
    pub unsafe fn realloc(self, ptr: *mut u8, old_size: usize, new_size: usize) -> *mut u8 {
        let new = layout(new_size);
        // SAFETY: the caller's contract: `ptr` is a live block of this entry
        // of `old_size` bytes (the layout it was made with); `layout` refused
        // a zero `new_size`.
        let ptr = unsafe {
            match self {
                BenchAllocator::System => libc::realloc(ptr.cast(), new_size).cast(),
                BenchAllocator::Jemalloc => Jemalloc.realloc(ptr, layout(old_size), new_size),
                BenchAllocator::Mimalloc => MiMalloc.realloc(ptr, layout(old_size), new_size),
            }
        };
        if ptr.is_null() {
            handle_alloc_error(new);
        }
        ptr
    }

    /// Makes a fresh allocation through this entry and asks who claims it.
    /// Initialises the built-in jemalloc.
    pub fn claims(self) -> Claims {
        // A first block is made and freed so that one-time initialisation
        // is not counted against glibc.
        let first = self.alloc(CHECK_SIZE);
        // SAFETY: `first` came from self.alloc(CHECK_SIZE) just above and is
        // not used again.
        unsafe { self.free(first, CHECK_SIZE) };
        let before = glibc_in_use();
        let ptr = std::hint::black_box(self.alloc(CHECK_SIZE));
        // SAFETY: ptr is a live block of CHECK_SIZE bytes.
        unsafe { ptr.write_volatile(1) };
        let glibc_counted = glibc_in_use() >= before + CHECK_SIZE;
        let p = ptr.cast::<c_void>();
        let claims = Claims {
            builtin_jemalloc: builtin_jemalloc_owns(p),
            // SAFETY: mi_is_in_heap_region only compares addresses.
            builtin_mimalloc: unsafe { libmimalloc_sys::mi_is_in_heap_region(p) },
            glibc_counted,
            // Only libc malloc's own blocks: an older jemalloc could crash
            // looking up a pointer it never made.
            libc_malloc: (self == BenchAllocator::System)
                .then(|| libc_malloc_owns(p))
                .flatten(),
        };
        // SAFETY: ptr came from self.alloc(CHECK_SIZE).
        unsafe { self.free(ptr, CHECK_SIZE) };
        claims
    }

    /// Whether the allocator this entry names claims `ptr`, a live block
    /// made through this entry (by any caller, for instance a driver
    /// benchmark): the built-in jemalloc's `arenas.lookup` or mimalloc's
    /// `mi_is_in_heap_region`, and not the other built-in; for `system`,
    /// neither built-in, and the allocator behind libc `malloc` says yes
    /// when it can be asked (glibc cannot: [`owner_check`](Self::owner_check)
    /// watches its counters). Initialises the built-in jemalloc.
    pub fn owns(self, ptr: *mut u8) -> bool {
        let p = ptr.cast::<c_void>();
        let jemalloc = builtin_jemalloc_owns(p);
        // SAFETY: mi_is_in_heap_region only compares addresses.
        let mimalloc = unsafe { libmimalloc_sys::mi_is_in_heap_region(p) };
        match self {
            BenchAllocator::Jemalloc => jemalloc && !mimalloc,
            BenchAllocator::Mimalloc => mimalloc && !jemalloc,
            // Asked only for libc malloc's own blocks, as in `claims`.
            BenchAllocator::System => !jemalloc && !mimalloc && libc_malloc_owns(p) != Some(false),
        }
    }

    /// Checks that this entry's memory comes from the allocator it names:
    /// the built-in jemalloc or mimalloc (and not the other); for `system`,
    /// neither built-in, and the allocator [`probe`] finds behind libc
    /// `malloc` (glibc: its counters grow; a preloaded allocator: it says
    /// it owns the block).
    pub fn owner_check(self) -> Result<(), OwnerError> {
        let claims = self.claims();
        let owned = match self {
            BenchAllocator::Jemalloc => claims.builtin_jemalloc && !claims.builtin_mimalloc,
            BenchAllocator::Mimalloc => claims.builtin_mimalloc && !claims.builtin_jemalloc,
            BenchAllocator::System => {
                let id = probe();
                if id.builtin {
                    return Err(OwnerError::Builtin { name: id.name });
                }
                let neither = !claims.builtin_jemalloc && !claims.builtin_mimalloc;
                neither
                    && if id.name == "glibc" {
                        // Another thread's frees can hide the growth: retry.
                        claims.glibc_counted || (0..8).any(|_| self.claims().glibc_counted)
                    } else {
                        claims.libc_malloc == Some(true)
                    }
            }
        };
        if owned {
            Ok(())
        } else {
            Err(OwnerError::NotOwned {
                entry: self,
                claims,
            })
        }
    }
}

#[inline]
fn layout(size: usize) -> Layout {
    // A zero-sized block is undefined behaviour for `GlobalAlloc`.
    assert!(size != 0, "benchmark allocations have a size");
    Layout::from_size_align(size, ALIGN).expect("size below isize::MAX")
}
