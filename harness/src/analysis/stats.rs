//! Statistics over repetitions: median and spread of each headline metric,
//! outliers (modified Z-score on the median absolute deviation, as hyperfine
//! flags them), and each variant's ratio to the baseline, paired by
//! repetition so that drift on a noisy machine cancels.

use crate::results::summary::{Ratio, Stat, SummaryMetric, SummaryRow};
use std::collections::BTreeMap;

use crate::results::metric::MetricId;
use crate::results::{CellResult, Metrics, Status};

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Modified Z-score threshold of Iglewicz and Hoaglin, as hyperfine uses.
const OUTLIER_Z: f64 = 3.5;
const MIN_FOR_OUTLIERS: usize = 5;

impl Stat {
    /// Statistics of (repetition, value) pairs; `None` when there are none.
    pub fn of(values: &[(u32, f64)]) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = values.iter().map(|p| p.1).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let med = median(&v);
        let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
        dev.sort_by(f64::total_cmp);
        let mad = median(&dev);
        let mean = v.iter().sum::<f64>() / n as f64;
        let cv = (n > 1 && mean != 0.0).then(|| {
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            var.sqrt() / mean.abs()
        });
        // With fewer than five values a median absolute deviation says too
        // little to call anything an outlier.
        let outliers = if mad > 0.0 && n >= MIN_FOR_OUTLIERS {
            values
                .iter()
                .filter(|(_, x)| (0.6745 * (x - med) / mad).abs() > OUTLIER_Z)
                .map(|(r, _)| *r)
                .collect()
        } else {
            Vec::new()
        };
        Some(Stat {
            n,
            median: med,
            min: v[0],
            max: v[n - 1],
            mean,
            mad,
            cv,
            outliers,
        })
    }
}

/// The least gap between two clusters, as a share of the median: below it,
/// values are one spread, however they fall.
const CLUSTER_GAP: f64 = 0.01;

/// The clusters `values` fall into, each sorted, in increasing order: one
/// when they are a single spread. The widest gap between sorted values
/// splits them (and each side again) when it is at least 1% of the median
/// and at least twice the spread of the values on either side of it. A real
/// server can land in one of a few memory states run to run (Unicorn under
/// jemalloc at about 248 or 255 MiB): a median of those is no state at all.
/// Two values cannot tell two states from a spread: fewer than three are
/// one cluster.
pub fn clusters(values: &[f64]) -> Vec<Vec<f64>> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    if v.len() < 3 {
        return vec![v];
    }
    let scale = median(&v).abs() * CLUSTER_GAP;
    let mut out = Vec::new();
    split(&v, scale, &mut out);
    out
}

fn split(v: &[f64], scale: f64, out: &mut Vec<Vec<f64>>) {
    let spread = |s: &[f64]| s.last().unwrap_or(&0.0) - s.first().unwrap_or(&0.0);
    let widest = (1..v.len()).max_by(|&a, &b| (v[a] - v[a - 1]).total_cmp(&(v[b] - v[b - 1])));
    if let Some(i) = widest {
        let gap = v[i] - v[i - 1];
        let (lo, hi) = v.split_at(i);
        if gap > 0.0 && gap >= scale && gap >= 2.0 * spread(lo).max(spread(hi)) {
            split(lo, scale, out);
            split(hi, scale, out);
            return;
        }
    }
    out.push(v.to_vec());
}

fn app_writes(c: &CellResult) -> bool {
    c.app_writes()
}

/// The parameters that make cells of one workload comparable: the workload,
/// everything in the spec but the hook and the application's writes (which
/// are rows of one configuration), the CPU pinning, and for `measure` cells
/// the command line. Cells of a sweep's grid points differ in it.
pub fn configuration(c: &CellResult) -> String {
    let command = c.measure.as_ref().map(|m| m.command.join(" "));
    configuration_key(&c.workload, c.spec.as_ref(), c.cpus_pinned, command)
}

/// [`configuration`] of a cell's parts, for a cell still to run too (its
/// plan: `plans::shard` keeps a configuration's cells on one machine).
pub fn configuration_key(
    workload: &str,
    spec: Option<&allocbench_workloads::WorkloadSpec>,
    cpus_pinned: Option<usize>,
    command: Option<String>,
) -> String {
    let spec = spec.map(|s| allocbench_workloads::WorkloadSpec {
        prefork: Default::default(),
        lifecycle: Default::default(),
        static_writes_per_request: 0,
        ..s.clone()
    });
    format!(
        "{workload}|{}|{cpus_pinned:?}|{command:?}",
        serde_json::to_string(&spec).unwrap_or_default(),
    )
}

/// The group a cell belongs to for ratios: same workload configuration,
/// hook, lifecycle and write mode (and repetition, for pairing).
fn same_group(a: &CellResult, b: &CellResult) -> bool {
    a.prefork == b.prefork
        && a.lifecycle == b.lifecycle
        && app_writes(a) == app_writes(b)
        && configuration(a) == configuration(b)
}

