//! Threads against processes: sweeps of a processes × threads grid, the
//! memory model fitted to them, and plans for a memory budget.
//!
//! The model is the seed article's `processes × (static + threads ×
//! processing)`, corrected for copy-on-write sharing. Over a forking tree,
//! PSS counts every page once, so
//!
//! ```text
//! tree PSS(P, T) = a + P·b + P·T·c
//! ```
//!
//! where `a` is what stays shared however many workers there are (the
//! master's static memory that no worker copies, plus the master's own
//! overhead), `b` what each worker process adds (its private copies of the
//! static memory, its runtime), and `c` what each serving thread adds (its
//! arena, caches and in-flight requests). `a`, `b` and `c` are fitted by
//! ordinary least squares on the cells of a sweep with at least two process
//! counts and two thread counts. With the master's static memory `S` known
//! (its anonymous memory at the fork: the fitted quantity is anonymous PSS,
//! so file pages stay out of both), `1 − b/S` bounds from below the share of
//! `S` each worker keeps shared: a lower bound, since `b` also holds the
//! worker's own runtime.

use crate::results::model::{Candidate, Fit, FitPoint, Unfitted};

use allocbench_workloads::WorkloadSpec;

use crate::results::{CellResult, Status};

impl Fit {
    pub fn predict(&self, processes: u32, threads: u32) -> f64 {
        let (p, t) = (f64::from(processes), f64::from(threads));
        self.shared_once + p * self.per_process + p * t * self.per_thread
    }

    /// Requests per second a configuration can serve: measured where the
    /// sweep ran it; elsewhere the median of the measured configurations
    /// that keep as many threads busy at once (at most `cpus`), or, beyond
    /// the sweep, of those that keep the most busy.
    pub fn throughput(&self, processes: u32, threads: u32, cpus: u32) -> f64 {
        if let Some(p) = self
            .points
            .iter()
            .find(|p| p.processes == processes && p.threads == threads)
        {
            return p.throughput_rps;
        }
        let busy = |p: u32, t: u32| p.saturating_mul(t).min(cpus.max(1));
        let want = busy(processes, threads);
        let most = self
            .points
            .iter()
            .map(|p| busy(p.processes, p.threads))
            .max()
            .unwrap_or(0);
        let at = want.min(most);
        median(
            self.points
                .iter()
                .filter(|p| busy(p.processes, p.threads) == at)
                .map(|p| p.throughput_rps)
                .collect(),
        )
        .unwrap_or(0.0)
    }
}

