//! allocbench's own probe recognises `liballocbench_snmalloc.so` as snmalloc,
//! with the built-in snmalloc's version.

#[path = "../../tests/support/mod.rs"]
mod support;

fn main() {
    support::probe_test_main(&support::SNMALLOC);
}
