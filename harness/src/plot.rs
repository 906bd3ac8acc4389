//! SVG charts drawn from the result document (`--plot DIR`): how a cell's
//! memory moves over time and against requests, and how much of it goes back
//! to the OS after the workers freed their caches. One file per chart and per
//! workload × pre-fork hook × repetition, one line per variant; plus, per
//! cell, its processes one by one. Failed cells are left out (the tables list
//! them); cells without a timeline (`--sample-hz 0`) get no time series.
//!
//! Text is written as SVG `<text>`: nothing is rasterised, so no font
//! library is needed. Sizes of text are estimated to lay out legends and
//! labels.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::results::{CellResult, Document, PhaseSample, ProcessRole, Status, Timeline};
use crate::write::write_atomic;

const MIB: f64 = (1u64 << 20) as f64;
const WIDTH: u32 = 1000;
const HEADER: u32 = 62;
const PLOT_HEIGHT: u32 = 470;
const FONT: &str = "sans-serif";
const LABEL_SIZE: f64 = 14.0;
/// Numbers on the axes, labels of vertical lines.
const SMALL_SIZE: f64 = 13.0;
const LEGEND_ROW: i32 = 22;

/// Tableau 10 (the yellow darkened to read on white), then ten darker
/// colours for long comparisons.
const PALETTE: [RGBColor; 20] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0xc4, 0x9c, 0x1c),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xff, 0x7f, 0x9a),
    RGBColor(0x6f, 0x67, 0x64),
    RGBColor(0x1f, 0x3a, 0x93),
    RGBColor(0xa0, 0x52, 0x2d),
    RGBColor(0x8b, 0x1a, 0x1a),
    RGBColor(0x2e, 0x6b, 0x30),
    RGBColor(0x5b, 0x3c, 0x88),
    RGBColor(0x2a, 0x7f, 0x7a),
    RGBColor(0x80, 0x80, 0x00),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0xc2, 0x18, 0x5b),
    RGBColor(0x37, 0x47, 0x4f),
];
const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
const MUTED: RGBColor = RGBColor(0x77, 0x77, 0x77);
const GRID_BOLD: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);
const GRID_LIGHT: RGBColor = RGBColor(0xf2, 0xf2, 0xf2);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// (x, value) points; `None` where a value is missing (a gap in the line).
type Series = Vec<(f64, Option<f64>)>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// What one chart file shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    TreePss,
    WorkerUss,
    Returned,
    Growth,
    CowCopied,
    /// One cell's processes (the index into `Document::cells`).
    Processes(usize),
}

/// One chart file of a group.
#[derive(Debug, Clone)]
pub struct PlotFile {
    /// The file name inside the plot directory.
    pub file: String,
    /// What it shows, for a link's text.
    pub caption: String,
    kind: Kind,
}

/// The charts of one workload × pre-fork hook × repetition.
#[derive(Debug, Clone)]
pub struct PlotGroup {
    /// `server, prefork none` (and `, repetition N` after the first).
    pub title: String,
    pub plots: Vec<PlotFile>,
    /// Indices into `Document::cells` of the group's finished cells.
    cells: Vec<usize>,
}

/// Maps a name to characters safe in a file name on any system and in a
/// URL: letters, digits, `.`, `_` and `-`; every run of anything else
/// becomes one `_`. No leading `.` or `-` (hidden files, options), at most 60
/// characters, never empty.
pub fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_start_matches(['.', '-', '_']);
    let mut out: String = out.chars().take(60).collect();
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() {
        "unnamed".into()
    } else {
        out
    }
}