/// Solves the 3×3 system `m · x = v` by Gaussian elimination with partial
/// pivoting; `None` when it is singular.
fn solve3(mut m: [[f64; 3]; 3], mut v: [f64; 3]) -> Option<[f64; 3]> {
    for col in 0..3 {
        let pivot = (col..3).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        let scale = m.iter().flatten().fold(0.0f64, |a, x| a.max(x.abs()));
        if m[pivot][col].abs() <= 1e-12 * scale.max(1.0) {
            return None;
        }
        m.swap(col, pivot);
        v.swap(col, pivot);
        let top = m[col];
        for row in col + 1..3 {
            let f = m[row][col] / top[col];
            for (cell, above) in m[row].iter_mut().zip(top).skip(col) {
                *cell -= f * above;
            }
            v[row] -= f * v[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let s: f64 = (row + 1..3).map(|k| m[row][k] * x[k]).sum();
        x[row] = (v[row] - s) / m[row][row];
    }
    Some(x)
}

/// Least squares of `y ≈ a + P·b + P·T·c` over (P, T, y).
pub fn least_squares(data: &[(f64, f64, f64)]) -> Option<([f64; 3], f64)> {
    let mut m = [[0.0; 3]; 3];
    let mut v = [0.0; 3];
    for &(p, t, y) in data {
        let x = [1.0, p, p * t];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += x[i] * x[j];
            }
            v[i] += x[i] * y;
        }
    }
    let coef = solve3(m, v)?;
    let mean = data.iter().map(|d| d.2).sum::<f64>() / data.len() as f64;
    let ss_tot: f64 = data.iter().map(|d| (d.2 - mean).powi(2)).sum();
    let ss_res: f64 = data
        .iter()
        .map(|&(p, t, y)| (y - (coef[0] + p * coef[1] + p * t * coef[2])).powi(2))
        .sum();
    let r2 = if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else {
        1.0
    };
    Some((coef, r2))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// (processes, threads) of a cell with a workload spec.
pub fn shape(c: &CellResult) -> Option<(u32, u32)> {
    c.spec.as_ref().map(|s| (s.processes, s.threads))
}

/// What a sweep holds fixed across its grid: the workload, every spec
/// parameter but the processes and threads, and the CPU pinning.
fn sweep_configuration(c: &CellResult) -> String {
    let spec = c.spec.clone().map(|s| WorkloadSpec {
        processes: 0,
        threads: 0,
        ..s
    });
    format!(
        "{}|{}|{:?}",
        c.workload,
        serde_json::to_string(&spec).unwrap_or_default(),
        c.cpus_pinned
    )
}

/// The master's anonymous memory at the fork: `Anonymous` of its
/// smaps_rollup at `forked`, the pages the fitted anonymous PSS counts.
pub fn master_anon_forked(c: &CellResult) -> Option<u64> {
    c.phases
        .iter()
        .find(|p| p.name == allocbench_workloads::Phase::Forked)?
        .master()
        .map(|m| m.anonymous)
}

/// The model fitted per variant; each variant that could not be fitted is
/// in `unfitted` with the reason, and does not keep the others from fitting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fitted {
    pub fits: Vec<Fit>,
    pub unfitted: Vec<Unfitted>,
}

/// Fits the model for every variant of a sweep's cells (forking cells only:
/// a single process without fork follows another formula).
pub fn fit(cells: &[CellResult]) -> Fitted {
    let mut variants: Vec<&str> = Vec::new();
    for c in cells {
        if !variants.contains(&c.variant.as_str()) {
            variants.push(&c.variant);
        }
    }
    let mut out = Fitted::default();
    for v in variants {
        let mine: Vec<&CellResult> = cells.iter().filter(|c| c.variant == v).collect();
        match fit_variant(v, &mine) {
            Ok(f) => out.fits.push(f),
            // The reason is stored in the document as text.
            Err(reason) => out.unfitted.push(Unfitted {
                variant: v.to_string(),
                reason: reason.to_string(),
            }),
        }
    }
    out
}

/// How many of a variant's cells failed, said before why its model cannot
/// be fitted ("" when none did).
#[derive(Debug, Clone, Copy)]
struct Failed {
    failed: usize,
    of: usize,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.failed > 0 {
            write!(f, "{} of its {} cells failed; ", self.failed, self.of)
        } else {
            Ok(())
        }
    }
}

/// Why a variant's model cannot be fitted (an [`Unfitted`]'s reason).
#[derive(Debug, thiserror::Error)]
enum FitError {
    /// Cells of several sweeps.
    #[error(
        "its cells come from {0} workload configurations (sizes, seed, workload or CPU pinning differ); fit the cells of one sweep"
    )]
    Configurations(usize),
    /// Too few process or thread counts.
    #[error(
        "{failed}the model needs finished cells with at least two process counts (of 1 or more) and two thread counts; there are processes {processes:?} and threads {threads:?}"
    )]
    Grid {
        failed: Failed,
        processes: std::collections::BTreeSet<u32>,
        threads: std::collections::BTreeSet<u32>,
    },
    /// A grid the least squares cannot solve.
    #[error("{failed}the model cannot be fitted to this grid")]
    Singular { failed: Failed },
}

