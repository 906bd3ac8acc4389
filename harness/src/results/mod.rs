//! The result document: what a run writes as JSON and every exporter reads.
//! Field names are a contract (scripts read them); add fields, rename none.
//! All memory is in bytes; units are in the type names.

pub mod cow;
pub mod environment;
pub mod inspect;
mod lifecycle;
pub mod load;
pub mod measure;
pub mod metric;
pub mod model;
pub mod phase;
#[cfg(test)]
mod schema;

/// Checks that the committed doc at `path` (from the workspace root) is
/// `want`, what the code generates; `UPDATE_DOCS=1` rewrites it first.
/// `test` is the test filter that regenerates it, for the message.
#[cfg(test)]
fn check_generated_doc(path: &str, want: &str, test: &str) {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, want).unwrap();
    }
    let got = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        got == want,
        "{path} is not what the code generates: run \
         `UPDATE_DOCS=1 cargo test -p allocbench --lib {test}`"
    );
}
pub mod shard;
pub mod summary;
mod timeline;

pub use lifecycle::{Restart, arm};
pub use timeline::{MemSeries, ProcessSeries, Timeline, TimelinePhase, ToggleWindow};

use std::collections::BTreeMap;

use allocbench_allocators::{AllocatorIdentity, Variant};
use allocbench_workloads::{Lifecycle, PreforkHook, WorkloadSpec};
use serde::{Deserialize, Serialize};

use cow::CowSample;
use environment::Environment;
use phase::PhaseName;
use summary::SummaryRow;

/// Bytes of memory.
pub type Bytes = u64;
/// Milliseconds since the cell's master was spawned.
pub type Millis = f64;
/// Microseconds.
pub type Micros = f64;
/// A share, 0–1 unless stated otherwise.
pub type Fraction = f64;

/// The version of this document's layout; `report` refuses other versions.
pub const FORMAT_VERSION: u32 = 1;

/// A whole run: its environment and one entry per cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Document {
    pub allocbench_version: String,
    pub format_version: u32,
    /// The command line that produced the document.
    pub command: Vec<String>,
    pub environment: Environment,
    pub cells: Vec<CellResult>,
    /// Per variant (and hook, and write mode): each headline metric over the
    /// repetitions, with its ratio to the baseline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub summary: Vec<SummaryRow>,
    /// What the run cost the harness itself.
    #[serde(default)]
    pub harness: HarnessCost,
    /// The memory model fitted to a sweep, per variant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fits: Vec<model::Fit>,
    /// The variants of a sweep the model could not be fitted for, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unfitted: Vec<model::Unfitted>,
    /// The cells the command planned (its shard's, with `--shard`): fewer
    /// in `cells` means the run did not finish (interrupted, or killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_cells: Option<usize>,
    /// The part of the command's cells this document holds (`--shard K/N`);
    /// absent for a whole run and for a merged document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<shard::Shard>,
    /// A document `allocbench merge` wrote: the machine shapes its cells
    /// were measured on (each cell's `machine` indexes this list). Absent
    /// otherwise: every cell ran on `environment`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub machines: Vec<shard::MachineShape>,
}

impl Document {
    /// The environment cell `c` of this document ran on.
    pub fn environment_of(&self, c: &CellResult) -> &Environment {
        c.machine
            .and_then(|m| self.machines.get(m as usize))
            .map_or(&self.environment, |m| &m.environment)
    }
}

/// The harness process's own cost over the run (not its children's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct HarnessCost {
    /// Wall time of the whole run, in seconds.
    pub wall_s: f64,
    /// CPU time of the harness process (user + system), in seconds.
    pub cpu_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
}

