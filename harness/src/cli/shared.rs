//! The argument groups several commands flatten in: the workload and its
//! sampling (`WorkloadArgs`), where results go (`OutputArgs`), `--resume`
//! and `--shard`.

use std::path::PathBuf;

use clap::{ArgAction, Args};

use super::{
    Format, OUTPUT, RUN_CONTROL, SAMPLE_BUDGET_DEFAULT, SAMPLE_HZ_DEFAULT, SAMPLING,
    TIMEOUT_DEFAULT_S, VARIANTS, WORKLOAD,
};

/// Workload options shared by `run`, `compare`, `sweep` and `plan`.
/// `--processes` and `--threads` take one value; `sweep` and `plan` turn
/// them into lists (see `grid`).
#[derive(Debug, Clone, Args)]
pub struct WorkloadArgs {
    /// Workload preset (see `allocbench list`) [default: server].
    #[arg(long, help_heading = WORKLOAD)]
    pub workload: Option<String>,
    /// Small sizes for a run of a few seconds per variant.
    #[arg(long, help_heading = WORKLOAD)]
    pub quick: bool,
    /// TOML spec file whose keys override the preset (flags override both).
    #[arg(long, value_name = "FILE", help_heading = WORKLOAD)]
    pub spec: Option<PathBuf>,
    /// Worker processes the master forks (0: no fork, the master serves)
    /// [default: the workload's].
    #[arg(long, value_name = "P", action = ArgAction::Set, value_parser = one_count, help_heading = WORKLOAD)]
    pub processes: Vec<u32>,
    /// Threads per serving process [default: the workload's].
    #[arg(long, value_name = "T", action = ArgAction::Set, value_parser = one_count, help_heading = WORKLOAD)]
    pub threads: Vec<u32>,
    /// Requests each worker serves [default: the workload's].
    #[arg(long, value_name = "N", help_heading = WORKLOAD)]
    pub requests: Option<u64>,
    /// Static memory the master preloads, in MiB [default: the workload's].
    #[arg(long, value_name = "MIB", help_heading = WORKLOAD)]
    pub static_mib: Option<u64>,
    /// Seed of every random choice [default: the workload's].
    #[arg(long, value_name = "S", help_heading = WORKLOAD)]
    pub seed: Option<u64>,
    /// A global interpreter lock: a request holds it while it computes and
    /// allocates, and releases it while it waits on I/O (see --io-wait-share).
    #[arg(long, help_heading = WORKLOAD)]
    pub gvl: bool,
    /// Share of a request's time spent waiting on I/O (sleeping, outside the
    /// GVL), 0–0.95 [default: the workload's].
    #[arg(long, value_name = "SHARE", help_heading = WORKLOAD)]
    pub io_wait_share: Option<f64>,
    /// Workers make no writes into the master's static objects, so every
    /// page copied after the fork is the allocator's doing.
    #[arg(long, help_heading = WORKLOAD)]
    pub no_app_writes: bool,
    /// Pin the cell's processes to the first N CPUs (sched_setaffinity), as a
    /// container with an N-CPU limit on a larger host [default: not pinned].
    #[arg(long, value_name = "N", help_heading = WORKLOAD)]
    pub cpus: Option<usize>,
    /// Idle samples, in seconds after `drained` (the workers' last request),
    /// increasing; the cell stays idle until the last [default: 0,0.1,1,10,30;
    /// with --quick: 0,0.1,1].
    #[arg(long, value_name = "S,…", value_delimiter = ',', help_heading = SAMPLING)]
    pub idle: Option<Vec<f64>>,
    /// Requests per second each serving process serves through the idle
    /// window, each freeing all it allocates: a quiet server's trickle of
    /// traffic, on which allocators that give memory back only when called
    /// do so (0–1000) [default: 0, none].
    #[arg(long, value_name = "RPS", help_heading = SAMPLING)]
    pub idle_trickle: Option<f64>,
    /// Timeline samples per second of every process of the tree (0: off).
    #[arg(long, value_name = "HZ", default_value_t = SAMPLE_HZ_DEFAULT, help_heading = SAMPLING)]
    pub sample_hz: f64,
    /// The most of one CPU, in percent, the timeline's page-table walks may
    /// use (smaps_rollup: PSS, USS, LazyFree; pagemap: copied pages); the
    /// points between read RSS and anonymous memory from the kernel's
    /// counters. 100: every point walks.
    #[arg(long, value_name = "PERCENT", default_value_t = SAMPLE_BUDGET_DEFAULT, help_heading = SAMPLING)]
    pub sample_budget: f64,
    /// Turn the timeline's timer off and on in windows of SECONDS while
    /// serving (on, off, off, on, …) and record the requests served in each:
    /// what sampling costs the workload, within one run.
    #[arg(long, value_name = "SECONDS", help_heading = SAMPLING)]
    pub sample_toggle: Option<f64>,
    /// Seconds any one phase may take before the cell fails as hung.
    #[arg(long, value_name = "SECONDS", default_value_t = TIMEOUT_DEFAULT_S, help_heading = RUN_CONTROL)]
    pub timeout: f64,
    /// Run even if the sizes exceed the memory available.
    #[arg(long, help_heading = RUN_CONTROL)]
    pub force: bool,
    /// TOML file of user-defined variants ([variants.NAME] with base and env).
    #[arg(long, value_name = "FILE", help_heading = VARIANTS)]
    pub variants_file: Option<PathBuf>,
}

