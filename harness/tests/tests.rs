//! The harness's integration tests, one test binary (`--test integration`)
//! with a module per topic: `cargo test -p allocbench --test integration
//! golden::` runs one topic. The topics share this process and run side by
//! side on the test threads, so a test touches no process-wide state (the
//! environment, the working directory, signal dispositions, rlimits) and
//! looks only at processes it started itself; `common` holds what they
//! share.

mod common;

mod allocators;
mod bad_input;
mod contain;
mod containers;
mod cow;
mod faults;
mod golden;
mod help;
mod inspect;
mod io;
mod layers;
mod lifecycle;
mod limits;
mod measure;
mod phases;
mod plots;
mod release;
mod report;
mod servers;
mod shard;
mod sweep;
mod unprivileged;
