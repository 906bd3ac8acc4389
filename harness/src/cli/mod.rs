//! Command-line interface. Spellings here are a contract: scripts use them.
//!
//! One spelling per idea across commands (`--plot DIR`, `--variants A,B,…`,
//! `--idle S,…`, `--format`), and one argument struct per command, so that a
//! command's `--help` lists only what it accepts: a list form appears only
//! where the command takes a list (`--processes 1,2,4` in `sweep` and `plan`).
//! Flags are grouped under the same headings everywhere.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default timeline sampling rate.
pub const SAMPLE_HZ_DEFAULT: f64 = 10.0;
/// Default share of one CPU, in percent, for the timeline's walks.
pub const SAMPLE_BUDGET_DEFAULT: f64 = 1.0;
/// Default per-phase timeout of a cell.
pub const TIMEOUT_DEFAULT_S: f64 = 600.0;
/// Default timeout of `measure`'s waits (ready, load).
pub const MEASURE_TIMEOUT_DEFAULT_S: f64 = 60.0;

/// Help headings, shared by every command.
const VARIANTS: &str = "Variants";
const WORKLOAD: &str = "Workload";
const SAMPLING: &str = "Sampling";
const RUN_CONTROL: &str = "Run control";
const OUTPUT: &str = "Output";

/// The text after a command's `--help`: its examples, then its exit codes
/// (`cells`: those of the commands that run cells). A macro, as clap takes a
/// `&'static str` and `concat!` only literals.
macro_rules! after_help {
    ([$($example:literal),+ $(,)?], [$($code:literal),+ $(,)?]) => {
        concat!(
            "Examples:\n",
            $("  ", $example, "\n",)+
            "\nExit codes:\n",
            $("  ", $code, "\n",)+
        )
    };
    // 130 is `interrupt::EXIT_INTERRUPTED`; the help test checks it.
    ([$($example:literal),+ $(,)?], cells) => {
        after_help!(
            [$($example),+],
            [
                "0    every cell ran",
                "1    a cell failed (the others still ran; the reason is in the output)",
                "2    bad input, refused before any work",
                "130  interrupted: every running cell is killed; finished cells are in the output",
            ]
        )
    };
}

// Each command's arguments, by the commands they serve; declared after
// `after_help!`, which they use.
mod cells;
mod documents;
mod measure;
mod shared;

pub use cells::{CompareArgs, PlanArgs, RunArgs, SweepArgs};
pub use documents::{MergeArgs, ReportArgs};
pub use measure::{InspectArgs, MeasureArgs};
pub use shared::{OutputArgs, ResumeArgs, ShardArgs, WorkloadArgs};

#[derive(Debug, Parser)]
#[command(
    name = "allocbench",
    version,
    about = "Measure allocators and their settings on preforking server workloads",
    long_about = "allocbench runs fork-then-allocate server workloads under allocator variants \
                  (glibc and its tunables, built-in jemalloc, mimalloc and snmalloc, any \
                  LD_PRELOAD .so) \
                  and measures RSS, PSS, USS, copy-on-write, fragmentation, memory returned to \
                  the OS, throughput and latency, per process and summed over the process tree.",
    after_help = after_help!(
        [
            "allocbench compare --workload server --quick",
            "allocbench measure --ready 8000 --load 'wrk -t2 -c8 -d10s http://127.0.0.1:8000/' \\\n      -- gunicorn -w 4 -b 127.0.0.1:8000 --preload app:app",
        ],
        [
            "0    done (every cell ran)",
            "1    a cell failed, or for plan: nothing fits the budget or --verify failed",
            "2    bad input (a usage error), refused before any work",
            "130  interrupted; finished cells are in the output",
        ]
    )
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
    /// Join result documents of one command run as shards (`--shard K/N`)
    /// or on several machines into one document.
    Merge(MergeArgs),
    /// Run your own command (a preforking server) under each variant and
    /// measure its whole process tree: `allocbench measure [options] -- CMD ARGS…`
    // A negative number is a value, so its error names the flag.
    #[command(allow_negative_numbers = true)]
    Measure(MeasureArgs),
    /// Which allocator serves malloc in a running process and each of its
    /// descendants, with their allocator variables, glibc arenas, PSS and
    /// USS: `allocbench inspect PID…`
    Inspect(InspectArgs),
    /// Internal: the process a cell runs in (spawned by the harness).
    #[command(name = "__worker", hide = true)]
    Worker(WorkerArgs),
    /// Internal: kills a measured command's processes if allocbench dies
    /// (spawned by `measure`; instructions on stdin).
    #[command(name = "__watchdog", hide = true)]
    Watchdog,
}

// The formats are described in each `--format`'s help, where clap lists
// them inline; a doc comment here would make clap print every command's
// `--help` in its long, spaced-out layout.

/// `--format` of `run`, `compare`, `sweep` and `measure`: the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Md,
    Csv,
    Json,
}

/// `--format` of `list` and `plan`: what they print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

/// `--format` of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Md,
    Html,
    Csv,
}

#[derive(Debug, Args)]
#[command(after_help = after_help!(
    [
        "allocbench list",
        "allocbench list --format json --variants-file my-variants.toml",
    ],
    [
        "0    listed",
        "2    bad input (an unreadable or malformed --variants-file)",
    ]
))]
pub struct ListArgs {
    /// Aligned columns for a terminal, or the same as JSON for programs.
    #[arg(long, value_enum, default_value_t = ListFormat::Table, help_heading = OUTPUT)]
    pub format: ListFormat,
    /// TOML file of user-defined variants ([variants.NAME] with base and env).
    #[arg(long, value_name = "FILE", help_heading = VARIANTS)]
    pub variants_file: Option<PathBuf>,
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
