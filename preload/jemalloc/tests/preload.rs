//! Real programs under `LD_PRELOAD=liballocbench_jemalloc.so`.

#[path = "../../tests/support/mod.rs"]
mod support;

use support::{JEMALLOC, Lang, compile};

#[test]
fn malloc_family_keeps_c_semantics() {
    support::malloc_family_keeps_c_semantics(&JEMALLOC);
}

#[test]
fn malloc_and_mallctl_come_from_the_library() {
    let line = support::symbols_resolve_to_the_library(
        &JEMALLOC,
        &[
            "mallctl",
            "mallctlnametomib",
            "mallctlbymib",
            "malloc_stats_print",
        ],
    );
    assert!(line.starts_with("jemalloc 5."), "{line}");
}

#[test]
fn fork_with_threads_neither_deadlocks_nor_corrupts() {
    support::fork_with_threads_neither_deadlocks_nor_corrupts(&JEMALLOC);
}

#[test]
fn cxx_new_and_delete_use_the_library() {
    support::cxx_new_and_delete_use_the_library(&JEMALLOC);
}

/// The prefixed jemalloc reads `_RJEM_MALLOC_CONF`, and only that.
#[test]
fn options_come_from_rjem_malloc_conf() {
    let exe = compile(Lang::C, "narenas.c", &JEMALLOC);
    let narenas = |env: &[(&str, &str)]| -> u32 {
        let run = JEMALLOC.run(&exe, &[], env);
        run.stdout()
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("not an arena count ({e}): {run}"))
    };
    // jemalloc 5.3 adds a dedicated arena for huge allocations.
    assert_eq!(narenas(&[("_RJEM_MALLOC_CONF", "narenas:1")]), 2);
    assert_eq!(narenas(&[("_RJEM_MALLOC_CONF", "narenas:5")]), 6);
    let default = narenas(&[]);
    assert_ne!(default, 6, "the default is 4 per CPU, plus 1");
    assert_eq!(narenas(&[("MALLOC_CONF", "narenas:5")]), default);
}
