//! Real programs under `LD_PRELOAD=liballocbench_mimalloc.so`.

#[path = "../../tests/support/mod.rs"]
mod support;

use support::MIMALLOC;

#[test]
fn malloc_family_keeps_c_semantics() {
    support::malloc_family_keeps_c_semantics(&MIMALLOC);
}

#[test]
fn malloc_and_mi_version_come_from_the_library() {
    let line = support::symbols_resolve_to_the_library(
        &MIMALLOC,
        &["mi_version", "mi_collect", "mi_is_in_heap_region"],
    );
    // mimalloc 3 numbers its versions 30000 and up.
    let version: i32 = line["mimalloc ".len()..].parse().expect("a version number");
    assert!(version >= 30_000, "{line}");
}

#[test]
fn fork_with_threads_neither_deadlocks_nor_corrupts() {
    support::fork_with_threads_neither_deadlocks_nor_corrupts(&MIMALLOC);
}

#[test]
fn cxx_new_and_delete_use_the_library() {
    support::cxx_new_and_delete_use_the_library(&MIMALLOC);
}
