//! Exporters: the result document as a terminal table, Markdown, CSV or
//! JSON. Outputs are rewritten after every cell, so a crash loses nothing
//! finished.

mod compare;
pub(crate) mod csv;
pub mod inspect;
pub mod list;
mod markup;
pub(crate) mod measure;
mod measure_csv;
mod measure_report;
pub mod report;
pub mod report_csv;
pub mod run;
pub mod sweep;

pub use compare::{
    baseline_name, compare_table, failures, outlier_notes, repeated, returned_above_all,
    shows_huge, summary_table,
};
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
        let table = if repeated {
            summary_table(doc, wide)
        } else {
            compare_table(doc, wide)
        };
        let mut out = render(&table, self.markup);
        if let Some(base) = baseline_name(doc) {
            out.push_str(&format!(
                "\nRatios (×) are to {base}. Memory is anonymous PSS summed over the process tree.\n"
            ));
        }
        if shows_huge(doc) {
            let env = &doc.environment;
            out.push_str(&format!(
                "huge: AnonHugePages summed over the tree at steady (a huge page shared after \
                 the fork counts in each process that maps it); THP enabled [{}], defrag [{}].\n",
                env.thp_enabled, env.thp_defrag
            ));
        }
        if let Some(rps) = doc
            .cells
            .iter()
            .filter_map(|c| c.spec.as_ref())
            .map(|s| s.idle_trickle_rps)
            .find(|&r| r > 0.0)
        {
            out.push_str(&format!(
                "Through the idle window each serving process served {rps} requests per second \
                 (--idle-trickle).\n"
            ));
        }
        if wide && !repeated && returned_above_all(doc) {
            out.push_str("* above 100%: the tree ended below its size at the fork.\n");
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
    /// `measure`: one row per variant of the measured command; in a
    /// terminal, the columns that decide.
    Measure,
    /// `measure --wide`: every column in a terminal too.
    MeasureWide,
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
        (View::Measure, _) => measure_exporter(format, false),
        (View::MeasureWide, _) => measure_exporter(format, true),
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

/// `sweep`'s JSON: the document with the model fitted to its cells (not
/// to a shard's).
struct SweepJson;

impl Exporter for SweepJson {
    fn serialize(&self, doc: &Document) -> anyhow::Result<String> {
        let mut doc = doc.clone();
        // A shard holds part of the grid: the model is fitted when the
        // shards are merged.
        if doc.shard.is_none() {
            let fitted = crate::analysis::sweep::fit(&doc.cells);
            doc.fits = fitted.fits;
            doc.unfitted = fitted.unfitted;
        }
        Json.serialize(&doc)
    }
}

/// `sweep`'s table or Markdown.
struct SweepText(Format);

impl Exporter for SweepText {
    fn serialize(&self, doc: &Document) -> anyhow::Result<String> {
        Ok(sweep::sweep_text(doc, self.0))
    }
}
