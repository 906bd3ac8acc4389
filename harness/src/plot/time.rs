//! Charts of a value over time, one line per variant: tree anonymous PSS
//! and worker USS.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::layout::*;
use super::series::*;
use super::style::*;
use crate::results::{CellResult, PhaseSample, Timeline};

/// One variant's line on a time chart.
struct TimeLine {
    name: String,
    colour: RGBColor,
    points: Series,
    markers: Vec<(f64, f64, Marker)>,
    drained: Option<f64>,
    /// Offsets of the cell's `idle+<seconds>s` samples, as asked for.
    idle_offsets: Vec<f64>,
}

/// A value over time, one line per variant, in two panels sharing the y
/// axis: serving (seconds since the cell started, up to `drained`) and idle
/// (seconds since `drained`, where every variant's idle samples line up).
fn time_chart(
    title: &str,
    subtitle: &str,
    y_desc: &str,
    lines: &[TimeLine],
    measured: bool,
) -> anyhow::Result<String> {
    // Where the idle panel starts, in the words of the command measured.
    let (split_at, idle_desc, left_desc, whole_desc) = if measured {
        (
            "loaded",
            "idle: seconds since loaded (the load's end)",
            "ready and loaded: seconds since the command started",
            "seconds since the command started",
        )
    } else {
        (
            "drained",
            "idle: seconds since drained (caches freed)",
            "serving: seconds since the cell started",
            "seconds since the cell started",
        )
    };
    let all_y = lines
        .iter()
        .flat_map(|l| {
            l.points
                .iter()
                .filter_map(|p| p.1)
                .chain(l.markers.iter().map(|m| m.1))
        })
        .collect::<Vec<_>>();
    let y = y_range(all_y.iter());
    let split = lines.iter().any(|l| l.drained.is_some());
    // Serving: everything up to drained (the whole line when it has none).
    let left = |l: &TimeLine| -> Series {
        l.points
            .iter()
            .copied()
            .filter(|(x, _)| l.drained.is_none_or(|d| *x <= d))
            .collect()
    };
    let right = |l: &TimeLine| -> Series {
        match l.drained {
            Some(d) => l
                .points
                .iter()
                .filter(|(x, _)| *x >= d)
                .map(|&(x, v)| (x - d, v))
                .collect(),
            None => Vec::new(),
        }
    };
    let left_end = lines
        .iter()
        .flat_map(|l| left(l).into_iter().map(|p| p.0))
        .fold(0.0f64, f64::max)
        .max(0.001);
    let right_end = lines
        .iter()
        .flat_map(|l| right(l).into_iter().map(|p| p.0))
        .fold(0.0f64, f64::max)
        .max(0.001);
    // The idle offsets asked for (each sample lands a little after its
    // own), drawn once.
    let mut offsets: Vec<f64> = Vec::new();
    for o in lines.iter().flat_map(|l| &l.idle_offsets) {
        if *o > 0.0 && !offsets.contains(o) {
            offsets.push(*o);
        }
    }
    let mut vlines: Vec<(f64, String)> = vec![(0.0, split_at.into())];
    vlines.extend(offsets.iter().map(|o| (*o, offset_label(*o))));
    let mut legend: Vec<(Swatch, String)> = lines
        .iter()
        .map(|l| (Swatch::Line(l.colour), l.name.clone()))
        .collect();
    let used: Vec<Marker> = [
        Marker::Ready,
        Marker::Loaded,
        Marker::Forked,
        Marker::Steady,
        Marker::Drained,
        Marker::Idle,
        Marker::Trimmed,
        Marker::Restart,
    ]
    .into_iter()
    .filter(|m| lines.iter().any(|l| l.markers.iter().any(|x| x.2 == *m)))
    .collect();
    // The phase shapes on a row of their own, under the variants.
    let breaks = vec![legend.len()];
    legend.extend(
        used.iter()
            .map(|&m| (Swatch::Marker(m, INK), m.label().to_string())),
    );
    let legend = Legend(legend, breaks);

    let y_fmt = {
        let span = y.end - y.start;
        move |v: &f64| axis_number(*v, span)
    };
    let lx_fmt = move |v: &f64| axis_number(*v, left_end);
    let rx_fmt = move |v: &f64| axis_number(*v, right_end);
    image(title, subtitle, &legend, |root, plot| {
        let (left_area, right_area) = if split {
            let (a, b) = plot.split_horizontally(WIDTH * 57 / 100);
            (a, Some(b))
        } else {
            (plot.clone(), None)
        };
        let right_axes = Axes {
            x: -right_end * 0.02..right_end * 1.03,
            y: y.clone(),
            x_desc: idle_desc.into(),
            y_desc: String::new(),
            x_fmt: &rx_fmt,
            y_fmt: &y_fmt,
            top: 0,
            y_labels: false,
        };
        // Room for the vertical lines' labels, found with the real x mapping.
        let rows = match &right_area {
            Some(area) => {
                let probe = layout(area, &right_axes)?;
                let px = |x: f64| probe.backend_coord(&(x, 0.0)).0;
                vlines = merge_close(&px, &vlines);
                label_rows(&px, &vlines)
            }
            None => Vec::new(),
        };
        let top = rows.iter().max().map_or(0, |r| (*r as u32 + 1) * 15 + 4);
        let mut chart = build(
            &left_area,
            &Axes {
                x: 0.0..left_end * 1.02,
                y: y.clone(),
                x_desc: if split {
                    left_desc.into()
                } else {
                    whole_desc.into()
                },
                y_desc: y_desc.into(),
                x_fmt: &lx_fmt,
                y_fmt: &y_fmt,
                top,
                y_labels: true,
            },
        )?;
        for l in lines {
            for run in runs(&left(l)) {
                draw_line(&mut chart, &run, l.colour)?;
            }
        }
        for l in lines {
            for &(x, v, m) in &l.markers {
                if l.drained.is_none_or(|d| x < d) {
                    draw_marker(root, chart.backend_coord(&(x, v)), m, l.colour)?;
                }
            }
        }
        if let Some(area) = &right_area {
            let mut chart = build(area, &Axes { top, ..right_axes })?;
            draw_vlines(root, &mut chart, &vlines, &rows)?;
            for l in lines {
                for run in runs(&right(l)) {
                    draw_line(&mut chart, &run, l.colour)?;
                }
            }
            for l in lines {
                let Some(d) = l.drained else { continue };
                for &(x, v, m) in &l.markers {
                    if x >= d {
                        draw_marker(root, chart.backend_coord(&(x - d, v)), m, l.colour)?;
                    }
                }
            }
        }
        Ok(())
    })
}

