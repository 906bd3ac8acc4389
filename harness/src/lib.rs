//! allocbench's harness: the CLI and the orchestration of cells. It plans
//! cells (variant × workload × hook × repetition), spawns each cell's master
//! under the variant's environment, drives the phases over a socket, samples
//! `/proc` (procfs crate), computes metrics and exports reports.
//!
//! The modules form layers in data-flow order, bottom first; a module uses
//! only its own layer and those below (`tests/layers.rs` checks it;
//! ARCHITECTURE.md draws the picture):
//! - [`cli`]: the command line and its defaults; [`units`]: numbers for
//!   people; [`error`]: the usage error (exit 2); [`write`](mod@write):
//!   atomic writes of output files.
//! - [`results`]: the result document, the metric registry, reading
//!   documents back.
//! - [`sample`]: reads `/proc` (smaps_rollup, pagemap, the timeline's
//!   sampler) and the machine's environment.
//! - [`analysis`]: metrics from samples, statistics over repetitions, the
//!   memory model, the report's grouping and recommendation rules.
//! - [`plot`]: SVG charts.
//! - [`output`]: every command's view of a document in every format.
//! - [`exec`]: runs cells: the runner, a cell's processes and protocol, the
//!   worker process, interrupts.
//! - [`plans`]: the command line turned into cell plans.
//! - [`external`]: `measure`, a user's own command under each variant.
//! - [`commands`]: one entry per command.
//!
//! The binary (`src/main.rs`) is a thin pipeline over these modules; the
//! integration tests use them to read result documents back.

pub(crate) mod analysis;
pub mod cli;
pub mod commands;
pub mod error;
pub mod exec;
pub mod external;
pub mod output;
pub(crate) mod plans;
pub(crate) mod plot;
pub(crate) mod read;
pub mod results;
pub mod sample;
pub(crate) mod units;
pub(crate) mod write;
