//! Allocator variants for allocbench.
//!
//! Outside a process this crate says what a variant is ([`Variant`]: a base
//! allocator plus environment), which named presets exist ([`presets`]), how
//! users define their own ([`Catalog::add_toml`]) and the environment a
//! process is launched with ([`Variant::launch`]).
//!
//! Inside a process it provides the dispatching `#[global_allocator]`
//! ([`DispatchAlloc`]), the identity and version probe ([`probe`]), the
//! explicit release call ([`release`]) and allocator statistics such as the
//! arena count ([`arena_count`]).
//!
//! For the criterion benchmarks of the allocators themselves, `bench` (with
//! the `testing` feature) holds the allocation entry points and the check that
//! each one is served by the allocator it names.
//!
//! Nothing here knows about workloads.

#![warn(missing_docs)]

#[cfg(feature = "testing")]
pub mod bench;
mod dispatch;
mod elf;
mod probe;
pub mod settings;
mod variant;

pub use dispatch::{DispatchAlloc, SELECT_ENV, Selection, SelectionError, selection};
pub use probe::{
    AllocatorIdentity, ReleaseError, SNMALLOC_NO_RELEASE, SNMALLOC_VERSION,
    SNMALLOC_VERSION_SYMBOL, arena_count, background_thread, count_heaps, glibc_arena_count,
    glibc_version, mimalloc_version_string, probe, release, release_thread, set_background_thread,
};
pub use variant::{
    Base, Catalog, FAULT_ENV, Launch, LibraryProblem, THP_DISABLE_ENV, Variant, VariantError,
    WORKER_BACKGROUND_THREAD_ENV, check_shared_object, is_allocator_env, library_dirs,
    parse_env_assignment, presets,
};

/// The versions of the built-in allocators. Asking jemalloc initialises it,
/// so call this only in a process that is not measured (the harness).
pub fn builtin_versions() -> Vec<(&'static str, String)> {
    vec![
        (
            "jemalloc",
            probe::builtin_jemalloc_version().unwrap_or_else(|| "unknown".into()),
        ),
        (
            "mimalloc",
            // SAFETY: mi_version takes nothing and returns a constant.
            mimalloc_version_string(unsafe { libmimalloc_sys::mi_version() }),
        ),
        ("snmalloc", SNMALLOC_VERSION.into()),
    ]
}