/// What a chart over time shows: whose lines, their values at the timeline's
/// points and at the phase boundaries, and its texts.
pub(super) struct OverTime {
    /// Whether a cell has a line.
    shown: fn(&CellResult) -> bool,
    at_point: fn(&Timeline, usize) -> Option<f64>,
    at_phase: fn(&PhaseSample) -> Option<f64>,
    /// The title after the group's name.
    title: &'static str,
    subtitle: &'static str,
    /// The subtitle for a measured command.
    measured_subtitle: &'static str,
    y_desc: &'static str,
}

/// Anonymous PSS summed over the process tree.
pub(super) const TREE_PSS: OverTime = OverTime {
    shown: |c| !c.timeline.is_empty(),
    at_point: tree_pss_at_point,
    at_phase: tree_pss_at_phase,
    title: "tree anonymous PSS over time",
    subtitle: "anonymous PSS summed over every process of the tree; markers: phase boundaries; right: the idle period, aligned at drained",
    measured_subtitle: "anonymous PSS summed over every process of the command's tree; markers: ready, loaded and the idle samples; right: the idle period, from the load's end",
    y_desc: "MiB (anonymous PSS, Σ tree)",
};

/// USS of a worker, the mean over the workers.
pub(super) const WORKER_USS: OverTime = OverTime {
    shown: |c| has_worker_series(&c.timeline),
    at_point: worker_uss_at_point,
    at_phase: worker_uss_at_phase,
    title: "worker USS over time, mean over the workers",
    subtitle: "USS = Private_Clean + Private_Dirty of one worker: what killing it would free; markers: phase boundaries",
    measured_subtitle: "USS = Private_Clean + Private_Dirty of one worker: what killing it would free; markers: ready, loaded and the idle samples",
    y_desc: "MiB (USS, mean per worker)",
};

/// The chart `what` of a group, one line per cell it shows.
pub(super) fn over_time(
    group: &str,
    cells: &[&CellResult],
    colours: &BTreeMap<String, RGBColor>,
    what: &OverTime,
) -> anyhow::Result<String> {
    let lines: Vec<TimeLine> = cells
        .iter()
        .filter(|c| (what.shown)(c))
        .map(|c| {
            let points = time_series(c, what.at_point);
            let mut markers = phase_markers(c, what.at_phase);
            markers.extend(restart_markers(c, &points));
            (c, points, markers)
        })
        .map(|(c, points, markers)| TimeLine {
            name: c.variant.clone(),
            colour: colour_of(colours, &c.variant),
            points,
            markers,
            drained: idle_start(c),
            idle_offsets: c
                .phases
                .iter()
                .filter_map(|p| p.name.idle_offset())
                .collect(),
        })
        .collect();
    let measured = cells.iter().any(|c| measured(c));
    time_chart(
        &format!("{group}: {}", what.title),
        if measured {
            what.measured_subtitle
        } else {
            what.subtitle
        },
        what.y_desc,
        &lines,
        measured,
    )
}
