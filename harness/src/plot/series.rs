//! The numbers drawn, taken from the cells: series over time and against
//! requests, phase markers, idle offsets.

use allocbench_workloads::Phase;

use crate::results::phase::PhaseName;
use crate::results::{CellResult, PhaseSample, ProcessRole, Timeline, TimelinePhase};

/// Bytes in a MiB: the charts draw MiB.
pub(super) const MIB: f64 = (1u64 << 20) as f64;
/// (x, value) points; `None` where a value is missing (a gap in the line).
pub(super) type Series = Vec<(f64, Option<f64>)>;

/// Shapes that mark phase boundaries on a variant's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Marker {
    /// `measure`: the command was ready (its `started` sample).
    Ready,
    /// `measure`: the end of the load.
    Loaded,
    Forked,
    Steady,
    Drained,
    Idle,
    Trimmed,
    /// A worker replaced under `--lifecycle` (it retired, or became the
    /// mold).
    Restart,
}

impl Marker {
    pub(super) fn of(phase: PhaseName) -> Option<Marker> {
        match phase {
            PhaseName::Fixed(Phase::Forked) => Some(Marker::Forked),
            PhaseName::Fixed(Phase::Steady) => Some(Marker::Steady),
            PhaseName::Fixed(Phase::Drained) => Some(Marker::Drained),
            PhaseName::Fixed(Phase::Trimmed) => Some(Marker::Trimmed),
            PhaseName::Idle(_) => Some(Marker::Idle),
            PhaseName::Loaded => Some(Marker::Loaded),
            _ => None,
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Marker::Ready => "ready",
            Marker::Loaded => "loaded",
            Marker::Forked => "forked",
            Marker::Steady => "steady",
            Marker::Drained => "drained",
            Marker::Idle => "idle+… sample",
            Marker::Trimmed => "trimmed",
            Marker::Restart => "worker replaced",
        }
    }
}

/// A marker on the line at each worker restart (`--lifecycle`), where the
/// line is drawn at that moment (between the points around it).
pub(super) fn restart_markers(cell: &CellResult, line: &Series) -> Vec<(f64, f64, Marker)> {
    let points: Vec<(f64, f64)> = line.iter().filter_map(|&(x, y)| Some((x, y?))).collect();
    cell.timeline
        .restarts
        .iter()
        .filter_map(|r| {
            let x = r.t_ms / 1e3;
            let after = points.iter().position(|p| p.0 >= x);
            let y = match after {
                Some(0) => points[0].1,
                Some(i) => {
                    let ((x0, y0), (x1, y1)) = (points[i - 1], points[i]);
                    y0 + (y1 - y0) * (x - x0) / (x1 - x0).max(f64::MIN_POSITIVE)
                }
                None => points.last()?.1,
            };
            Some((x, y, Marker::Restart))
        })
        .collect()
}

/// The idle offset in seconds of a phase named `idle+<seconds>s`.
/// The offset of an idle phase named in a map of the document (`returned`).
pub(super) fn idle_offset(phase: &str) -> Option<f64> {
    phase.parse::<PhaseName>().ok()?.idle_offset()
}

pub(super) fn phase_t(cell: &CellResult, name: Phase) -> Option<f64> {
    cell.phases
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.t_ms / 1e3)
}

/// A cell's series over time from its timeline (which holds the exact
/// samples at the phase boundaries too), (seconds since the cell started,
/// value), up to `trimmed` (after it the processes exit and leave the tree).
/// A point that read only the kernel's counters has no value of a figure
/// that needs a walk (PSS, USS): it is left out, so that the line joins the
/// walked points around it; a gap stays where a walked point has no value.
pub(super) fn time_series(
    cell: &CellResult,
    at_point: impl Fn(&Timeline, usize) -> Option<f64>,
) -> Series {
    let t = &cell.timeline;
    let end = phase_t(cell, Phase::Trimmed);
    (0..t.len())
        .filter(|&i| t.phase[i] != TimelinePhase::Exit)
        .map(|i| (i, t.t_ms[i] / 1e3, at_point(t, i)))
        .filter(|&(i, _, v)| v.is_some() || t.walked.get(i).copied().unwrap_or(true))
        .map(|(_, x, v)| (x, v))
        .filter(|(x, _)| end.is_none_or(|e| *x <= e))
        .collect()
}

/// Whether the cell is a `measure` row (a user's command, not the
/// synthetic workload).
pub(super) fn measured(cell: &CellResult) -> bool {
    cell.workload == crate::results::measure::WORKLOAD
}

/// When a cell's idle period begins, in seconds: `drained`, or for a
/// measured command `loaded` (the load's end).
pub(super) fn idle_start(cell: &CellResult) -> Option<f64> {
    if measured(cell) {
        cell.phases
            .iter()
            .find(|p| p.name == PhaseName::Loaded)
            .map(|p| p.t_ms / 1e3)
    } else {
        phase_t(cell, Phase::Drained)
    }
}

/// The markers of a cell's phase boundaries, (seconds, value, shape).
pub(super) fn phase_markers(
    cell: &CellResult,
    at_phase: impl Fn(&PhaseSample) -> Option<f64>,
) -> Vec<(f64, f64, Marker)> {
    let mut markers: Vec<(f64, f64, Marker)> = cell
        .phases
        .iter()
        .filter_map(|p| {
            // A measured command's `started` is the moment it was ready.
            let marker = match Marker::of(p.name) {
                None if measured(cell) && p.name == Phase::Started => Marker::Ready,
                m => m?,
            };
            Some((p.t_ms / 1e3, at_phase(p)?, marker))
        })
        .collect();
    // Idle samples first, so the boundary drawn a moment before them
    // (`drained` before `idle+0s`) stays on top.
    markers.sort_by_key(|m| m.2 != Marker::Idle);
    markers
}