/// The model for one variant's cells, or why it cannot be fitted.
fn fit_variant(v: &str, mine: &[&CellResult]) -> Result<Fit, FitError> {
    let failed = mine.iter().filter(|c| c.status != Status::Ok).count();
    let ok: Vec<&CellResult> = mine
        .iter()
        .copied()
        .filter(|c| c.status == Status::Ok && c.metrics.is_some())
        .filter(|c| shape(c).is_some_and(|(p, _)| p > 0))
        .collect();
    let failed = Failed {
        failed,
        of: mine.len(),
    };
    let mut configurations: Vec<String> = ok.iter().map(|c| sweep_configuration(c)).collect();
    configurations.sort();
    configurations.dedup();
    if configurations.len() > 1 {
        return Err(FitError::Configurations(configurations.len()));
    }
    let mut grid: Vec<(u32, u32)> = Vec::new();
    for c in &ok {
        let Some(k) = shape(c) else { continue };
        if !grid.contains(&k) {
            grid.push(k);
        }
    }
    let ps: std::collections::BTreeSet<u32> = grid.iter().map(|g| g.0).collect();
    let ts: std::collections::BTreeSet<u32> = grid.iter().map(|g| g.1).collect();
    if ps.len() < 2 || ts.len() < 2 {
        return Err(FitError::Grid {
            failed,
            processes: ps,
            threads: ts,
        });
    }
    let mut points = Vec::new();
    for &(p, t) in &grid {
        let at: Vec<&&CellResult> = ok.iter().filter(|c| shape(c) == Some((p, t))).collect();
        let m = |f: fn(&crate::results::Metrics) -> f64| {
            median(
                at.iter()
                    .filter_map(|c| c.metrics.as_ref().map(f))
                    .collect(),
            )
        };
        if let (Some(pss), Some(rps)) = (
            m(|m| m.tree_pss_anon_steady as f64),
            m(|m| m.throughput_rps),
        ) {
            points.push(FitPoint {
                processes: p,
                threads: t,
                measured: pss,
                predicted: 0.0,
                error_pct: 0.0,
                throughput_rps: rps,
            });
        }
    }
    let data: Vec<(f64, f64, f64)> = points
        .iter()
        .map(|p| (f64::from(p.processes), f64::from(p.threads), p.measured))
        .collect();
    let (coef, r2) = least_squares(&data).ok_or(FitError::Singular { failed })?;
    let static_bytes = median(
        ok.iter()
            .filter_map(|c| master_anon_forked(c).map(|b| b as f64))
            .collect(),
    );
    let mut f = Fit {
        variant: v.to_string(),
        shared_once: coef[0],
        per_process: coef[1],
        per_thread: coef[2],
        static_bytes,
        cow_efficiency_lower: static_bytes
            .filter(|s| *s > 0.0)
            .map(|s| (1.0 - coef[1] / s).clamp(0.0, 1.0)),
        r2,
        points: Vec::new(),
    };
    for p in &mut points {
        p.predicted = f.predict(p.processes, p.threads);
        p.error_pct = (p.predicted - p.measured) / p.measured * 100.0;
    }
    f.points = points;
    Ok(f)
}

/// Why `--variants` selects no cells of a sweep.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectError {
    /// Names the sweep does not have.
    #[error(
        "--variants: {} not in the sweep (it has {})",
        if missing.len() == 1 { format!("{} is", missing[0]) } else { format!("{} are", missing.join(", ")) },
        have.join(", ")
    )]
    Missing {
        /// The names not in the sweep.
        missing: Vec<String>,
        /// The sweep's variants.
        have: Vec<String>,
    },
    /// Only blank names.
    #[error("--variants: no variant given")]
    NoneGiven,
}

