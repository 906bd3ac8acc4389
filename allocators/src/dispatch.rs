//! The dispatching global allocator.
//!
//! One executable carries four allocators: libc `malloc` (glibc, or whatever
//! `LD_PRELOAD` interposes), the built-in jemalloc, mimalloc and snmalloc.
//! [`DispatchAlloc`] picks one of them once, at the first allocation, from the
//! environment variable [`SELECT_ENV`], read with `getenv` so that the choice
//! itself allocates nothing. Every later call goes to the same allocator, so a
//! pointer is always freed by the allocator that made it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CStr;
use std::sync::atomic::{AtomicU8, Ordering};

use mimalloc::MiMalloc;
use snmalloc_rs::SnMalloc;
use tikv_jemallocator::Jemalloc;

/// The environment variable that selects the allocator of a process:
/// `system` (libc malloc; the default), `jemalloc`, `mimalloc` or `snmalloc`.
pub const SELECT_ENV: &str = "ALLOCBENCH_ALLOCATOR";
const SELECT_ENV_C: &CStr = c"ALLOCBENCH_ALLOCATOR";

/// Which allocator [`DispatchAlloc`] serves this process's allocations with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// libc `malloc`: glibc, or the library `LD_PRELOAD` put in front of it.
    System,
    /// The built-in jemalloc (tikv-jemallocator, prefixed `_rjem_`).
    Jemalloc,
    /// The built-in mimalloc (the `mimalloc` crate's static library).
    Mimalloc,
    /// The built-in snmalloc (the `snmalloc-rs` crate's static library).
    Snmalloc,
}

impl Selection {
    /// The value of [`SELECT_ENV`] that selects this allocator.
    pub fn env_value(self) -> &'static str {
        match self {
            Selection::System => "system",
            Selection::Jemalloc => "jemalloc",
            Selection::Mimalloc => "mimalloc",
            Selection::Snmalloc => "snmalloc",
        }
    }

    fn from_bytes(value: &[u8]) -> Option<Selection> {
        match value {
            b"system" | b"" => Some(Selection::System),
            b"jemalloc" => Some(Selection::Jemalloc),
            b"mimalloc" => Some(Selection::Mimalloc),
            b"snmalloc" => Some(Selection::Snmalloc),
            _ => None,
        }
    }
}

const UNSET: u8 = 0;
const SYSTEM: u8 = 1;
const JEMALLOC: u8 = 2;
const MIMALLOC: u8 = 3;
const SNMALLOC: u8 = 4;
/// An unknown value in the environment: served by libc malloc, and
/// [`selection`] reports the error so the process can refuse to run.
const INVALID: u8 = 5;

static CHOICE: AtomicU8 = AtomicU8::new(UNSET);

#[inline]
fn choice() -> u8 {
    match CHOICE.load(Ordering::Relaxed) {
        UNSET => choose(),
        c => c,
    }
}

#[cold]
fn choose() -> u8 {
    // SAFETY: getenv reads the environment without allocating; nothing in
    // this process modifies the environment while allocating.
    let raw = unsafe { libc::getenv(SELECT_ENV_C.as_ptr()) };
    let c = if raw.is_null() {
        SYSTEM
    } else {
        // SAFETY: getenv returned a valid NUL-terminated string.
        let value = unsafe { CStr::from_ptr(raw) }.to_bytes();
        match Selection::from_bytes(value) {
            Some(Selection::System) => SYSTEM,
            Some(Selection::Jemalloc) => JEMALLOC,
            Some(Selection::Mimalloc) => MIMALLOC,
            Some(Selection::Snmalloc) => SNMALLOC,
            None => INVALID,
        }
    };
    // Two threads racing here read the same environment and agree.
    match CHOICE.compare_exchange(UNSET, c, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => c,
        Err(existing) => existing,
    }
}

/// A value of [`SELECT_ENV`] that names no allocator.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error(
    "{SELECT_ENV} has an unknown value {value:?} (valid: system, jemalloc, mimalloc, snmalloc)"
)]
pub struct SelectionError {
    /// The variable's value as set.
    pub value: std::ffi::OsString,
}

/// The allocator this process's allocations go to, or an error naming the
/// bad value of [`SELECT_ENV`].
pub fn selection() -> Result<Selection, SelectionError> {
    match choice() {
        JEMALLOC => Ok(Selection::Jemalloc),
        MIMALLOC => Ok(Selection::Mimalloc),
        SNMALLOC => Ok(Selection::Snmalloc),
        INVALID => Err(SelectionError {
            value: std::env::var_os(SELECT_ENV).unwrap_or_default(),
        }),
        _ => Ok(Selection::System),
    }
}

/// A `GlobalAlloc` that forwards to libc malloc, jemalloc, mimalloc or snmalloc, chosen
/// once per process from [`SELECT_ENV`].
pub struct DispatchAlloc;

// SAFETY: every method forwards to the same underlying allocator for the life
// of the process (the choice never changes once made), so each pointer is
// freed and reallocated by the allocator that produced it.
unsafe impl GlobalAlloc for DispatchAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's `GlobalAlloc::alloc` contract (a non-zero
        // size) is passed on unchanged to the allocator `choice` names.
        unsafe {
            match choice() {
                JEMALLOC => Jemalloc.alloc(layout),
                MIMALLOC => MiMalloc.alloc(layout),
                SNMALLOC => SnMalloc.alloc(layout),
                _ => System.alloc(layout),
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`: the caller's contract, passed on unchanged.
        unsafe {
            match choice() {
                JEMALLOC => Jemalloc.alloc_zeroed(layout),
                MIMALLOC => MiMalloc.alloc_zeroed(layout),
                SNMALLOC => SnMalloc.alloc_zeroed(layout),
                _ => System.alloc_zeroed(layout),
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this DispatchAlloc with `layout`
        // (the caller's contract), hence by the allocator `choice` names now,
        // since the choice never changes.
        unsafe {
            match choice() {
                JEMALLOC => Jemalloc.dealloc(ptr, layout),
                MIMALLOC => MiMalloc.dealloc(ptr, layout),
                SNMALLOC => SnMalloc.dealloc(ptr, layout),
                _ => System.dealloc(ptr, layout),
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as in `dealloc`: `ptr` and `layout` come from the allocator
        // `choice` names now; `new_size` is as the caller's contract says.
        unsafe {
            match choice() {
                JEMALLOC => Jemalloc.realloc(ptr, layout, new_size),
                MIMALLOC => MiMalloc.realloc(ptr, layout, new_size),
                SNMALLOC => SnMalloc.realloc(ptr, layout, new_size),
                _ => System.realloc(ptr, layout, new_size),
            }
        }
    }
}
