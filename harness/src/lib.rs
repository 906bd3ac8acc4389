//! allocbench's harness: the CLI and the orchestration of cells. It plans
//! cells (variant × workload × hook × repetition), spawns each cell's master
//! under the variant's environment, drives the phases over a socket, samples
//! `/proc` (procfs crate), computes metrics and exports reports.
//!
//! The modules, in data-flow order (ARCHITECTURE.md draws the picture):
//! - [`cli`]: the command line; [`commands`]: one entry per command.
//! - [`plans`]: the command line turned into cell plans.
//! - [`exec`]: runs cells: the runner, a cell's processes and protocol, the
//!   worker process, interrupts.
//! - [`sample`]: reads `/proc` (smaps_rollup, pagemap, the timeline's
//!   sampler) and the machine's environment.
//! - [`external`]: `measure`, a user's own command under each variant.
//! - [`results`]: the result document and the metric registry.
//! - [`analysis`]: metrics from samples, statistics over repetitions, the
//!   memory model, the report's recommendation rules.
//! - [`output`]: every command's view of a document in every format.
//! - [`plot`]: SVG charts.
//!
//! The binary (`src/main.rs`) is a thin pipeline over these modules; the
//! integration tests use them to read result documents back.

pub mod analysis;
pub mod cli;
pub mod commands;
pub mod error;
pub mod exec;
pub mod external;
pub mod output;
pub mod plans;
pub mod plot;
pub mod results;
pub mod sample;
pub mod units;
pub mod write;
