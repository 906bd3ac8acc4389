//! `measure` results: one row per variant of the measured command, as a
//! table (terminal or Markdown) or CSV (`measure_csv.rs`). JSON is the
//! document itself.

use super::Exporter;
use super::markup::{Markup, Table, render};
use crate::analysis::measure::{
    Figure, MeasureRow, baseline, cluster_notes, no_verdict, summarize, verdict,
};
use crate::cli::Format;
use crate::results::environment::Environment;
use crate::results::measure::{MeasureMetrics, WORKLOAD};
use crate::results::{CellResult, Document, Status};

/// How the variant's allocator gets into the command.
fn allocator(cell: &CellResult) -> String {
    match cell.launch_env.get("LD_PRELOAD") {
        Some(path) => std::path::Path::new(path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.clone()),
        None => "glibc".into(),
    }
}

/// Whether the document holds several repetitions of a variant.
fn repeated(cells: &[CellResult]) -> bool {
    cells.iter().any(|c| c.repetition > 0)
}

/// A column of the table.
#[derive(Debug, Clone, Copy)]
enum Column {
    /// How the allocator gets in (the preloaded library).
    Allocator,
    /// Repetitions that finished (and failed).
    Runs,
    /// Processes when ready → loaded (one run only).
    Procs,
    /// A figure's median, and as much of its ratio to the first variant
    /// as `Show` says (when it has one).
    Figure(Figure, Show),
    /// Workers' USS, mean / max, in one column.
    WorkerUss,
    /// The coefficient of variation of a figure over the repetitions.
    Cv(Figure),
    /// The load command's summary line, or why there is none (one run only).
    Load,
}

/// How much of a figure's ratio a column shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Show {
    Value,
    Ratio,
    /// The ratio, ± its spread over the repetitions.
    Spread,
}

use Column as C;
use Figure as F;
use Show::{Ratio, Spread, Value};

/// The columns that decide, within 120 columns of a terminal: ratios for
/// tree PSS and throughput (the rest in `--wide`).
const NARROW: &[Column] = &[
    C::Figure(F::TreePss, Ratio),
    C::Figure(F::TreeUss, Value),
    C::WorkerUss,
    C::Figure(F::CowCopied, Value),
    C::Figure(F::CowEfficiency, Value),
    C::Figure(F::ReturnedIdle, Value),
    C::Figure(F::Rps, Ratio),
    C::Figure(F::LatencyP99, Value),
];

/// Over repetitions the spread of tree PSS takes CoW efficiency's place.
const NARROW_REPEATED: &[Column] = &[
    C::Figure(F::TreePss, Ratio),
    C::Cv(F::TreePss),
    C::Figure(F::TreeUss, Value),
    C::WorkerUss,
    C::Figure(F::CowCopied, Value),
    C::Figure(F::ReturnedIdle, Value),
    C::Figure(F::Rps, Ratio),
    C::Figure(F::LatencyP99, Value),
];

/// Every column (`--wide`, Markdown).
const WIDE: &[Column] = &[
    C::Allocator,
    C::Runs,
    C::Procs,
    C::Figure(F::TreePss, Spread),
    C::Cv(F::TreePss),
    C::Figure(F::TreeUss, Spread),
    C::Figure(F::TreePssAnonStarted, Spread),
    C::Figure(F::TreePssAnonLoaded, Spread),
    C::Figure(F::TreePssAnonIdle, Spread),
    C::Figure(F::WorkerUssMean, Spread),
    C::Figure(F::WorkerUssMax, Spread),
    C::Figure(F::WorkerPrivateDirty, Spread),
    C::Figure(F::CowCopied, Spread),
    C::Figure(F::CowEfficiency, Value),
    C::Figure(F::ReturnedIdle, Value),
    C::Figure(F::Rps, Spread),
    C::Cv(F::Rps),
    C::Figure(F::LatencyP50, Value),
    C::Figure(F::LatencyP99, Value),
    C::Load,
];

const DASH: &str = "—";

impl Column {
    fn heading(self) -> String {
        match self {
            C::Allocator => "allocator".into(),
            C::Runs => "runs".into(),
            C::Procs => "procs".into(),
            C::Figure(f, _) => f.label().into(),
            C::WorkerUss => "worker USS mean/max".into(),
            C::Cv(F::TreePss) => "CV".into(),
            C::Cv(f) => format!("{} CV", f.label()),
            C::Load => "load".into(),
        }
    }

    fn right(self) -> bool {
        !matches!(self, C::Allocator | C::Load)
    }

    /// Whether the column is shown for this document.
    fn shown(self, repeated: bool) -> bool {
        match self {
            C::Runs | C::Cv(_) => repeated,
            C::Procs | C::Load => !repeated,
            _ => true,
        }
    }