/// The baseline variant: `glibc` when it ran, else the first variant.
pub fn baseline_variant(cells: &[CellResult]) -> Option<&str> {
    if cells.iter().any(|c| c.variant == "glibc") {
        Some("glibc")
    } else {
        cells.first().map(|c| c.variant.as_str())
    }
}

/// Paired ratios: each repetition's value over the baseline's value in the
/// same repetition (`base_of`), summarized as [`Stat`] does.
pub fn paired_ratio(
    values: &[(u32, f64)],
    baseline: &str,
    base_of: impl Fn(u32) -> Option<f64>,
) -> Option<Ratio> {
    let ratios: Vec<(u32, f64)> = values
        .iter()
        .filter_map(|&(rep, v)| {
            let bv = base_of(rep)?;
            (bv != 0.0).then(|| (rep, v / bv))
        })
        .collect();
    Stat::of(&ratios).map(|s| Ratio {
        baseline: baseline.to_string(),
        median: s.median,
        min: s.min,
        max: s.max,
        mad: s.mad,
    })
}

/// One row per variant × hook × write mode of each workload configuration,
/// in the order cells first appear; ratios pair each cell with the
/// baseline's of the same configuration, hook, write mode and repetition.
pub fn summarize(cells: &[CellResult]) -> Vec<SummaryRow> {
    let base = baseline_variant(cells).unwrap_or_default().to_string();
    let mut rows: Vec<SummaryRow> = Vec::new();
    let mut seen: Vec<&CellResult> = Vec::new();
    for c in cells {
        if seen
            .iter()
            .any(|s| s.variant == c.variant && same_group(s, c))
        {
            continue;
        }
        seen.push(c);
        let mine: Vec<&CellResult> = cells
            .iter()
            .filter(|o| o.variant == c.variant && same_group(o, c))
            .collect();
        let ok: Vec<&CellResult> = mine
            .iter()
            .copied()
            .filter(|o| o.status == Status::Ok)
            .collect();
        let mut metrics = BTreeMap::new();
        for id in MetricId::summarised() {
            let get = |m: &Metrics| id.get(m);
            let values: Vec<(u32, f64)> = ok
                .iter()
                .filter_map(|o| Some((o.repetition, get(o.metrics.as_ref()?)?)))
                .collect();
            let Some(stat) = Stat::of(&values) else {
                continue;
            };
            let ratio = paired_ratio(&values, &base, |rep| {
                let b = cells.iter().find(|o| {
                    o.variant == base
                        && o.repetition == rep
                        && o.status == Status::Ok
                        && same_group(o, c)
                })?;
                get(b.metrics.as_ref()?)
            });
            metrics.insert(id.key().to_string(), SummaryMetric { stat, ratio });
        }
        rows.push(SummaryRow {
            workload: c.workload.clone(),
            processes: c.spec.as_ref().map(|s| s.processes),
            threads: c.spec.as_ref().map(|s| s.threads),
            variant: c.variant.clone(),
            prefork: c.prefork,
            lifecycle: c.lifecycle.clone(),
            app_writes: app_writes(c),
            ok: ok.len(),
            failed: mine.len() - ok.len(),
            metrics,
            machine: c.machine,
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(xs: &[f64]) -> Vec<(u32, f64)> {
        xs.iter().enumerate().map(|(i, &x)| (i as u32, x)).collect()
    }

    #[test]
    fn median_spread_and_cv_are_known() {
        let s = Stat::of(&vals(&[10.0, 12.0, 11.0, 13.0, 9.0])).unwrap();
        assert_eq!((s.median, s.min, s.max, s.mean), (11.0, 9.0, 13.0, 11.0));
        assert_eq!(s.mad, 1.0);
        // Sample standard deviation sqrt(2.5) over mean 11.
        assert!((s.cv.unwrap() - 2.5f64.sqrt() / 11.0).abs() < 1e-12);
        assert!(s.outliers.is_empty());
        let even = Stat::of(&vals(&[1.0, 2.0, 3.0, 4.0])).unwrap();
        assert_eq!(even.median, 2.5);
    }

    #[test]
    fn a_wild_repetition_is_flagged() {
        let s = Stat::of(&vals(&[100.0, 101.0, 99.0, 100.5, 160.0])).unwrap();
        assert_eq!(s.outliers, vec![4]);
    }

    #[test]
    fn three_values_are_too_few_for_outliers() {
        let s = Stat::of(&vals(&[100.0, 101.0, 160.0])).unwrap();
        assert!(s.outliers.is_empty());
    }

    use crate::results::{Mem, test_cell};

    fn cell(variant: &str, p: u32, t: u32, rep: u32, pss: u64) -> CellResult {
        let m = Metrics {
            tree_pss_anon_steady: pss,
            throughput_rps: (p * t * 1000 + rep) as f64,
            ..Metrics::default()
        };
        test_cell(variant, p, t, rep, Mem::default(), m)
    }

    fn ratio(r: &SummaryRow, key: &str) -> f64 {
        r.metrics[key].ratio.as_ref().unwrap().median
    }

    #[test]
    fn a_sweep_is_summarised_per_grid_point_with_its_own_baseline() {
        let mut cells = Vec::new();
        for rep in 0..2 {
            for (p, t) in [(1, 1), (2, 4)] {
                let base = u64::from(p * t) * 100 + u64::from(rep);
                cells.push(cell("glibc", p, t, rep, base));
                cells.push(cell("jemalloc", p, t, rep, base / 2));
            }
        }
        let rows = summarize(&cells);
        let keys: Vec<(Option<u32>, Option<u32>, &str, usize)> = rows
            .iter()
            .map(|r| (r.processes, r.threads, r.variant.as_str(), r.ok))
            .collect();
        assert_eq!(
            keys,
            [
                (Some(1), Some(1), "glibc", 2),
                (Some(1), Some(1), "jemalloc", 2),
                (Some(2), Some(4), "glibc", 2),
                (Some(2), Some(4), "jemalloc", 2),
            ]
        );
        for r in &rows {
            let pss = &r.metrics["tree_pss_anon_steady"].stat;
            let (p, t) = (r.processes.unwrap(), r.threads.unwrap());
            let glibc = f64::from(p * t) * 100.0 + 0.5;
            if r.variant == "glibc" {
                assert_eq!(pss.median, glibc);
                assert_eq!(ratio(r, "tree_pss_anon_steady"), 1.0);
                assert_eq!(ratio(r, "throughput_rps"), 1.0);
            } else {
                assert_eq!(pss.median, (glibc / 2.0).floor());
                let half = ratio(r, "tree_pss_anon_steady");
                assert!((half - 0.5).abs() < 0.01, "{half}");
            }
        }
    }

    #[test]
    fn one_configuration_keeps_one_row_per_variant_hook_and_write_mode() {
        // What compare runs: one grid point, two hooks, two repetitions,
        // one variant also without the application's writes.
        let mut cells = Vec::new();
        for rep in 0..2 {
            for hook in ["none", "trim"] {
                for (v, pss) in [("glibc", 200), ("jemalloc", 150)] {
                    let mut c = cell(v, 2, 2, rep, pss + u64::from(rep));
                    c.prefork = hook.parse().unwrap();
                    c.spec.as_mut().unwrap().prefork = hook.parse().unwrap();
                    cells.push(c);
                }
            }
        }
        let mut quiet = cell("jemalloc", 2, 2, 0, 100);
        quiet.spec.as_mut().unwrap().static_writes_per_request = 0;
        cells.push(quiet);
        let rows = summarize(&cells);
        let keys: Vec<(&str, &str, bool, usize)> = rows
            .iter()
            .map(|r| (r.variant.as_str(), r.prefork.name(), r.app_writes, r.ok))
            .collect();
        assert_eq!(
            keys,
            [
                ("glibc", "none", true, 2),
                ("jemalloc", "none", true, 2),
                ("glibc", "trim", true, 2),
                ("jemalloc", "trim", true, 2),
                ("jemalloc", "none", false, 1),
            ]
        );
        assert_eq!(ratio(&rows[0], "tree_pss_anon_steady"), 1.0);
        let je = ratio(&rows[1], "tree_pss_anon_steady");
        assert!((je - 0.75).abs() < 0.002, "{je}");
        // No baseline without writes: no ratio.
        assert!(rows[4].metrics["tree_pss_anon_steady"].ratio.is_none());
    }

    #[test]
    fn two_memory_states_are_two_clusters_and_a_spread_is_one() {
        // The Unicorn case: five runs, two states.
        let two = clusters(&[248.1, 255.0, 247.9, 255.3, 248.2]);
        assert_eq!(two, vec![vec![247.9, 248.1, 248.2], vec![255.0, 255.3]]);
        // The same range, evenly spread: one.
        assert_eq!(clusters(&[248.0, 250.0, 252.0, 254.0, 256.0]).len(), 1);
        // Close values: one, whatever the gaps' shape.
        assert_eq!(clusters(&[100.0, 100.1, 100.5]).len(), 1);
        // A lone value away from the rest is a cluster of its own.
        assert_eq!(clusters(&[248.0, 255.0, 255.2]).len(), 2);
        // Two values are too few to tell.
        assert_eq!(clusters(&[248.0, 255.0]).len(), 1);
        assert_eq!(clusters(&[]), vec![Vec::<f64>::new()]);
    }

    #[test]
    fn a_single_value_has_no_cv_and_no_outliers() {
        let s = Stat::of(&vals(&[5.0])).unwrap();
        assert_eq!((s.n, s.cv, s.outliers.len()), (1, None, 0));
        assert!(Stat::of(&[]).is_none());
    }
}
