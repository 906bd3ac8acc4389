//! What a `measure` row adds to its cell: how the command was run and
//! checked, every process seen, and the figures derived from the phase
//! samples (the record itself is [`crate::results::measure`]).

use allocbench_workloads::Phase;

use crate::results::measure::{FORK_SEEN_PRIVATE_DIRTY, MeasureMetrics, MeasuredProcess};
use crate::results::phase::PhaseName;

use super::load_output::LoadFigures;
use crate::analysis::metrics::Returned;
use crate::results::{CellResult, PhaseSample};

/// Σ descendants' `Private_Dirty` in a complete sample that has any.
fn workers_private_dirty(p: Option<&PhaseSample>) -> Option<u64> {
    p.filter(|p| p.workers().next().is_some())
        .map(|p| p.workers_sum().private_dirty)
}

/// Figures from the `started`, `loaded` and idle samples (by name), and
/// those read from the load command's output.
pub fn compute(
    phases: &[PhaseSample],
    idle_name: PhaseName,
    processes: &[MeasuredProcess],
    load: &LoadFigures,
) -> MeasureMetrics {
    let find = |name: PhaseName| phases.iter().find(|p| p.name == name);
    // Tree figures only from a complete sample.
    fn whole(p: Option<&PhaseSample>) -> Option<&PhaseSample> {
        p.filter(|p| p.processes.iter().all(|p| p.mem.is_some()))
    }
    let (started, loaded, idle) = (
        find(Phase::Started.into()),
        find(PhaseName::Loaded),
        find(idle_name),
    );
    let (started_w, loaded_w, idle_w) = (whole(started), whole(loaded), whole(idle));
    let count = |p: Option<&PhaseSample>| p.map(|p| p.processes.len() as u32);

    let cow_sum = |p: Option<&PhaseSample>, f: fn(&crate::results::cow::CowSample) -> u64| {
        let v: Vec<u64> = p?
            .processes
            .iter()
            .filter_map(|p| p.cow.as_ref().map(f))
            .collect();
        (!v.is_empty()).then(|| v.iter().sum())
    };
    let growth = loaded.and_then(|l| {
        let grown: Vec<i64> = l
            .workers()
            .filter_map(|(p, m)| {
                let first = processes
                    .iter()
                    .find(|q| q.pid == p.pid)?
                    .private_dirty_first
                    .filter(|&f| f <= FORK_SEEN_PRIVATE_DIRTY)?;
                Some(m.private_dirty as i64 - first as i64)
            })
            .collect();
        (!grown.is_empty()).then(|| grown.iter().sum())
    });
    let worker_uss = loaded_w
        .map(|l| l.workers().map(|(_, m)| m.uss).collect::<Vec<u64>>())
        .filter(|u| !u.is_empty());
    let share = match (started_w, loaded_w, idle_w) {
        (Some(s), Some(l), Some(i)) => Returned::of(&s.tree, &l.tree, &i.tree),
        _ => None,
    };
    MeasureMetrics {
        processes_started: count(started),
        processes_loaded: count(loaded),
        processes_idle: count(idle),
        processes_seen: processes.len() as u32,
        processes_gone: processes.iter().filter(|p| p.gone).count() as u32,
        tree_pss_started: started_w.map(|p| p.tree.pss),
        tree_pss_anon_started: started_w.map(|p| p.tree.pss_anon),
        tree_pss_loaded: loaded_w.map(|p| p.tree.pss),
        tree_pss_anon_loaded: loaded_w.map(|p| p.tree.pss_anon),
        tree_uss_loaded: loaded_w.map(|p| p.tree.uss),
        tree_rss_loaded: loaded_w.map(|p| p.tree.rss),
        tree_pss_idle: idle_w.map(|p| p.tree.pss),
        tree_pss_anon_idle: idle_w.map(|p| p.tree.pss_anon),
        worker_private_dirty_loaded: workers_private_dirty(loaded_w),
        worker_private_dirty_idle: workers_private_dirty(idle_w),
        worker_private_dirty_growth: growth,
        cow_copied_loaded: cow_sum(loaded, |c| c.cow_copied),
        cow_shared_loaded: cow_sum(loaded, |c| c.cow_shared),
        cow_copied_idle: cow_sum(idle, |c| c.cow_copied),
        returned_idle: share.map(|s| s.returned),
        returned_lazyfree_idle: share.map(|s| s.lazyfree),
        load_rps: load.rps,
        tree_uss_started: started_w.map(|p| p.tree.uss),
        tree_uss_idle: idle_w.map(|p| p.tree.uss),
        worker_uss_loaded_mean: worker_uss
            .as_ref()
            .map(|u| u.iter().sum::<u64>() / u.len() as u64),
        worker_uss_loaded_max: worker_uss.as_ref().and_then(|u| u.iter().max().copied()),
        cow_efficiency_loaded: match (
            cow_sum(loaded, |c| c.cow_shared),
            cow_sum(loaded, |c| c.cow_copied),
        ) {
            (Some(s), Some(c)) if s + c > 0 => Some(s as f64 / (s + c) as f64),
            _ => None,
        },
        load_latency_p50_ms: load.p50_ms,
        load_latency_p99_ms: load.p99_ms,
        load_tool: load.tool.map(String::from),
        tree_anon_huge_loaded: loaded_w.map(|p| p.tree.anon_huge),
        tree_anon_huge_idle: idle_w.map(|p| p.tree.anon_huge),
    }
}