    fn text(self, row: &MeasureRow, cells: &[&CellResult]) -> String {
        let first = cells.first().copied();
        let ok = cells.iter().copied().find(|c| c.status == Status::Ok);
        match self {
            C::Allocator => {
                let a = first.map(allocator).unwrap_or_default();
                if row.ok == 0 {
                    format!("{a}: FAILED")
                } else {
                    a
                }
            }
            C::Runs => {
                if row.failed > 0 {
                    format!("{} ({} failed)", row.ok, row.failed)
                } else {
                    row.ok.to_string()
                }
            }
            C::Procs => ok
                .and_then(|c| c.measure.as_ref()?.metrics.as_ref())
                .map(procs)
                .unwrap_or_else(|| DASH.into()),
            C::Figure(f, show) => {
                let Some(s) = row.figures.get(&f) else {
                    return DASH.into();
                };
                let v = f.format(s.stat.median);
                match (&s.ratio, show) {
                    (Some(r), Spread) if row.ok > 1 => {
                        format!("{v} ({:.2} ± {:.2}×)", r.median, r.mad)
                    }
                    (Some(r), Ratio | Spread) => format!("{v} ({:.2}×)", r.median),
                    _ => v,
                }
            }
            C::WorkerUss => match (row.median(F::WorkerUssMean), row.median(F::WorkerUssMax)) {
                (Some(mean), Some(max)) => {
                    let mib = |v: f64| format!("{:.1}", v / (1u64 << 20) as f64);
                    format!("{} / {} MiB", mib(mean), mib(max))
                }
                _ => DASH.into(),
            },
            C::Cv(f) => row
                .figures
                .get(&f)
                .and_then(|s| s.stat.cv)
                .map(|c| format!("{:.1}%", c * 100.0))
                .unwrap_or_else(|| DASH.into()),
            C::Load => first.map(load_text).unwrap_or_else(|| DASH.into()),
        }
    }
}

/// Ready → loaded: a server may fork its workers after its port opens; and
/// how many were seen in all, when more.
fn procs(m: &MeasureMetrics) -> String {
    let n = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_else(|| DASH.into());
    let mut procs = format!("{} → {}", n(m.processes_started), n(m.processes_loaded));
    if m.processes_loaded.is_some_and(|l| m.processes_seen > l) {
        procs.push_str(&format!(" ({} seen)", m.processes_seen));
    }
    procs
}

fn load_text(c: &CellResult) -> String {
    let r = c.measure.as_ref();
    match (r.and_then(|r| r.load_error.as_ref()), &c.load_summary) {
        // Not ready, or not the variant: no load ran (the note says why).
        _ if c.status == Status::Failed && !r.is_some_and(|r| r.load_began()) => {
            "failed before the load".into()
        }
        (Some(_), Some(s)) => format!("load FAILED; {s}"),
        (Some(_), None) => "load FAILED".into(),
        (None, Some(s)) => s.clone(),
        (None, None) => r
            .and_then(|r| r.duration_s)
            .map(|d| format!("no load, {d} s"))
            .unwrap_or_else(|| DASH.into()),
    }
}

/// One row per variant: the figures that decide, each memory and
/// throughput figure with its ratio to the first variant; over
/// repetitions, medians (± the median absolute deviation of the paired
/// ratios, and CV, as `compare --repeat`). Every column when `wide`.
pub fn measure_table(doc: &Document, wide: bool) -> Table {
    table_of(&doc.cells, wide)
}

/// Whether a row has more than 1 MiB of the tree's anonymous memory on
/// transparent huge pages at `loaded` (the median over its repetitions),
/// which puts `huge` in the table, as in `compare`'s.
fn shows_huge(rows: &[MeasureRow]) -> bool {
    rows.iter().any(|r| {
        r.median(F::AnonHugeLoaded)
            .is_some_and(|h| h > super::compare::HUGE_SHOWN_ABOVE as f64)
    })
}

/// The line under a table that shows `huge`: what it is, and the machine's
/// transparent huge pages settings; empty otherwise.
pub(super) fn huge_note(cells: &[CellResult], env: &Environment) -> String {
    if !shows_huge(&summarize(cells)) {
        return String::new();
    }
    format!(
        "huge: AnonHugePages summed over the tree at the end of the load (a huge page shared \
         after the fork counts in each process that maps it); THP enabled [{}], defrag [{}].\n",
        env.thp_enabled, env.thp_defrag
    )
}

