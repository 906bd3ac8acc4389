//! allocbench's own probe recognises `liballocbench_jemalloc.so` as jemalloc,
//! with the built-in jemalloc's version.

#[path = "../../tests/support/mod.rs"]
mod support;

fn main() {
    support::probe_test_main(&support::JEMALLOC);
}
