//! What `measure`'s rows mean: per variant, each figure over the
//! repetitions (median and spread with [`Stat`], as `compare --repeat`
//! gives them), its ratio to the first variant paired by repetition, the
//! clusters its tree PSS falls into, and the verdict under the table (the
//! report's rule, [`least_within_best`]).

use std::collections::BTreeMap;

use super::choose::{WITHIN, least_within_best};
use super::stats::{clusters, paired_ratio};
use crate::results::measure::{MeasureMetrics, WORKLOAD};
use crate::results::summary::{Ratio, Stat};
use crate::results::{CellResult, Status};
use crate::units::{mib, pct, rate};

/// A figure of a measured command, as the table shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Figure {
    /// Σ PSS over the tree at `loaded`: what the decision rests on.
    TreePss,
    /// Σ USS over the tree at `loaded`.
    TreeUss,
    TreePssAnonStarted,
    TreePssAnonLoaded,
    TreePssAnonIdle,
    /// The tree's anonymous memory on transparent huge pages at `loaded`.
    AnonHugeLoaded,
    WorkerUssMean,
    WorkerUssMax,
    WorkerPrivateDirty,
    CowCopied,
    CowEfficiency,
    ReturnedIdle,
    Rps,
    LatencyP50,
    LatencyP99,
}

impl Figure {
    /// Every figure, in table order.
    pub const ALL: &[Figure] = &[
        Figure::TreePss,
        Figure::TreeUss,
        Figure::TreePssAnonStarted,
        Figure::TreePssAnonLoaded,
        Figure::TreePssAnonIdle,
        Figure::AnonHugeLoaded,
        Figure::WorkerUssMean,
        Figure::WorkerUssMax,
        Figure::WorkerPrivateDirty,
        Figure::CowCopied,
        Figure::CowEfficiency,
        Figure::ReturnedIdle,
        Figure::Rps,
        Figure::LatencyP50,
        Figure::LatencyP99,
    ];

    /// Its column heading.
    pub fn label(self) -> &'static str {
        match self {
            Figure::TreePss => "tree PSS",
            Figure::TreeUss => "tree USS",
            Figure::TreePssAnonStarted => "PSS anon ready",
            Figure::TreePssAnonLoaded => "PSS anon loaded",
            Figure::TreePssAnonIdle => "PSS anon idle",
            Figure::AnonHugeLoaded => "huge",
            Figure::WorkerUssMean => "worker USS mean",
            Figure::WorkerUssMax => "worker USS max",
            Figure::WorkerPrivateDirty => "worker priv loaded",
            Figure::CowCopied => "CoW copied",
            Figure::CowEfficiency => "CoW eff",
            Figure::ReturnedIdle => "returned",
            Figure::Rps => "req/s",
            Figure::LatencyP50 => "p50",
            Figure::LatencyP99 => "p99",
        }
    }

    /// Its key: the `measure.metrics` field it is read from.
    pub fn key(self) -> &'static str {
        match self {
            Figure::TreePss => "tree_pss_loaded",
            Figure::TreeUss => "tree_uss_loaded",
            Figure::TreePssAnonStarted => "tree_pss_anon_started",
            Figure::TreePssAnonLoaded => "tree_pss_anon_loaded",
            Figure::TreePssAnonIdle => "tree_pss_anon_idle",
            Figure::AnonHugeLoaded => "tree_anon_huge_loaded",
            Figure::WorkerUssMean => "worker_uss_loaded_mean",
            Figure::WorkerUssMax => "worker_uss_loaded_max",
            Figure::WorkerPrivateDirty => "worker_private_dirty_loaded",
            Figure::CowCopied => "cow_copied_loaded",
            Figure::CowEfficiency => "cow_efficiency_loaded",
            Figure::ReturnedIdle => "returned_idle",
            Figure::Rps => "load_rps",
            Figure::LatencyP50 => "load_latency_p50_ms",
            Figure::LatencyP99 => "load_latency_p99_ms",
        }
    }

    /// Whether it is shown with its ratio to the first variant: memory
    /// and throughput (not huge pages, often none in the first variant).
    pub fn has_ratio(self) -> bool {
        !matches!(
            self,
            Figure::AnonHugeLoaded
                | Figure::CowEfficiency
                | Figure::ReturnedIdle
                | Figure::LatencyP50
                | Figure::LatencyP99
        )
    }

    pub fn get(self, m: &MeasureMetrics) -> Option<f64> {
        let b = |v: Option<u64>| v.map(|v| v as f64);
        match self {
            Figure::TreePss => b(m.tree_pss_loaded),
            Figure::TreeUss => b(m.tree_uss_loaded),
            Figure::TreePssAnonStarted => b(m.tree_pss_anon_started),
            Figure::TreePssAnonLoaded => b(m.tree_pss_anon_loaded),
            Figure::TreePssAnonIdle => b(m.tree_pss_anon_idle),
            Figure::AnonHugeLoaded => b(m.tree_anon_huge_loaded),
            Figure::WorkerUssMean => b(m.worker_uss_loaded_mean),
            Figure::WorkerUssMax => b(m.worker_uss_loaded_max),
            Figure::WorkerPrivateDirty => b(m.worker_private_dirty_loaded),
            Figure::CowCopied => b(m.cow_copied_loaded),
            Figure::CowEfficiency => m.cow_efficiency_loaded,
            Figure::ReturnedIdle => m.returned_idle,
            Figure::Rps => m.load_rps,
            Figure::LatencyP50 => m.load_latency_p50_ms,
            Figure::LatencyP99 => m.load_latency_p99_ms,
        }
    }

    /// `v` as the table prints it.
    pub fn format(self, v: f64) -> String {
        match self {
            Figure::CowEfficiency | Figure::ReturnedIdle => pct(v),
            Figure::Rps => rate(v),
            Figure::LatencyP50 | Figure::LatencyP99 => crate::units::millis(v),
            _ => mib(v.max(0.0) as u64),
        }
    }
}