/// [`measure_table`] of some cells (a report's group).
pub fn table_of(all: &[CellResult], wide: bool) -> Table {
    let repeated = repeated(all);
    let rows = summarize(all);
    let mut columns: Vec<Column> = if wide {
        WIDE
    } else if repeated {
        NARROW_REPEATED
    } else {
        NARROW
    }
    .iter()
    .copied()
    .filter(|c| c.shown(repeated))
    .collect();
    if shows_huge(&rows) {
        let huge = C::Figure(F::AnonHugeLoaded, Value);
        let tree = |c: &Column| {
            matches!(
                c,
                C::Figure(
                    F::TreePss
                        | F::TreeUss
                        | F::TreePssAnonStarted
                        | F::TreePssAnonLoaded
                        | F::TreePssAnonIdle,
                    _
                )
            )
        };
        match columns
            .iter()
            .position(|c| matches!(c, C::Figure(F::TreeUss, _)))
        {
            // Within 120 columns it takes tree USS's place.
            Some(i) if !wide => columns[i] = huge,
            // After the tree's memory figures.
            _ => {
                let at = columns
                    .iter()
                    .rposition(tree)
                    .map_or(columns.len(), |i| i + 1);
                columns.insert(at, huge);
            }
        }
    }
    let headings: Vec<String> = std::iter::once("variant".to_string())
        .chain(columns.iter().map(|c| c.heading()))
        .collect();
    let spec: Vec<(&str, bool)> = headings
        .iter()
        .map(String::as_str)
        .zip(std::iter::once(false).chain(columns.iter().map(|c| c.right())))
        .collect();
    let mut table = Table::new(&spec);
    for row in rows {
        let cells: Vec<&CellResult> = all
            .iter()
            .filter(|c| c.workload == WORKLOAD && c.variant == row.variant)
            .collect();
        let mut line = vec![if row.ok == 0 && !wide {
            format!("{}: FAILED", row.variant)
        } else {
            row.variant.clone()
        }];
        line.extend(columns.iter().map(|c| c.text(&row, &cells)));
        table.push(line);
    }
    table
}

/// Why a finished row has no tree figures at some phase: for each process
/// whose memory could not be read (permission denied, an error of /proc),
/// the phases it voided and the reason.
pub fn missed_notes(cells: &[CellResult]) -> Vec<String> {
    let mut notes = Vec::new();
    for c in cells.iter().filter(|c| c.status == Status::Ok) {
        // (pid, reason) → phases, in the order met.
        let mut missed: Vec<((i32, &str), Vec<String>)> = Vec::new();
        for phase in &c.phases {
            for p in &phase.processes {
                let Some(why) = p.missed.as_deref().filter(|_| p.mem.is_none()) else {
                    continue;
                };
                match missed.iter_mut().find(|(k, _)| *k == (p.pid, why)) {
                    Some((_, phases)) => phases.push(phase.name.to_string()),
                    None => missed.push(((p.pid, why), vec![phase.name.to_string()])),
                }
            }
        }
        for ((pid, why), phases) in missed {
            let seen = c
                .measure
                .as_ref()
                .and_then(|m| m.processes.iter().find(|q| q.pid == pid));
            let who = match seen {
                Some(q) => {
                    format!("{} {pid} ({})", q.role.name(), q.command)
                }
                None => format!("process {pid}"),
            };
            notes.push(format!(
                "- {}: {who} could not be read at {}: {why}",
                c.variant,
                phases.join(", ")
            ));
        }
    }
    notes
}

/// The legend under the table: what the ratios are to and what the
/// columns mean.
pub fn legend(cells: &[CellResult]) -> String {
    let idle = cells
        .iter()
        .filter(|c| c.status == Status::Ok)
        .find_map(|c| c.measure.as_ref().map(|m| m.idle_s));
    let mut out = String::new();
    if let Some(base) = baseline(cells) {
        out.push_str(&format!(
            "Ratios (×) are to {base}, the first variant run (the order of --variants). "
        ));
    }
    if repeated(cells) {
        out.push_str(
            "Medians over the repetitions; a ratio is the variant's median over the first \
             variant's (± in the wide table: the median absolute deviation of the ratios \
             repetition by repetition); CV: the coefficient of variation. ",
        );
    }
    let idle = idle
        .map(|s| format!("after {} idle", crate::units::seconds(s)))
        .unwrap_or_else(|| "after the idle wait".into());
    out.push_str(&format!(
        "tree PSS, tree USS: summed over the command's process tree at the end of the load; \
         worker USS: each worker's USS then, mean/max; CoW copied: the workers' copies of \
         inherited pages; CoW eff: the share of those pages still shared; returned: the share \
         of the tree's growth during the load given back {idle}; req/s, p99: from the load \
         command's output.\n"
    ));
    out
}

