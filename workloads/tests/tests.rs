//! The integration tests of allocbench-workloads, one test binary
//! (`--test integration`) with a module per topic. The topics share this
//! process and run side by side on the test threads; a test that must have
//! the process to itself runs through `common::alone`.

mod common;

mod driver_bench;
mod fault_fuzz;
mod spec_fuzz;
