//! Figures derived from a finished cell's phase samples and the workers'
//! reports. Their definitions are in `docs/metrics.md`, generated from the
//! registry in `results/metric.rs`; each has a test with a known answer.

use crate::results::GrowthVerdict;
use crate::results::phase::PhaseName;
use std::collections::{BTreeMap, HashMap};

use allocbench_workloads::{
    Phase, PhaseReport, Role, WorkloadSpec, latency_histogram, merge_latency,
};

use crate::results::{Mem, Metrics, PhaseSample, Timeline};

/// The smallest growth that `returned` is computed for.
pub const MIN_EXCESS: i64 = 1 << 20;

/// Reports keyed by (role, worker index, phase).
pub type Reports = HashMap<(Role, u32, Phase), PhaseReport>;

/// Why a cell's figures cannot be computed: a sample or report they need
/// is missing.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// No sample at a boundary.
    #[error("no {0} sample")]
    NoSample(PhaseName),
    /// A sample that missed a process.
    #[error("the {phase} sample is incomplete: {missed}")]
    Incomplete {
        /// The boundary.
        phase: PhaseName,
        /// Why the process was missed, as the sample records it.
        missed: String,
    },
    /// The baseline sample has no master.
    #[error("no master sample at the fork")]
    NoMasterAtFork,
    /// A serving process that did not report at `steady`.
    #[error("{role:?} {index} sent no steady report")]
    NoSteadyReport {
        /// Master or worker.
        role: Role,
        /// Its index.
        index: u32,
    },
}

fn find(phases: &[PhaseSample], name: Phase) -> Result<&PhaseSample, MetricsError> {
    let name = PhaseName::from(name);
    let p = phases
        .iter()
        .find(|p| p.name == name)
        .ok_or(MetricsError::NoSample(name))?;
    if let Some(missed) = p.processes.iter().find_map(|p| p.missed.as_ref()) {
        return Err(MetricsError::Incomplete {
            phase: name,
            missed: missed.clone(),
        });
    }
    Ok(p)
}

/// What a tree gave back of its growth, on the RAM it costs: anonymous PSS
/// less `LazyFree` ([`Mem::pss_anon_net`]), summed over the tree.
///
/// A page a worker drops while the master still maps it frees no RAM and
/// counts nothing; a page a worker copied on write is growth, and given
/// back when the copy goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Returned {
    /// Share of the growth from `base` to `top` gone at `now`; above 1 only
    /// when the tree ends below where it was at `base`.
    pub returned: f64,
    /// Share of the growth that went to `LazyFree` since `top` and is still
    /// resident (counted in `returned`; reclaimed only under pressure).
    pub lazyfree: f64,
}

impl Returned {
    /// The shares, or `None` for a growth under [`MIN_EXCESS`]: shares of a
    /// tiny growth are noise, not a finding.
    pub fn of(base: &Mem, top: &Mem, now: &Mem) -> Option<Returned> {
        let excess = top.pss_anon_net() - base.pss_anon_net();
        (excess >= MIN_EXCESS).then(|| Returned {
            returned: (top.pss_anon_net() - now.pss_anon_net()) as f64 / excess as f64,
            // Only what went to LazyFree since `top`: pages already there
            // were never part of the growth.
            lazyfree: now.lazyfree.saturating_sub(top.lazyfree) as f64 / excess as f64,
        })
    }
}

