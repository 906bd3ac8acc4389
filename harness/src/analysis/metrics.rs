//! Figures derived from a finished cell's phase samples and the workers'
//! reports. Their definitions are in `docs/metrics.md`, generated from the
//! registry in `results/metric.rs`; each has a test with a known answer.

use crate::results::phase::PhaseName;
use std::collections::{BTreeMap, HashMap};

use allocbench_workloads::{
    Phase, PhaseReport, Role, WorkloadSpec, latency_histogram, merge_latency,
};

use crate::results::{Mem, Metrics, PhaseSample, Timeline};

mod timeline;
pub use timeline::{fragmentation_over_requests, growth, serving_pss_anon};

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

#[cfg(test)]
mod tests {
    use super::*;
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
