//! What the samples mean: the metrics of a finished cell, statistics over
//! repetitions, the memory model fitted to a sweep, glibc's arena limits,
//! and the report's rules for what to choose.

mod across;
pub mod arenas;
pub mod choose;
mod lifecycle;
pub mod measure;
pub mod merge;
pub mod metrics;
pub mod questions;
pub mod report;
pub mod stats;
pub mod sweep;

#[cfg(test)]
mod known_answers;