/// Computes a cell's metrics. Fails (and so fails the cell) when a sample
/// the figures need is missing: a row must never rest on a partial sample.
///
/// The serving processes are the workers, or the master when the spec does
/// not fork; their baseline is the `forked` sample, or `preloaded`.
pub fn compute(
    phases: &[PhaseSample],
    timeline: &Timeline,
    reports: &Reports,
    spec: &WorkloadSpec,
) -> Result<Metrics, MetricsError> {
    let forks = spec.processes > 0;
    let forked = find(
        phases,
        if forks {
            Phase::Forked
        } else {
            Phase::Preloaded
        },
    )?;
    let steady = find(phases, Phase::Steady)?;
    let trimmed = find(phases, Phase::Trimmed)?;
    let master_rss_forked = forked.master().ok_or(MetricsError::NoMasterAtFork)?.rss;
    let serving = |p: &PhaseSample| {
        if forks {
            p.workers_sum()
        } else {
            p.master().copied().unwrap_or_default()
        }
    };

    let keys: Vec<(Role, u32)> = if forks {
        (0..spec.processes).map(|i| (Role::Worker, i)).collect()
    } else {
        vec![(Role::Master, 0)]
    };
    let worker_reports: Vec<&PhaseReport> = keys
        .iter()
        .map(|&(role, i)| {
            reports
                .get(&(role, i, Phase::Steady))
                .ok_or(MetricsError::NoSteadyReport { role, index: i })
        })
        .collect::<Result<_, _>>()?;

    // fragmentation: the serving processes' private memory.
    let (base, top) = (serving(forked), serving(steady));
    let private_growth = top.uss_net() - base.uss_net();
    let live_bytes_steady: u64 = worker_reports.iter().filter_map(|r| r.live_bytes).sum();

    // returned: the tree's RAM.
    let mut returned = BTreeMap::new();
    let mut returned_lazyfree = BTreeMap::new();
    let after_steady = phases
        .iter()
        .skip_while(|p| p.name != Phase::Steady)
        .skip(1);
    for p in after_steady {
        if let Some(share) = Returned::of(&forked.tree, &steady.tree, &p.tree) {
            returned.insert(p.name.to_string(), share.returned);
            returned_lazyfree.insert(p.name.to_string(), share.lazyfree);
        }
    }

    let (growth_bytes_per_1k_requests, growth_verdict) = match growth(timeline) {
        Some((slope, verdict)) => (Some(slope), Some(verdict)),
        None => (None, None),
    };

    let cow: Vec<f64> = steady
        .workers()
        .map(|(_, w)| w.shared() as f64 / master_rss_forked as f64)
        .collect();
    let cow_efficiency = (!cow.is_empty() && master_rss_forked > 0)
        .then(|| cow.iter().sum::<f64>() / cow.len() as f64);

    let cows: Option<Vec<_>> = steady.workers().map(|(p, _)| p.cow.as_ref()).collect();
    let cow_sum = |f: fn(&crate::results::cow::CowSample) -> u64| {
        cows.as_ref()
            .filter(|c| !c.is_empty())
            .map(|c| c.iter().map(|s| f(s)).sum())
    };

    let mut histogram = latency_histogram();
    let mut requests = 0;
    let mut slowest_ns = 0u64;
    for r in &worker_reports {
        requests += r.requests.unwrap_or(0);
        slowest_ns = slowest_ns.max(r.serve_ns.unwrap_or(0));
        merge_latency(&mut histogram, r.latency_ns.as_deref().unwrap_or(&[]));
    }
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1e3;
    let (tree_pss_anon_mean, tree_pss_anon_peak) = serving_pss_anon(timeline);

    Ok(Metrics {
        restarts: timeline.restarts.len() as u32,
        tree_pss_anon_mean,
        tree_pss_anon_peak,
        tree_pss_steady: steady.tree.pss,
        tree_pss_anon_steady: steady.tree.pss_anon,
        tree_uss_steady: steady.tree.uss,
        tree_rss_steady: steady.tree.rss,
        tree_pss_trimmed: trimmed.tree.pss,
        tree_pss_anon_trimmed: trimmed.tree.pss_anon,
        master_rss_forked,
        static_live_bytes: reports
            .get(&(Role::Master, 0, Phase::Preloaded))
            .and_then(|r| r.static_live_bytes)
            .unwrap_or(0),
        worker_private_dirty_growth: top.private_dirty as i64 - base.private_dirty as i64,
        cow_efficiency,
        growth_bytes_per_1k_requests,
        growth_verdict,
        cow_copied: cow_sum(|c| c.cow_copied),
        cow_shared: cow_sum(|c| c.cow_shared),
        cow_new: cow_sum(|c| c.cow_new),
        cow_new_shared: cow_sum(|c| c.cow_new_shared),
        fragmentation: (live_bytes_steady > 0)
            .then(|| private_growth as f64 / live_bytes_steady as f64),
        fragmentation_over_requests: fragmentation_over_requests(timeline, base.uss_net(), forks),
        live_bytes_steady,
        returned,
        returned_lazyfree,
        requests,
        idle_requests: keys
            .iter()
            .map(|&(role, i)| {
                reports
                    .get(&(role, i, Phase::Trimmed))
                    .and_then(|r| r.idle_requests)
            })
            .sum(),
        throughput_rps: if slowest_ns > 0 {
            requests as f64 / (slowest_ns as f64 / 1e9)
        } else {
            0.0
        },
        latency_p50_us: us(0.50),
        latency_p99_us: us(0.99),
        latency_p999_us: us(0.999),
        latency_max_us: histogram.max() as f64 / 1e3,
        arenas: worker_reports.iter().filter_map(|r| r.arenas).max(),
        background_thread: worker_reports
            .iter()
            .map(|r| r.background_thread)
            .collect::<Option<Vec<bool>>>()
            .map(|v| v.iter().all(|&b| b)),
        anon_huge_steady: Some(steady.tree.anon_huge),
        thp_disabled: reports
            .get(&(Role::Master, 0, Phase::Started))
            .and_then(|r| r.thp_disabled),
    })
}

