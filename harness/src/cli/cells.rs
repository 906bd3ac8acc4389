//! The arguments of the commands that run cells: `run`, `compare`, `sweep`
//! and `plan`.

use std::path::PathBuf;

use clap::Args;

use super::shared::grid;
use super::{
    ListFormat, OUTPUT, OutputArgs, RUN_CONTROL, ResumeArgs, ShardArgs, VARIANTS, WorkloadArgs,
};

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
