//! SVG charts of the timelines and of memory given back (plotters, SVG
//! backend, text as SVG text: no font libraries needed). One set of charts
//! per group of comparable cells, one line per variant (first repetition).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::result::{CellResult, Status};

const SIZE: (u32, u32) = (960, 540);
const MIB: f64 = (1u64 << 20) as f64;

/// A file-name-safe form of a name a user may have typed (a variant can be a
/// `.so` path): letters, digits, `.`, `_` and `-`; anything else becomes `_`.
pub fn safe_name(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.trim_matches('.').to_string()
}

/// A series: a label and its points.
struct Line {
    label: String,
    points: Vec<(f64, f64)>,
    /// Points to mark (phase boundaries), with their names.
    marks: Vec<(f64, f64, String)>,
    dashed: bool,
    colour: usize,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}

/// Draws lines on a chart with a legend.
fn chart(
    area: &Area,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
    x_labels: Option<&dyn Fn(&f64) -> String>,
) -> anyhow::Result<()> {
    area.fill(&WHITE).map_err(err)?;
    let all = lines.iter().flat_map(|l| l.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.08 };
    let mut c = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .margin_right(48)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0.0..y1)
        .map_err(err)?;
    let mut mesh = c.configure_mesh();
    mesh.x_desc(x_desc).y_desc(y_desc).light_line_style(WHITE);
    if let Some(f) = x_labels {
        mesh.x_label_formatter(f);
    }
    mesh.draw().map_err(err)?;
    for l in lines {
        let colour = Palette99::pick(l.colour).to_rgba();
        let style = ShapeStyle::from(colour).stroke_width(2);
        let series = if l.dashed {
            c.draw_series(DashedLineSeries::new(l.points.iter().copied(), 6, 4, style))
                .map_err(err)?
        } else {
            c.draw_series(LineSeries::new(l.points.iter().copied(), style))
                .map_err(err)?
        };
        series
            .label(&l.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
        c.draw_series(
            l.marks
                .iter()
                .map(|(x, y, _)| Circle::new((*x, *y), 3, ShapeStyle::from(colour).filled())),
        )
        .map_err(err)?;
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    area.present().map_err(err)?;
    Ok(())
}

/// The cells a chart shows: finished, first repetition, one per variant
/// (and write mode).
fn shown(cells: &[&CellResult]) -> Vec<(String, CellResult)> {
    let mut out: Vec<(String, CellResult)> = Vec::new();
    for c in cells {
        if c.status != Status::Ok {
            continue;
        }
        let mut label = c.variant.clone();
        if c.prefork != "none" {
            label.push_str(&format!(" ({})", c.prefork));
        }
        if !c.app_writes() && cells.iter().any(|o| o.app_writes()) {
            label.push_str(" (no app writes)");
        }
        if !out.iter().any(|(l, _)| *l == label) {
            out.push((label, (*c).clone()));
        }
    }
    out
}

/// The phase boundaries to mark on a time line.
const MARKED: &[&str] = &["forked", "steady", "drained", "trimmed"];

fn tree_pss(cells: &[(String, CellResult)]) -> Vec<Line> {
    cells
        .iter()
        .enumerate()
        .filter(|(_, (_, c))| !c.timeline.is_empty())
        .map(|(i, (label, c))| {
            let t = &c.timeline;
            let points = t
                .t_ms
                .iter()
                .zip(&t.tree.pss_anon)
                .filter_map(|(x, y)| Some((x / 1e3, (*y)? as f64 / MIB)))
                .collect();
            let marks = c
                .phases
                .iter()
                .filter(|p| MARKED.contains(&p.name.as_str()))
                .map(|p| (p.t_ms / 1e3, p.tree.pss_anon as f64 / MIB, p.name.clone()))
                .collect();
            Line {
                label: label.clone(),
                points,
                marks,
                dashed: false,
                colour: i,
            }
        })
        .collect()
}

fn worker_uss(cells: &[(String, CellResult)]) -> Vec<Line> {
    cells
        .iter()
        .enumerate()
        .filter(|(_, (_, c))| !c.timeline.is_empty())
        .map(|(i, (label, c))| {
            let t = &c.timeline;
            let workers: Vec<_> = t
                .processes
                .iter()
                .filter(|p| p.role == crate::result::ProcessRole::Worker)
                .collect();
            let points = (0..t.len())
                .filter_map(|k| {
                    let vals: Vec<u64> = workers.iter().filter_map(|p| p.mem.uss[k]).collect();
                    (!vals.is_empty())
                        .then(|| (t.t_ms[k] / 1e3, vals.iter().sum::<u64>() as f64 / MIB))
                })
                .collect();
            Line {
                label: label.clone(),
                points,
                marks: Vec::new(),
                dashed: false,
                colour: i,
            }
        })
        .collect()
}

/// The phases after steady, in order, as x positions 0, 1, 2, …
fn returned(cells: &[(String, CellResult)]) -> (Vec<Line>, Vec<String>) {
    let names: Vec<String> = cells
        .iter()
        .flat_map(|(_, c)| c.phases.iter().skip_while(|p| p.name != "steady").skip(1))
        .map(|p| p.name.clone())
        .fold(Vec::new(), |mut v, n| {
            if !v.contains(&n) {
                v.push(n);
            }
            v
        });
    let mut lines = Vec::new();
    for (i, (label, c)) in cells.iter().enumerate() {
        let Some(m) = &c.metrics else { continue };
        let at = |map: &std::collections::BTreeMap<String, f64>| -> Vec<(f64, f64)> {
            names
                .iter()
                .enumerate()
                .filter_map(|(x, n)| map.get(n).map(|v| (x as f64, v * 100.0)))
                .collect()
        };
        let points = at(&m.returned);
        if points.is_empty() {
            continue;
        }
        lines.push(Line {
            label: label.clone(),
            points,
            marks: Vec::new(),
            dashed: false,
            colour: i,
        });
        let lazy = at(&m.returned_lazyfree);
        if lazy.iter().any(|p| p.1 > 0.0) {
            lines.push(Line {
                label: format!("{label}: LazyFree"),
                points: lazy,
                marks: Vec::new(),
                dashed: true,
                colour: i,
            });
        }
    }
    (lines, names)
}

fn against_requests(cells: &[(String, CellResult)], cow: bool) -> Vec<Line> {
    let mut lines = Vec::new();
    for (i, (label, c)) in cells.iter().enumerate() {
        let t = &c.timeline;
        // Measured commands report no requests: nothing to plot against.
        let serving = |k: usize| {
            t.phase.get(k).is_some_and(|p| p == "steady")
                && t.requests.get(k).is_some_and(|&r| r > 0)
        };
        if cow {
            let points: Vec<(f64, f64)> = (0..t.len())
                .filter(|&k| serving(k))
                .filter_map(|k| {
                    let vals: Vec<u64> =
                        t.processes.iter().filter_map(|p| p.cow_copied[k]).collect();
                    (!vals.is_empty()).then(|| {
                        (
                            t.requests[k] as f64 / 1e3,
                            vals.iter().sum::<u64>() as f64 / MIB,
                        )
                    })
                })
                .collect();
            if !points.is_empty() {
                lines.push(Line {
                    label: label.clone(),
                    points,
                    marks: Vec::new(),
                    dashed: false,
                    colour: i,
                });
            }
            continue;
        }
        let verdict = c
            .metrics
            .as_ref()
            .and_then(|m| Some((m.growth_verdict.clone()?, m.growth_bytes_per_1k_requests?)))
            .map(|(v, s)| format!(" ({v}, {:+.2} MiB/1k req)", s / MIB))
            .unwrap_or_default();
        let points: Vec<(f64, f64)> = (0..t.len())
            .filter(|&k| serving(k))
            .filter_map(|k| Some((t.requests[k] as f64 / 1e3, t.tree.pss_anon[k]? as f64 / MIB)))
            .collect();
        if points.is_empty() {
            continue;
        }
        lines.push(Line {
            label: format!("{label}{verdict}"),
            points,
            marks: Vec::new(),
            dashed: false,
            colour: i,
        });
        let live: Vec<(f64, f64)> = (0..t.len())
            .filter(|&k| serving(k) && k < t.live_bytes.len())
            .map(|k| (t.requests[k] as f64 / 1e3, t.live_bytes[k] as f64 / MIB))
            .collect();
        if live.iter().any(|p| p.1 > 0.0) {
            lines.push(Line {
                label: format!("{label}: live bytes"),
                points: live,
                marks: Vec::new(),
                dashed: true,
                colour: i,
            });
        }
    }
    lines
}

/// Writes the charts of one group of comparable cells into `dir`, file names
/// starting with `prefix`; returns the files written.
pub fn write_group(
    cells: &[&CellResult],
    dir: &Path,
    prefix: &str,
    title: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let cells = shown(cells);
    if cells.is_empty() {
        return Ok(Vec::new());
    }
    let prefix = safe_name(prefix);
    let mut written = Vec::new();
    let mut draw = |name: &str, f: &dyn Fn(&Area) -> anyhow::Result<()>| -> anyhow::Result<()> {
        let path = dir.join(format!("{prefix}-{name}.svg"));
        {
            let area = SVGBackend::new(&path, SIZE).into_drawing_area();
            f(&area)?;
        }
        written.push(path);
        Ok(())
    };
    let pss = tree_pss(&cells);
    if pss.iter().any(|l| !l.points.is_empty()) {
        draw("tree-pss", &|a| {
            chart(
                a,
                &format!("{title}: tree anonymous PSS (dots: fork, steady, drained, trimmed)"),
                "seconds since the cell started",
                "MiB",
                &pss,
                None,
            )
        })?;
    }
    let uss = worker_uss(&cells);
    if uss.iter().any(|l| !l.points.is_empty()) {
        draw("worker-uss", &|a| {
            chart(
                a,
                &format!("{title}: USS summed over the workers"),
                "seconds since the cell started",
                "MiB",
                &uss,
                None,
            )
        })?;
    }
    let (ret, names) = returned(&cells);
    if !ret.is_empty() {
        let label = move |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        draw("returned", &|a| {
            chart(
                a,
                &format!(
                    "{title}: share of the steady-state growth given back (dashed: still LazyFree)"
                ),
                "phase after steady",
                "% returned",
                &ret,
                Some(&label),
            )
        })?;
    }
    let growth = against_requests(&cells, false);
    if growth.iter().any(|l| l.points.len() > 1) {
        draw("growth", &|a| {
            chart(
                a,
                &format!(
                    "{title}: tree anonymous PSS while serving (dashed: live bytes in caches)"
                ),
                "thousands of requests served",
                "MiB",
                &growth,
                None,
            )
        })?;
    }
    let cow = against_requests(&cells, true);
    if cow.iter().any(|l| l.points.len() > 1) {
        draw("cow", &|a| {
            chart(
                a,
                &format!("{title}: inherited pages copied, summed over the workers"),
                "thousands of requests served",
                "MiB",
                &cow,
                None,
            )
        })?;
    }
    Ok(written)
}

/// Charts for a run's document: one set per workload and hook.
pub fn write_plots(cells: &[CellResult], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut groups: Vec<(String, Vec<&CellResult>)> = Vec::new();
    for c in cells {
        let key = format!("{}-{}", c.workload, c.prefork);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(c),
            None => groups.push((key, vec![c])),
        }
    }
    let mut out = Vec::new();
    for (key, cells) in groups {
        out.extend(write_group(&cells, dir, &key, &key)?);
    }
    Ok(out)
}

/// `path` relative to directory `base`, when it lies under it; else as given.
pub fn relative(path: &Path, base: Option<&Path>) -> String {
    base.and_then(|b| path.strip_prefix(b).ok())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        assert_eq!(
            safe_name("/usr/lib/libjemalloc.so.2"),
            "_usr_lib_libjemalloc.so.2"
        );
        assert_eq!(safe_name("glibc-arena2"), "glibc-arena2");
        assert_eq!(safe_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_name("a b:c"), "a_b_c");
    }

    #[test]
    fn relative_paths_strip_the_base() {
        assert_eq!(
            relative(Path::new("out/plots/a.svg"), Some(Path::new("out"))),
            "plots/a.svg"
        );
        assert_eq!(
            relative(Path::new("/x/a.svg"), Some(Path::new("out"))),
            "/x/a.svg"
        );
        assert_eq!(relative(Path::new("a.svg"), None), "a.svg");
    }
}