/// The charts `write_plots` writes for `doc`, grouped, with their file names.
pub fn plan(doc: &Document) -> Vec<PlotGroup> {
    let mut keys: Vec<(&str, &str, bool, u32)> = Vec::new();
    for c in &doc.cells {
        let k = (
            c.workload.as_str(),
            c.prefork.as_str(),
            c.app_writes(),
            c.repetition,
        );
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    // Runs with and without application writes (`--cow-attribution`) get
    // charts of their own: a variant is one line per chart.
    let both_modes = keys.iter().any(|k| k.2) && keys.iter().any(|k| !k.2);
    let mut groups = Vec::new();
    for (workload, prefork, app_writes, repetition) in keys {
        let cells: Vec<usize> = (0..doc.cells.len())
            .filter(|&i| {
                let c = &doc.cells[i];
                c.workload == workload
                    && c.prefork == prefork
                    && c.app_writes() == app_writes
                    && c.repetition == repetition
                    && c.status == Status::Ok
            })
            .collect();
        if cells.is_empty() {
            continue;
        }
        let mut prefix = format!("{}-{}", sanitize(workload), sanitize(prefork));
        let mut title = format!("{workload}, prefork {prefork}");
        if both_modes && !app_writes {
            prefix.push_str("-no-app-writes");
            title.push_str(", no application writes");
        }
        if repetition > 0 {
            prefix.push_str(&format!("-r{repetition}"));
            title.push_str(&format!(", repetition {repetition}"));
        }
        let of = |i: &usize| &doc.cells[*i];
        let timed = cells.iter().any(|i| !of(i).timeline.is_empty());
        let mut plots = Vec::new();
        let mut add = |suffix: &str, caption: &str, kind: Kind| {
            plots.push(PlotFile {
                file: format!("{prefix}-{suffix}.svg"),
                caption: caption.to_string(),
                kind,
            })
        };
        if timed {
            add("tree-pss", "Tree anonymous PSS over time", Kind::TreePss);
        }
        if cells.iter().any(|i| has_worker_series(&of(i).timeline)) {
            add("worker-uss", "Worker USS over time", Kind::WorkerUss);
        }
        if cells.iter().any(|i| {
            of(i)
                .metrics
                .as_ref()
                .is_some_and(|m| !m.returned.is_empty())
        }) {
            add(
                "returned",
                "Share of the steady-state excess given back",
                Kind::Returned,
            );
        }
        if cells
            .iter()
            .any(|i| !steady_points(&of(i).timeline).is_empty())
        {
            add(
                "growth",
                "Tree anonymous PSS against requests",
                Kind::Growth,
            );
        }
        if cells
            .iter()
            .any(|i| !cow_copied_points(&of(i).timeline).is_empty())
        {
            add(
                "cow-copied",
                "Copy-on-write copies against requests",
                Kind::CowCopied,
            );
        }
        let mut taken: Vec<String> = Vec::new();
        for &i in &cells {
            let c = of(&i);
            if c.timeline.is_empty() {
                continue;
            }
            // Two names may map to the same characters: number the later ones.
            let base = sanitize(&c.variant);
            let mut name = base.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            taken.push(name.clone());
            add(
                &format!("{name}-processes"),
                &format!("{}: anonymous PSS per process", c.variant),
                Kind::Processes(i),
            );
        }
        groups.push(PlotGroup {
            title,
            plots,
            cells,
        });
    }
    groups
}

/// Creates the plot directory (before a run, so a bad path is refused
/// before any work).
pub fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Writes every chart of `doc` into `dir` (each file atomically) and returns
/// their paths.
pub fn write_plots(doc: &Document, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    Ok(write_charts(doc, dir, true)?
        .into_iter()
        .map(|(_, path)| path)
        .collect())
}

/// The group charts only (no per-process charts), for reports: (caption,
/// path) of each file written.
pub fn write_summary_plots(doc: &Document, dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    write_charts(doc, dir, false)
}

fn write_charts(
    doc: &Document,
    dir: &Path,
    per_process: bool,
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let colours = colours(doc);
    let mut written = Vec::new();
    for group in plan(doc) {
        let cells: Vec<&CellResult> = group.cells.iter().map(|&i| &doc.cells[i]).collect();
        for plot in &group.plots {
            if !per_process && matches!(plot.kind, Kind::Processes(_)) {
                continue;
            }
            let svg = match plot.kind {
                Kind::TreePss => tree_pss(&group.title, &cells, &colours),
                Kind::WorkerUss => worker_uss(&group.title, &cells, &colours),
                Kind::Returned => returned(&group.title, &cells, &colours),
                Kind::Growth => growth(&group.title, &cells, &colours),
                Kind::CowCopied => cow_copied(&group.title, &cells, &colours),
                Kind::Processes(i) => processes(&group.title, &doc.cells[i]),
            }
            .with_context(|| format!("drawing {}", plot.file))?;
            let path = dir.join(&plot.file);
            write_atomic(&path, &svg).with_context(|| format!("writing {}", path.display()))?;
            written.push((plot.caption.clone(), path));
        }
    }
    Ok(written)
}

/// A Markdown section that shows the charts `write_plots` writes into `dir`:
/// paths relative to the directory of `output` (the Markdown file) when it is
/// given, else as `dir` was given. Empty when there is nothing to show.
pub fn markdown(doc: &Document, dir: &Path, output: Option<&Path>) -> String {
    let groups = plan(doc);
    if groups.iter().all(|g| g.plots.is_empty()) {
        return String::new();
    }
    let link = |file: &str| link(&dir.join(file), output);
    let mut out = String::from("\n## Plots\n");
    for g in &groups {
        out.push_str(&format!("\n### {}\n\n", g.title));
        let mut per_cell = Vec::new();
        for p in &g.plots {
            match p.kind {
                Kind::Processes(i) => per_cell.push(format!(
                    "[{}]({})",
                    link_text(&doc.cells[i].variant),
                    link(&p.file)
                )),
                _ => out.push_str(&format!("![{}]({})\n\n", p.caption, link(&p.file))),
            }
        }
        if !per_cell.is_empty() {
            out.push_str(&format!(
                "Anonymous PSS per process: {}\n",
                per_cell.join(" · ")
            ));
        }
    }
    out
}

/// `target` as a Markdown link target from the directory of `output` (the
/// Markdown file) when given, else as given.
pub fn link(target: &Path, output: Option<&Path>) -> String {
    let path = match output {
        Some(out) => relative_to(target, out.parent().unwrap_or(Path::new(""))),
        None => target.to_path_buf(),
    };
    let s = path.to_string_lossy().into_owned();
    if s.contains([' ', '(', ')', '<', '>']) {
        format!("<{}>", s.replace('<', "%3C").replace('>', "%3E"))
    } else {
        s
    }
}

/// A name as Markdown link text: brackets and backslashes escaped.
fn link_text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('[', "\\[")
        .replace(']', "\\]")
}

/// `target` as seen from directory `base`, both taken from the current
/// directory when relative; `..` where they part.
fn relative_to(target: &Path, base: &Path) -> PathBuf {
    // The parent of a bare file name is empty: the current directory.
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let abs = |p: &Path| -> Vec<String> {
        let p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut parts: Vec<String> = Vec::new();
        for c in p.components() {
            match c {
                Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
                Component::ParentDir => {
                    parts.pop();
                }
                _ => {}
            }
        }
        parts
    };
    let (t, b) = (abs(target), abs(base));
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for part in &t[common..] {
        out.push(part);
    }
    out
}

/// One colour per variant, in the order variants first appear, the same in
/// every chart of the document.
fn colours(doc: &Document) -> BTreeMap<String, RGBColor> {
    let mut map = BTreeMap::new();
    for c in &doc.cells {
        let n = map.len();
        map.entry(c.variant.clone())
            .or_insert(PALETTE[n % PALETTE.len()]);
    }
    map
}