/// One variant × workload × pre-fork hook × lifecycle × repetition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct CellResult {
    pub workload: String,
    pub variant: String,
    /// The variant's definition: base allocator and environment.
    pub variant_def: Variant,
    /// The environment the master was launched with (allocator variables only).
    pub launch_env: BTreeMap<String, String>,
    pub prefork: PreforkHook,
    /// The release call the master made before forking (`trim` hook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefork_call: Option<String>,
    /// How the master replaced workers while they served (`--lifecycle`, in
    /// its normalised spelling; `none` in documents from before).
    #[serde(default)]
    pub lifecycle: Lifecycle,
    pub repetition: u32,
    /// CPUs the cell's processes were pinned to (`--cpus`); absent when not
    /// pinned (they could use `environment.cpus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_pinned: Option<usize>,
    /// CPUs the master reported it may run on (its affinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_allowed: Option<u32>,
    /// glibc cells: the most arenas glibc gives one of the cell's
    /// processes, by the variant's setting or else the CPUs online
    /// (`analysis::arenas`); absent for other allocators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glibc_arena_limit: Option<u64>,
    /// glibc cells: the same if glibc counted the cgroup's CPU limit,
    /// rounded up, as its CPUs; absent without a cgroup CPU limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glibc_arena_limit_cgroup: Option<u64>,
    pub status: Status,
    /// Why the cell failed; `null` when it did not.
    pub error: Option<String>,
    /// The allocator the master reported, when it got that far.
    pub allocator: Option<AllocatorIdentity>,
    /// Every workload parameter; `null` for `measure` cells, which run the
    /// user's own command.
    pub spec: Option<WorkloadSpec>,
    /// Phase samples in the order they were taken.
    pub phases: Vec<PhaseSample>,
    /// Samples on a timer between the phase boundaries (and the workers a
    /// lifecycle policy replaced, kept with `--sample-hz 0` too).
    #[serde(default, skip_serializing_if = "Timeline::is_unused")]
    pub timeline: Timeline,
    /// Derived figures; present when the cell finished.
    pub metrics: Option<Metrics>,
    /// Wall time of the whole cell.
    pub wall_ms: Millis,
    /// The last lines the cell's processes wrote to stderr (for `measure`:
    /// to stdout and stderr).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stderr_tail: Vec<String>,
    /// `measure` cells: the command, how it was run and checked, every
    /// process seen, and the figures (`metrics` is `null` for them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<measure::MeasureRecord>,
    /// `measure` cells: the load command's summary line (wrk's
    /// `Requests/sec:` line, else the last non-empty line of its stdout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_summary: Option<String>,
    /// In a merged document: the index of the machine shape (in the
    /// document's `machines`) the cell ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<u32>,
}

impl CellResult {
    /// Whether the workload's requests wrote into the master's static
    /// objects (false for `measure` cells, which have no spec).
    pub fn app_writes(&self) -> bool {
        self.spec
            .as_ref()
            .is_some_and(|s| s.static_writes_per_request > 0)
    }
}

/// `/proc/PID/smaps_rollup` of one process, or a sum of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Mem {
    pub pss: Bytes,
    pub pss_anon: Bytes,
    pub pss_file: Bytes,
    pub rss: Bytes,
    /// Unique set size: `Private_Clean + Private_Dirty`.
    pub uss: Bytes,
    pub shared_clean: Bytes,
    pub shared_dirty: Bytes,
    pub private_clean: Bytes,
    pub private_dirty: Bytes,
    pub anonymous: Bytes,
    /// Pages freed with `MADV_FREE`, still resident until memory pressure.
    pub lazyfree: Bytes,
    pub anon_huge: Bytes,
    pub swap: Bytes,
}

impl Mem {
    /// Anonymous PSS less `LazyFree`: the RAM anonymous memory costs, a
    /// shared page divided among its sharers, without the pages freed with
    /// `MADV_FREE`. (The kernel lazy-frees only pages no other process
    /// maps, so `LazyFree` counts whole in `Pss_Anon` too.) The basis of
    /// `returned`.
    pub fn pss_anon_net(&self) -> i64 {
        self.pss_anon as i64 - self.lazyfree as i64
    }

    /// USS less `LazyFree`: the memory only this process maps and really
    /// holds, pages it copied on write included. The basis of
    /// `fragmentation`.
    pub fn uss_net(&self) -> i64 {
        self.uss as i64 - self.lazyfree as i64
    }

    pub fn shared(&self) -> Bytes {
        self.shared_clean + self.shared_dirty
    }

    pub fn add(&mut self, o: &Mem) {
        self.pss += o.pss;
        self.pss_anon += o.pss_anon;
        self.pss_file += o.pss_file;
        self.rss += o.rss;
        self.uss += o.uss;
        self.shared_clean += o.shared_clean;
        self.shared_dirty += o.shared_dirty;
        self.private_clean += o.private_clean;
        self.private_dirty += o.private_dirty;
        self.anonymous += o.anonymous;
        self.lazyfree += o.lazyfree;
        self.anon_huge += o.anon_huge;
        self.swap += o.swap;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ProcessRole {
    /// The synthetic workload's master; under `measure`, the process that
    /// forks the server's workers (at whatever depth).
    Master,
    /// A worker; under `measure`, any descendant of the master.
    Worker,
    /// `measure` only: a process above the master that only started it (a
    /// `sh -c` wrapper, `env`, a process manager).
    Launcher,
    /// `measure` only: a process of the tree outside the master's subtree
    /// (beside a launcher's master, e.g. `tee` in `server | tee log`).
    Other,
    /// `measure` only: matched by `--ignore-process`.
    Ignored,
    /// A worker that became the mold under `--lifecycle refork=…`: it serves
    /// no more and forks the workers that replace the others.
    Mold,
}

impl ProcessRole {
    pub fn name(self) -> &'static str {
        match self {
            ProcessRole::Master => "master",
            ProcessRole::Worker => "worker",
            ProcessRole::Launcher => "launcher",
            ProcessRole::Other => "other",
            ProcessRole::Ignored => "ignored",
            ProcessRole::Mold => "mold",
        }
    }
}

/// One process at one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct ProcessSample {
    pub pid: i32,
    pub role: ProcessRole,
    /// Worker index (0..P); absent for the master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// The memory figures; absent when the sample was missed.
    #[serde(flatten)]
    pub mem: Option<Mem>,
    /// Why the sample was missed (the process was gone, or /proc denied it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<String>,
    /// Copy-on-write state of a worker relative to the master at the fork
    /// (`cow_copied`, `cow_shared`, `cow_by_mapping`, …); absent for the
    /// master, before the fork, and when pagemap could not be read.
    #[serde(flatten)]
    pub cow: Option<CowSample>,
    /// Why the CoW figures are absent for a worker after the fork.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cow_missed: Option<String>,
}

