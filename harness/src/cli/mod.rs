//! Command-line interface. Spellings here are a contract: scripts use them.
//!
//! One spelling per idea across commands (`--plot DIR`, `--variants A,B,…`,
//! `--idle S,…`, `--format`), and one argument struct per command, so that a
//! command's `--help` lists only what it accepts: a list form appears only
//! where the command takes a list (`--processes 1,2,4` in `sweep` and `plan`).
//! Flags are grouped under the same headings everywhere.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

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
fn grid(arg: clap::Arg, value_name: &'static str, help: &'static str) -> clap::Arg {
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

#[derive(Debug, Args)]
#[command(after_help = after_help!(
    [
        "allocbench run --variant jemalloc --quick",
        "allocbench run --variant glibc-arena2 --prefork trim --quick --format md",
    ],
    cells
))]
pub struct RunArgs {
    /// The variant: a preset, a name from --variants-file, or a path to a .so.
    #[arg(long, help_heading = VARIANTS)]
    pub variant: String,
    /// Pre-fork hook: none, trim, warmup or freeze [default: the workload's].
    #[arg(long, value_name = "HOOK", help_heading = VARIANTS)]
    pub prefork: Option<String>,
    /// Worker lifecycle: none, requests=N[±J] (replace a worker after N
    /// requests), memory=SIZE[@INTERVAL] (replace one whose USS passes
    /// SIZE), refork=N[,N2…][/U] (after N requests a worker becomes the mold
    /// the others are re-forked from) [default: none].
    #[arg(long, value_name = "POLICY", help_heading = VARIANTS)]
    pub lifecycle: Option<String>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub resume: ResumeArgs,
}

