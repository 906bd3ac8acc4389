//! A `measure` cell's record: the command, how it was run and checked,
//! every process seen, and its figures. `external` fills it.

use serde::{Deserialize, Serialize};

use super::{Bytes, Fraction, Millis, ProcessRole};

/// The workload name of every `measure` cell.
pub const WORKLOAD: &str = "measure";

/// The `measure` part of a cell.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct MeasureRecord {
    /// The command as given after `--`.
    pub command: Vec<String>,
    /// How readiness was decided: `port 8080` or `after 1 s`.
    pub ready: String,
    /// Time from the start of the command to ready.
    pub ready_ms: Option<Millis>,
    /// The load command's words, when there was one.
    pub load: Option<Vec<String>>,
    /// How the load command ended (`exited with status 0`, `killed by
    /// SIGKILL`), when it ran.
    pub load_status: Option<String>,
    /// Why the load command failed, when it did; the measurement stands.
    pub load_error: Option<String>,
    /// The last lines of the load command's stdout, then of its stderr.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_output_tail: Vec<String>,
    /// Why no requests per second were read from the load command's
    /// output (not recognised, or `--load-metric` matched nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_note: Option<String>,
    /// Seconds measured instead of a load command.
    pub duration_s: Option<f64>,
    /// Seconds measured after the load, idle.
    pub idle_s: f64,
    /// What was checked to know the variant was in effect, and what could
    /// not be checked.
    pub checks: Vec<String>,
    /// How the command ended when stopped (`killed by SIGTERM`, `exited with
    /// status 0 after SIGTERM`, `killed by SIGKILL after the 5 s grace`).
    pub stop: Option<String>,
    /// Every process seen in the tree, in the order first seen.
    pub processes: Vec<MeasuredProcess>,
    /// Present when the row finished.
    pub metrics: Option<MeasureMetrics>,
    /// Ctrl-C or SIGTERM cut this row short: it is not a result.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// On the interrupted row: the rows that did not run, as `variant` or
    /// `variant (repetition N)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_run: Vec<String>,
}

impl MeasureRecord {
    /// Whether the load command (or the measured duration) began: it starts
    /// once the command is ready and its variant verified, and a verified
    /// variant always has its `checks`.
    pub fn load_began(&self) -> bool {
        self.ready_ms.is_some() && !self.checks.is_empty()
    }
}

/// One process of the measured tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct MeasuredProcess {
    pub pid: i32,
    /// The parent when first seen; absent for the root.
    pub parent: Option<i32>,
    /// 0 for the root, 1 for its children, 2 for theirs, ….
    pub depth: u32,
    /// By the tree's structure, at the last walk that saw it: `master` (it
    /// forks the workers), `worker` (below the master), `launcher` (above
    /// it), `other` (beside it), or `ignored` (`--ignore-process`).
    pub role: ProcessRole,
    /// Order of discovery among the descendants (a re-forked worker gets a
    /// new index); absent for the root.
    pub index: Option<u32>,
    /// Its name (`/proc/PID/comm`) when last seen.
    pub command: String,
    pub first_seen_ms: Millis,
    pub last_seen_ms: Millis,
    /// Ended before the measurement did.
    pub gone: bool,
    /// When its copy-on-write baseline (its parent's memory) was taken.
    pub cow_baseline_ms: Option<Millis>,
    /// Why it has no copy-on-write figures (it runs another program, or its
    /// parent's pagemap could not be read).
    pub cow_missed: Option<String>,
    /// When its memory was first read (within one timeline period of its
    /// start, when the timeline is on), and its `Private_Dirty` then.
    pub first_sample_ms: Option<Millis>,
    pub private_dirty_first: Option<Bytes>,
    /// Re-parented to allocbench (a subreaper) before it was first seen:
    /// its parent had ended, as a daemon's double fork leaves it; `parent`
    /// is then allocbench's pid, and it has no copy-on-write figures.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    /// The variant's check of its program (`in effect: …`, `not in
    /// effect: …`, `not checked: …`), as last checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

/// The most `Private_Dirty` a descendant's first sample may show for its
/// fork to count as seen: a child that has only returned from `fork` has
/// dirtied a few pages of stack and of libc's data (64 pages).
pub const FORK_SEEN_PRIVATE_DIRTY: Bytes = 64 * 4096;