/// Every process of the tree at one moment: a timeline point, or a phase
/// sample once named.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeSample {
    /// Requests the workers had served when the sample was taken.
    pub requests: u64,
    pub t_ms: Millis,
    /// Sum over the processes sampled.
    pub tree: Mem,
    pub processes: Vec<ProcessSample>,
}

impl TreeSample {
    /// The sample as the phase sample `name`.
    pub fn named(self, name: PhaseName) -> PhaseSample {
        PhaseSample {
            requests: self.requests,
            name,
            t_ms: self.t_ms,
            tree: self.tree,
            processes: self.processes,
        }
    }
}

/// Every process of the tree at one phase boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct PhaseSample {
    /// Requests the workers had served when the sample was taken.
    #[serde(default)]
    pub requests: u64,
    /// `started`, `preloaded`, `forked`, `steady`, `drained`,
    /// `idle+<seconds>s`, `trimmed` (`measure`: `started`, `loaded`,
    /// `idle+<seconds>s`).
    pub name: PhaseName,
    pub t_ms: Millis,
    /// Sum over the processes sampled.
    pub tree: Mem,
    pub processes: Vec<ProcessSample>,
}

impl PhaseSample {
    pub fn workers(&self) -> impl Iterator<Item = (&ProcessSample, &Mem)> {
        self.processes
            .iter()
            .filter(|p| p.role == ProcessRole::Worker)
            .filter_map(|p| p.mem.as_ref().map(|m| (p, m)))
    }

    pub fn master(&self) -> Option<&Mem> {
        self.processes
            .iter()
            .find(|p| p.role == ProcessRole::Master)
            .and_then(|p| p.mem.as_ref())
    }

    /// Sum over the workers sampled.
    pub fn workers_sum(&self) -> Mem {
        let mut m = Mem::default();
        for (_, w) in self.workers() {
            m.add(w);
        }
        m
    }
}

