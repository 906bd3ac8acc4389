//! `measure` results: one row per variant of the measured command, as a
//! table (terminal or Markdown) or CSV. JSON is the document itself.

use super::Exporter;
use super::markup::{Markup, Table, render};
use crate::cli::Format;
use crate::results::measure::{MeasureMetrics, WORKLOAD};
use crate::results::{CellResult, Document, Status};
use crate::units::{mib, pct, ratio};

/// The variant ratios are taken against: `glibc` when it ran, else the
/// first variant.
fn baseline<'a>(doc: &'a Document) -> Option<(&'a str, &'a MeasureMetrics)> {
    let ok = |c: &&'a CellResult| c.status == Status::Ok && c.workload == WORKLOAD;
    let cell = doc
        .cells
        .iter()
        .filter(ok)
        .find(|c| c.variant == "glibc")
        .or_else(|| doc.cells.iter().find(ok))?;
    Some((&cell.variant, cell.measure.as_ref()?.metrics.as_ref()?))
}

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

fn opt_mib(v: Option<u64>) -> String {
    v.map(mib).unwrap_or_else(|| "—".into())
}

fn with_ratio(v: Option<u64>, base: Option<u64>) -> String {
    match (v, base) {
        (Some(v), Some(b)) => format!("{} ({})", mib(v), ratio(v as f64, b as f64)),
        (v, _) => opt_mib(v),
    }
}

pub fn measure_table(doc: &Document) -> Table {
    let mut table = Table::new(&[
        ("variant", false),
        ("allocator", false),
        ("procs", true),
        ("PSS anon ready", true),
        ("PSS anon loaded", true),
        ("PSS anon idle", true),
        ("PSS loaded", true),
        ("worker priv loaded", true),
        ("CoW copied", true),
        ("returned idle", true),
        ("load", false),
    ]);
    let base = baseline(doc).map(|(_, m)| m);
    for c in &doc.cells {
        let mut row = vec![c.variant.clone(), allocator(c)];
        let m = c.measure.as_ref().and_then(|r| r.metrics.as_ref());
        match (&c.status, m) {
            (Status::Ok, Some(m)) => {
                // Ready → loaded: a server may fork its workers after its
                // port opens; and how many were seen in all, when more.
                let n = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_else(|| "—".into());
                let mut procs = format!("{} → {}", n(m.processes_started), n(m.processes_loaded));
                if m.processes_loaded.is_some_and(|l| m.processes_seen > l) {
                    procs.push_str(&format!(" ({} seen)", m.processes_seen));
                }
                row.push(procs);
                row.push(with_ratio(
                    m.tree_pss_anon_started,
                    base.and_then(|b| b.tree_pss_anon_started),
                ));
                row.push(with_ratio(
                    m.tree_pss_anon_loaded,
                    base.and_then(|b| b.tree_pss_anon_loaded),
                ));
                row.push(with_ratio(
                    m.tree_pss_anon_idle,
                    base.and_then(|b| b.tree_pss_anon_idle),
                ));
                row.push(opt_mib(m.tree_pss_loaded));
                row.push(opt_mib(m.worker_private_dirty_loaded));
                row.push(opt_mib(m.cow_copied_loaded));
                row.push(m.returned_idle.map(pct).unwrap_or_else(|| "—".into()));
            }
            _ => {
                row[1] = format!("{}: FAILED", row[1]);
                while row.len() < 10 {
                    row.push("—".into());
                }
            }
        }
        let r = c.measure.as_ref();
        let load = match (r.and_then(|r| r.load_error.as_ref()), &c.load_summary) {
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
                .unwrap_or_else(|| "—".into()),
        };
        row.push(load);
        table.push(row);
    }
    table
}

