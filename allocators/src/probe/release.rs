//! Making the allocator in effect give memory back: the release call for the
//! whole process and for one thread, and jemalloc's background threads.

use super::{
    Active, MallctlFn, builtin_mallctl, detected, mallctl_call, mallctl_read, malloc_trim,
};
use thiserror::Error;

/// Why the release call or a background-thread setting could not be made.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum ReleaseError {
    /// A tcmalloc without `MallocExtension_ReleaseFreeMemory`.
    #[error("this tcmalloc has no MallocExtension_ReleaseFreeMemory")]
    NoTcmallocRelease,
    /// An allocator the probe does not recognise.
    #[error(
        "no release call is known for the allocator in {}",
        library.as_deref().unwrap_or("this process")
    )]
    Unknown {
        /// The object that defines `malloc`, if known.
        library: Option<String>,
    },
    /// jemalloc's `arena.<all>.purge` failed.
    #[error("jemalloc refused mallctl(\"arena.<all>.purge\")")]
    PurgeRefused,
    /// Background threads asked of another allocator than jemalloc.
    #[error("background threads are a jemalloc setting; this process does not run on jemalloc")]
    NotJemalloc,
    /// jemalloc's `background_thread` mallctl failed.
    #[error("jemalloc refused background_thread={on} (error {rc})")]
    BackgroundThreadRefused {
        /// The setting asked for.
        on: bool,
        /// The mallctl's return code.
        rc: i32,
    },
}

/// What [`release`] reports for snmalloc, which has no release call.
pub const SNMALLOC_NO_RELEASE: &str = "none (snmalloc has no release call)";

/// Asks the allocator in effect to give free memory back to the OS, for the
/// whole process: glibc `malloc_trim(0)`, jemalloc `arena.<all>.purge` (after
/// flushing this thread's cache), mimalloc `mi_collect(true)`, tcmalloc
/// `MallocExtension_ReleaseFreeMemory()`. Returns the call made.
///
/// snmalloc has none: the `snmalloc-rs` build exports no flush or trim call,
/// and snmalloc decommits free chunks by itself (`madvise(MADV_FREE)`) beyond
/// a cache of up to 2 MiB per thread. Nothing is called, and the call is
/// reported as [`SNMALLOC_NO_RELEASE`].
pub fn release() -> Result<&'static str, ReleaseError> {
    match detected().active {
        Active::Glibc => {
            // SAFETY: malloc_trim is safe to call at any time.
            unsafe { malloc_trim(0) };
            Ok("malloc_trim(0)")
        }
        Active::BuiltinJemalloc => jemalloc_purge(builtin_mallctl()),
        Active::Jemalloc { mallctl } => jemalloc_purge(mallctl),
        Active::BuiltinMimalloc => {
            // SAFETY: mi_collect may be called at any time from any thread.
            unsafe { libmimalloc_sys::mi_collect(true) };
            Ok("mi_collect(true)")
        }
        Active::Mimalloc { collect, .. } => {
            // SAFETY: the preloaded mimalloc's `mi_collect`, which may be
            // called at any time from any thread.
            unsafe { collect(true) };
            Ok("mi_collect(true)")
        }
        Active::Tcmalloc {
            release: Some(f), ..
        } => {
            // SAFETY: tcmalloc's `MallocExtension_ReleaseFreeMemory`, which
            // takes nothing and may be called at any time.
            unsafe { f() };
            Ok("MallocExtension_ReleaseFreeMemory()")
        }
        Active::Tcmalloc { release: None, .. } => Err(ReleaseError::NoTcmallocRelease),
        Active::BuiltinSnmalloc | Active::Snmalloc { .. } => Ok(SNMALLOC_NO_RELEASE),
        Active::Unknown => Err(ReleaseError::Unknown {
            library: detected().library.clone(),
        }),
    }
}

/// Turns jemalloc's background threads on or off (`background_thread`).
/// An error for other allocators.
pub fn set_background_thread(on: bool) -> Result<(), ReleaseError> {
    let mallctl = match detected().active {
        Active::BuiltinJemalloc => builtin_mallctl(),
        Active::Jemalloc { mallctl } => mallctl,
        _ => return Err(ReleaseError::NotJemalloc),
    };
    let mut value = on;
    // SAFETY: background_thread takes a bool.
    let rc = unsafe {
        mallctl(
            c"background_thread".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            (&mut value as *mut bool).cast(),
            std::mem::size_of::<bool>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(ReleaseError::BackgroundThreadRefused { on, rc })
    }
}

/// Whether jemalloc's background threads are on; `None` for other allocators.
pub fn background_thread() -> Option<bool> {
    match detected().active {
        Active::BuiltinJemalloc => mallctl_read::<bool>(builtin_mallctl(), c"background_thread"),
        Active::Jemalloc { mallctl } => mallctl_read::<bool>(mallctl, c"background_thread"),
        _ => None,
    }
}

/// Per-thread part of a release: what the calling thread's cache holds goes
/// back to the shared heap (jemalloc `thread.tcache.flush`, mimalloc
/// `mi_collect(true)` on this thread's heap). Other allocators need nothing.
pub fn release_thread() {
    match detected().active {
        Active::BuiltinJemalloc => {
            mallctl_call(builtin_mallctl(), c"thread.tcache.flush");
        }
        Active::Jemalloc { mallctl } => {
            mallctl_call(mallctl, c"thread.tcache.flush");
        }
        // SAFETY: mi_collect may be called at any time from any thread.
        Active::BuiltinMimalloc => unsafe { libmimalloc_sys::mi_collect(true) },
        // SAFETY: the preloaded mimalloc's `mi_collect`, as above.
        Active::Mimalloc { collect, .. } => unsafe { collect(true) },
        _ => {}
    }
}

fn jemalloc_purge(mallctl: MallctlFn) -> Result<&'static str, ReleaseError> {
    mallctl_call(mallctl, c"thread.tcache.flush");
    // 4096 is MALLCTL_ARENAS_ALL.
    if mallctl_call(mallctl, c"arena.4096.purge") {
        Ok("mallctl(\"arena.<all>.purge\")")
    } else {
        Err(ReleaseError::PurgeRefused)
    }
}
