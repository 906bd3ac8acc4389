//! allocbench's own probe recognises `liballocbench_mimalloc.so` as mimalloc,
//! with the built-in mimalloc's version.

#[path = "../../tests/support/mod.rs"]
mod support;

fn main() {
    support::probe_test_main(&support::MIMALLOC);
}