fn colour_of(colours: &BTreeMap<String, RGBColor>, variant: &str) -> RGBColor {
    colours.get(variant).copied().unwrap_or(INK)
}

// ---------------------------------------------------------------------------
// Data drawn from the document

/// Shapes that mark phase boundaries on a variant's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Forked,
    Steady,
    Drained,
    Idle,
    Trimmed,
}

impl Marker {
    fn of(phase: &str) -> Option<Marker> {
        match phase {
            "forked" => Some(Marker::Forked),
            "steady" => Some(Marker::Steady),
            "drained" => Some(Marker::Drained),
            "trimmed" => Some(Marker::Trimmed),
            p if p.starts_with("idle+") => Some(Marker::Idle),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Marker::Forked => "forked",
            Marker::Steady => "steady",
            Marker::Drained => "drained",
            Marker::Idle => "idle+… sample",
            Marker::Trimmed => "trimmed",
        }
    }
}

/// The idle offset in seconds of a phase named `idle+<seconds>s`.
fn idle_offset(phase: &str) -> Option<f64> {
    phase.strip_prefix("idle+")?.strip_suffix('s')?.parse().ok()
}

fn phase_t(cell: &CellResult, name: &str) -> Option<f64> {
    cell.phases
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.t_ms / 1e3)
}

/// A cell's series over time from its timeline (which holds the exact
/// samples at the phase boundaries too), (seconds since the cell started,
/// value), up to `trimmed` (after it the processes exit and leave the tree).
fn time_series(cell: &CellResult, at_point: impl Fn(&Timeline, usize) -> Option<f64>) -> Series {
    let t = &cell.timeline;
    let end = phase_t(cell, "trimmed");
    (0..t.len())
        .filter(|&i| t.phase[i] != "exit")
        .map(|i| (t.t_ms[i] / 1e3, at_point(t, i)))
        .filter(|(x, _)| end.is_none_or(|e| *x <= e))
        .collect()
}

/// The markers of a cell's phase boundaries, (seconds, value, shape).
fn phase_markers(
    cell: &CellResult,
    at_phase: impl Fn(&PhaseSample) -> Option<f64>,
) -> Vec<(f64, f64, Marker)> {
    let mut markers: Vec<(f64, f64, Marker)> = cell
        .phases
        .iter()
        .filter_map(|p| Some((p.t_ms / 1e3, at_phase(p)?, Marker::of(&p.name)?)))
        .collect();
    // Idle samples first, so the boundary drawn a moment before them
    // (`drained` before `idle+0s`) stays on top.
    markers.sort_by_key(|m| m.2 != Marker::Idle);
    markers
}

fn tree_pss_at_point(t: &Timeline, i: usize) -> Option<f64> {
    t.tree
        .pss_anon
        .get(i)
        .copied()
        .flatten()
        .map(|b| b as f64 / MIB)
}

fn tree_pss_at_phase(p: &PhaseSample) -> Option<f64> {
    Some(p.tree.pss_anon as f64 / MIB)
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = values.fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
    (n > 0).then(|| sum / n as f64)
}

fn worker_uss_at_point(t: &Timeline, i: usize) -> Option<f64> {
    mean(
        t.processes
            .iter()
            .filter(|p| p.role == ProcessRole::Worker)
            .filter_map(|p| p.mem.uss.get(i).copied().flatten())
            .map(|b| b as f64 / MIB),
    )
}

fn worker_uss_at_phase(p: &PhaseSample) -> Option<f64> {
    mean(p.workers().map(|(_, m)| m.uss as f64 / MIB))
}

fn has_worker_series(t: &Timeline) -> bool {
    t.processes
        .iter()
        .any(|p| p.role == ProcessRole::Worker && p.mem.uss.iter().any(Option::is_some))
}

/// Indices of the timeline points taken while serving.
fn steady_indices(t: &Timeline) -> impl Iterator<Item = usize> + '_ {
    (0..t.len()).filter(|&i| t.phase.get(i).is_some_and(|p| p == "steady"))
}

/// (requests, tree anonymous PSS in MiB) while serving.
fn steady_points(t: &Timeline) -> Vec<(f64, f64)> {
    steady_indices(t)
        .filter_map(|i| Some((*t.requests.get(i)? as f64, tree_pss_at_point(t, i)?)))
        .collect()
}