/// What Ctrl-C cut short: the interrupted row and the rows not run.
fn interrupted_note(cells: &[CellResult]) -> Option<String> {
    let c = cells
        .iter()
        .find(|c| c.measure.as_ref().is_some_and(|m| m.interrupted))?;
    let r = c.measure.as_ref()?;
    // Named as the rows not run are, when the run had repetitions.
    let row = if repeated(cells) || r.not_run.iter().any(|n| n.contains("(repetition ")) {
        format!("{} (repetition {})", c.variant, c.repetition)
    } else {
        c.variant.clone()
    };
    let mut out = format!(
        "\nCut short: {row}: {}",
        c.error.as_deref().unwrap_or("interrupted")
    );
    if !r.not_run.is_empty() {
        out.push_str(&format!("; not run: {}", r.not_run.join(", ")));
    }
    out.push_str(".\n");
    Some(out)
}

/// The table with its legend, the verdict, and the failures listed under
/// it.
struct MeasureMarkup {
    markup: Markup,
    wide: bool,
}

impl Exporter for MeasureMarkup {
    fn serialize(&self, doc: &Document) -> anyhow::Result<String> {
        let wide = self.wide || self.markup == Markup::Markdown;
        let mut out = render(&measure_table(doc, wide), self.markup);
        out.push('\n');
        out.push_str(&legend(&doc.cells));
        out.push_str(&huge_note(&doc.cells, &doc.environment));
        if doc.cells.iter().any(|c| c.workload == WORKLOAD) {
            let line = verdict_line(&doc.cells, &summarize(&doc.cells));
            out.push_str(&format!("\n{line}\n"));
        }
        out.push_str(&notes(&doc.cells));
        Ok(out)
    }
}

/// What the table leaves out, under it: separate states, what Ctrl-C cut
/// short, failures, and processes that could not be read.
pub fn notes(cells: &[CellResult]) -> String {
    let mut out = String::new();
    let clusters = cluster_notes(&summarize(cells));
    if !clusters.is_empty() {
        out.push_str("\nSeparate states (repeat more, and compare the states, not the medians):\n");
        for n in clusters {
            out.push_str(&format!("- {n}\n"));
        }
    }
    out.extend(interrupted_note(cells));
    let mut failures = Vec::new();
    for c in cells {
        let who = if repeated(cells) {
            format!("{} (repetition {})", c.variant, c.repetition)
        } else {
            c.variant.clone()
        };
        if let Some(e) = &c.error
            && !c.measure.as_ref().is_some_and(|m| m.interrupted)
        {
            failures.push(format!("- {who}: {e}"));
        }
        if let Some(e) = c.measure.as_ref().and_then(|m| m.load_error.as_ref()) {
            failures.push(format!("- {who}: {e}"));
        }
    }
    if !failures.is_empty() {
        out.push_str("\nFailures:\n");
        out.push_str(&(failures.join("\n") + "\n"));
    }
    // No requests per second read from the load command's output.
    let load_notes: Vec<String> = cells
        .iter()
        .filter_map(|c| Some((c, c.measure.as_ref()?.load_note.as_ref()?)))
        .map(|(c, n)| format!("- {}: {n}", c.variant))
        .collect();
    if !load_notes.is_empty() {
        out.push_str(&format!("\nLoad output:\n{}\n", load_notes.join("\n")));
    }
    let missed = missed_notes(cells);
    if !missed.is_empty() {
        out.push_str(
            "\nIncomplete samples (a process whose memory could not be read leaves no tree \
             figures at that phase: —):\n",
        );
        out.push_str(&(missed.join("\n") + "\n"));
    }
    out
}

/// The line under a table of measured rows: the verdict with its rule, or
/// why there is none.
pub(super) fn verdict_line(cells: &[CellResult], rows: &[MeasureRow]) -> String {
    if let Some(why) = no_verdict(cells) {
        return why;
    }
    if let Some(v) = verdict(rows) {
        return v.text();
    }
    let finished: Vec<&str> = rows
        .iter()
        .filter(|r| r.ok > 0)
        .map(|r| r.variant.as_str())
        .collect();
    match finished.as_slice() {
        [] => "No variant finished: nothing to choose from.".to_string(),
        [one] => format!(
            "Only {one} has figures: nothing to choose between (measure more variants with \
             --variants)."
        ),
        _ => "No variant has a tree PSS: nothing to choose by.".to_string(),
    }
}

/// The exporter of a `measure` document in `format`.
/// `wide`: the terminal table with every column.
pub fn measure_exporter(format: Format, wide: bool) -> Box<dyn Exporter> {
    match format {
        Format::Table => Box::new(MeasureMarkup {
            markup: Markup::Terminal,
            wide,
        }),
        Format::Md => Box::new(MeasureMarkup {
            markup: Markup::Markdown,
            wide: true,
        }),
        Format::Csv => Box::new(super::measure_csv::MeasureCsv),
        Format::Json => super::exporter(Format::Json),
    }
}
