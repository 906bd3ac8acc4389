//! Figures read off a cell's timeline while serving: tree anonymous PSS's
//! mean and peak, its growth over requests, and the fragmentation ratio.

use allocbench_workloads::Phase;

use crate::results::{GrowthVerdict, Timeline};

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
    use crate::results::Mem;

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