#[derive(Debug, Args)]
#[command(after_help = after_help!(
    [
        "allocbench compare --workload server --quick",
        "allocbench compare --variants glibc,jemalloc --prefork none,trim --repeat 5 \\\n      --format json --output compare.json",
    ],
    cells
))]
pub struct CompareArgs {
    /// Variants to compare, comma-separated: presets, names from
    /// --variants-file, or paths to .so files [default: every preset
    /// available here].
    #[arg(long, value_name = "A,B,…", value_delimiter = ',', help_heading = VARIANTS)]
    pub variants: Vec<String>,
    /// Pre-fork hooks to compare, comma-separated (none, trim, warmup,
    /// freeze): one row per variant and hook [default: the workload's].
    #[arg(long, value_name = "HOOK,…", value_delimiter = ',', help_heading = VARIANTS)]
    pub prefork: Vec<String>,
    /// Worker lifecycles to compare, comma-separated: none, requests=N[±J],
    /// memory=SIZE[@INTERVAL], refork=N[,N2…][/U] (the numbers after
    /// refork= stay with it): one row per variant and policy [default: none].
    #[arg(long, value_name = "POLICY,…", help_heading = VARIANTS)]
    pub lifecycle: Vec<String>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Run every cell N times, interleaved across variants (A B C A B C), and
    /// report the median and spread of each metric.
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = RUN_CONTROL)]
    pub repeat: u32,
    /// Run every variant twice, with and without the application's writes
    /// into the master's static objects, to tell the allocator's copy-on-write
    /// from the application's.
    #[arg(long, help_heading = RUN_CONTROL)]
    pub cow_attribution: bool,
    #[command(flatten)]
    pub shard: ShardArgs,
    /// The terminal table with every column (Markdown and CSV always have
    /// every column).
    #[arg(long, help_heading = OUTPUT)]
    pub wide: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub resume: ResumeArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = after_help!(
        [
            "allocbench sweep --quick --processes 1,2,4 --threads 1,2,4,8",
            "allocbench sweep --variants glibc,jemalloc --format json --output sweep.json",
        ],
        cells
    ),
    mut_arg("processes", |a| grid(a, "P,…", "Worker processes of the grid, comma-separated (0: no fork, the master serves) [default: 1,2,4]")),
    mut_arg("threads", |a| grid(a, "T,…", "Threads per serving process of the grid, comma-separated [default: 1,2,4,8]"))
)]
pub struct SweepArgs {
    /// Variants to sweep, comma-separated [default: glibc, glibc-arena2,
    /// jemalloc, mimalloc].
    #[arg(long, value_name = "A,B,…", value_delimiter = ',', help_heading = VARIANTS)]
    pub variants: Vec<String>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Run every cell N times, interleaved.
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = RUN_CONTROL)]
    pub repeat: u32,
    #[command(flatten)]
    pub shard: ShardArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub resume: ResumeArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = after_help!(
        [
            "allocbench plan --memory 2GiB",
            "allocbench plan --memory 512MiB --from sweep.json --verify",
        ],
        [
            "0    a configuration fits (and, with --verify, measured within the budget)",
            "1    nothing fits the budget, or the --verify run failed or measured more than it",
            "2    bad input, refused before any work",
            "130  interrupted",
        ]
    ),
    mut_arg("processes", |a| grid(a, "P,…", "Worker processes of the quick sweep's grid, comma-separated (not with --from) [default: 1,2,4]")),
    mut_arg("threads", |a| grid(a, "T,…", "Threads per serving process of the quick sweep's grid, comma-separated (not with --from) [default: 1,2,4]")),
    mut_arg("idle", |a| a.help("Idle samples of the quick sweep, in seconds after `drained` (the workers' last request), increasing [default: 0]"))
)]
pub struct PlanArgs {
    /// The memory budget for the whole process tree: 2GiB, 512MiB, 1.5G…
    #[arg(long, value_name = "SIZE")]
    pub memory: String,
    /// A sweep's result document to fit [default: run a quick sweep of
    /// processes 1,2,4 × threads 1,2,4 at --quick sizes now].
    #[arg(long, value_name = "SWEEP.json")]
    pub from: Option<PathBuf>,
    /// Run the recommended configuration with the sweep's spec and CPU
    /// pinning and print predicted against measured; exit 1 when the
    /// measured tree exceeds the budget.
    #[arg(long)]
    pub verify: bool,
    /// Variants to consider, comma-separated [default: those of the sweep].
    #[arg(long, value_name = "A,B,…", value_delimiter = ',', help_heading = VARIANTS)]
    pub variants: Vec<String>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Aligned columns for a terminal, or the recommendation, the fits and
    /// the verification as JSON for programs.
    #[arg(long, value_enum, default_value_t = ListFormat::Table, help_heading = OUTPUT)]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
#[command(after_help = after_help!(
    [
        "allocbench report compare.json --format md --plot plots --output report.md",
        "allocbench report compare.json --format csv",
    ],
    [
        "0    written",
        "1    the charts or the report could not be written",
        "2    bad input (a file that is not a result document, an output that cannot be written)",
    ]
))]
pub struct ReportArgs {
    /// Result documents written by `--format json`.
    #[arg(required = true, value_name = "FILE.json")]
    pub files: Vec<PathBuf>,
    /// Markdown or one HTML page (both linking the charts of --plot), or
    /// comma-separated raw numbers (bytes, fractions).
    #[arg(long, value_enum, default_value_t = ReportFormat::Md, help_heading = OUTPUT)]
    pub format: ReportFormat,
    /// Write the report here instead of stdout.
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    pub output: Option<PathBuf>,
    /// Write SVG charts of every group into this directory and link them
    /// (relative to the report's directory).
    // `--plots` was this flag's first spelling; scripts still use it.
    #[arg(long, value_name = "DIR", alias = "plots", help_heading = OUTPUT)]
    pub plot: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = after_help!(
    [
        "allocbench merge server-0.json server-1.json server-2.json --output server.json",
        "allocbench merge big-*.json small-*.json --output all.json && allocbench report all.json",
    ],
    [
        "0    merged",
        "2    bad input: documents that differ (command, version, spec, variants), a shard missing",
    ]
))]
pub struct MergeArgs {
    /// Result documents of one command line: its shards (`--shard K/N`,
    /// every K present), or whole runs on several machines. Machines of the
    /// same shape (CPUs, memory, CPU model, kernel, glibc, THP,
    /// architecture, cgroup limits, allocator versions) pool their cells as
    /// more repetitions; other shapes stay apart.
    #[arg(required = true, value_name = "FILE.json")]
    pub files: Vec<PathBuf>,
    /// Write the merged document here instead of stdout.
    #[arg(long, value_name = "PATH", help_heading = OUTPUT)]
    pub output: Option<PathBuf>,
    /// Merge what is there: runs that did not finish their cells and
    /// partitions with a shard missing (their comparisons are then fewer
    /// on that machine shape).
    #[arg(long)]
    pub partial: bool,
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
#[command(after_help = after_help!(
    [
        "allocbench inspect 4242",
        "allocbench inspect --format json 4242 4300",
    ],
    [
        "0    every server process (master and workers) runs the same allocator with the same variables",
        "1    they disagree, or a server process's LD_PRELOAD did not take",
        "2    bad input: a PID that does not run",
    ]
))]
pub struct InspectArgs {
    /// Processes to inspect, each with its descendants (its server: the
    /// master is the process that forks the workers).
    #[arg(required = true, value_name = "PID", value_parser = clap::value_parser!(i32).range(1..))]
    pub pids: Vec<i32>,
    /// table: a table per tree; json: the whole inspection.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

/// Help heading of `measure`'s phases.
const COMMAND: &str = "Command phases";

#[derive(Debug, Args)]
#[command(after_help = after_help!(
    [
        "allocbench measure --ready-after 0.2 --duration 0.5 --idle 0.2 -- sleep 60",
        "allocbench measure --variants glibc,jemalloc --ready 8000 \\\n      --load 'wrk -t2 -c8 -d10s http://127.0.0.1:8000/' \\\n      -- gunicorn -w 4 -b 127.0.0.1:8000 --preload app:app",
    ],
    [
        "0    every variant's row ran",
        "1    a row failed, or its load command did (the other rows still ran)",
        "2    bad input, refused before any work",
        "130  interrupted: the command's processes are killed; finished rows are in the output",
    ]
))]
pub struct MeasureArgs {
    /// Variants to run the command under, comma-separated: presets, names
    /// from --variants-file, or paths to .so files. jemalloc, mimalloc and
    /// snmalloc bases come in through liballocbench_jemalloc.so /
    /// _mimalloc.so / _snmalloc.so [default: glibc, jemalloc, mimalloc,
    /// snmalloc].
    #[arg(long, value_name = "A,B,…", value_delimiter = ',', help_heading = VARIANTS)]
    pub variants: Vec<String>,
    /// TOML file of user-defined variants ([variants.NAME] with base and env).
    #[arg(long, value_name = "FILE", help_heading = VARIANTS)]
    pub variants_file: Option<PathBuf>,
    /// Ready when a TCP connection to 127.0.0.1:PORT succeeds.
    #[arg(long, value_name = "PORT", conflicts_with = "ready_after", help_heading = COMMAND)]
    pub ready: Option<u16>,
    /// Ready this many seconds after the start [default: 1].
    #[arg(long, value_name = "S", help_heading = COMMAND)]
    pub ready_after: Option<f64>,
    /// Load command run once the command is ready, split into words by
    /// shell rules (no shell runs it; write `sh -c '…'` for one), e.g.
    /// 'wrk -t2 -c8 -d10s http://127.0.0.1:8080/'.
    #[arg(long, value_name = "CMD", help_heading = COMMAND)]
    pub load: Option<String>,
    /// Processes of the command's tree that are not part of the server
    /// (a log shipper, a sidecar): a regex matched against each process's
    /// command line. They are measured but not required to run the
    /// variant (launchers above the master are recognised without it).
    #[arg(long, value_name = "REGEX", help_heading = COMMAND)]
    pub ignore_process: Option<String>,
    /// Reads requests per second from the load command's output with this
    /// regex: its group `rps`, or its first group, on the last line it
    /// matches (wrk, oha, hey, ab and k6 are read without it), e.g.
    /// 'Throughput: ([0-9.]+)'.
    #[arg(long, value_name = "REGEX", help_heading = COMMAND)]
    pub load_metric: Option<String>,
    /// Seconds to measure under no load command [default: 10].
    #[arg(long, value_name = "S", conflicts_with = "load", help_heading = COMMAND)]
    pub duration: Option<f64>,
    /// Idle samples, in seconds after the load (or --duration) ends,
    /// increasing; measuring goes on until the last, and the idle columns
    /// are read there.
    #[arg(long, value_name = "S,…", value_delimiter = ',', default_value = "5", help_heading = SAMPLING)]
    pub idle: Vec<f64>,
    /// Timeline samples per second of every process of the tree (0: off).
    /// New processes are found, and checked, at each sample.
    #[arg(long, value_name = "HZ", default_value_t = SAMPLE_HZ_DEFAULT, help_heading = SAMPLING)]
    pub sample_hz: f64,
    /// The most of one CPU, in percent, the timeline's page-table walks may
    /// use (smaps_rollup: PSS, USS; pagemap: copied pages); the points
    /// between read RSS and anonymous memory from the kernel's counters.
    /// The phase samples always walk. 100: every point walks.
    #[arg(long, value_name = "PERCENT", default_value_t = SAMPLE_BUDGET_DEFAULT, help_heading = SAMPLING)]
    pub sample_budget: f64,
    /// Seconds the command may take to become ready, and the load command
    /// to finish.
    #[arg(long, value_name = "S", default_value_t = MEASURE_TIMEOUT_DEFAULT_S, help_heading = RUN_CONTROL)]
    pub timeout: f64,
    /// Run every variant N times, interleaved across variants (A B A B), and
    /// show the median and spread of each figure, flagging a variant whose
    /// runs fall into separate states.
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = RUN_CONTROL)]
    pub repeat: u32,
    /// The terminal table with every column (Markdown and CSV always have
    /// every column).
    #[arg(long, help_heading = OUTPUT)]
    pub wide: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD ARGS")]
    pub command: Vec<String>,
}
