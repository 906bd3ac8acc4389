//! Command-line interface. Spellings here are a contract: scripts use them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "allocbench",
    version,
    about = "Measure allocators and their settings on preforking server workloads",
    long_about = "allocbench runs fork-then-allocate server workloads under allocator variants \
                  (glibc and its tunables, built-in jemalloc and mimalloc, any LD_PRELOAD .so) \
                  and measures RSS, PSS, USS, copy-on-write, fragmentation, memory returned to \
                  the OS, throughput and latency, per process and summed over the process tree."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List workloads and allocator variants, and which variants can run here.
    List(ListArgs),
    /// Run one workload under one variant and print its per-phase detail.
    // A negative number is a value, so its error names the flag.
    #[command(allow_negative_numbers = true)]
    Run(RunArgs),
    /// Run a workload under each variant and print a comparison table.
    // A negative number is a value, so its error names the flag.
    #[command(allow_negative_numbers = true)]
    Compare(CompareArgs),
    /// Run a processes × threads grid for each variant and fit the memory
    /// model `a + P·b + P·T·c` to it.
    // A negative number is a value, so its error names the flag.
    #[command(allow_negative_numbers = true)]
    Sweep(SweepArgs),
    /// Recommend processes × threads × variant for a memory budget, from a
    /// sweep's results or a quick sweep.
    // A negative number is a value, so its error names the flag.
    #[command(allow_negative_numbers = true)]
    Plan(PlanArgs),
    /// Render result files (JSON documents) into a report.
    Report(ReportArgs),
    /// Run your own command (a preforking server) under each variant and
    /// measure its whole process tree: `allocbench measure [options] -- CMD ARGS…`
    // A negative number is a value, so its error names the flag.
    #[command(allow_negative_numbers = true)]
    Measure(MeasureArgs),
    /// Internal: the process a cell runs in (spawned by the harness).
    #[command(name = "__worker", hide = true)]
    Worker(WorkerArgs),
    /// Internal: kills a measured command's processes if allocbench dies
    /// (spawned by `measure`; instructions on stdin).
    #[command(name = "__watchdog", hide = true)]
    Watchdog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// A Markdown table.
    Md,
    /// Comma-separated values with raw numbers (bytes, fractions).
    Csv,
    /// The full result document.
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// TOML file of user-defined variants ([variants.NAME] with base and env).
    #[arg(long, value_name = "FILE")]
    pub variants_file: Option<PathBuf>,
}

