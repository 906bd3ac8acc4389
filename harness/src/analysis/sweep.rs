//! Threads against processes: sweeps of a processes × threads grid, the
//! memory model fitted to them (the fit in `sweep/model.rs`), and plans for
//! a memory budget.
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

use crate::results::model::{Candidate, Fit};

use crate::results::CellResult;

mod model;
pub use model::fit;

/// (processes, threads) of a cell with a workload spec.
pub fn shape(c: &CellResult) -> Option<(u32, u32)> {
    c.spec.as_ref().map(|s| (s.processes, s.threads))
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
    use super::model::least_squares;
    use super::*;
    use crate::results::model::FitPoint;
    use crate::results::{Mem, Metrics, Status, test_cell};

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
