//! allocbench's harness: the CLI and the orchestration of cells. It plans
//! cells (variant × workload × hook × repetition), spawns each cell's master
//! under the variant's environment, drives the phases over a socket, samples
//! `/proc` (procfs crate), computes metrics and exports reports.
//!
//! The binary (`src/main.rs`) is a thin pipeline over these modules; the
//! integration tests use them to read result documents back.

pub mod cell;
pub mod cli;
pub mod commands;
pub mod cow;
pub mod detail;
pub mod environment;
pub mod export;
pub mod interrupt;
pub mod list;
pub mod measure;
pub mod metric;
pub mod metrics;
pub mod options;
pub mod plot;
pub mod report;
pub mod result;
pub mod runner;
pub mod sample;
pub mod stats;
pub mod sweep;
pub mod tree;
pub mod units;
pub mod worker;