/// One figure of a variant over its repetitions.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureStat {
    pub stat: Stat,
    /// To the first variant, paired by repetition.
    pub ratio: Option<Ratio>,
}

/// One variant of a measured command over its repetitions.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureRow {
    pub variant: String,
    /// Repetitions that finished, and that failed.
    pub ok: usize,
    pub failed: usize,
    pub figures: BTreeMap<Figure, FigureStat>,
    /// The clusters its tree PSS falls into over the repetitions: more than
    /// one when they land in separate states rather than one spread.
    pub clusters: Vec<Vec<f64>>,
}

impl MeasureRow {
    pub fn median(&self, f: Figure) -> Option<f64> {
        self.figures.get(&f).map(|s| s.stat.median)
    }

    pub fn ratio(&self, f: Figure) -> Option<f64> {
        self.figures
            .get(&f)
            .and_then(|s| s.ratio.as_ref())
            .map(|r| r.median)
    }
}

fn metrics(c: &CellResult) -> Option<&MeasureMetrics> {
    let m = c.measure.as_ref()?.metrics.as_ref()?;
    (c.status == Status::Ok).then_some(m)
}

/// The variant ratios are taken against: the first variant with a
/// finished row.
pub fn baseline(cells: &[CellResult]) -> Option<&str> {
    cells
        .iter()
        .filter(|c| c.workload == WORKLOAD)
        .find(|c| metrics(c).is_some())
        .map(|c| c.variant.as_str())
}