pub(super) fn tree_pss_at_point(t: &Timeline, i: usize) -> Option<f64> {
    t.tree
        .pss_anon
        .get(i)
        .copied()
        .flatten()
        .map(|b| b as f64 / MIB)
}

pub(super) fn tree_pss_at_phase(p: &PhaseSample) -> Option<f64> {
    Some(p.tree.pss_anon as f64 / MIB)
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = values.fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
    (n > 0).then(|| sum / n as f64)
}

pub(super) fn worker_uss_at_point(t: &Timeline, i: usize) -> Option<f64> {
    mean(
        t.processes
            .iter()
            .filter(|p| p.role == ProcessRole::Worker)
            .filter_map(|p| p.mem.uss.get(i).copied().flatten())
            .map(|b| b as f64 / MIB),
    )
}

pub(super) fn worker_uss_at_phase(p: &PhaseSample) -> Option<f64> {
    mean(p.workers().map(|(_, m)| m.uss as f64 / MIB))
}

pub(super) fn has_worker_series(t: &Timeline) -> bool {
    t.processes
        .iter()
        .any(|p| p.role == ProcessRole::Worker && p.mem.uss.iter().any(Option::is_some))
}

/// Indices of the timeline points taken while serving.
fn steady_indices(t: &Timeline) -> impl Iterator<Item = usize> + '_ {
    (0..t.len()).filter(|&i| t.phase.get(i).is_some_and(|p| *p == Phase::Steady))
}

/// (requests, tree anonymous PSS in MiB) while serving.
pub(super) fn steady_points(t: &Timeline) -> Vec<(f64, f64)> {
    steady_indices(t)
        .filter_map(|i| Some((*t.requests.get(i)? as f64, tree_pss_at_point(t, i)?)))
        .collect()
}

/// (requests, tree anonymous PSS in MiB) from the fork to the end of
/// serving: [`steady_points`] and the sample at `forked` (the last point of
/// that period).
pub(super) fn growth_points(cell: &CellResult) -> Vec<(f64, f64)> {
    let t = &cell.timeline;
    if steady_indices(t).next().is_none() {
        return Vec::new();
    }
    let forked = t.phase.iter().rposition(|p| *p == Phase::Forked);
    let mut points: Vec<(f64, f64, f64)> = forked
        .into_iter()
        .chain(steady_indices(t))
        .filter_map(|i| {
            Some((
                *t.requests.get(i)? as f64,
                t.t_ms[i],
                tree_pss_at_point(t, i)?,
            ))
        })
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    points.into_iter().map(|(r, _, v)| (r, v)).collect()
}

/// (requests, live bytes in MiB) while serving; empty when not recorded.
pub(super) fn live_points(t: &Timeline) -> Vec<(f64, f64)> {
    if t.live_bytes.len() != t.len() || t.live_bytes.iter().all(|&b| b == 0) {
        return Vec::new();
    }
    steady_indices(t)
        .filter_map(|i| Some((*t.requests.get(i)? as f64, t.live_bytes[i] as f64 / MIB)))
        .collect()
}

/// (requests, Σ workers' inherited MiB copied since the fork) while serving.
pub(super) fn cow_copied_points(t: &Timeline) -> Vec<(f64, f64)> {
    steady_indices(t)
        .filter_map(|i| {
            let copied: Vec<u64> = t
                .processes
                .iter()
                .filter(|p| p.role == ProcessRole::Worker)
                .filter_map(|p| p.cow_copied.get(i).copied().flatten())
                .collect();
            (!copied.is_empty()).then(|| {
                (
                    t.requests[i] as f64,
                    copied.iter().sum::<u64>() as f64 / MIB,
                )
            })
        })
        .collect()
}

/// Splits a series at missing values into drawable runs.
pub(super) fn runs(points: &[(f64, Option<f64>)]) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for &(x, y) in points {
        match y {
            Some(y) => out.last_mut().expect("one run").push((x, y)),
            None if !out.last().expect("one run").is_empty() => out.push(Vec::new()),
            None => {}
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_break_at_missing_values() {
        let r = runs(&[
            (0.0, Some(1.0)),
            (1.0, None),
            (2.0, Some(2.0)),
            (3.0, Some(3.0)),
        ]);
        assert_eq!(r, vec![vec![(0.0, 1.0)], vec![(2.0, 2.0), (3.0, 3.0)]]);
    }

    #[test]
    fn a_point_that_did_not_walk_is_left_out_and_a_walked_gap_stays() {
        let mut c = crate::plot::fixtures::cell("glibc", 1);
        let t = &mut c.timeline;
        *t = Default::default();
        for (i, (pss, walked)) in [
            (Some(10u64), true),
            (None, false),
            (Some(12), true),
            (None, true),
        ]
        .into_iter()
        .enumerate()
        {
            t.t_ms.push(i as f64 * 100.0);
            t.phase.push(Phase::Steady.into());
            t.requests.push(i as u64);
            t.walked.push(walked);
            t.tree.pss_anon.push(pss.map(|v| v << 20));
        }
        let s = time_series(&c, tree_pss_at_point);
        assert_eq!(s, vec![(0.0, Some(10.0)), (0.2, Some(12.0)), (0.3, None)]);
        // A document from before the walk budget walked every point.
        c.timeline.walked.clear();
        assert_eq!(time_series(&c, tree_pss_at_point).len(), 4);
    }

    #[test]
    fn idle_offsets_from_phase_names() {
        assert_eq!(idle_offset("idle+0.1s"), Some(0.1));
        assert_eq!(idle_offset("trimmed"), None);
    }
}