/// Points of [`fragmentation_over_requests`] kept at most.
const FRAGMENTATION_POINTS: usize = 16;

/// The fragmentation ratio while serving, from the timeline: at each point
/// that walked the page tables, the serving processes' growth of USS less
/// `LazyFree` since `base` (their figure at the fork) over the bytes their
/// caches held live, as (requests served, ratio); at most
/// `FRAGMENTATION_POINTS`, evenly spread. Points without live bytes, without
/// a walk or with a missed process are left out.
pub fn fragmentation_over_requests(t: &Timeline, base: i64, forks: bool) -> Vec<(u64, f64)> {
    let serving: Vec<&crate::results::ProcessSeries> = t
        .processes
        .iter()
        .filter(|p| (p.role == crate::results::ProcessRole::Worker) == forks)
        .collect();
    let points: Vec<(u64, f64)> = (0..t.len())
        .filter(|&i| t.phase[i] == Phase::Steady)
        .filter_map(|i| {
            let live = *t.live_bytes.get(i)?;
            let mut net = 0i64;
            for p in &serving {
                let uss = (*p.mem.uss.get(i)?)?;
                let lazy = (*p.mem.lazyfree.get(i)?)?;
                net += uss as i64 - lazy as i64;
            }
            (live > 0 && !serving.is_empty())
                .then(|| (t.requests[i], (net - base) as f64 / live as f64))
        })
        .collect();
    let n = points.len();
    if n <= FRAGMENTATION_POINTS {
        return points;
    }
    (0..FRAGMENTATION_POINTS)
        .map(|k| points[k * (n - 1) / (FRAGMENTATION_POINTS - 1)])
        .collect()
}

/// Tree anonymous PSS over the serving phase, from the timeline's walked
/// points: the mean over time (trapezoids between points; one point is its
/// own mean) and the largest point. `None` without a walked point.
pub fn serving_pss_anon(t: &Timeline) -> (Option<u64>, Option<u64>) {
    let points: Vec<(f64, f64)> = (0..t.len())
        .filter(|&i| t.phase[i] == Phase::Steady)
        .filter_map(|i| t.tree.pss_anon[i].map(|y| (t.t_ms[i], y as f64)))
        .collect();
    let peak = points
        .iter()
        .map(|p| p.1)
        .fold(None, |m: Option<f64>, y| Some(m.map_or(y, |m| m.max(y))));
    let span = match (points.first(), points.last()) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => return (None, None),
    };
    let mean = if span > 0.0 {
        points
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum::<f64>()
            / span
    } else {
        points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64
    };
    (Some(mean.round() as u64), peak.map(|p| p as u64))
}

