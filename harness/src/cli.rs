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
    Run(RunArgs),
    /// Run a workload under each variant and print a comparison table.
    Compare(CompareArgs),
    /// Run your own command (a preforking server) under each variant and
    /// measure its whole process tree: `allocbench measure [options] -- CMD ARGS…`
    Measure(MeasureArgs),
    /// Internal: the process a cell runs in (spawned by the harness).
    #[command(name = "__worker", hide = true)]
    Worker(WorkerArgs),
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
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// Workload preset (see `allocbench list`).
    #[arg(long, default_value = "server")]
    pub workload: String,
    /// Small sizes for a run of a few seconds per variant.
    #[arg(long)]
    pub quick: bool,
    /// TOML spec file whose keys override the preset (flags override both).
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Worker processes the master forks.
    #[arg(long, value_name = "P")]
    pub processes: Option<u32>,
    /// Threads per worker.
    #[arg(long, value_name = "T")]
    pub threads: Option<u32>,
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
    #[command(flatten)]
    pub output: OutputArgs,
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
