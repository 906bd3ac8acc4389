//! One cell's processes one by one: anonymous PSS of each over time.

use allocbench_workloads::Phase;
use plotters::prelude::*;

use super::layout::*;
use super::series::*;
use super::style::*;
use crate::results::{CellResult, ProcessRole, TimelinePhase};

pub(super) fn processes(group: &str, cell: &CellResult) -> anyhow::Result<String> {
    let t = &cell.timeline;
    let end = phase_t(cell, Phase::Trimmed);
    let keep =
        |i: usize| t.phase[i] != TimelinePhase::Exit && end.is_none_or(|e| t.t_ms[i] / 1e3 <= e);
    let mut lines: Vec<(String, RGBColor, Series)> = Vec::new();
    let mut procs: Vec<_> = t.processes.iter().collect();
    procs.sort_by_key(|p| (p.role == ProcessRole::Worker, p.index));
    for (n, p) in procs.iter().enumerate() {
        let name = match (p.role, p.index) {
            (ProcessRole::Worker, Some(i)) => format!("worker {i}"),
            (role, _) => role.name().to_string(),
        };
        let points: Series = (0..t.len())
            .filter(|&i| keep(i))
            .map(|i| {
                (
                    t.t_ms[i] / 1e3,
                    p.mem
                        .pss_anon
                        .get(i)
                        .copied()
                        .flatten()
                        .map(|b| b as f64 / MIB),
                )
            })
            .collect();
        lines.push((name, PALETTE[n % PALETTE.len()], points));
    }
    // Live bytes are as of the last progress report: stale once the caches
    // are freed at drained.
    let drained = phase_t(cell, Phase::Drained);
    let live: Vec<(f64, f64)> =
        if t.live_bytes.len() == t.len() && t.live_bytes.iter().any(|&b| b > 0) {
            (0..t.len())
                .filter(|&i| keep(i) && drained.is_none_or(|d| t.t_ms[i] / 1e3 <= d))
                .map(|i| (t.t_ms[i] / 1e3, t.live_bytes[i] as f64 / MIB))
                .collect()
        } else {
            Vec::new()
        };
    let ys: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.2.iter().filter_map(|p| p.1))
        .chain(live.iter().map(|p| p.1))
        .collect();
    let y = y_range(ys.iter());
    let span = y.end - y.start;
    let x_end = lines
        .iter()
        .flat_map(|l| l.2.iter().map(|p| p.0))
        .chain(end)
        .fold(0.0f64, f64::max)
        .max(0.001);
    let vlines: Vec<(f64, String)> = cell
        .phases
        .iter()
        .filter(|p| Marker::of(p.name).is_some())
        .map(|p| (p.t_ms / 1e3, p.name.to_string()))
        .collect();
    let mut legend: Vec<(Swatch, String)> = lines
        .iter()
        .map(|l| (Swatch::Line(l.1), l.0.clone()))
        .collect();
    if !live.is_empty() {
        legend.push((
            Swatch::Dashed(INK),
            "bytes live in the caches (all serving processes)".into(),
        ));
    }
    let x_fmt = move |v: &f64| axis_number(*v, x_end);
    let y_fmt = move |v: &f64| axis_number(*v, span);
    image(
        &format!("{group}, {}: anonymous PSS per process", cell.variant),
        "each process of the tree over time; dashed vertical lines: phase boundaries",
        &Legend(legend, Vec::new()),
        |root, plot| {
            let mut axes = Axes {
                x: 0.0..x_end * 1.02,
                y,
                x_desc: "seconds since the cell started".into(),
                y_desc: "MiB (anonymous PSS)".into(),
                x_fmt: &x_fmt,
                y_fmt: &y_fmt,
                top: 0,
                y_labels: true,
            };
            let (vlines, rows) = {
                let probe = layout(plot, &axes)?;
                let px = |x: f64| probe.backend_coord(&(x, 0.0)).0;
                let merged = merge_close(&px, &vlines);
                let rows = label_rows(&px, &merged);
                (merged, rows)
            };
            axes.top = rows.iter().max().map_or(0, |r| (*r as u32 + 1) * 15 + 4);
            let mut chart = build(plot, &axes)?;
            draw_vlines(root, &mut chart, &vlines, &rows)?;
            for (_, colour, points) in &lines {
                for run in runs(points) {
                    draw_line(&mut chart, &run, *colour)?;
                }
            }
            if !live.is_empty() {
                draw_dashed(&mut chart, &live, INK)?;
            }
            Ok(())
        },
    )
}
