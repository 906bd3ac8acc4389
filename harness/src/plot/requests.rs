//! Charts against requests served, one line per variant: growth of the
//! tree's anonymous PSS, memory copied on write.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::layout::*;
use super::series::*;
use super::style::*;
use crate::results::CellResult;

/// One variant's lines on a chart against requests.
struct RequestLine {
    legend: String,
    colour: RGBColor,
    solid: Vec<(f64, f64)>,
    /// A companion line in the same colour; may be empty.
    dashed: Vec<(f64, f64)>,
}

/// A chart of values against requests served, one line per variant.
fn requests_chart(
    title: &str,
    subtitle: &str,
    y_desc: &str,
    lines: &[RequestLine],
    dashed_meaning: &str,
) -> anyhow::Result<String> {
    let points = || lines.iter().flat_map(|l| l.solid.iter().chain(&l.dashed));
    let xs: Vec<f64> = points().map(|p| p.0).collect();
    let ys: Vec<f64> = points().map(|p| p.1).collect();
    let x_end = xs.iter().copied().fold(0.0f64, f64::max).max(1.0);
    let y = y_range(ys.iter());
    let span = y.end - y.start;
    let mut legend: Vec<(Swatch, String)> = lines
        .iter()
        .map(|l| (Swatch::Line(l.colour), l.legend.clone()))
        .collect();
    if lines.iter().any(|l| !l.dashed.is_empty()) {
        legend.push((Swatch::Dashed(INK), dashed_meaning.into()));
    }
    let x_fmt = |v: &f64| count(*v);
    let y_fmt = move |v: &f64| axis_number(*v, span);
    image(title, subtitle, &Legend(legend, Vec::new()), |_, plot| {
        let mut chart = build(
            plot,
            &Axes {
                x: 0.0..x_end * 1.02,
                y,
                x_desc: "requests served (all workers)".into(),
                y_desc: y_desc.into(),
                x_fmt: &x_fmt,
                y_fmt: &y_fmt,
                top: 0,
                y_labels: true,
            },
        )?;
        for l in lines {
            draw_line(&mut chart, &l.solid, l.colour)?;
            if !l.dashed.is_empty() {
                draw_dashed(&mut chart, &l.dashed, l.colour)?;
            }
        }
        Ok(())
    })
}

pub(super) fn growth(
    group: &str,
    cells: &[&CellResult],
    colours: &BTreeMap<String, RGBColor>,
) -> anyhow::Result<String> {
    let lines: Vec<_> = cells
        .iter()
        .filter(|c| !steady_points(&c.timeline).is_empty())
        .map(|c| {
            let mut name = c.variant.clone();
            if let Some(m) = &c.metrics {
                match (&m.growth_verdict, m.growth_bytes_per_1k_requests) {
                    (Some(v), Some(slope)) => {
                        name.push_str(&format!(": {v}, {} per 1k requests", signed_bytes(slope)))
                    }
                    _ => name.push_str(": too few samples for a verdict"),
                }
            }
            RequestLine {
                legend: name,
                colour: colour_of(colours, &c.variant),
                solid: growth_points(c),
                dashed: live_points(&c.timeline),
            }
        })
        .collect();
    requests_chart(
        &format!("{group}: tree anonymous PSS against requests served"),
        "while serving (steady phase); a line that levels off is a plateau, one that keeps rising is growth; verdict and slope (second half) in the legend",
        "MiB (anonymous PSS, Σ tree)",
        &lines,
        "dashed: bytes live in the caches (what the program holds)",
    )
}

pub(super) fn cow_copied(
    group: &str,
    cells: &[&CellResult],
    colours: &BTreeMap<String, RGBColor>,
) -> anyhow::Result<String> {
    let lines: Vec<_> = cells
        .iter()
        .filter(|c| !cow_copied_points(&c.timeline).is_empty())
        .map(|c| RequestLine {
            legend: c.variant.clone(),
            colour: colour_of(colours, &c.variant),
            solid: cow_copied_points(&c.timeline),
            dashed: Vec::new(),
        })
        .collect();
    requests_chart(
        &format!("{group}: memory copied on write since the fork, Σ over workers"),
        "bytes the workers inherited from the master and have since copied (pagemap), while serving",
        "MiB copied (Σ workers)",
        &lines,
        "",
    )
}