/// One row per variant of the `measure` cells, in the order variants first
/// appear.
pub fn summarize(cells: &[CellResult]) -> Vec<MeasureRow> {
    let cells: Vec<&CellResult> = cells.iter().filter(|c| c.workload == WORKLOAD).collect();
    let base = cells
        .iter()
        .find(|c| metrics(c).is_some())
        .map(|c| c.variant.clone());
    let mut rows: Vec<MeasureRow> = Vec::new();
    for c in &cells {
        if rows.iter().any(|r| r.variant == c.variant) {
            continue;
        }
        let mine: Vec<&CellResult> = cells
            .iter()
            .copied()
            .filter(|o| o.variant == c.variant)
            .collect();
        let ok: Vec<(u32, &MeasureMetrics)> = mine
            .iter()
            .filter_map(|o| Some((o.repetition, metrics(o)?)))
            .collect();
        let mut figures = BTreeMap::new();
        for &f in Figure::ALL {
            let values: Vec<(u32, f64)> = ok
                .iter()
                .filter_map(|(rep, m)| Some((*rep, f.get(m)?)))
                .collect();
            let Some(stat) = Stat::of(&values) else {
                continue;
            };
            let baseline = base.clone().unwrap_or_default();
            let ratio = paired_ratio(&values, &baseline, |rep| {
                let b = cells.iter().find(|o| {
                    Some(&o.variant) == base.as_ref() && o.repetition == rep && metrics(o).is_some()
                })?;
                f.get(metrics(b)?)
            })
            .filter(|_| f.has_ratio())
            .map(|mut r| {
                // The ratio of the medians, so that it agrees with the
                // figures beside it; the paired ratios give its spread.
                let base_values: Vec<(u32, f64)> = cells
                    .iter()
                    .filter(|o| Some(&o.variant) == base.as_ref())
                    .filter_map(|o| Some((o.repetition, f.get(metrics(o)?)?)))
                    .collect();
                if let Some(b) = Stat::of(&base_values).filter(|b| b.median != 0.0) {
                    r.median = stat.median / b.median;
                }
                r
            });
            figures.insert(f, FigureStat { stat, ratio });
        }
        let pss: Vec<f64> = ok
            .iter()
            .filter_map(|(_, m)| Figure::TreePss.get(m))
            .collect();
        rows.push(MeasureRow {
            variant: c.variant.clone(),
            ok: ok.len(),
            failed: mine.len() - ok.len(),
            figures,
            clusters: clusters(&pss),
        });
    }
    rows
}

/// The rule a verdict was reached by.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// The least tree PSS among the variants within 5% of the best
    /// throughput (`best`, at `rps`).
    WithinBestThroughput { best: String, rps: f64 },
    /// The least tree PSS: no throughput to weigh (`why`).
    LeastMemory { why: &'static str },
}

/// Which variant to choose for this server, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub variant: String,
    pub tree_pss: f64,
    /// Its tree PSS over the first variant's.
    pub ratio: Option<f64>,
    pub baseline: String,
    pub rule: Rule,
}

/// The verdict over the rows: the least tree PSS among the variants within
/// 5% of the best throughput when every variant has a throughput (the
/// report's rule for `compare`), else the least tree PSS. None with fewer
/// than two variants to weigh.
/// Why the rows of `cells` give no verdict although they have figures: the
/// run was cut short (the rows not run may hold the answer), or a load
/// command failed (its row's memory is an unloaded server's).
pub fn no_verdict(cells: &[CellResult]) -> Option<String> {
    let records: Vec<(&CellResult, &crate::results::measure::MeasureRecord)> = cells
        .iter()
        .filter(|c| c.workload == WORKLOAD)
        .filter_map(|c| Some((c, c.measure.as_ref()?)))
        .collect();
    if let Some((_, r)) = records.iter().find(|(_, r)| r.interrupted) {
        let not_run = if r.not_run.is_empty() {
            String::new()
        } else {
            format!("; not run: {}", r.not_run.join(", "))
        };
        return Some(format!(
            "No verdict: the run was cut short (Ctrl-C or SIGTERM){not_run}."
        ));
    }
    let ok = records
        .iter()
        .filter(|(c, _)| c.status == Status::Ok)
        .count();
    let failed: Vec<&str> = records
        .iter()
        .filter(|(c, r)| c.status == Status::Ok && r.load_error.is_some())
        .map(|(c, _)| c.variant.as_str())
        .collect();
    (!failed.is_empty()).then(|| {
        let mut names = failed.clone();
        names.dedup();
        format!(
            "No verdict: the load command failed in {} of {ok} rows ({}): their memory is an \
             unloaded server's.",
            failed.len(),
            names.join(", ")
        )
    })
}

