//! The memory model of a sweep: what it predicts (memory, and throughput
//! from the measured points), and its fit per variant by least squares.

use super::shape;
use crate::results::model::{Fit, FitPoint, Unfitted};

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