/// Growth of tree anonymous PSS over requests in the second half of the
/// serving phase, from the timeline: the least-squares slope in bytes per
/// 1,000 requests, and whether that is a plateau or growth. Growing means the
/// slope adds more than 2% of the mean (and at least 1 MiB) over the second
/// half. `None` when the timeline has fewer than three points there.
pub fn growth(t: &Timeline) -> Option<(f64, GrowthVerdict)> {
    let last = t.requests.iter().copied().max()?;
    let points: Vec<(f64, f64)> = (0..t.len())
        .filter(|&i| t.phase[i] == Phase::Steady && t.requests[i] * 2 >= last && t.requests[i] > 0)
        .filter_map(|i| t.tree.pss_anon[i].map(|y| (t.requests[i] as f64, y as f64)))
        .collect();
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    let span = points.iter().map(|p| p.0).fold(f64::MIN, f64::max)
        - points.iter().map(|p| p.0).fold(f64::MAX, f64::min);
    let grown = slope * span;
    let verdict = if grown > (0.02 * my).max((1u64 << 20) as f64) {
        GrowthVerdict::Growing
    } else {
        GrowthVerdict::Plateau
    };
    Some((slope * 1000.0, verdict))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_over_serving_weighs_time_and_the_peak_is_the_largest_walked_point() {
        // Serving points at 0, 1 and 3 s holding 100, 300 and 300 MiB, one
        // counter-only point (no PSS) between, and points outside serving.
        // Trapezoids: (100+300)/2 × 1 + 300 × 2 = 800 MiB·s over 3 s.
        const MIB: u64 = 1 << 20;
        let mut t = Timeline::default();
        for (ms, phase, pss) in [
            (0.0, "forked", Some(999)),
            (0.0, "steady", Some(100)),
            (500.0, "steady", None),
            (1000.0, "steady", Some(300)),
            (3000.0, "steady", Some(300)),
            (3500.0, "idle", Some(5)),
        ] {
            t.t_ms.push(ms);
            t.phase.push(phase.parse().unwrap());
            t.tree.pss_anon.push(pss.map(|v: u64| v * MIB));
        }
        let (mean, peak) = serving_pss_anon(&t);
        assert_eq!(mean, Some(800 * MIB / 3 + 1));
        assert_eq!(peak, Some(300 * MIB));
        // One point is its own mean; none is no figure.
        let one = Timeline {
            t_ms: vec![0.0],
            phase: vec![Phase::Steady.into()],
            tree: crate::results::MemSeries {
                pss_anon: vec![Some(7 * MIB)],
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(serving_pss_anon(&one), (Some(7 * MIB), Some(7 * MIB)));
        assert_eq!(serving_pss_anon(&Timeline::default()), (None, None));
    }
    use crate::results::{Mem, ProcessRole, ProcessSample};

    fn phase(name: &str, master: Mem, workers: &[Mem]) -> PhaseSample {
        let mut processes = vec![ProcessSample {
            pid: 1,
            role: ProcessRole::Master,
            index: None,
            mem: Some(master),
            missed: None,
            cow: None,
            cow_missed: None,
        }];
        for (i, w) in workers.iter().enumerate() {
            processes.push(ProcessSample {
                pid: 2 + i as i32,
                role: ProcessRole::Worker,
                index: Some(i as u32),
                mem: Some(*w),
                missed: None,
                cow: None,
                cow_missed: None,
            });
        }
        let mut tree = Mem::default();
        for p in &processes {
            tree.add(p.mem.as_ref().unwrap());
        }
        PhaseSample {
            requests: 0,
            name: name.parse().unwrap(),
            t_ms: 0.0,
            tree,
            processes,
        }
    }

    /// A process's memory: anonymous PSS, of it `LazyFree`, its private
    /// (dirty) memory and what it shares.
    fn anon(pss_anon: u64, lazyfree: u64, private_dirty: u64, shared: u64) -> Mem {
        Mem {
            anonymous: private_dirty + shared,
            pss_anon,
            lazyfree,
            private_dirty,
            uss: private_dirty,
            shared_dirty: shared,
            rss: private_dirty + shared,
            pss: pss_anon,
            ..Mem::default()
        }
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn known_answers() {
        // 100 MiB of the master's memory, shared with two workers at the
        // fork: 100 MiB of tree PSS, no private memory in the workers.
        let master = anon(60 * MIB, 0, 0, 100 * MIB);
        let phases = vec![
            phase("forked", master, &[anon(20 * MIB, 0, 0, 100 * MIB); 2]),
            // Each worker copies or allocates 40 MiB: the tree grows by 80.
            phase(
                "steady",
                master,
                &[anon(60 * MIB, 0, 40 * MIB, 80 * MIB); 2],
            ),
            // 20 MiB of the 80 given back, 20 more freed with MADV_FREE.
            phase(
                "drained",
                master,
                &[anon(50 * MIB, 10 * MIB, 30 * MIB, 80 * MIB); 2],
            ),
            phase("trimmed", master, &[anon(20 * MIB, 0, 0, 80 * MIB); 2]),
        ];
        let mut reports = Reports::new();
        for i in 0..2 {
            reports.insert(
                (Role::Worker, i, Phase::Steady),
                PhaseReport {
                    requests: Some(1000),
                    serve_ns: Some(if i == 0 { 1_000_000_000 } else { 2_000_000_000 }),
                    latency_ns: Some(vec![(1000, 98), (100_000, 2)]),
                    live_bytes: Some(20 * MIB),
                    arenas: Some(3 + i),
                    ..Default::default()
                },
            );
        }
        let spec = WorkloadSpec {
            processes: 2,
            ..WorkloadSpec::server()
        };
        let m = compute(&phases, &Timeline::default(), &reports, &spec).unwrap();
        assert_eq!(m.worker_private_dirty_growth, 80 * MIB as i64);
        assert_eq!(m.cow_efficiency, Some(0.8));
        // 80 MiB of private growth over 40 MiB live.
        assert_eq!(m.fragmentation, Some(2.0));
        assert_eq!(m.returned["drained"], 0.5);
        assert_eq!(m.returned_lazyfree["drained"], 0.25);
        assert_eq!(m.returned["trimmed"], 1.0);
        // 2000 requests over the slower worker's 2 s.
        assert_eq!(m.throughput_rps, 1000.0);
        assert_eq!(m.requests, 2000);
        // Within the histograms' 1% resolution.
        assert!(
            (m.latency_p50_us - 1.0).abs() <= 0.01,
            "{}",
            m.latency_p50_us
        );
        assert!(
            (m.latency_p99_us - 100.0).abs() <= 1.0,
            "{}",
            m.latency_p99_us
        );
        assert_eq!(m.arenas, Some(4));
        assert_eq!(m.master_rss_forked, 100 * MIB);
    }

    /// The old basis, the workers' `Anonymous`, would call this 100%
    /// returned: a worker that drops the master's pages it still shares
    /// frees no RAM.
    #[test]
    fn dropping_shared_pages_returns_nothing() {
        let master = anon(50 * MIB, 0, 0, 100 * MIB);
        let forked = phase("forked", master, &[anon(50 * MIB, 0, 0, 100 * MIB)]);
        // The worker allocates 40 MiB of its own…
        let steady = phase("steady", master, &[anon(90 * MIB, 0, 40 * MIB, 100 * MIB)]);
        // …keeps it, and drops the 100 MiB it shared: the master now holds
        // those pages alone, at full weight.
        let dropped = phase(
            "drained",
            anon(100 * MIB, 0, 100 * MIB, 0),
            &[anon(40 * MIB, 0, 40 * MIB, 0)],
        );
        let r = Returned::of(&forked.tree, &steady.tree, &dropped.tree).unwrap();
        assert_eq!(r.returned, 0.0);
        let old = |p: &PhaseSample| p.workers_sum().anonymous as f64;
        assert_eq!(
            (old(&steady) - old(&dropped)) / (old(&steady) - old(&forked)),
            2.5
        );
    }

    #[test]
    fn lazyfree_counts_from_its_level_at_steady() {
        let master = anon(100 * MIB, 0, 100 * MIB, 0);
        let spec = WorkloadSpec {
            processes: 1,
            ..WorkloadSpec::server()
        };
        let mut reports = Reports::new();
        reports.insert(
            (Role::Worker, 0, Phase::Steady),
            PhaseReport {
                requests: Some(1),
                serve_ns: Some(1),
                ..Default::default()
            },
        );
        // 40 MiB of growth (net of the 5 MiB already lazy-free at steady);
        // 10 more MiB go lazy-free at drained, and the kernel reclaims all
        // of it before trimmed.
        let phases = vec![
            phase("forked", master, &[anon(0, 0, 0, 100 * MIB)]),
            phase("steady", master, &[anon(45 * MIB, 5 * MIB, 45 * MIB, 0)]),
            phase("drained", master, &[anon(45 * MIB, 15 * MIB, 45 * MIB, 0)]),
            phase("trimmed", master, &[anon(10 * MIB, 0, 10 * MIB, 0)]),
        ];
        let m = compute(&phases, &Timeline::default(), &reports, &spec).unwrap();
        assert_eq!(m.returned["drained"], 0.25);
        assert_eq!(m.returned_lazyfree["drained"], 0.25);
        assert_eq!(m.returned["trimmed"], 0.75);
        assert_eq!(m.returned_lazyfree["trimmed"], 0.0);
    }

    #[test]
    fn a_missed_sample_fails_the_metrics() {
        let mut p = phase("forked", Mem::default(), &[Mem::default()]);
        p.processes[1].mem = None;
        p.processes[1].missed = Some("process 2 is gone".into());
        let err = compute(
            &[p],
            &Timeline::default(),
            &Reports::new(),
            &WorkloadSpec::server(),
        )
        .unwrap_err();
        assert!(matches!(err, MetricsError::Incomplete { .. }), "{err}");
        assert!(err.to_string().contains("incomplete"), "{err}");
    }
}

#[cfg(test)]
mod growth_tests {
    use super::*;
    use crate::results::Mem;

    fn timeline(points: &[(u64, u64)]) -> Timeline {
        let mut t = Timeline::default();
        for &(requests, pss_anon) in points {
            let m = Mem {
                pss_anon,
                ..Mem::default()
            };
            t.push(0.0, Phase::Steady.into(), requests, &m, &[], true);
        }
        t
    }

    #[test]
    fn a_steady_climb_is_growing_with_its_slope() {
        // 1 MiB per 1,000 requests over 20,000 requests.
        let pts: Vec<(u64, u64)> = (0..=20).map(|i| (i * 1000, (100 + i) << 20)).collect();
        let (slope, verdict) = growth(&timeline(&pts)).unwrap();
        assert_eq!(verdict, GrowthVerdict::Growing);
        assert!((slope - (1 << 20) as f64).abs() < 1.0, "{slope}");
    }

    #[test]
    fn a_flat_line_with_noise_is_a_plateau() {
        let pts: Vec<(u64, u64)> = (0..=20)
            .map(|i| (i * 1000, (200 << 20) + (i % 3) * 4096))
            .collect();
        assert_eq!(growth(&timeline(&pts)).unwrap().1, GrowthVerdict::Plateau);
    }

    #[test]
    fn an_early_climb_that_levels_off_is_a_plateau() {
        // Growth only in the first half: the second half decides.
        let pts: Vec<(u64, u64)> = (0..=20)
            .map(|i| (i * 1000, (100 + i.min(10) * 10) << 20))
            .collect();
        assert_eq!(growth(&timeline(&pts)).unwrap().1, GrowthVerdict::Plateau);
    }

    #[test]
    fn too_few_points_give_no_verdict() {
        assert!(growth(&timeline(&[(1000, 1), (2000, 2)])).is_none());
    }

    #[test]
    fn fragmentation_follows_resident_over_live_bytes() {
        use crate::results::{ProcessRole, ProcessSample};
        const MIB: u64 = 1 << 20;
        let worker = |pid: i32, uss: u64, lazyfree: u64| ProcessSample {
            pid,
            role: ProcessRole::Worker,
            index: Some(pid as u32),
            mem: Some(Mem {
                uss,
                lazyfree,
                ..Mem::default()
            }),
            missed: None,
            cow: None,
            cow_missed: None,
        };
        let master = ProcessSample {
            role: ProcessRole::Master,
            index: None,
            ..worker(9, 500 * MIB, 0)
        };
        let mut t = Timeline::default();
        // Two workers from 10 MiB of USS each at the fork (base 20 MiB): live bytes
        // 8 MiB, then 8 MiB with 16 MiB more resident (1 MiB of it lazy-free,
        // not counted), then 4 MiB live with resident unchanged.
        for (phase, requests, uss, lazy, live) in [
            (Phase::Forked, 0, 10, 0, 0),
            (Phase::Steady, 100, 18, 0, 8),
            (Phase::Steady, 200, 26, 1, 8),
            (Phase::Steady, 300, 26, 1, 4),
            (Phase::Drained, 300, 10, 0, 0),
        ] {
            let procs = [
                master.clone(),
                worker(1, uss * MIB, lazy * MIB),
                worker(2, uss * MIB, lazy * MIB),
            ];
            t.push(0.0, phase.into(), requests, &Mem::default(), &procs, true);
            t.live_bytes.push(live * 2 * MIB);
        }
        let f = fragmentation_over_requests(&t, (20 * MIB) as i64, true);
        assert_eq!(f, [(100, 1.0), (200, 1.875), (300, 3.75)]);
        // Evenly thinned to at most 16 points, first and last kept.
        let mut long = Timeline::default();
        for r in 0..100u64 {
            long.push(
                0.0,
                Phase::Steady.into(),
                r,
                &Mem::default(),
                &[worker(1, 2 * MIB, 0)],
                true,
            );
            long.live_bytes.push(MIB);
        }
        let f = fragmentation_over_requests(&long, 0, true);
        assert_eq!(f.len(), FRAGMENTATION_POINTS);
        assert_eq!((f[0].0, f[15].0), (0, 99));
        assert!(f.iter().all(|&(_, x)| x == 2.0));
    }
}