/// The cells of the variants named in `list` (all cells when it is empty),
/// or which of the names the sweep does not have.
pub fn select(cells: &[CellResult], list: &[String]) -> Result<Vec<CellResult>, SelectError> {
    if list.is_empty() {
        return Ok(cells.to_vec());
    }
    let names: Vec<&str> = list
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let mut have: Vec<&str> = Vec::new();
    for c in cells {
        if !have.contains(&c.variant.as_str()) {
            have.push(&c.variant);
        }
    }
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !have.contains(n))
        .collect();
    if !missing.is_empty() {
        return Err(SelectError::Missing {
            missing: missing.iter().map(|s| s.to_string()).collect(),
            have: have.iter().map(|s| s.to_string()).collect(),
        });
    }
    if names.is_empty() {
        return Err(SelectError::NoneGiven);
    }
    Ok(cells
        .iter()
        .filter(|c| names.contains(&c.variant.as_str()))
        .cloned()
        .collect())
}

/// The configurations that fit `budget` bytes, best first: most throughput,
/// then least memory. Processes 1–64, threads 1–64 (powers of two, and the
/// swept counts).
pub fn plan(fits: &[Fit], budget: f64, cpus: u32) -> Vec<Candidate> {
    let counts: Vec<u32> = (0..7).map(|i| 1u32 << i).collect();
    let mut out = Vec::new();
    for f in fits {
        let mut ps = counts.clone();
        let mut ts = counts.clone();
        for p in &f.points {
            ps.push(p.processes);
            ts.push(p.threads);
        }
        ps.sort_unstable();
        ps.dedup();
        ts.sort_unstable();
        ts.dedup();
        for &p in &ps {
            for &t in &ts {
                let predicted = f.predict(p, t);
                if predicted > budget || predicted <= 0.0 {
                    continue;
                }
                out.push(Candidate {
                    variant: f.variant.clone(),
                    processes: p,
                    threads: t,
                    predicted_pss: predicted,
                    throughput_rps: f.throughput(p, t, cpus),
                    measured: f.points.iter().any(|x| x.processes == p && x.threads == t),
                });
            }
        }
    }
    out.sort_by(|a, b| {
        b.throughput_rps
            .total_cmp(&a.throughput_rps)
            .then(a.predicted_pss.total_cmp(&b.predicted_pss))
            .then(a.processes.cmp(&b.processes))
    });
    out
}

