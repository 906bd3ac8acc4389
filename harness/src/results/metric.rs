//! The metric registry: every figure derived from a finished cell, defined
//! once. Its key (the name in JSON summaries, CSV headers and `--format csv`
//! of `report`), its heading in tables, its unit and how it is printed,
//! which way is better, a one-line definition, and how to read it from a
//! cell's [`Metrics`]. The CSV export, the tables of `compare`, `run`'s
//! detail, the report, the statistics over repetitions and `docs/metrics.md`
//! all read it, so a figure is spelled in one place.
//!
//! Adding a metric: a field of [`Metrics`] (`results/mod.rs`) computed in
//! `analysis/metrics.rs`, a [`MetricId`] and its [`Def`] here, and a
//! known-answer test (docs/contributing.md, "A metric").
//! Then run `UPDATE_DOCS=1 cargo test -p allocbench --lib metric` to
//! regenerate `docs/metrics.md`.

use crate::results::{GrowthVerdict, Metrics};
use crate::units::{mib, micros, pct, per_1k, rate, signed_mib, verdict};

/// What a metric's number is, which says how it is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes, printed as MiB: `61.2 MiB`.
    Bytes,
    /// A signed change in bytes: `+12.0 MiB`.
    SignedBytes,
    /// A share, 0–1 (above 1 where the definition says so): `75%`.
    Share,
    /// A dimensionless ratio: `2.16`.
    Ratio,
    /// A whole number: `3`.
    Count,
    /// Requests per second: `12,345`.
    Rate,
    /// Microseconds: `87.3 µs`.
    Micros,
    /// Bytes per 1,000 requests: `+23.0 KiB/1k`.
    BytesPer1k,
    /// 1 for a cell judged growing, 0 for a plateau; over repetitions the
    /// median, printed as the majority's verdict: `plateau`, `growing` or
    /// `mixed`.
    Verdict,
}

impl Unit {
    /// `v` as a table shows it.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Bytes => mib(v.max(0.0) as u64),
            Unit::SignedBytes => signed_mib(v as i64),
            Unit::Share => pct(v),
            Unit::Ratio => format!("{v:.2}"),
            Unit::Count => format!("{v:.0}"),
            Unit::Rate => rate(v),
            Unit::Micros => micros(v),
            Unit::BytesPer1k => per_1k(v),
            Unit::Verdict => verdict(v),
        }
    }

    /// The unit's name in `docs/metrics.md`.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::SignedBytes => "bytes (signed)",
            Unit::Share => "share (0–1)",
            Unit::Ratio => "ratio",
            Unit::Count => "count",
            Unit::Rate => "requests/s",
            Unit::Micros => "µs",
            Unit::BytesPer1k => "bytes per 1,000 requests",
            Unit::Verdict => "1 growing, 0 plateau",
        }
    }
}

/// Which way a metric is better, if either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
    /// Neither: a fact about the run (a count, a verdict).
    Neither,
}

/// One metric's definition.
#[derive(Debug)]
pub struct Def {
    pub id: MetricId,
    /// The name in JSON summaries and CSV headers: a contract, never renamed.
    pub key: &'static str,
    /// The heading in tables.
    pub label: &'static str,
    pub unit: Unit,
    pub better: Better,
    /// One line: what it counts, from which reading.
    pub definition: &'static str,
    /// The value in a finished cell; `None` where it could not be computed.
    pub get: fn(&Metrics) -> Option<f64>,
    /// A column of `--format csv` (one row per cell).
    pub csv: bool,
    /// Summarised over repetitions (median, spread, ratio to the baseline).
    pub summary: bool,
}

macro_rules! registry {
    ($($id:ident => $def:expr,)*) => {
        /// Every metric derived from a finished cell.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum MetricId {
            $($id,)*
        }

        impl MetricId {
            /// Every metric, in registry order (the CSV's column order).
            pub const ALL: &[MetricId] = &[$(MetricId::$id,)*];
        }

        /// The definitions, indexed by `MetricId as usize`.
        static REGISTRY: &[Def] = &[$({
            let d: Def = $def;
            Def { id: MetricId::$id, ..d }
        },)*];
    };
}

/// A definition with the defaults most entries share: a CSV column and
/// summarised over repetitions. (`id` is set by the registry.)
const fn def(
    key: &'static str,
    label: &'static str,
    unit: Unit,
    better: Better,
    definition: &'static str,
    get: fn(&Metrics) -> Option<f64>,
) -> Def {
    Def {
        id: MetricId::Arenas,
        key,
        label,
        unit,
        better,
        definition,
        get,
        csv: true,
        summary: true,
    }
}