/// Where an interrupted row was, from the samples it took.
pub(super) fn interrupted_stage(cell: &CellResult) -> &'static str {
    let has = |p: PhaseName| cell.phases.iter().any(|s| s.name == p);
    let began = cell.measure.as_ref().is_some_and(|r| r.ready_ms.is_some());
    if cell
        .phases
        .iter()
        .any(|s| matches!(s.name, PhaseName::Idle(_)))
        || has(PhaseName::Loaded)
    {
        "while idle"
    } else if began {
        "during the load"
    } else if cell.stderr_tail.is_empty()
        && cell.measure.as_ref().is_none_or(|r| r.processes.is_empty())
    {
        "before it started"
    } else {
        "before it was ready"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::cow::CowSample;
    use crate::results::{Mem, ProcessRole, ProcessSample};

    const MIB: u64 = 1 << 20;

    fn proc_(pid: i32, role: ProcessRole, mem: Mem, copied: Option<u64>) -> ProcessSample {
        ProcessSample {
            pid,
            role,
            index: (role == ProcessRole::Worker).then_some(pid as u32),
            mem: Some(mem),
            missed: None,
            cow: copied.map(|c| CowSample {
                cow_copied: c,
                cow_shared: 10 * MIB - c,
                ..Default::default()
            }),
            cow_missed: None,
        }
    }

    fn phase(name: &str, procs: Vec<ProcessSample>) -> PhaseSample {
        let mut tree = Mem::default();
        for p in &procs {
            tree.add(p.mem.as_ref().unwrap());
        }
        PhaseSample {
            requests: 0,
            name: name.parse().unwrap(),
            t_ms: 0.0,
            tree,
            processes: procs,
        }
    }

    fn mem(anonymous: u64, lazyfree: u64, private_dirty: u64) -> Mem {
        Mem {
            anonymous,
            lazyfree,
            private_dirty,
            pss: anonymous,
            pss_anon: anonymous,
            uss: anonymous,
            ..Mem::default()
        }
    }

    fn huge(m: Mem, anon_huge: u64) -> Mem {
        Mem { anon_huge, ..m }
    }

    #[test]
    fn known_answers() {
        use ProcessRole::{Master, Worker};
        let phases = vec![
            phase(
                "started",
                vec![
                    proc_(1, Master, mem(10 * MIB, 0, 10 * MIB), None),
                    proc_(2, Worker, mem(10 * MIB, 0, MIB), Some(MIB)),
                    proc_(3, Worker, mem(10 * MIB, 0, MIB), Some(MIB)),
                ],
            ),
            // Worker 3 was replaced by 4; 2 grew by 8 MiB.
            phase(
                "loaded",
                vec![
                    proc_(1, Master, mem(10 * MIB, 0, 10 * MIB), None),
                    proc_(2, Worker, mem(18 * MIB, 0, 9 * MIB), Some(3 * MIB)),
                    proc_(4, Worker, huge(mem(10 * MIB, 0, MIB), 4 * MIB), Some(MIB)),
                ],
            ),
            // 4 of the 8 MiB given back, 2 of them lazily.
            phase(
                "idle+5s",
                vec![
                    proc_(1, Master, huge(mem(10 * MIB, 0, 10 * MIB), 2 * MIB), None),
                    proc_(2, Worker, mem(16 * MIB, 2 * MIB, 7 * MIB), Some(3 * MIB)),
                    proc_(4, Worker, huge(mem(10 * MIB, 0, MIB), 4 * MIB), Some(MIB)),
                ],
            ),
        ];
        let seen = |pid: i32, first: u64| MeasuredProcess {
            pid,
            parent: Some(1),
            depth: 1,
            role: Worker,
            index: Some(pid as u32),
            command: "w".into(),
            first_seen_ms: 0.0,
            last_seen_ms: 0.0,
            gone: pid == 3,
            cow_baseline_ms: Some(0.0),
            cow_missed: None,
            first_sample_ms: Some(0.0),
            private_dirty_first: Some(first),
            adopted: false,
            check: None,
        };
        // 2 was first read as it forked; 4 after it had run (½ MiB dirty).
        let procs = [seen(2, 16 << 10), seen(3, MIB), seen(4, MIB / 2)];
        let load = LoadFigures {
            tool: Some("wrk"),
            rps: Some(1234.5),
            p50_ms: Some(0.8),
            p99_ms: Some(36.7),
            ..LoadFigures::default()
        };
        let m = compute(&phases, PhaseName::Idle(5.0), &procs, &load);
        assert_eq!(m.processes_seen, 3);
        assert_eq!(m.processes_gone, 1);
        assert_eq!(m.processes_loaded, Some(3));
        assert_eq!(m.tree_pss_anon_started, Some(30 * MIB));
        assert_eq!(m.tree_pss_anon_loaded, Some(38 * MIB));
        // Growth since the fork of the one worker whose fork was seen.
        assert_eq!(
            m.worker_private_dirty_growth,
            Some(9 * MIB as i64 - (16 << 10))
        );
        assert_eq!(m.worker_private_dirty_loaded, Some(10 * MIB));
        assert_eq!(m.worker_private_dirty_idle, Some(8 * MIB));
        assert_eq!(m.cow_copied_loaded, Some(4 * MIB));
        assert_eq!(m.returned_idle, Some(0.5));
        assert_eq!(m.returned_lazyfree_idle, Some(0.25));
        assert_eq!(m.load_rps, Some(1234.5));
        assert_eq!(
            (m.load_latency_p50_ms, m.load_latency_p99_ms),
            (Some(0.8), Some(36.7))
        );
        assert_eq!(m.load_tool.as_deref(), Some("wrk"));
        assert_eq!(m.tree_uss_started, Some(30 * MIB));
        assert_eq!(m.tree_uss_loaded, Some(38 * MIB));
        assert_eq!(m.tree_uss_idle, Some(36 * MIB));
        assert_eq!(m.worker_uss_loaded_mean, Some(14 * MIB));
        assert_eq!(m.worker_uss_loaded_max, Some(18 * MIB));
        // 16 of the 20 MiB the two workers inherited are still shared.
        assert_eq!(m.cow_efficiency_loaded, Some(0.8));
        // Summed over the tree: worker 4's at loaded, and the master's too
        // at idle.
        assert_eq!(m.tree_anon_huge_loaded, Some(4 * MIB));
        assert_eq!(m.tree_anon_huge_idle, Some(6 * MIB));
    }

    #[test]
    fn what_does_not_apply_is_null() {
        let lone = phase(
            "started",
            vec![proc_(1, ProcessRole::Master, mem(MIB, 0, MIB), None)],
        );
        let mut loaded = lone.clone();
        loaded.name = PhaseName::Loaded;
        let m = compute(
            &[lone, loaded],
            PhaseName::Idle(5.0),
            &[],
            &LoadFigures::default(),
        );
        // No workers, no CoW, no idle sample, no growth to return.
        assert_eq!(m.worker_private_dirty_loaded, None);
        assert_eq!(m.worker_private_dirty_growth, None);
        assert_eq!(m.cow_copied_loaded, None);
        assert_eq!(m.tree_pss_idle, None);
        assert_eq!(m.returned_idle, None);
        assert_eq!(m.tree_pss_loaded, Some(MIB));
    }

    #[test]
    fn a_missed_process_voids_the_tree_figures_of_its_phase() {
        let mut p = phase(
            "loaded",
            vec![
                proc_(1, ProcessRole::Master, mem(MIB, 0, MIB), None),
                proc_(2, ProcessRole::Worker, mem(MIB, 0, MIB), None),
            ],
        );
        p.processes[1].mem = None;
        p.processes[1].missed = Some("/proc/2/smaps_rollup: permission denied".into());
        let m = compute(&[p], PhaseName::Idle(5.0), &[], &LoadFigures::default());
        assert_eq!(m.tree_pss_loaded, None);
        assert_eq!(m.tree_anon_huge_loaded, None);
        assert_eq!(m.processes_loaded, Some(2));
    }
}