/// Why a finished row has no tree figures at some phase: for each process
/// whose memory could not be read (permission denied, an error of /proc),
/// the phases it voided and the reason.
pub fn missed_notes(doc: &Document) -> Vec<String> {
    let mut notes = Vec::new();
    for c in doc.cells.iter().filter(|c| c.status == Status::Ok) {
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

/// The table with its legend and the failures listed under it.
struct MeasureMarkup(Markup);

impl Exporter for MeasureMarkup {
    fn serialize(&self, doc: &Document) -> anyhow::Result<String> {
        let mut out = render(&measure_table(doc), self.0);
        let idle = doc
            .cells
            .iter()
            .find_map(|c| c.measure.as_ref().map(|m| m.idle_s))
            .unwrap_or_default();
        out.push('\n');
        if let Some((base, _)) = baseline(doc) {
            out.push_str(&format!("Ratios (×) are to {base}. "));
        }
        out.push_str(&format!(
            "Memory is anonymous PSS summed over the command's process tree: when ready, at the \
             end of the load, and after {idle} s idle (procs: processes when ready → loaded). worker priv dirty: growth of the \
             descendants' Private_Dirty from their first sample to loaded; CoW copied: their \
             copies of inherited pages at loaded.\n"
        ));
        let mut notes = Vec::new();
        for c in &doc.cells {
            if let Some(e) = &c.error {
                notes.push(format!("- {}: {e}", c.variant));
            }
            if let Some(e) = c.measure.as_ref().and_then(|m| m.load_error.as_ref()) {
                notes.push(format!("- {}: {e}", c.variant));
            }
        }
        if !notes.is_empty() {
            out.push_str("\nFailures:\n");
            out.push_str(&(notes.join("\n") + "\n"));
        }
        // No requests per second read from the load command's output.
        let load_notes: Vec<String> = (doc.cells.iter())
            .filter_map(|c| Some((c, c.measure.as_ref()?.load_note.as_ref()?)))
            .map(|(c, n)| format!("- {}: {n}", c.variant))
            .collect();
        if !load_notes.is_empty() {
            out.push_str(&format!("\nLoad output:\n{}\n", load_notes.join("\n")));
        }
        let missed = missed_notes(doc);
        if !missed.is_empty() {
            out.push_str(
                "\nIncomplete samples (a process whose memory could not be read leaves no tree \
                 figures at that phase: —):\n",
            );
            out.push_str(&(missed.join("\n") + "\n"));
        }
        Ok(out)
    }
}

const COLUMNS: &[&str] = &[
    "workload",
    "variant",
    "status",
    "error",
    "ld_preload",
    "processes_started",
    "processes_loaded",
    "processes_idle",
    "processes_seen",
    "tree_pss_started",
    "tree_pss_anon_started",
    "tree_pss_loaded",
    "tree_pss_anon_loaded",
    "tree_uss_loaded",
    "tree_rss_loaded",
    "tree_pss_idle",
    "tree_pss_anon_idle",
    "worker_private_dirty_loaded",
    "worker_private_dirty_idle",
    "worker_private_dirty_growth",
    "cow_copied_loaded",
    "cow_shared_loaded",
    "cow_copied_idle",
    "returned_idle",
    "returned_lazyfree_idle",
    "load_status",
    "load_error",
    "load_summary",
    "load_rps",
];

/// CSV with raw numbers (bytes, fractions); empty where a figure is `null`.
struct MeasureCsv;

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

impl Exporter for MeasureCsv {
    fn serialize(&self, doc: &Document) -> anyhow::Result<String> {
        let rows = doc.cells.iter().map(|c| {
            let r = c.measure.as_ref();
            let m = r.and_then(|r| r.metrics.as_ref());
            [
                c.workload.clone(),
                c.variant.clone(),
                match c.status {
                    Status::Ok => "ok".into(),
                    Status::Failed => "failed".into(),
                },
                c.error.clone().unwrap_or_default(),
                c.launch_env.get("LD_PRELOAD").cloned().unwrap_or_default(),
                opt(m.and_then(|m| m.processes_started)),
                opt(m.and_then(|m| m.processes_loaded)),
                opt(m.and_then(|m| m.processes_idle)),
                opt(m.map(|m| m.processes_seen)),
                opt(m.and_then(|m| m.tree_pss_started)),
                opt(m.and_then(|m| m.tree_pss_anon_started)),
                opt(m.and_then(|m| m.tree_pss_loaded)),
                opt(m.and_then(|m| m.tree_pss_anon_loaded)),
                opt(m.and_then(|m| m.tree_uss_loaded)),
                opt(m.and_then(|m| m.tree_rss_loaded)),
                opt(m.and_then(|m| m.tree_pss_idle)),
                opt(m.and_then(|m| m.tree_pss_anon_idle)),
                opt(m.and_then(|m| m.worker_private_dirty_loaded)),
                opt(m.and_then(|m| m.worker_private_dirty_idle)),
                opt(m.and_then(|m| m.worker_private_dirty_growth)),
                opt(m.and_then(|m| m.cow_copied_loaded)),
                opt(m.and_then(|m| m.cow_shared_loaded)),
                opt(m.and_then(|m| m.cow_copied_idle)),
                opt(m.and_then(|m| m.returned_idle)),
                opt(m.and_then(|m| m.returned_lazyfree_idle)),
                opt(r.and_then(|r| r.load_status.clone())),
                opt(r.and_then(|r| r.load_error.clone())),
                c.load_summary.clone().unwrap_or_default(),
                opt(m.and_then(|m| m.load_rps)),
            ]
        });
        super::csv::text(COLUMNS, rows)
    }
}

/// The exporter of a `measure` document in `format`.
pub fn measure_exporter(format: Format) -> Box<dyn Exporter> {
    match format {
        Format::Table => Box::new(MeasureMarkup(Markup::Terminal)),
        Format::Md => Box::new(MeasureMarkup(Markup::Markdown)),
        Format::Csv => Box::new(MeasureCsv),
        Format::Json => super::exporter(Format::Json),
    }
}
