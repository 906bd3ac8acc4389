//! The integration tests of allocbench-allocators, one test binary
//! (`--test integration`) with a module per topic. The topics share this
//! process and run side by side on the test threads; a test that must have
//! the process to itself runs through `common::alone`.

// The helpers are the workloads crate's own: one copy for both.
#[path = "../../workloads/tests/common/mod.rs"]
mod common;

mod bench_identity;
mod library_fuzz;
mod variant_fuzz;