/// A count of `--processes` or `--threads` where the command takes one.
fn one_count(s: &str) -> Result<u32, String> {
    if s.contains(',') {
        return Err("takes one value here; use sweep for a grid".into());
    }
    s.parse()
        .map_err(|e: std::num::ParseIntError| e.to_string())
}

/// Makes a one-value flag of [`WorkloadArgs`] (`--processes`, `--threads`)
/// the list of a grid (`sweep`, `plan`): comma-separated, or the flag
/// repeated.
pub(super) fn grid(arg: clap::Arg, value_name: &'static str, help: &'static str) -> clap::Arg {
    arg.value_delimiter(',')
        .action(ArgAction::Append)
        .value_name(value_name)
        .help(help)
}

/// How results are written: `run`, `compare`, `sweep` and `measure`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Aligned columns for a terminal, Markdown tables, comma-separated raw
    /// numbers (bytes, fractions), or the full result document (what
    /// `report` reads).
    #[arg(long, value_enum, default_value_t = Format::Table, help_heading = OUTPUT)]
    pub format: Format,
    /// Write the output here (rewritten after every cell) instead of stdout.
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    pub output: Option<PathBuf>,
    /// Also write the result document (JSON, what `report` reads) here,
    /// rewritten after every cell, whatever --format prints.
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    pub json: Option<PathBuf>,
    /// Write SVG charts (memory over time, memory given back, growth, CoW)
    /// into this directory; Markdown output links them.
    #[arg(long, value_name = "DIR", help_heading = OUTPUT)]
    pub plot: Option<PathBuf>,
}

/// `--resume`, for the commands whose cells can be resumed.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Keep the finished cells already in --output (a JSON document of an
    /// earlier, interrupted run of the same command) and run only the rest.
    #[arg(long, help_heading = OUTPUT)]
    pub resume: bool,
}

/// `--shard` and `--dry-run`: the commands whose cells can be split over
/// machines (`compare`, `sweep`).
#[derive(Debug, Args)]
pub struct ShardArgs {
    /// Run only shard K of N (K counts from 0): N machines given the same
    /// command line and K = 0…N−1 run every cell exactly once, each
    /// comparison (configuration × hook × repetition, every variant) whole
    /// on one machine. `allocbench merge` joins their documents.
    #[arg(long, value_name = "K/N", help_heading = RUN_CONTROL)]
    pub shard: Option<String>,
    /// Print the cells this command (with --shard, this shard) would run,
    /// then exit without running them.
    #[arg(long, help_heading = RUN_CONTROL)]
    pub dry_run: bool,
}