pub use allocbench_workloads::parse_size;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Mem, Metrics, test_cell};

    const MIB: f64 = (1u64 << 20) as f64;

    #[test]
    fn the_fit_recovers_known_parameters_from_noisy_data() {
        let (a, b, c) = (60.0 * MIB, 25.0 * MIB, 7.0 * MIB);
        // A deterministic pseudo-noise of up to ±1% per cell.
        let mut data = Vec::new();
        for (i, &p) in [1.0, 2.0, 4.0, 8.0].iter().enumerate() {
            for (j, &t) in [1.0, 2.0, 4.0, 8.0].iter().enumerate() {
                let y = a + p * b + p * t * c;
                let noise = (((i * 7 + j * 13) % 11) as f64 - 5.0) / 500.0;
                data.push((p, t, y * (1.0 + noise)));
            }
        }
        let (coef, r2) = least_squares(&data).unwrap();
        assert!((coef[0] - a).abs() < 0.1 * a, "a {}", coef[0] / MIB);
        assert!((coef[1] - b).abs() < 0.05 * b, "b {}", coef[1] / MIB);
        assert!((coef[2] - c).abs() < 0.02 * c, "c {}", coef[2] / MIB);
        assert!(r2 > 0.99);
    }

    /// Cells of `variant` over `grid` whose tree anonymous PSS follows the
    /// model with `S` static bytes of which each worker copies `1 − kept`,
    /// with ±0.5% pseudo-noise; the master's RSS also holds file pages.
    fn synthetic(variant: &str, grid: &[(u32, u32)], s: f64, kept: f64) -> Vec<CellResult> {
        let (a, b, c) = (s + 2.0 * MIB, (1.0 - kept) * s, 3.0 * MIB);
        grid.iter()
            .enumerate()
            .map(|(i, &(p, t))| {
                let noise = ((i * 7 % 5) as f64 - 2.0) / 400.0;
                let (pf, tf) = (f64::from(p), f64::from(t));
                let y = (a + pf * b + pf * tf * c) * (1.0 + noise);
                let master = Mem {
                    anonymous: s as u64,
                    rss: (s + 20.0 * MIB) as u64,
                    ..Mem::default()
                };
                let metrics = Metrics {
                    tree_pss_anon_steady: y as u64,
                    master_rss_forked: master.rss,
                    throughput_rps: 1000.0 * pf * tf,
                    ..Metrics::default()
                };
                test_cell(variant, p, t, 0, master, metrics)
            })
            .collect()
    }

    const GRID: [(u32, u32); 9] = [
        (1, 1),
        (1, 2),
        (1, 4),
        (2, 1),
        (2, 2),
        (2, 4),
        (4, 1),
        (4, 2),
        (4, 4),
    ];

    #[test]
    fn the_fit_recovers_the_shared_fraction_of_the_static_memory() {
        let cells = synthetic("glibc", &GRID, 40.0 * MIB, 0.75);
        let fitted = fit(&cells);
        assert!(fitted.unfitted.is_empty(), "{:?}", fitted.unfitted);
        let f = &fitted.fits[0];
        // S is the master's anonymous memory at the fork, not its RSS
        // (which also counts the binary's file pages).
        assert_eq!(f.static_bytes, Some(40.0 * MIB));
        let kept = f.cow_efficiency_lower.unwrap();
        assert!((kept - 0.75).abs() < 0.02, "kept {kept}");
        assert!((f.per_process - 10.0 * MIB).abs() < 0.5 * MIB);
        assert!((f.per_thread - 3.0 * MIB).abs() < 0.1 * MIB);
        assert!(f.r2 > 0.99);
    }

    #[test]
    fn a_variant_that_cannot_be_fitted_keeps_no_other_from_fitting() {
        let mut cells = synthetic("glibc", &[(1, 1), (1, 2)], 40.0 * MIB, 0.5);
        cells.extend(synthetic("jemalloc", &GRID, 40.0 * MIB, 0.5));
        let mut failed = synthetic("mimalloc", &GRID, 40.0 * MIB, 0.5);
        for c in &mut failed {
            c.status = Status::Failed;
            c.metrics = None;
        }
        cells.extend(failed);
        let fitted = fit(&cells);
        let fitted_names: Vec<&str> = fitted.fits.iter().map(|f| f.variant.as_str()).collect();
        assert_eq!(fitted_names, ["jemalloc"]);
        let reasons: Vec<(&str, &str)> = fitted
            .unfitted
            .iter()
            .map(|u| (u.variant.as_str(), u.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert_eq!(reasons[0].0, "glibc");
        assert!(reasons[0].1.contains("two process counts"), "{reasons:?}");
        assert_eq!(reasons[1].0, "mimalloc");
        assert!(
            reasons[1].1.starts_with("9 of its 9 cells failed"),
            "{reasons:?}"
        );
    }

    #[test]
    fn cells_of_two_configurations_are_not_fitted_as_one() {
        let mut cells = synthetic("glibc", &GRID, 40.0 * MIB, 0.5);
        for c in &mut cells[..3] {
            c.spec.as_mut().unwrap().static_mib = 8;
        }
        let fitted = fit(&cells);
        assert!(fitted.fits.is_empty());
        assert!(
            fitted.unfitted[0]
                .reason
                .contains("2 workload configurations"),
            "{:?}",
            fitted.unfitted
        );
    }

    #[test]
    fn selecting_variants_names_those_the_sweep_lacks() {
        let mut cells = synthetic("glibc", &GRID, 40.0 * MIB, 0.5);
        cells.extend(synthetic("jemalloc", &GRID, 40.0 * MIB, 0.5));
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let only = select(&cells, &names(&["jemalloc"])).unwrap();
        assert!(only.iter().all(|c| c.variant == "jemalloc") && only.len() == 9);
        assert_eq!(select(&cells, &[]).unwrap().len(), 18);
        let e = select(&cells, &names(&["jemalloc", "mimalloc"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--variants: mimalloc is not in the sweep (it has glibc, jemalloc)"
        );
    }

    #[test]
    fn the_sweep_table_shows_the_pinned_and_the_online_cpus() {
        let mut doc = crate::exec::runner::new_document();
        doc.environment.cpus_online = 64;
        let mut cells = synthetic("glibc", &[(1, 1), (2, 1)], 40.0 * MIB, 0.5);
        cells[1].cpus_pinned = Some(2);
        cells[1].cpus_allowed = Some(2);
        cells[0].cpus_allowed = Some(64);
        doc.cells = cells;
        let t = crate::output::sweep::sweep_table(&doc);
        let col = t
            .headers
            .iter()
            .position(|h| h == "CPUs pinned/online")
            .unwrap();
        assert_eq!(t.rows[0][col], "—/64");
        assert_eq!(t.rows[1][col], "2/64");
    }

    #[test]
    fn a_single_thread_count_is_not_identifiable() {
        let data = [(1.0, 2.0, 10.0), (2.0, 2.0, 20.0), (4.0, 2.0, 40.0)];
        assert!(least_squares(&data).is_none());
    }

    fn model(a: f64, b: f64, c: f64) -> Fit {
        Fit {
            variant: "v".into(),
            shared_once: a,
            per_process: b,
            per_thread: c,
            static_bytes: None,
            cow_efficiency_lower: None,
            r2: 1.0,
            points: vec![
                FitPoint {
                    processes: 1,
                    threads: 1,
                    measured: a + b + c,
                    predicted: a + b + c,
                    error_pct: 0.0,
                    throughput_rps: 1000.0,
                },
                FitPoint {
                    processes: 2,
                    threads: 2,
                    measured: a + 2.0 * b + 4.0 * c,
                    predicted: a + 2.0 * b + 4.0 * c,
                    error_pct: 0.0,
                    throughput_rps: 1900.0,
                },
            ],
        }
    }

    #[test]
    fn a_plan_never_exceeds_its_budget() {
        let fits = [
            model(50.0 * MIB, 20.0 * MIB, 5.0 * MIB),
            model(10.0 * MIB, 40.0 * MIB, 1.0 * MIB),
        ];
        for budget_mib in (0..4000).step_by(37) {
            let budget = budget_mib as f64 * MIB;
            for c in plan(&fits, budget, 8) {
                assert!(c.predicted_pss <= budget, "{c:?} over {budget_mib} MiB");
            }
        }
        // A budget below the smallest configuration recommends nothing.
        assert!(plan(&fits, 40.0 * MIB, 8).is_empty());
    }

    #[test]
    fn a_plan_prefers_throughput_then_memory() {
        let fits = [model(50.0 * MIB, 20.0 * MIB, 5.0 * MIB)];
        let all = plan(&fits, 2048.0 * MIB, 2);
        let best = &all[0];
        // Two CPUs: every configuration of two or more threads is estimated
        // from the measured 2 × 2 (1900 req/s); 1 × 1 measured 1000.
        assert_eq!(best.throughput_rps, 1900.0);
        assert!(all.iter().all(|c| c.throughput_rps <= best.throughput_rps));
        // Of the configurations that fast, the least memory comes first:
        // 1 process of 2 threads.
        assert_eq!((best.processes, best.threads), (1, 2));
        assert!(!best.measured);
        let measured = all
            .iter()
            .find(|c| c.processes == 2 && c.threads == 2)
            .unwrap();
        assert_eq!((measured.throughput_rps, measured.measured), (1900.0, true));
    }
}