const fn only(mut d: Def, csv: bool, summary: bool) -> Def {
    d.csv = csv;
    d.summary = summary;
    d
}

use Better::{Higher, Lower, Neither};
use Unit::*;

registry! {
    Arenas => def(
        "arenas", "arenas", Count, Neither,
        "Largest arena count a worker reported after its threads ran (glibc: the `<heap nr=` elements of `malloc_info`; jemalloc: `arenas.narenas`, which counts jemalloc 5.3's dedicated huge-allocation arena; absent for others).",
        |m| m.arenas.map(f64::from),
    ),
    TreePssSteady => def(
        "tree_pss_steady", "PSS steady", Bytes, Lower,
        "`Pss` summed over master and workers at `steady` (file-backed pages included: they depend on who else runs the same executable).",
        |m| Some(m.tree_pss_steady as f64),
    ),
    TreePssAnonSteady => def(
        "tree_pss_anon_steady", "PSS anon steady", Bytes, Lower,
        "`Pss_Anon` summed over master and workers at `steady`: the RAM the tree's anonymous memory costs, shared pages divided among their sharers.",
        |m| Some(m.tree_pss_anon_steady as f64),
    ),
    TreePssAnonMean => def(
        "tree_pss_anon_mean", "PSS mean", Bytes, Lower,
        "`Pss_Anon` summed over the tree (master, workers, molds) and averaged over the serving phase's time: trapezoids between the timeline's walked points from the fork to `steady`. The RAM a server pays for on average, restarts included.",
        |m| m.tree_pss_anon_mean.map(|v| v as f64),
    ),
    TreePssAnonPeak => def(
        "tree_pss_anon_peak", "PSS peak", Bytes, Lower,
        "The largest tree `Pss_Anon` of the serving phase's walked timeline points (a peak between two points is not seen).",
        |m| m.tree_pss_anon_peak.map(|v| v as f64),
    ),
    Restarts => def(
        "restarts", "restarts", Count, Neither,
        "Workers that stopped serving before their slot's requests ran out under `--lifecycle` (retired on their quota, asked to by the memory check or a mold, or became the mold); 0 without a policy.",
        |m| Some(f64::from(m.restarts)),
    ),
    TreeUssSteady => def(
        "tree_uss_steady", "USS steady", Bytes, Lower,
        "`Private_Clean + Private_Dirty` summed over master and workers at `steady`: the memory that only one process maps.",
        |m| Some(m.tree_uss_steady as f64),
    ),
    TreeRssSteady => only(def(
        "tree_rss_steady", "RSS steady", Bytes, Lower,
        "`Rss` summed over master and workers at `steady`; for contrast only: it counts a shared page once per process.",
        |m| Some(m.tree_rss_steady as f64),
    ), true, false),
    TreePssAnonTrimmed => def(
        "tree_pss_anon_trimmed", "PSS anon trimmed", Bytes, Lower,
        "`Pss_Anon` summed over master and workers at `trimmed`, after each serving process called its allocator's release (`malloc_trim(0)`, jemalloc `arena.<all>.purge`, `mi_collect(true)`, tcmalloc `MallocExtension_ReleaseFreeMemory()`).",
        |m| Some(m.tree_pss_anon_trimmed as f64),
    ),
    WorkerPrivateDirtyGrowth => def(
        "worker_private_dirty_growth", "worker priv dirty", SignedBytes, Lower,
        "Sum over workers of `Private_Dirty` at `steady` less at `forked`.",
        |m| Some(m.worker_private_dirty_growth as f64),
    ),
    CowEfficiency => def(
        "cow_efficiency", "CoW efficiency", Share, Higher,
        "Mean over workers of `Shared_Clean + Shared_Dirty` at `steady` divided by the master's `Rss` at `forked`.",
        |m| m.cow_efficiency,
    ),
    Fragmentation => def(
        "fragmentation", "frag", Ratio, Lower,
        "Growth of the serving processes' (the workers', or the master's when it does not fork) USS less `LazyFree` from `forked` to `steady`, divided by the bytes their caches hold live at `steady`: the private memory they hold, new pages and copies of inherited ones alike, per byte their requests keep live.",
        |m| m.fragmentation,
    ),
    ReturnedDrained => def(
        "returned_drained", "returned drained", Share, Higher,
        "Share of the tree's growth of `Pss_Anon` less `LazyFree` from `forked` to `steady` that is gone at `drained`: RAM given back (a page a worker drops while the master still maps it frees none; a page copied on write is growth, and given back when the copy goes). Pages freed with `MADV_FREE` count as given back; above 1 only when the tree ends below where it was at the fork; absent when the growth is under 1 MiB.",
        |m| m.returned.get("drained").copied(),
    ),
    ReturnedTrimmed => def(
        "returned_trimmed", "returned trimmed", Share, Higher,
        "The same share at `trimmed`, after the explicit release.",
        |m| m.returned.get("trimmed").copied(),
    ),
    AnonHugeSteady => def(
        "anon_huge_steady", "huge", Bytes, Neither,
        "`AnonHugePages` summed over master and workers at `steady`: anonymous memory on transparent huge pages (2 MiB each here). The kernel gives no proportional figure, so a huge page the workers share with the master counts once in each process that maps it, and the sum can exceed the tree's PSS. Tables show it when a variant has more than 1 MiB of it.",
        |m| m.anon_huge_steady.map(|v| v as f64),
    ),
    ThroughputRps => def(
        "throughput_rps", "req/s", Rate, Higher,
        "Requests of all workers per second of the slowest worker's serving.",
        |m| Some(m.throughput_rps),
    ),
    LatencyP50Us => def(
        "latency_p50_us", "p50", Micros, Lower,
        "Median time of one request (hdrhistogram over every worker and thread, 1 ns – 1 h at 1% resolution).",
        |m| Some(m.latency_p50_us),
    ),
    LatencyP99Us => def(
        "latency_p99_us", "p99", Micros, Lower,
        "99th percentile of the time of one request.",
        |m| Some(m.latency_p99_us),
    ),
    LatencyP999Us => def(
        "latency_p999_us", "p99.9", Micros, Lower,
        "99.9th percentile of the time of one request.",
        |m| Some(m.latency_p999_us),
    ),
    CowNewShared => only(def(
        "cow_new_shared", "shared new", Bytes, Higher,
        "Sum over workers at `steady` of the bytes of pages the master did not have at the fork that another process maps too (pagemap: present and not `PM_MMAP_EXCLUSIVE`): under `--lifecycle refork=…`, the mold's own new pages its workers still share (a page of the master's that the mold copied and handed down counts in `cow_shared` instead); about 0 for workers the master forks.",
        |m| m.cow_new_shared.map(|v| v as f64),
    ), false, true),
    CowCopied => only(def(
        "cow_copied", "CoW copied", Bytes, Lower,
        "Sum over workers at `steady` of the bytes of pages of the master's writable private mappings that were present in the master at the fork and are now present and exclusively mapped in the worker (`/proc/PID/pagemap`, `PM_MMAP_EXCLUSIVE`): copied since the fork, exact to the page.",
        |m| m.cow_copied.map(|v| v as f64),
    ), false, true),
    FragmentationStart => only(def(
        "fragmentation_start", "frag start", Ratio, Lower,
        "`fragmentation` at the first point of the serving phase's timeline.",
        |m| m.fragmentation_over_requests.first().map(|p| p.1),
    ), false, true),
    FragmentationEnd => only(def(
        "fragmentation_end", "frag end", Ratio, Lower,
        "`fragmentation` at the last point of the serving phase's timeline.",
        |m| m.fragmentation_over_requests.last().map(|p| p.1),
    ), false, true),
    GrowthBytesPer1kRequests => only(def(
        "growth_bytes_per_1k_requests", "growth", BytesPer1k, Lower,
        "Least-squares slope of tree `Pss_Anon` over requests in the second half of the serving phase (the timeline's points that walked the page tables).",
        |m| m.growth_bytes_per_1k_requests,
    ), false, true),
    // 1 for a repetition judged growing, 0 for a plateau: the median is the
    // majority's verdict.
    Growing => only(def(
        "growing", "verdict", Verdict, Neither,
        "1 when the growth slope adds more than 2% of the mean (and at least 1 MiB) over the second half of serving, 0 for a plateau; absent with fewer than 3 points; over repetitions, the majority's verdict.",
        |m| {
            m.growth_verdict
                .map(|v| if v == GrowthVerdict::Growing { 1.0 } else { 0.0 })
        },
    ), false, true),
    StaticLiveBytes => only(def(
        "static_live_bytes", "static live", Bytes, Neither,
        "Bytes the master holds live in its static objects after preloading.",
        |m| Some(m.static_live_bytes as f64),
    ), false, false),
    LiveBytesSteady => only(def(
        "live_bytes_steady", "live at steady", Bytes, Neither,
        "Bytes the workers' caches hold live at `steady`.",
        |m| Some(m.live_bytes_steady as f64),
    ), false, false),
    LatencyMaxUs => only(def(
        "latency_max_us", "max", Micros, Lower,
        "The longest request.",
        |m| Some(m.latency_max_us),
    ), false, false),
}

