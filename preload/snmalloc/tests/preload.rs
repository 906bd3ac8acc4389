//! Real programs under `LD_PRELOAD=liballocbench_snmalloc.so`.

#[path = "../../tests/support/mod.rs"]
mod support;

use support::SNMALLOC;

#[test]
fn malloc_family_keeps_c_semantics() {
    support::malloc_family_keeps_c_semantics(&SNMALLOC);
}

#[test]
fn malloc_and_the_snmalloc_extension_come_from_the_library() {
    let line = support::symbols_resolve_to_the_library(
        &SNMALLOC,
        &["__malloc_end_pointer", "allocbench_snmalloc_version"],
    );
    let version = allocbench_allocators::SNMALLOC_VERSION;
    assert_eq!(line, format!("snmalloc {version}"));
}

#[test]
fn fork_with_threads_neither_deadlocks_nor_corrupts() {
    support::fork_with_threads_neither_deadlocks_nor_corrupts(&SNMALLOC);
}

#[test]
fn cxx_new_and_delete_use_the_library() {
    support::cxx_new_and_delete_use_the_library(&SNMALLOC);
}
