//! Workloads for allocbench.
//!
//! A workload is a [`WorkloadSpec`] (serde; CLI flags and TOML spec files set
//! its fields) under a name ([`workloads`]). The [`run_master`] engine runs
//! inside the process the harness spawns: it preloads static memory, applies
//! the pre-fork hook, forks the workers and drives their threads through the
//! requests, stopping at each [`Phase`] boundary until the harness has
//! sampled. [`protocol`] holds the event types both sides speak.
//!
//! `bench` (with the `testing` feature) runs the engine's request loop with
//! other allocators under it, for the benchmarks of the driver's own cost.
//!
//! Nothing here reads `/proc` of other processes; sampling is the harness's.

#![warn(missing_docs)]

#[cfg(feature = "testing")]
pub mod bench;
mod engine;
pub mod fault;
pub mod protocol;
mod spec;

pub use engine::{EngineError, run_master};
pub use protocol::{Event, Phase, PhaseReport, RetireReason, Role};
pub use spec::{
    Focus, Lifecycle, MAX_PROCESSES, MAX_THREADS, MixPhase, PreforkHook, SizeBand, SizeError,
    SpecError, Workload, WorkloadSpec, parse_size, workload, workloads,
};

/// Merges a latency histogram sent as (value, count) pairs into `into`.
pub fn merge_latency(into: &mut hdrhistogram::Histogram<u64>, pairs: &[(u64, u64)]) {
    for &(v, c) in pairs {
        into.saturating_record_n(v, c);
    }
}

/// An empty latency histogram with the bounds the workers use (ns).
pub fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    engine::latency_histogram()
}