impl MetricId {
    /// The metric's definition.
    pub fn def(self) -> &'static Def {
        &REGISTRY[self as usize]
    }

    pub fn key(self) -> &'static str {
        self.def().key
    }

    pub fn label(self) -> &'static str {
        self.def().label
    }

    /// The value in a finished cell's metrics.
    pub fn get(self, m: &Metrics) -> Option<f64> {
        (self.def().get)(m)
    }

    /// `v` as a table shows it.
    pub fn format(self, v: f64) -> String {
        self.def().unit.format(v)
    }

    /// The value in `m` as a table shows it, `—` when absent.
    pub fn show(self, m: &Metrics) -> String {
        self.get(m)
            .map(|v| self.format(v))
            .unwrap_or_else(|| "—".into())
    }

    /// The metrics summarised over repetitions.
    pub fn summarised() -> impl Iterator<Item = MetricId> {
        Self::ALL.iter().copied().filter(|m| m.def().summary)
    }

    /// The metrics that are columns of `--format csv`, in column order.
    pub fn csv_columns() -> impl Iterator<Item = MetricId> {
        Self::ALL.iter().copied().filter(|m| m.def().csv)
    }
}

/// `docs/metrics.md`: the registry as a page.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Metrics\n\n\
         <!-- Generated from harness/src/results/metric.rs by \
         `UPDATE_DOCS=1 cargo test -p allocbench --lib metric`; do not edit. -->\n\n\
         Every figure allocbench derives from a finished cell of its own workload. \
         The key names it in JSON summaries (`summary[].metrics`), in `--format csv` \
         headers and in `report --format csv`; the heading names it in tables. \
         Memory figures come from `/proc/PID/smaps_rollup` (or `pagemap`) at the \
         phase boundary named.\n\n\
         | key | heading | unit | better | CSV | over repetitions | definition |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for d in REGISTRY {
        let better = match d.better {
            Better::Lower => "lower",
            Better::Higher => "higher",
            Better::Neither => "—",
        };
        let yes = |b: bool| if b { "yes" } else { "" };
        out.push_str(&format!(
            "| `{}` | {} | {} | {better} | {} | {} | {} |\n",
            d.key,
            d.label,
            d.unit.name(),
            yes(d.csv),
            yes(d.summary),
            d.definition
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_indexes_its_own_definition() {
        assert_eq!(MetricId::ALL.len(), REGISTRY.len());
        for (i, id) in MetricId::ALL.iter().enumerate() {
            assert_eq!(*id as usize, i);
            assert_eq!(id.def().id, *id);
        }
    }

    #[test]
    fn keys_and_labels_are_unique() {
        for (i, a) in REGISTRY.iter().enumerate() {
            for b in &REGISTRY[i + 1..] {
                assert_ne!(a.key, b.key);
                assert_ne!(a.label, b.label, "{} and {}", a.key, b.key);
            }
        }
    }

    #[test]
    fn values_print_in_their_units() {
        let m = Metrics {
            tree_pss_anon_steady: 64 << 20,
            worker_private_dirty_growth: -(1 << 19),
            cow_efficiency: Some(0.754),
            fragmentation: Some(2.164),
            throughput_rps: 1234567.4,
            latency_p99_us: 87.31,
            arenas: Some(3),
            growth_verdict: Some(GrowthVerdict::Growing),
            growth_bytes_per_1k_requests: Some(-2048.0),
            ..Metrics::default()
        };
        let shown = |id: MetricId| id.show(&m);
        assert_eq!(shown(MetricId::TreePssAnonSteady), "64.0 MiB");
        assert_eq!(shown(MetricId::WorkerPrivateDirtyGrowth), "-0.5 MiB");
        assert_eq!(shown(MetricId::CowEfficiency), "75%");
        assert_eq!(shown(MetricId::Fragmentation), "2.16");
        assert_eq!(shown(MetricId::ThroughputRps), "1,234,567");
        assert_eq!(shown(MetricId::LatencyP99Us), "87.3 µs");
        assert_eq!(shown(MetricId::Arenas), "3");
        assert_eq!(shown(MetricId::Growing), "growing");
        assert_eq!(shown(MetricId::GrowthBytesPer1kRequests), "-2.0 KiB/1k");
        // Absent values are a dash, never a zero.
        assert_eq!(shown(MetricId::CowCopied), "—");
        assert_eq!(shown(MetricId::ReturnedDrained), "—");
    }

    /// `docs/metrics.md` is what the registry says; `UPDATE_DOCS=1`
    /// rewrites it.
    #[test]
    fn docs_metrics_md_is_generated_from_the_registry() {
        crate::results::check_generated_doc("docs/metrics.md", &markdown(), "metric");
    }
}
