//! The arguments of the commands about a user's own server: `measure` (its
//! command under each variant) and `inspect` (its running processes).

use std::path::PathBuf;

use clap::Args;

use super::{
    ListFormat, MEASURE_TIMEOUT_DEFAULT_S, OUTPUT, OutputArgs, RUN_CONTROL, SAMPLE_BUDGET_DEFAULT,
    SAMPLE_HZ_DEFAULT, SAMPLING, VARIANTS,
};

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