pub fn verdict(rows: &[MeasureRow]) -> Option<Verdict> {
    let rows: Vec<&MeasureRow> = rows
        .iter()
        .filter(|r| r.median(Figure::TreePss).is_some())
        .collect();
    if rows.len() < 2 {
        return None;
    }
    let pss = |r: &&MeasureRow| r.median(Figure::TreePss);
    let rps = |r: &&MeasureRow| r.median(Figure::Rps);
    let (pick, rule) = if rows.iter().all(|r| rps(r).is_some()) {
        let pick = least_within_best(&rows, pss, rps)?;
        let best = rows
            .iter()
            .filter_map(|r| Some((rps(r)?, r)))
            .max_by(|a, b| a.0.total_cmp(&b.0))?;
        (
            *pick,
            Rule::WithinBestThroughput {
                best: best.1.variant.clone(),
                rps: best.0,
            },
        )
    } else {
        let why = if rows.iter().any(|r| rps(r).is_some()) {
            "not every variant has a throughput"
        } else {
            "no load command's output gave a throughput"
        };
        let pick = rows
            .iter()
            .filter_map(|r| Some((pss(r)?, *r)))
            .min_by(|a, b| a.0.total_cmp(&b.0))?
            .1;
        (pick, Rule::LeastMemory { why })
    };
    Some(Verdict {
        variant: pick.variant.clone(),
        tree_pss: pick.median(Figure::TreePss)?,
        ratio: pick.ratio(Figure::TreePss),
        baseline: pick
            .figures
            .get(&Figure::TreePss)
            .and_then(|s| s.ratio.as_ref())
            .map(|r| r.baseline.clone())
            .unwrap_or_default(),
        rule,
    })
}

impl Verdict {
    /// The verdict as one line, with its rule.
    pub fn text(&self) -> String {
        let ratio = self
            .ratio
            .filter(|_| self.variant != self.baseline)
            .map(|r| format!(", {r:.2}× {}'s", self.baseline))
            .unwrap_or_default();
        let memory = format!("{}{ratio}", mib(self.tree_pss as u64));
        match &self.rule {
            Rule::WithinBestThroughput { best, rps } => format!(
                "Choose {v}: the least tree PSS ({memory}) among the variants within {w:.0}% of the \
                 best throughput ({best}, {r} req/s). Rule: least tree PSS within {w:.0}% of the best \
                 throughput.",
                v = self.variant,
                w = WITHIN * 100.0,
                r = rate(*rps),
            ),
            Rule::LeastMemory { why } => format!(
                "Choose {v}: the least tree PSS ({memory}). Rule: least tree PSS ({why}).",
                v = self.variant,
            ),
        }
    }
}