/// Figures of a measured command (definitions in `docs/measure.md`, How
/// it works: Figures). Phases:
/// `started` (ready), `loaded` (end of the load), `idle` (end of the idle
/// period). A figure that does not apply or cannot be computed is `null`,
/// never 0; a phase whose sample missed a live process has no tree figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct MeasureMetrics {
    pub processes_started: Option<u32>,
    pub processes_loaded: Option<u32>,
    pub processes_idle: Option<u32>,
    /// Distinct processes seen in the tree over the whole run.
    pub processes_seen: u32,
    /// Of those, how many ended before the measurement did.
    pub processes_gone: u32,
    pub tree_pss_started: Option<Bytes>,
    pub tree_pss_anon_started: Option<Bytes>,
    pub tree_pss_loaded: Option<Bytes>,
    pub tree_pss_anon_loaded: Option<Bytes>,
    pub tree_uss_loaded: Option<Bytes>,
    pub tree_rss_loaded: Option<Bytes>,
    pub tree_pss_idle: Option<Bytes>,
    pub tree_pss_anon_idle: Option<Bytes>,
    /// Σ descendants' `Private_Dirty` at `loaded`: a level, whenever each
    /// was first seen.
    pub worker_private_dirty_loaded: Option<Bytes>,
    /// Σ descendants' `Private_Dirty` at `idle` (absent in documents from
    /// before the figure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_private_dirty_idle: Option<Bytes>,
    /// Σ, over the descendants at `loaded` whose fork was seen (their first
    /// sample found at most `FORK_SEEN_PRIVATE_DIRTY` of `Private_Dirty`:
    /// they had not run yet, as far as memory shows), of their
    /// `Private_Dirty` growth since that sample: their growth since the
    /// fork. `null` when no fork was seen.
    pub worker_private_dirty_growth: Option<i64>,
    /// Σ descendants' inherited bytes copied since they were first seen
    /// (their own copies of their parent's pages), at `loaded` and at `idle`.
    pub cow_copied_loaded: Option<Bytes>,
    pub cow_shared_loaded: Option<Bytes>,
    pub cow_copied_idle: Option<Bytes>,
    /// Share of the tree's growth of anonymous memory less `LazyFree`
    /// between `started` and `loaded` that is given back by `idle`;
    /// computed for a growth of 1 MiB or more.
    pub returned_idle: Option<Fraction>,
    /// Share of that growth that went to `LazyFree` after `loaded` and is
    /// still resident at `idle` (counted in `returned_idle`).
    pub returned_lazyfree_idle: Option<Fraction>,
    /// The load command's requests per second, read from its output
    /// (`load_tool` says how).
    pub load_rps: Option<f64>,
    /// The tree's USS at `started` and at `idle` (`tree_uss_loaded` above).
    #[serde(default)]
    pub tree_uss_started: Option<Bytes>,
    #[serde(default)]
    pub tree_uss_idle: Option<Bytes>,
    /// Mean and largest USS of the server's workers at `loaded`.
    #[serde(default)]
    pub worker_uss_loaded_mean: Option<Bytes>,
    #[serde(default)]
    pub worker_uss_loaded_max: Option<Bytes>,
    /// Share of the workers' inherited pages still shared with their
    /// parent at `loaded`: Σ `cow_shared` / Σ (`cow_shared` + `cow_copied`).
    #[serde(default)]
    pub cow_efficiency_loaded: Option<Fraction>,
    /// The load command's latency percentiles in milliseconds, when its
    /// output gives them.
    #[serde(default)]
    pub load_latency_p50_ms: Option<f64>,
    #[serde(default)]
    pub load_latency_p99_ms: Option<f64>,
    /// Which load tool's output the figures were read from (`wrk`, `oha`,
    /// `hey`, `ab`, `k6`, or `--load-metric`).
    #[serde(default)]
    pub load_tool: Option<String>,
    /// The tree's `AnonHugePages` at `loaded` and at `idle`: anonymous
    /// memory on transparent huge pages, part of the PSS figures (absent in
    /// documents from before the figure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_anon_huge_loaded: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_anon_huge_idle: Option<Bytes>,
}
