//! The arguments of the commands that read result documents: `report` and
//! `merge`.

use std::path::PathBuf;

use clap::Args;

use super::{OUTPUT, ReportFormat};

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