/// Workload options shared by `run` and `compare`.
#[derive(Debug, Clone, Args)]
pub struct WorkloadArgs {
    /// Workload preset (see `allocbench list`; default: server).
    #[arg(long)]
    pub workload: Option<String>,
    /// Small sizes for a run of a few seconds per variant.
    #[arg(long)]
    pub quick: bool,
    /// TOML spec file whose keys override the preset (flags override both).
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Worker processes the master forks (0: no fork, the master serves).
    /// `sweep` takes a list: 1,2,4.
    #[arg(long, value_name = "P", value_delimiter = ',')]
    pub processes: Vec<u32>,
    /// Threads per serving process. `sweep` takes a list: 1,2,4,8.
    #[arg(long, value_name = "T", value_delimiter = ',')]
    pub threads: Vec<u32>,
    /// Requests each worker serves.
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,
    /// Static memory the master preloads, in MiB.
    #[arg(long, value_name = "MIB")]
    pub static_mib: Option<u64>,
    /// Seed of every random choice.
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// A global interpreter lock: a request holds it while it computes and
    /// allocates, and releases it while it waits on I/O (see --io-wait-share).
    #[arg(long)]
    pub gvl: bool,
    /// Share of a request's time spent waiting on I/O (sleeping, outside the
    /// GVL), 0–0.95.
    #[arg(long, value_name = "SHARE")]
    pub io_wait_share: Option<f64>,
    /// Workers make no writes into the master's static objects, so every
    /// page copied after the fork is the allocator's doing.
    #[arg(long)]
    pub no_app_writes: bool,
    /// Pin the cell's processes to the first N CPUs (sched_setaffinity), as a
    /// container with an N-CPU limit on a larger host.
    #[arg(long, value_name = "N")]
    pub cpus: Option<usize>,
    /// Idle sample offsets after `drained`, in seconds (comma-separated).
    #[arg(long, value_name = "SECONDS,…", value_delimiter = ',')]
    pub idle: Option<Vec<f64>>,
    /// Timeline samples per second of every process of the tree (0: off).
    #[arg(long, value_name = "HZ")]
    pub sample_hz: Option<f64>,
    /// The most of one CPU, in percent, the timeline's page-table walks may
    /// use (smaps_rollup: PSS, USS, LazyFree; pagemap: copied pages); the
    /// points between read RSS and anonymous memory from the kernel's
    /// counters. 100: every point walks. Default 1.
    #[arg(long, value_name = "PERCENT")]
    pub sample_budget: Option<f64>,
    /// Turn the timeline's timer off and on in windows of SECONDS while
    /// serving (on, off, off, on, …) and record the requests served in each:
    /// what sampling costs the workload, within one run.
    #[arg(long, value_name = "SECONDS")]
    pub sample_toggle: Option<f64>,
    /// Seconds any one phase may take before the cell fails as hung.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Run even if the sizes exceed the memory available.
    #[arg(long)]
    pub force: bool,
    /// TOML file of user-defined variants ([variants.NAME] with base and env).
    #[arg(long, value_name = "FILE")]
    pub variants_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the output here (rewritten after every cell) instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Keep the finished cells already in --output (a JSON document of an
    /// earlier, interrupted run of the same command) and run only the rest.
    #[arg(long)]
    pub resume: bool,
    /// Write SVG charts (memory over time, memory given back, growth, CoW)
    /// into this directory; Markdown output links them.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// The variant: a preset, a name from --variants-file, or a path to a .so.
    #[arg(long)]
    pub variant: String,
    /// Pre-fork hook: none, trim, warmup or freeze.
    #[arg(long, value_name = "HOOK")]
    pub prefork: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Variants to compare, comma-separated: presets, names from
    /// --variants-file, or paths to .so files. Default: every preset
    /// available here.
    #[arg(long, value_name = "A,B,…")]
    pub variants: Option<String>,
    /// Pre-fork hooks to compare, comma-separated (none, trim, warmup,
    /// freeze): one row per variant and hook.
    #[arg(long, value_name = "HOOK,…")]
    pub prefork: Option<String>,
    /// Run every cell N times, interleaved across variants (A B C A B C), and
    /// report the median and spread of each metric.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: u32,
    /// Run every variant twice, with and without the application's writes
    /// into the master's static objects, to tell the allocator's copy-on-write
    /// from the application's.
    #[arg(long)]
    pub cow_attribution: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Variants to sweep, comma-separated (default: glibc, glibc-arena2,
    /// jemalloc, mimalloc).
    #[arg(long, value_name = "A,B,…")]
    pub variants: Option<String>,
    /// Run every cell N times, interleaved.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: u32,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// The memory budget for the whole process tree: 2GiB, 512MiB, 1.5G…
    #[arg(long, value_name = "SIZE")]
    pub memory: String,
    /// Variants to consider, comma-separated (default: those of the sweep).
    #[arg(long, value_name = "A,B,…")]
    pub variants: Option<String>,
    /// A sweep's result document to fit (default: run a quick sweep of
    /// processes 1,2,4 × threads 1,2,4 at --quick sizes now).
    #[arg(long, value_name = "SWEEP.json")]
    pub from: Option<PathBuf>,
    /// Run the recommended configuration with the sweep's spec and CPU
    /// pinning and print predicted against measured; exit 1 when the
    /// measured tree exceeds the budget.
    #[arg(long)]
    pub verify: bool,
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Md,
    Html,
    Csv,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Result documents written by `--format json`.
    #[arg(required = true, value_name = "FILE.json")]
    pub files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    /// Write the report here instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Write SVG charts of every group into this directory and link them
    /// (relative to the report's directory).
    // `--plots` was this flag's first spelling; scripts still use it.
    #[arg(long, value_name = "DIR", alias = "plots")]
    pub plot: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The harness's abstract socket.
    #[arg(long)]
    pub socket: String,
    /// The workload spec as JSON.
    #[arg(long)]
    pub spec_json: String,
}

#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// Variants to run the command under, comma-separated: presets, names
    /// from --variants-file, or paths to .so files. jemalloc and mimalloc
    /// bases come in through liballocbench_jemalloc.so / _mimalloc.so.
    /// Default: glibc, jemalloc, mimalloc.
    #[arg(long, value_name = "A,B,…")]
    pub variants: Option<String>,
    /// TOML file of user-defined variants ([variants.NAME] with base and env).
    #[arg(long, value_name = "FILE")]
    pub variants_file: Option<PathBuf>,
    /// Ready when a TCP connection to 127.0.0.1:PORT succeeds.
    #[arg(long, value_name = "PORT", conflicts_with = "ready_after")]
    pub ready: Option<u16>,
    /// Ready this many seconds after the start (default 1).
    #[arg(long, value_name = "S")]
    pub ready_after: Option<f64>,
    /// Load command run once the command is ready, split into words by
    /// shell rules (no shell runs it; write `sh -c '…'` for one), e.g.
    /// 'wrk -t2 -c8 -d10s http://127.0.0.1:8080/'.
    #[arg(long, value_name = "CMD")]
    pub load: Option<String>,
    /// Seconds to measure under no load command (default 10).
    #[arg(long, value_name = "S", conflicts_with = "load")]
    pub duration: Option<f64>,
    /// Seconds to keep measuring after the load (default 5).
    #[arg(long, value_name = "S")]
    pub idle: Option<f64>,
    /// Timeline samples per second of every process of the tree (0: off;
    /// default 10). New processes are found at each sample.
    #[arg(long, value_name = "HZ")]
    pub sample_hz: Option<f64>,
    /// Seconds the command may take to become ready, and the load command
    /// to finish (default 60).
    #[arg(long, value_name = "S")]
    pub timeout: Option<f64>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD ARGS")]
    pub command: Vec<String>,
}
