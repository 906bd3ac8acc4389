//! The share of the steady-state excess given back to the OS, per phase.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::layout::*;
use super::series::*;
use super::style::*;
use crate::results::CellResult;

/// The phases `metrics.returned` has, in order: drained, idle offsets, trimmed.
fn returned_phases(cells: &[&CellResult]) -> Vec<String> {
    let mut idle: Vec<(f64, String)> = Vec::new();
    let (mut drained, mut trimmed) = (false, false);
    for c in cells {
        let Some(m) = &c.metrics else { continue };
        for k in m.returned.keys() {
            match k.as_str() {
                "drained" => drained = true,
                "trimmed" => trimmed = true,
                k => {
                    if let Some(o) = idle_offset(k)
                        && !idle.iter().any(|(_, n)| n == k)
                    {
                        idle.push((o, k.to_string()));
                    }
                }
            }
        }
    }
    idle.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = Vec::new();
    if drained {
        out.push("drained".to_string());
    }
    out.extend(idle.into_iter().map(|(_, n)| n));
    if trimmed {
        out.push("trimmed".to_string());
    }
    out
}

pub(super) fn returned(
    group: &str,
    cells: &[&CellResult],
    colours: &BTreeMap<String, RGBColor>,
) -> anyhow::Result<String> {
    let phases = returned_phases(cells);
    let n = phases.len();
    let series = |map: &BTreeMap<String, f64>| -> Series {
        phases
            .iter()
            .enumerate()
            .map(|(i, p)| (i as f64, map.get(p).map(|v| v * 100.0)))
            .collect()
    };
    struct Line {
        colour: RGBColor,
        returned: Series,
        lazyfree: Option<Series>,
    }
    let mut lines = Vec::new();
    let mut legend = Vec::new();
    let shown: Vec<&&CellResult> = cells
        .iter()
        .filter(|c| c.metrics.as_ref().is_some_and(|m| !m.returned.is_empty()))
        .collect();
    // Variants side by side within a phase, so equal values stay visible.
    let step = (0.5 / shown.len() as f64).min(0.06);
    for (k, c) in shown.iter().enumerate() {
        let m = c.metrics.as_ref().expect("filtered");
        let dodge = (k as f64 - (shown.len() - 1) as f64 / 2.0) * step;
        let moved = |s: Series| s.into_iter().map(|(x, v)| (x + dodge, v)).collect();
        let colour = colour_of(colours, &c.variant);
        let lazy = m.returned_lazyfree.values().any(|v| *v != 0.0);
        lines.push(Line {
            colour,
            returned: moved(series(&m.returned)),
            lazyfree: lazy.then(|| moved(series(&m.returned_lazyfree))),
        });
        legend.push((Swatch::Line(colour), c.variant.clone()));
    }
    if lines.iter().any(|l| l.lazyfree.is_some()) {
        legend.push((
            Swatch::Dashed(INK),
            "dashed: share still resident as LazyFree (MADV_FREE)".into(),
        ));
    }
    let values: Vec<f64> = lines
        .iter()
        .flat_map(|l| {
            l.returned
                .iter()
                .chain(l.lazyfree.iter().flatten())
                .filter_map(|p| p.1)
        })
        .chain([0.0, 100.0])
        .collect();
    let (lo, hi) = bounds(values.iter());
    let y = padded(lo, hi);
    let span = y.end - y.start;
    let names: Vec<String> = phases
        .iter()
        .map(|p| match idle_offset(p) {
            Some(o) => offset_label(o),
            None => p.clone(),
        })
        .collect();
    let x_fmt = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
            names[i as usize].clone()
        } else {
            String::new()
        }
    };
    let y_fmt = move |v: &f64| format!("{}%", axis_number(*v, span));
    image(
        &format!("{group}: share of the tree's growth given back to the OS"),
        "the tree's anonymous PSS less LazyFree: (steady − phase) / (steady − forked); above 100% only when the tree ends below its size at the fork",
        &Legend(legend, Vec::new()),
        |root, plot| {
            let mut chart = build(
                plot,
                &Axes {
                    x: -0.25..(n.max(1) - 1) as f64 + 0.25,
                    y,
                    x_desc: "drained, then idle seconds after drained (sample offsets, spacing not to scale), then trimmed".into(),
                    y_desc: "% of the tree's growth since the fork".into(),
                    x_fmt: &x_fmt,
                    y_fmt: &y_fmt,
                    top: 0,
                    y_labels: true,
                },
            )?;
            chart.draw_series(DashedLineSeries::new(
                vec![(-0.25, 100.0), ((n.max(1) - 1) as f64 + 0.25, 100.0)],
                3,
                3,
                MUTED.stroke_width(1),
            ))?;
            for l in &lines {
                for run in runs(&l.returned) {
                    draw_line(&mut chart, &run, l.colour)?;
                    for &(x, v) in &run {
                        root.draw(&Circle::new(
                            chart.backend_coord(&(x, v)),
                            4,
                            l.colour.filled(),
                        ))?;
                    }
                }
                for run in l.lazyfree.iter().flat_map(|s| runs(s)) {
                    draw_dashed(&mut chart, &run, l.colour)?;
                }
            }
            Ok(())
        },
    )
}