/// Lines naming the variants whose tree PSS fell into separate clusters.
pub fn cluster_notes(rows: &[MeasureRow]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.clusters.len() > 1)
        .map(|r| {
            let parts: Vec<String> = r
                .clusters
                .iter()
                .map(|c| {
                    let lo = c.first().copied().unwrap_or_default();
                    let hi = c.last().copied().unwrap_or_default();
                    let range = if hi - lo < 0.05 * (1u64 << 20) as f64 {
                        mib(lo as u64)
                    } else {
                        format!("{}–{}", mib(lo as u64), mib(hi as u64))
                    };
                    format!("{range} ({}×)", c.len())
                })
                .collect();
            format!(
                "{}: tree PSS in {} separate states, not one spread: {}; one median hides \
                 them",
                r.variant,
                r.clusters.len(),
                parts.join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::measure::MeasureRecord;
    use crate::results::{Mem, Metrics, test_cell};

    const MIB: u64 = 1 << 20;

    fn cell(variant: &str, rep: u32, pss_mib: f64, rps: Option<f64>) -> CellResult {
        let mut c = test_cell(variant, 1, 1, rep, Mem::default(), Metrics::default());
        c.workload = WORKLOAD.into();
        c.spec = None;
        c.metrics = None;
        c.measure = Some(MeasureRecord {
            metrics: Some(MeasureMetrics {
                tree_pss_loaded: Some((pss_mib * MIB as f64) as u64),
                tree_uss_loaded: Some((pss_mib * MIB as f64 / 2.0) as u64),
                load_rps: rps,
                ..MeasureMetrics::default()
            }),
            ..MeasureRecord::default()
        });
        c
    }

    #[test]
    fn medians_and_ratios_of_medians_to_the_first_variant() {
        let cells = vec![
            cell("jemalloc", 0, 100.0, None),
            cell("glibc", 0, 120.0, None),
            cell("jemalloc", 1, 110.0, None),
            cell("glibc", 1, 121.0, None),
        ];
        let rows = summarize(&cells);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].variant, "jemalloc");
        assert_eq!(rows[0].median(Figure::TreePss), Some(105.0 * MIB as f64));
        assert_eq!(rows[0].ratio(Figure::TreePss), Some(1.0));
        // The ratio of the medians (120.5 / 105), which agrees with the
        // figures beside it; the paired ratios (1.2, 1.1) give its spread.
        let r = rows[1].figures[&Figure::TreePss].ratio.clone().unwrap();
        assert!((r.median - 120.5 / 105.0).abs() < 1e-9, "{r:?}");
        assert!((r.mad - 0.05).abs() < 1e-9, "{r:?}");
        assert_eq!(
            rows[1].figures[&Figure::TreePss]
                .ratio
                .as_ref()
                .unwrap()
                .baseline,
            "jemalloc"
        );
        assert!(rows[0].median(Figure::Rps).is_none());
    }

    #[test]
    fn the_verdict_is_the_least_memory_within_five_percent_of_the_best_throughput() {
        let cells = vec![
            cell("glibc", 0, 120.0, Some(1000.0)),
            cell("jemalloc", 0, 110.0, Some(960.0)),
            cell("mimalloc", 0, 90.0, Some(900.0)),
        ];
        let v = verdict(&summarize(&cells)).unwrap();
        assert_eq!(v.variant, "jemalloc");
        assert_eq!(
            v.rule,
            Rule::WithinBestThroughput {
                best: "glibc".into(),
                rps: 1000.0
            }
        );
        let text = v.text();
        assert!(
            text.starts_with("Choose jemalloc: the least tree PSS (110.0 MiB, 0.92× glibc's)"),
            "{text}"
        );
        assert!(
            text.contains("Rule: least tree PSS within 5% of the best throughput"),
            "{text}"
        );
    }

    #[test]
    fn without_throughput_the_verdict_is_the_least_memory() {
        let cells = vec![
            cell("glibc", 0, 120.0, None),
            cell("jemalloc", 0, 110.0, Some(960.0)),
            cell("mimalloc", 0, 90.0, None),
        ];
        let v = verdict(&summarize(&cells)).unwrap();
        assert_eq!(v.variant, "mimalloc");
        assert!(
            v.text()
                .ends_with("Rule: least tree PSS (not every variant has a throughput).")
        );
        // One variant: nothing to choose between.
        assert!(verdict(&summarize(&cells[..1])).is_none());
    }

    #[test]
    fn separate_states_are_flagged() {
        let mut cells = Vec::new();
        for (rep, pss) in [248.1, 255.0, 247.9, 255.3, 248.2].into_iter().enumerate() {
            cells.push(cell("glibc", rep as u32, 240.0, None));
            cells.push(cell("jemalloc", rep as u32, pss, None));
        }
        let rows = summarize(&cells);
        let notes = cluster_notes(&rows);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("jemalloc: tree PSS in 2 separate states"),
            "{}",
            notes[0]
        );
        assert!(
            notes[0].contains("247.9 MiB–248.2 MiB (3×), 255.0 MiB–255.3 MiB (2×)"),
            "{}",
            notes[0]
        );
    }
}