/// (requests, tree anonymous PSS in MiB) from the fork to the end of
/// serving: [`steady_points`] and the sample at `forked` (the last point of
/// that period).
fn growth_points(cell: &CellResult) -> Vec<(f64, f64)> {
    let t = &cell.timeline;
    if steady_indices(t).next().is_none() {
        return Vec::new();
    }
    let forked = t.phase.iter().rposition(|p| p == "forked");
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
fn live_points(t: &Timeline) -> Vec<(f64, f64)> {
    if t.live_bytes.len() != t.len() || t.live_bytes.iter().all(|&b| b == 0) {
        return Vec::new();
    }
    steady_indices(t)
        .filter_map(|i| Some((*t.requests.get(i)? as f64, t.live_bytes[i] as f64 / MIB)))
        .collect()
}

/// (requests, Σ workers' inherited MiB copied since the fork) while serving.
fn cow_copied_points(t: &Timeline) -> Vec<(f64, f64)> {
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
fn runs(points: &[(f64, Option<f64>)]) -> Vec<Vec<(f64, f64)>> {
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

// ---------------------------------------------------------------------------
// Drawing helpers

/// Estimated width of `s` in pixels. plotters writes SVG text at 1/1.24 of
/// the size asked for; a sans-serif character averages about 0.6 of that.
fn text_width(s: &str, size: f64) -> i32 {
    (s.chars().count() as f64 * size * 0.5).ceil() as i32
}

fn style(size: f64, colour: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(colour)
}

/// Axis numbers with as many decimals as the span needs.
fn axis_number(v: f64, span: f64) -> String {
    let decimals = if span >= 20.0 {
        0
    } else if span >= 2.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_string()
    } else {
        s
    }
}

/// An idle offset: `+0s`, `+0.1s`, `+30s`.
fn offset_label(o: f64) -> String {
    format!("+{}s", (o * 1000.0).round() / 1000.0)
}

/// A count on an axis: `0`, `500`, `20k`, `1.5M`.
fn count(v: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if v.abs() >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if v.abs() >= 1e3 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else {
        format!("{v:.0}")
    }
}

/// Signed bytes, short: `+71.4 KiB`, `-1.2 MiB`, `+320 B`.
fn signed_bytes(b: f64) -> String {
    let sign = if b < 0.0 { "-" } else { "+" };
    let a = b.abs();
    if a >= MIB {
        format!("{sign}{:.1} MiB", a / MIB)
    } else if a >= 1024.0 {
        format!("{sign}{:.1} KiB", a / 1024.0)
    } else {
        format!("{sign}{a:.0} B")
    }
}

/// A value range with a little room above (and below when negative).
fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let (lo, hi) = (lo.min(0.0), hi.max(lo));
    let span = if hi - lo > 0.0 { hi - lo } else { 1.0 };
    let lo = if lo < 0.0 { lo - span * 0.06 } else { lo };
    lo..hi + span * 0.08
}

fn bounds<'a>(values: impl Iterator<Item = &'a f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    })
}

/// What a legend entry shows before its text.
#[derive(Clone, Copy)]
enum Swatch {
    Line(RGBColor),
    Dashed(RGBColor),
    Marker(Marker, RGBColor),
}

/// Legend entries; a new row starts at each index of `breaks`.
struct Legend(Vec<(Swatch, String)>, Vec<usize>);

impl Legend {
    const SWATCH: i32 = 26;
    const GAP: i32 = 22;

    fn entry_width(text: &str) -> i32 {
        Self::SWATCH + 6 + text_width(text, LABEL_SIZE)
    }

    /// Rows of entry indices, filled left to right within `width`.
    fn rows(&self, width: i32) -> Vec<Vec<usize>> {
        let mut rows: Vec<Vec<usize>> = Vec::new();
        let mut used = width;
        for (i, (_, text)) in self.0.iter().enumerate() {
            let w = Self::entry_width(text);
            if used + w > width || rows.is_empty() || self.1.contains(&i) {
                rows.push(Vec::new());
                used = 0;
            }
            rows.last_mut().expect("a row").push(i);
            used += w + Self::GAP;
        }
        rows
    }

    fn height(&self) -> u32 {
        if self.0.is_empty() {
            return 0;
        }
        (self.rows(WIDTH as i32 - 80).len() as i32 * LEGEND_ROW + 16) as u32
    }

    /// Draws the entries centred in rows on `area` (pixel coordinates).
    fn draw(&self, area: &Area) -> anyhow::Result<()> {
        let (w, _) = area.dim_in_pixel();
        for (r, row) in self.rows(w as i32 - 80).iter().enumerate() {
            let total: i32 = row
                .iter()
                .map(|&i| Self::entry_width(&self.0[i].1) + Self::GAP)
                .sum::<i32>()
                - Self::GAP;
            let mut x = (w as i32 - total) / 2;
            let y = 8 + r as i32 * LEGEND_ROW + LEGEND_ROW / 2;
            for &i in row {
                let (swatch, text) = &self.0[i];
                let (x0, x1) = (x, x + Self::SWATCH);
                match *swatch {
                    Swatch::Line(c) => {
                        area.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(3)))?
                    }
                    Swatch::Dashed(c) => area.draw(&DashedPathElement::new(
                        vec![(x0, y), (x1, y)],
                        5,
                        3,
                        c.stroke_width(2),
                    ))?,
                    Swatch::Marker(m, c) => draw_marker(area, ((x0 + x1) / 2, y), m, c)?,
                }
                area.draw(&Text::new(
                    text.clone(),
                    (x1 + 6, y),
                    style(LABEL_SIZE, &INK).pos(Pos::new(HPos::Left, VPos::Center)),
                ))?;
                x += Self::entry_width(text) + Self::GAP;
            }
        }
        Ok(())
    }
}

/// Draws a phase marker at a pixel position.
fn draw_marker(area: &Area, (x, y): (i32, i32), m: Marker, c: RGBColor) -> anyhow::Result<()> {
    match m {
        Marker::Forked => area.draw(&TriangleMarker::new((x, y), 6, c.filled()))?,
        Marker::Steady => area.draw(&Circle::new((x, y), 5, c.filled()))?,
        Marker::Drained => area.draw(&Rectangle::new(
            [(x - 4, y - 4), (x + 4, y + 4)],
            c.filled(),
        ))?,
        Marker::Idle => {
            area.draw(&Circle::new((x, y), 4, WHITE.filled()))?;
            area.draw(&Circle::new((x, y), 4, c.stroke_width(2)))?
        }
        Marker::Trimmed => area.draw(&Cross::new((x, y), 5, c.stroke_width(2)))?,
    }
    Ok(())
}

