//! Exporters: the result document as a terminal table, Markdown, CSV or
//! JSON. Outputs are rewritten after every cell, so a crash loses nothing
//! finished.

mod compare;
pub(crate) mod csv;
pub mod list;
mod markup;
mod measure;
pub mod report;
pub mod run;

use std::path::Path;

pub use compare::{baseline_name, compare_table, failures, outlier_notes, repeated, summary_table};
pub use markup::{Markup, Table, render};
pub use measure::{measure_exporter, measure_table};

use crate::cli::Format;
use crate::results::Document;

/// Turns a document into the bytes of one output format.
pub trait Exporter {
    fn serialize(&self, doc: &Document) -> anyhow::Result<String>;
}

struct Json;

/// Compact JSON, one line: timelines are long arrays of numbers, which
/// pretty printing would spread over a line each (`jq .` pretty-prints).
impl Exporter for Json {
    fn serialize(&self, doc: &Document) -> anyhow::Result<String> {
        Ok(serde_json::to_string(doc)? + "\n")
    }
}

/// The comparison table in a markup, with the failed cells listed under it.
/// A terminal gets the columns that decide unless `wide`; Markdown gets
/// every column.
struct CompareMarkup {
    markup: Markup,
    wide: bool,
}

impl Exporter for CompareMarkup {
    fn serialize(&self, doc: &Document) -> anyhow::Result<String> {
        let repeated = repeated(doc);
        let wide = self.wide || self.markup == Markup::Markdown;
        let mut table = if repeated {
            summary_table(doc, wide)
        } else {
            compare_table(doc, wide)
        };
        if let Some(base) = baseline_name(doc) {
            for h in &mut table.headers {
                if h == "×" {
                    *h = format!("× {base}");
                }
            }
        }
        let mut out = render(&table, self.markup);
        if let Some(base) = baseline_name(doc) {
            out.push_str(&format!(
                "\nRatios (×) are to {base}. Memory is anonymous PSS summed over the process tree.\n"
            ));
        }
        if repeated {
            out.push_str(
                "Medians over the repetitions; ± is the median absolute deviation of the \
                 per-repetition ratios; CV is the coefficient of variation.\n",
            );
            let notes = outlier_notes(&doc.summary);
            if !notes.is_empty() {
                out.push_str("\nOutliers (modified Z-score above 3.5):\n");
                for n in notes {
                    out.push_str(&format!("- {n}\n"));
                }
            }
        }
        let failed = failures(doc);
        if !failed.is_empty() {
            out.push_str("\nFailed cells:\n");
            for (who, why) in failed {
                out.push_str(&format!("- {who}: {why}\n"));
            }
        }
        Ok(out)
    }
}

/// `compare`'s exporter in `format` (the terminal table with the columns
/// that decide).
pub fn exporter(format: Format) -> Box<dyn Exporter> {
    compare_exporter(format, false)
}

/// `compare`'s exporter in `format`; `wide`: the terminal table with every
/// column.
fn compare_exporter(format: Format, wide: bool) -> Box<dyn Exporter> {
    match format {
        Format::Table => Box::new(CompareMarkup {
            markup: Markup::Terminal,
            wide,
        }),
        Format::Md => Box::new(CompareMarkup {
            markup: Markup::Markdown,
            wide: true,
        }),
        Format::Csv => Box::new(csv::Csv),
        Format::Json => Box::new(Json),
    }
}

/// Which command's output a document is rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `run`: the per-phase detail of each cell.
    Run,
    /// `compare`: one row per cell, or per variant over repetitions; in a
    /// terminal, the columns that decide.
    Compare,
    /// `compare --wide`: every column in a terminal too.
    CompareWide,
    /// `sweep`: the grid and the fitted memory model.
    Sweep,
    /// `measure`: one row per variant of the measured command.
    Measure,
}

/// A document as `view` shows it in `format`.
pub fn view_text(view: View, doc: &Document, format: Format) -> anyhow::Result<String> {
    view_exporter(view, format).serialize(doc)
}

/// The exporter of `view` in `format`.
pub fn view_exporter(view: View, format: Format) -> Box<dyn Exporter> {
    match (view, format) {
        (View::Run, Format::Table) => Box::new(RunDetail(Markup::Terminal)),
        (View::Run, Format::Md) => Box::new(RunDetail(Markup::Markdown)),
        (View::Sweep, Format::Table | Format::Md) => Box::new(SweepText(format)),
        (View::Sweep, Format::Json) => Box::new(SweepJson),
        (View::Measure, _) => measure_exporter(format),
        (View::CompareWide, _) => compare_exporter(format, true),
        (View::Run | View::Compare | View::Sweep, _) => exporter(format),
    }
}

/// `run`: each cell's per-phase detail.
struct RunDetail(Markup);

impl Exporter for RunDetail {
    fn serialize(&self, doc: &Document) -> anyhow::Result<String> {
        Ok(doc
            .cells
            .iter()
            .map(|c| run::render_cell(c, self.0))
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

/// `sweep`'s JSON: the document with the model fitted to its cells.
struct SweepJson;

impl Exporter for SweepJson {
    fn serialize(&self, doc: &Document) -> anyhow::Result<String> {
        let mut doc = doc.clone();
        let fitted = crate::analysis::sweep::fit(&doc.cells);
        doc.fits = fitted.fits;
        doc.unfitted = fitted.unfitted;
        Json.serialize(&doc)
    }
}

/// `sweep`'s table or Markdown.
struct SweepText(Format);

impl Exporter for SweepText {
    fn serialize(&self, doc: &Document) -> anyhow::Result<String> {
        Ok(sweep_text(doc, self.0))
    }
}

/// The sweep's table and, per variant the grid allows, the fitted model.
fn sweep_text(doc: &Document, format: Format) -> String {
    let markup = if format == Format::Md {
        Markup::Markdown
    } else {
        Markup::Terminal
    };
    let mut out = render(&crate::analysis::sweep::sweep_table(doc), markup);
    out.push_str(
        "\nCPUs pinned/online: the CPUs a cell was pinned to (--cpus; — when not pinned) and \
         the CPUs online, from which glibc sizes its arena limit even when pinned.\n",
    );
    let fitted = crate::analysis::sweep::fit(&doc.cells);
    if !fitted.fits.is_empty() {
        let (model, cells) = crate::analysis::sweep::fit_tables(&fitted.fits);
        out.push_str("\nModel: tree PSS(P, T) = a + P·b + P·T·c (least squares)\n");
        out.push_str(&render(&model, markup));
        out.push('\n');
        out.push_str(&render(&cells, markup));
    }
    for u in &fitted.unfitted {
        out.push_str(&format!(
            "\nNo model fitted for {}: {}\n",
            u.variant, u.reason
        ));
    }
    out
}

/// The temporary file [`write_atomic`] writes before renaming it to `path`.
fn temp_path(path: &Path) -> std::path::PathBuf {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{file}.{}.tmp", std::process::id()))
}

fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
}

/// Writes `text` to `path` atomically: a temporary file beside it, then a
/// rename, so a reader never sees a half-written file.
pub fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let write = || -> std::io::Result<()> {
        create_parent(path)?;
        let tmp = temp_path(path);
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// Checks, before any work, that [`write_atomic`] will be able to write
/// `path`: its directory can be made and written, and it is not a directory.
pub fn check_writable(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        return Err(std::io::Error::other("it is a directory"));
    }
    create_parent(path)?;
    let tmp = temp_path(path);
    std::fs::File::create(&tmp)?;
    std::fs::remove_file(&tmp)
}