/// Figures derived from a finished cell's phases (definitions in
/// `docs/metrics.md`). Absent values could not be computed (for example a
/// zero denominator), never zero stand-ins.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Metrics {
    pub tree_pss_steady: Bytes,
    pub tree_pss_anon_steady: Bytes,
    pub tree_uss_steady: Bytes,
    pub tree_rss_steady: Bytes,
    pub tree_pss_trimmed: Bytes,
    pub tree_pss_anon_trimmed: Bytes,
    /// Master RSS at fork.
    pub master_rss_forked: Bytes,
    /// Static bytes the master holds live after preloading.
    pub static_live_bytes: Bytes,
    /// Sum over workers of `Private_Dirty` at steady less at fork.
    pub worker_private_dirty_growth: i64,
    /// Mean over workers of `Shared_Clean + Shared_Dirty` at steady divided
    /// by the master's RSS at fork.
    pub cow_efficiency: Option<Fraction>,
    /// Slope of tree anonymous PSS over requests in the second half of the
    /// serving phase (timeline), in bytes per 1,000 requests.
    pub growth_bytes_per_1k_requests: Option<f64>,
    /// `plateau` or `growing` (see `docs/metrics.md`; the threshold is in
    /// `analysis/metrics/timeline.rs`).
    pub growth_verdict: Option<GrowthVerdict>,
    /// Sum over workers at steady of inherited bytes copied since the fork
    /// (pagemap, exact to the page).
    pub cow_copied: Option<Bytes>,
    /// Sum over workers at steady of inherited bytes still shared.
    pub cow_shared: Option<Bytes>,
    /// Sum over workers at steady of their own new memory (see `cow_new`).
    pub cow_new: Option<Bytes>,
    /// Of `cow_new`, what another process maps too (see `cow_new_shared`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cow_new_shared: Option<Bytes>,
    /// Growth of the serving processes' USS less `LazyFree` from fork to
    /// steady (their private memory: new pages and copies of inherited
    /// ones), divided by the bytes their caches hold live at steady.
    pub fragmentation: Option<f64>,
    /// The same ratio while serving, from the timeline: (requests served,
    /// growth since the fork over the live bytes then), at most 16 points
    /// evenly spread; how resident memory follows live memory over time.
    #[serde(default)]
    pub fragmentation_over_requests: Vec<(u64, f64)>,
    /// Bytes the workers' caches hold live at steady.
    pub live_bytes_steady: Bytes,
    /// For `drained`, each `idle+<s>s` and `trimmed`: the share of the
    /// tree's growth of anonymous PSS less `LazyFree` from the fork to
    /// steady that is given back. Above 1 only when the tree ends below
    /// where it was at the fork.
    pub returned: BTreeMap<String, Fraction>,
    /// For the same phases: the share of the excess that went to `LazyFree`
    /// since steady (freed with `MADV_FREE`, reclaimed only under pressure)
    /// and is still resident; `returned` less this is what was unmapped.
    pub returned_lazyfree: BTreeMap<String, Fraction>,
    pub requests: u64,
    /// Requests the serving processes served through the idle window
    /// (`--idle-trickle`); absent without a trickle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_requests: Option<u64>,
    /// Requests of all workers per second of the slowest worker's serving.
    pub throughput_rps: f64,
    pub latency_p50_us: Micros,
    pub latency_p99_us: Micros,
    pub latency_p999_us: Micros,
    pub latency_max_us: Micros,
    /// Largest arena count a worker reported after its threads ran.
    pub arenas: Option<u32>,
    /// jemalloc: whether background threads were on in every serving process
    /// at steady (they do not survive fork unless turned on again).
    #[serde(default)]
    pub background_thread: Option<bool>,
    /// `AnonHugePages` summed over the tree at steady: anonymous memory on
    /// transparent huge pages (absent in documents from before the figure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anon_huge_steady: Option<Bytes>,
    /// Whether THP was disabled for the process tree (`PR_SET_THP_DISABLE`).
    #[serde(default)]
    pub thp_disabled: Option<bool>,
    /// Workers that stopped serving before their slot's requests ran out
    /// (`--lifecycle`; 0 without a policy or in documents from before).
    #[serde(default)]
    pub restarts: u32,
    /// Tree `Pss_Anon` averaged over the serving phase's time (the
    /// timeline's walked points, trapezoids between them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_pss_anon_mean: Option<Bytes>,
    /// The largest tree `Pss_Anon` of the serving phase's walked points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_pss_anon_peak: Option<Bytes>,
}

/// Whether tree memory still grows in the second half of serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum GrowthVerdict {
    /// The slope adds at most 2% of the mean (or under 1 MiB) over the
    /// second half.
    Plateau,
    /// The slope adds more than that.
    Growing,
}

impl GrowthVerdict {
    /// The verdict's name, as in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            GrowthVerdict::Plateau => "plateau",
            GrowthVerdict::Growing => "growing",
        }
    }
}

impl std::fmt::Display for GrowthVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Finished cells for unit tests: a forking cell of `variant` at
/// `processes` × `threads` whose `forked` phase has a master holding
/// `master` (all other figures zero), and `metrics`.
#[cfg(test)]
pub(crate) fn test_cell(
    variant: &str,
    processes: u32,
    threads: u32,
    repetition: u32,
    master: Mem,
    metrics: Metrics,
) -> CellResult {
    use allocbench_allocators::Base;
    CellResult {
        workload: "server".into(),
        variant: variant.into(),
        variant_def: Variant {
            name: variant.into(),
            base: Base::Glibc,
            env: BTreeMap::new(),
            description: String::new(),
            thp_disable: false,
            background_thread_in_workers: false,
        },
        launch_env: BTreeMap::new(),
        prefork: PreforkHook::None,
        prefork_call: None,
        lifecycle: Lifecycle::None,
        repetition,
        cpus_pinned: None,
        cpus_allowed: None,
        glibc_arena_limit: None,
        glibc_arena_limit_cgroup: None,
        status: Status::Ok,
        error: None,
        allocator: None,
        spec: Some(WorkloadSpec {
            processes,
            threads,
            ..WorkloadSpec::server()
        }),
        phases: vec![PhaseSample {
            requests: 0,
            name: allocbench_workloads::Phase::Forked.into(),
            t_ms: 0.0,
            tree: master,
            processes: vec![ProcessSample {
                pid: 1,
                role: ProcessRole::Master,
                index: None,
                mem: Some(master),
                missed: None,
                cow: None,
                cow_missed: None,
            }],
        }],
        timeline: Timeline::default(),
        metrics: Some(metrics),
        wall_ms: 0.0,
        stderr_tail: Vec::new(),
        measure: None,
        load_summary: None,
        machine: None,
    }
}