/// A chart image: a title and a subtitle on top, the plot area, the legend
/// below. `draw` gets the whole image (pixel coordinates) and the plot area.
fn image(
    title: &str,
    subtitle: &str,
    legend: &Legend,
    draw: impl FnOnce(&Area, &Area) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let height = HEADER + PLOT_HEIGHT + legend.height();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        root.draw(&Text::new(
            title.to_string(),
            (WIDTH as i32 / 2, 10),
            style(20.0, &INK).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        // A long subtitle gets smaller rather than cut off.
        let fit = (WIDTH - 40) as f64 / (subtitle.chars().count().max(1) as f64 * 0.5);
        root.draw(&Text::new(
            subtitle.to_string(),
            (WIDTH as i32 / 2, 37),
            style(LABEL_SIZE.min(fit), &MUTED).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        let (_, rest) = root.split_vertically(HEADER);
        let (plot, legend_area) = rest.split_vertically(PLOT_HEIGHT);
        draw(&root, &plot)?;
        legend.draw(&legend_area)?;
        root.present()?;
    }
    Ok(svg)
}

/// Axes on `area`: x and y ranges, their descriptions and number formats.
struct Axes<'f> {
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_desc: String,
    y_desc: String,
    x_fmt: &'f dyn Fn(&f64) -> String,
    y_fmt: &'f dyn Fn(&f64) -> String,
    /// Room above the plot, for labels of vertical lines.
    top: u32,
    y_labels: bool,
}

/// The chart's coordinates on `area`, nothing drawn yet.
fn layout<'a, 'b>(area: &'a Area<'b>, a: &Axes) -> anyhow::Result<Chart<'a, 'b>> {
    Ok(ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(22)
        .margin_top(10 + a.top)
        .margin_bottom(6)
        .x_label_area_size(44)
        .y_label_area_size(if a.y_labels { 62 } else { 16 })
        .build_cartesian_2d(a.x.clone(), a.y.clone())?)
}

/// The chart with its axes and grid drawn.
fn build<'a, 'b>(area: &'a Area<'b>, a: &Axes) -> anyhow::Result<Chart<'a, 'b>> {
    let mut chart = layout(area, a)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(a.x_desc.clone())
        .x_label_formatter(a.x_fmt)
        .y_label_formatter(a.y_fmt)
        .x_labels(8)
        .y_labels(8)
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .axis_style(MUTED)
        .label_style(style(SMALL_SIZE, &INK))
        .axis_desc_style(style(LABEL_SIZE, &INK));
    if a.y_labels {
        mesh.y_desc(a.y_desc.clone());
    } else {
        mesh.y_label_formatter(&|_| String::new());
    }
    mesh.draw()?;
    Ok(chart)
}

/// Where a label `w` pixels wide centred at `px` goes: at `px`, or moved in
/// to stay inside the image.
fn label_centre(px: i32, w: i32) -> i32 {
    px.clamp(w / 2 + 4, (WIDTH as i32 - w / 2 - 4).max(w / 2 + 4))
}

/// Lines closer than a few pixels share one label: `steady / drained`.
fn merge_close(chart_px: &dyn Fn(f64) -> i32, lines: &[(f64, String)]) -> Vec<(f64, String)> {
    let mut sorted = lines.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, String)> = Vec::new();
    for (x, label) in sorted {
        match out.last_mut() {
            Some((x0, l)) if (chart_px(x) - chart_px(*x0)).abs() <= 4 => {
                l.push_str(" / ");
                l.push_str(&label);
            }
            _ => out.push((x, label)),
        }
    }
    out
}

/// Rows for the labels of vertical lines at `lines` (x, label), above the
/// plot, as many as keep them apart.
fn label_rows(chart_px: &dyn Fn(f64) -> i32, lines: &[(f64, String)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|&a, &b| lines[a].0.total_cmp(&lines[b].0));
    let mut row_end: Vec<i32> = Vec::new();
    let mut rows = vec![0; lines.len()];
    for i in order {
        let w = text_width(&lines[i].1, SMALL_SIZE);
        let start = label_centre(chart_px(lines[i].0), w) - w / 2;
        let r = row_end
            .iter()
            .position(|&end| end + 6 < start)
            .unwrap_or(row_end.len());
        if r == row_end.len() {
            row_end.push(i32::MIN);
        }
        row_end[r] = start + w;
        rows[i] = r;
    }
    rows
}

/// Draws labelled vertical lines; the room above the plot was reserved
/// with `label_rows`.
fn draw_vlines(
    root: &Area,
    chart: &mut Chart,
    lines: &[(f64, String)],
    rows: &[usize],
) -> anyhow::Result<()> {
    let (lo, hi) = (chart.y_range().start, chart.y_range().end);
    for ((x, label), r) in lines.iter().zip(rows) {
        chart.draw_series(DashedLineSeries::new(
            vec![(*x, lo), (*x, hi)],
            4,
            4,
            MUTED.mix(0.7).stroke_width(1),
        ))?;
        let (px, top) = chart.backend_coord(&(*x, hi));
        root.draw(&Text::new(
            label.clone(),
            (
                label_centre(px, text_width(label, SMALL_SIZE)),
                top - 4 - *r as i32 * 15,
            ),
            style(SMALL_SIZE, &MUTED).pos(Pos::new(HPos::Center, VPos::Bottom)),
        ))?;
    }
    Ok(())
}

fn draw_line(chart: &mut Chart, points: &[(f64, f64)], c: RGBColor) -> anyhow::Result<()> {
    chart.draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?;
    Ok(())
}

fn draw_dashed(chart: &mut Chart, points: &[(f64, f64)], c: RGBColor) -> anyhow::Result<()> {
    chart.draw_series(DashedLineSeries::new(
        points.iter().copied(),
        6,
        4,
        c.stroke_width(2),
    ))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The charts

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
) -> anyhow::Result<String> {
    let all_y = lines
        .iter()
        .flat_map(|l| {
            l.points
                .iter()
                .filter_map(|p| p.1)
                .chain(l.markers.iter().map(|m| m.1))
        })
        .collect::<Vec<_>>();
    let (lo, hi) = bounds(all_y.iter());
    let y = if lo.is_finite() {
        padded(lo, hi)
    } else {
        0.0..1.0
    };
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
    let mut vlines: Vec<(f64, String)> = vec![(0.0, "drained".into())];
    vlines.extend(offsets.iter().map(|o| (*o, offset_label(*o))));
    let mut legend: Vec<(Swatch, String)> = lines
        .iter()
        .map(|l| (Swatch::Line(l.colour), l.name.clone()))
        .collect();
    let used: Vec<Marker> = [
        Marker::Forked,
        Marker::Steady,
        Marker::Drained,
        Marker::Idle,
        Marker::Trimmed,
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
            x_desc: "idle: seconds since drained (caches freed)".into(),
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
                    "serving: seconds since the cell started".into()
                } else {
                    "seconds since the cell started".into()
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

fn tree_pss(
    group: &str,
    cells: &[&CellResult],
    colours: &BTreeMap<String, RGBColor>,
) -> anyhow::Result<String> {
    let lines: Vec<TimeLine> = cells
        .iter()
        .filter(|c| !c.timeline.is_empty())
        .map(|c| TimeLine {
            name: c.variant.clone(),
            colour: colour_of(colours, &c.variant),
            points: time_series(c, tree_pss_at_point),
            markers: phase_markers(c, tree_pss_at_phase),
            drained: phase_t(c, "drained"),
            idle_offsets: c
                .phases
                .iter()
                .filter_map(|p| idle_offset(&p.name))
                .collect(),
        })
        .collect();
    time_chart(
        &format!("{group}: tree anonymous PSS over time"),
        "anonymous PSS summed over every process of the tree; markers: phase boundaries; right: the idle period, aligned at drained",
        "MiB (anonymous PSS, Σ tree)",
        &lines,
    )
}

fn worker_uss(
    group: &str,
    cells: &[&CellResult],
    colours: &BTreeMap<String, RGBColor>,
) -> anyhow::Result<String> {
    let lines: Vec<TimeLine> = cells
        .iter()
        .filter(|c| has_worker_series(&c.timeline))
        .map(|c| TimeLine {
            name: c.variant.clone(),
            colour: colour_of(colours, &c.variant),
            points: time_series(c, worker_uss_at_point),
            markers: phase_markers(c, worker_uss_at_phase),
            drained: phase_t(c, "drained"),
            idle_offsets: c
                .phases
                .iter()
                .filter_map(|p| idle_offset(&p.name))
                .collect(),
        })
        .collect();
    time_chart(
        &format!("{group}: worker USS over time, mean over the workers"),
        "USS = Private_Clean + Private_Dirty of one worker: what killing it would free; markers: phase boundaries",
        "MiB (USS, mean per worker)",
        &lines,
    )
}

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

fn returned(
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
        &format!("{group}: share of the steady-state excess given back to the OS"),
        "workers' anonymous memory less LazyFree: (steady − phase) / (steady − forked); above 100%: inherited memory given back too",
        &Legend(legend, Vec::new()),
        |root, plot| {
            let mut chart = build(
                plot,
                &Axes {
                    x: -0.25..(n.max(1) - 1) as f64 + 0.25,
                    y,
                    x_desc: "drained, then idle seconds after drained (sample offsets, spacing not to scale), then trimmed".into(),
                    y_desc: "% of the workers' growth since fork".into(),
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
    let (lo, hi) = bounds(ys.iter());
    let y = if lo.is_finite() {
        padded(lo, hi)
    } else {
        0.0..1.0
    };
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

fn growth(
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

fn cow_copied(
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

fn processes(group: &str, cell: &CellResult) -> anyhow::Result<String> {
    let t = &cell.timeline;
    let end = phase_t(cell, "trimmed");
    let keep = |i: usize| t.phase[i] != "exit" && end.is_none_or(|e| t.t_ms[i] / 1e3 <= e);
    let mut lines: Vec<(String, RGBColor, Series)> = Vec::new();
    let mut procs: Vec<_> = t.processes.iter().collect();
    procs.sort_by_key(|p| (p.role == ProcessRole::Worker, p.index));
    for (n, p) in procs.iter().enumerate() {
        let name = match (p.role, p.index) {
            (ProcessRole::Master, _) => "master".to_string(),
            (ProcessRole::Worker, Some(i)) => format!("worker {i}"),
            (ProcessRole::Worker, None) => "worker".to_string(),
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
    let drained = phase_t(cell, "drained");
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
    let (lo, hi) = bounds(ys.iter());
    let y = if lo.is_finite() {
        padded(lo, hi)
    } else {
        0.0..1.0
    };
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
        .filter(|p| Marker::of(&p.name).is_some())
        .map(|p| (p.t_ms / 1e3, p.name.clone()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::cow::CowSample;
    use crate::results::{Mem, Metrics, ProcessSample};
    use allocbench_workloads::WorkloadSpec;

    const M: u64 = 1 << 20;

    fn mem(mib: u64) -> Mem {
        Mem {
            pss: mib * M + M,
            pss_anon: mib * M,
            rss: mib * M + 2 * M,
            uss: mib * M,
            anonymous: mib * M,
            ..Mem::default()
        }
    }

    fn procs(master: u64, workers: &[u64]) -> Vec<ProcessSample> {
        let mut out = vec![ProcessSample {
            pid: 100,
            role: ProcessRole::Master,
            index: None,
            mem: Some(mem(master)),
            missed: None,
            cow: None,
            cow_missed: None,
        }];
        for (i, &w) in workers.iter().enumerate() {
            out.push(ProcessSample {
                pid: 101 + i as i32,
                role: ProcessRole::Worker,
                index: Some(i as u32),
                mem: Some(mem(w)),
                missed: None,
                cow: Some(CowSample {
                    cow_copied: w * M / 4,
                    ..CowSample::default()
                }),
                cow_missed: None,
            });
        }
        out
    }

    /// A finished cell of two workers: phases, a 10 Hz timeline, metrics.
    fn cell(variant: &str, scale: u64) -> CellResult {
        // (boundary, t_ms, requests, master MiB, workers' MiB)
        let bounds: [(&str, f64, u64, u64, &[u64]); 8] = [
            ("started", 5.0, 0, 1, &[]),
            ("preloaded", 50.0, 0, 20, &[]),
            ("forked", 60.0, 0, 10, &[2, 2]),
            ("steady", 1000.0, 4000, 10, &[30 * scale, 32 * scale]),
            ("drained", 1010.0, 4000, 10, &[25 * scale, 26 * scale]),
            ("idle+0s", 1012.0, 4000, 10, &[25 * scale, 26 * scale]),
            ("idle+1s", 2010.0, 4000, 10, &[20 * scale, 21 * scale]),
            ("trimmed", 2050.0, 4000, 10, &[5, 6]),
        ];
        let phases: Vec<PhaseSample> = bounds
            .iter()
            .map(|&(name, t_ms, requests, master, workers)| {
                let processes = procs(master, workers);
                let mut tree = Mem::default();
                for p in &processes {
                    tree.add(p.mem.as_ref().unwrap());
                }
                PhaseSample {
                    requests,
                    name: name.into(),
                    t_ms,
                    tree,
                    processes,
                }
            })
            .collect();
        let mut timeline = Timeline {
            sample_hz: 10.0,
            ..Timeline::default()
        };
        for k in 0..22 {
            let t = k as f64 * 100.0;
            let next = bounds.iter().find(|b| b.1 >= t);
            let phase = match next {
                Some(b) if b.0.starts_with("idle") => "idle",
                Some(b) => b.0,
                None => "exit",
            };
            let serving = (t - 60.0).clamp(0.0, 940.0) / 940.0;
            let requests = (serving * 4000.0) as u64;
            let w = 2 + (serving * 28.0) as u64 * scale;
            let processes = if t < 60.0 {
                procs(10, &[])
            } else {
                procs(10, &[w, w + 1])
            };
            let mut tree = Mem::default();
            for p in &processes {
                tree.add(p.mem.as_ref().unwrap());
            }
            timeline.push(t, phase, requests, &tree, &processes, true);
            timeline.live_bytes.push(requests * 1000);
        }
        let share = |v: &[f64]| -> BTreeMap<String, f64> {
            ["drained", "idle+0s", "idle+1s", "trimmed"]
                .iter()
                .zip(v)
                .map(|(k, v)| (k.to_string(), *v))
                .collect()
        };
        let metrics = Metrics {
            returned: share(&[0.2, 0.2, 0.4, 0.9]),
            returned_lazyfree: share(&[0.1, 0.1, 0.05, 0.0]),
            growth_verdict: Some("plateau".into()),
            growth_bytes_per_1k_requests: Some(2048.0),
            ..Metrics::default()
        };
        let server = WorkloadSpec::server();
        CellResult {
            phases,
            timeline,
            spec: Some(server.clone()),
            wall_ms: 2100.0,
            ..crate::results::test_cell(
                variant,
                server.processes,
                server.threads,
                0,
                Mem::default(),
                metrics,
            )
        }
    }

    fn document(cells: Vec<CellResult>) -> Document {
        Document {
            allocbench_version: "test".into(),
            format_version: crate::results::FORMAT_VERSION,
            command: Vec::new(),
            environment: Default::default(),
            cells,
            summary: Vec::new(),
            harness: Default::default(),
            fits: Vec::new(),
            unfitted: Vec::new(),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("allocbench-plot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// Text as the SVG writes it.
    fn escaped(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&apos;")
    }

    fn file_names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_chart_is_an_svg_with_one_legend_entry_per_variant() {
        let variants = ["glibc", "/opt/my alloc/libmy.so", "je<&>'\"x"];
        let mut cells: Vec<CellResult> = variants
            .iter()
            .enumerate()
            .map(|(i, v)| cell(v, i as u64 + 1))
            .collect();
        let mut broken = cell("broken", 1);
        broken.status = Status::Failed;
        broken.metrics = None;
        cells.push(broken);
        let doc = document(cells);
        let dir = temp_dir("all");
        let paths = write_plots(&doc, &dir).unwrap();
        let names = file_names(&paths);
        for chart in ["tree-pss", "worker-uss", "returned", "growth", "cow-copied"] {
            assert!(
                names.contains(&format!("server-none-{chart}.svg")),
                "{chart} missing from {names:?}"
            );
        }
        assert!(names.contains(&"server-none-opt_my_alloc_libmy.so-processes.svg".into()));
        assert!(names.contains(&"server-none-je_x-processes.svg".into()));
        assert_eq!(names.len(), 5 + 3, "no chart of the failed cell: {names:?}");
        for (path, name) in paths.iter().zip(&names) {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
                "{name}"
            );
            assert_eq!(path.parent(), Some(dir.as_path()));
            let svg = std::fs::read_to_string(path).unwrap();
            assert!(svg.starts_with("<svg"), "{name}");
            assert!(svg.trim_end().ends_with("</svg>"), "{name}");
            assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
            assert!(!svg.contains("broken"), "{name} shows a failed cell");
            if !name.ends_with("-processes.svg") {
                for v in variants {
                    // plotters writes a text's content on a line of its own.
                    let entry = format!(">\n{}", escaped(v));
                    assert_eq!(
                        svg.matches(&entry).count(),
                        1,
                        "{name}: legend entry {entry}"
                    );
                }
            }
        }
        let lazy = std::fs::read_to_string(dir.join("server-none-returned.svg")).unwrap();
        assert!(lazy.contains("LazyFree"));
        let growth = std::fs::read_to_string(dir.join("server-none-growth.svg")).unwrap();
        assert!(growth.contains("plateau, +2.0 KiB per 1k requests"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_that_sanitize_alike_get_their_own_files() {
        let doc = document(vec![cell("a/b", 1), cell("a_b", 1), cell("a b", 1)]);
        let names: Vec<String> = plan(&doc)
            .into_iter()
            .flat_map(|g| g.plots)
            .map(|p| p.file)
            .filter(|f| f.ends_with("-processes.svg"))
            .collect();
        assert_eq!(
            names,
            [
                "server-none-a_b-processes.svg",
                "server-none-a_b-2-processes.svg",
                "server-none-a_b-3-processes.svg"
            ]
        );
    }

    #[test]
    fn cells_without_a_timeline_get_no_time_series() {
        let mut c = cell("glibc", 1);
        c.timeline = Timeline::default();
        let dir = temp_dir("untimed");
        let names = file_names(&write_plots(&document(vec![c]), &dir).unwrap());
        assert_eq!(names, ["server-none-returned.svg"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn groups_split_by_hook_and_repetition() {
        let mut trim = cell("glibc", 1);
        trim.prefork = "trim".into();
        let mut again = cell("glibc", 1);
        again.repetition = 1;
        // --cow-attribution's run without application writes.
        let mut alone = cell("glibc", 1);
        if let Some(s) = &mut alone.spec {
            s.static_writes_per_request = 0;
        }
        let groups = plan(&document(vec![cell("glibc", 1), trim, again, alone]));
        let titles: Vec<&str> = groups.iter().map(|g| g.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "server, prefork none",
                "server, prefork trim",
                "server, prefork none, repetition 1",
                "server, prefork none, no application writes"
            ]
        );
        assert_eq!(groups[1].plots[0].file, "server-trim-tree-pss.svg");
        assert_eq!(groups[2].plots[0].file, "server-none-r1-tree-pss.svg");
        assert_eq!(
            groups[3].plots[0].file,
            "server-none-no-app-writes-tree-pss.svg"
        );
    }

    #[test]
    fn markdown_links_are_relative_to_the_markdown_file() {
        let doc = document(vec![cell("glibc", 1)]);
        let md = markdown(
            &doc,
            Path::new("/r/plots"),
            Some(Path::new("/r/out/report.md")),
        );
        assert!(md.contains("![Tree anonymous PSS over time](../plots/server-none-tree-pss.svg)"));
        assert!(md.contains("[glibc](../plots/server-none-glibc-processes.svg)"));
        let md = markdown(&doc, Path::new("plots dir"), None);
        assert!(
            md.contains("(<plots dir/server-none-returned.svg>)"),
            "{md}"
        );
        assert!(markdown(&document(Vec::new()), Path::new("p"), None).is_empty());
    }

    #[test]
    fn names_become_safe_file_names() {
        assert_eq!(sanitize("glibc-arena2"), "glibc-arena2");
        assert_eq!(
            sanitize("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
            "usr_lib_x86_64-linux-gnu_libjemalloc.so.2"
        );
        assert_eq!(sanitize("../../etc/passwd"), "etc_passwd");
        assert_eq!(sanitize("a b:c*?"), "a_b_c");
        assert_eq!(sanitize("é"), "unnamed");
        assert_eq!(sanitize(""), "unnamed");
        assert!(sanitize(&"x".repeat(500)).len() <= 60);
    }

    #[test]
    fn relative_paths_climb_out_of_the_output_directory() {
        assert_eq!(
            relative_to(Path::new("/r/plots/a.svg"), Path::new("/r/out")),
            PathBuf::from("../plots/a.svg")
        );
        assert_eq!(
            relative_to(Path::new("/r/plots/a.svg"), Path::new("/r")),
            PathBuf::from("plots/a.svg")
        );
        assert_eq!(
            relative_to(Path::new("/r/x/../plots/a.svg"), Path::new("/r/./")),
            PathBuf::from("plots/a.svg")
        );
        // `--output report.md`: its directory is the current one.
        assert_eq!(
            relative_to(Path::new("plots/a.svg"), Path::new("")),
            PathBuf::from("plots/a.svg")
        );
        assert_eq!(link_text("a[1]"), "a\\[1\\]");
    }

    #[test]
    fn legend_rows_wrap_within_the_width() {
        let legend = Legend(
            (0..12)
                .map(|i| (Swatch::Line(INK), format!("variant number {i}")))
                .collect(),
            vec![10],
        );
        let rows = legend.rows(600);
        assert!(rows.len() > 1);
        assert_eq!(rows.iter().map(Vec::len).sum::<usize>(), 12);
        assert_eq!(rows.last().unwrap(), &vec![10, 11]);
        for row in &rows {
            let w: i32 = row
                .iter()
                .map(|&i| Legend::entry_width(&legend.0[i].1) + Legend::GAP)
                .sum();
            assert!(w - Legend::GAP <= 600);
        }
    }

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
    fn numbers_on_axes() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(20_000.0), "20k");
        assert_eq!(count(1_500_000.0), "1.5M");
        assert_eq!(axis_number(1.5, 3.0), "1.5");
        assert_eq!(axis_number(-0.001, 1.0), "0.00");
        assert_eq!(signed_bytes(73_103.0), "+71.4 KiB");
        assert_eq!(signed_bytes(-3_498.0), "-3.4 KiB");
        assert_eq!(idle_offset("idle+0.1s"), Some(0.1));
        assert_eq!(idle_offset("trimmed"), None);
    }
}
