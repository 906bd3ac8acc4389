//! The comparison tables. One run per cell: a row per cell, figures relative
//! to the baseline variant (`glibc` when it ran, else the first variant) of
//! the same workload, hook, write mode and repetition. Several repetitions
//! (`compare/summary.rs`): a row per variant with medians, ratios with their
//! spread, and the coefficient of variation.

use allocbench_workloads::{Lifecycle, PreforkHook};
use std::collections::BTreeSet;

use super::markup::Table;
use crate::analysis::stats::baseline_variant;
use crate::results::metric::MetricId;
use crate::results::{CellResult, Document, Metrics, Status};
use crate::units::{mib, per_1k, ratio, signed_mib};

mod summary;
pub use summary::{outlier_notes, summary_table};

/// The variant ratios are taken against.
pub fn baseline_name(doc: &Document) -> Option<String> {
    baseline_variant(&doc.cells).map(str::to_string)
}

fn app_writes(c: &CellResult) -> bool {
    c.app_writes()
}

/// The finished cell of `variant` in `cell`'s group (same workload, hook and
/// repetition), with or without application writes.
fn partner<'a>(
    doc: &'a Document,
    cell: &CellResult,
    variant: &str,
    writes: bool,
) -> Option<&'a Metrics> {
    doc.cells
        .iter()
        .find(|c| {
            c.variant == variant
                && c.workload == cell.workload
                && c.prefork == cell.prefork
                && c.lifecycle == cell.lifecycle
                && c.repetition == cell.repetition
                && app_writes(c) == writes
                && c.status == Status::Ok
        })
        .and_then(|c| c.metrics.as_ref())
}

/// (cell, reason) for every failed cell.
pub fn failures(doc: &Document) -> Vec<(String, String)> {
    doc.cells
        .iter()
        .filter(|c| c.status == Status::Failed)
        .map(|c| {
            (
                format!(
                    "{} ({}, repetition {})",
                    c.variant,
                    crate::results::arm(c.prefork, &c.lifecycle),
                    c.repetition
                ),
                c.error.clone().unwrap_or_else(|| "failed".into()),
            )
        })
        .collect()
}

fn with_ratio(text: String, value: f64, base: Option<f64>) -> String {
    match base {
        Some(b) => format!("{text} ({})", ratio(value, b)),
        None => text,
    }
}

fn allocator_label(c: &CellResult) -> String {
    c.allocator
        .as_ref()
        .map(|a| {
            let mut s = a.name.clone();
            if let Some(v) = &a.version {
                s.push(' ');
                s.push_str(v.split('-').next().unwrap_or(v));
            }
            s
        })
        .unwrap_or_else(|| "?".into())
}

/// The allocator as the narrow table shows it: its name and version number
/// (`tcmalloc 2.10` for gperftools 2.10), without the arena count.
fn allocator_short(c: &CellResult) -> String {
    c.allocator
        .as_ref()
        .map(|a| match &a.version {
            Some(v) => {
                let v = v.split('-').next().unwrap_or(v);
                format!("{} {}", a.name, v.rsplit(' ').next().unwrap_or(v))
            }
            None => a.name.clone(),
        })
        .unwrap_or_else(|| "?".into())
}

/// Which optional columns a document needs.
struct Shape {
    hooks: bool,
    lifecycles: bool,
    writes: bool,
}

fn shape(doc: &Document) -> Shape {
    let hooks: BTreeSet<&str> = doc.cells.iter().map(|c| c.prefork.name()).collect();
    let writes: BTreeSet<bool> = doc.cells.iter().map(app_writes).collect();
    Shape {
        hooks: hooks.len() > 1,
        lifecycles: doc.cells.iter().any(|c| !c.lifecycle.is_none()),
        writes: writes.len() > 1,
    }
}

impl Shape {
    /// A row's first cells: the variant, and the hook, lifecycle and write
    /// mode when they vary (the lifecycle when any is not `none`).
    fn row(
        &self,
        variant: &str,
        prefork: PreforkHook,
        lifecycle: &Lifecycle,
        writes: bool,
    ) -> Vec<String> {
        let mut row = vec![variant.to_string()];
        if self.hooks {
            row.push(prefork.to_string());
        }
        if self.lifecycles {
            row.push(lifecycle.to_string());
        }
        if self.writes {
            row.push(if writes { "yes" } else { "no" }.into());
        }
        row
    }
}

/// A table whose columns are the variant (and hook and write mode when they
/// vary), then `extra` (heading, right-aligned).
fn table(shape: &Shape, extra: Vec<(String, bool)>) -> Table {
    let mut columns = vec![("variant".to_string(), false)];
    if shape.hooks {
        columns.push(("prefork".into(), false));
    }
    if shape.lifecycles {
        columns.push(("lifecycle".into(), false));
    }
    if shape.writes {
        columns.push(("app writes".into(), false));
    }
    columns.extend(extra);
    Table {
        right: columns.iter().map(|c| c.1).collect(),
        headers: columns.into_iter().map(|c| c.0).collect(),
        rows: Vec::new(),
    }
}

/// The heading of the one ratio column: `× glibc` (the baseline).
fn ratio_heading(base: Option<&str>) -> String {
    match base {
        Some(b) => format!("× {b}"),
        None => "×".into(),
    }
}

/// A column of the comparison tables after the variant (and hook and write
/// mode): a metric from the registry, or a figure made of several.
#[derive(Debug, Clone, Copy)]
enum Column {
    /// The allocator in effect and its arena count.
    Allocator,
    /// The allocator in effect, name and version number only (the narrow
    /// table, which must fit 120 columns).
    AllocatorShort,
    /// A metric; with its ratio to the baseline when `true`.
    Metric(MetricId, bool),
    /// `cow_copied`, with the application's share when its partner ran.
    CowCopied,
    /// The growth verdict and slope.
    Growth,
    /// `returned_drained / returned_trimmed`.
    Returned,
    /// The metric's ratio to the baseline alone: the one ratio of a row.
    RatioTo(MetricId),
}

impl Column {
    fn heading(self, base: Option<&str>) -> String {
        match self {
            Column::Allocator | Column::AllocatorShort => "allocator".into(),
            Column::Metric(id, _) => id.label().into(),
            Column::CowCopied => MetricId::CowCopied.label().into(),
            Column::Growth => MetricId::GrowthBytesPer1kRequests.label().into(),
            Column::Returned => "returned drained/trimmed".into(),
            Column::RatioTo(_) => ratio_heading(base),
        }
    }
}

/// The one-run table as a terminal shows it by default: the figures that
/// decide, and one ratio per row (memory); it fits 120 columns.
const CELL_COLUMNS: &[Column] = &[
    Column::AllocatorShort,
    Column::Metric(MetricId::TreePssAnonSteady, false),
    Column::RatioTo(MetricId::TreePssAnonSteady),
    Column::CowCopied,
    Column::Metric(MetricId::ThroughputRps, false),
    Column::Metric(MetricId::LatencyP99Us, false),
];

/// The one-run table of a document with lifecycle policies, in every
/// format: the memory paid over the serving phase, the restarts and what
/// they cost.
const LIFECYCLE_CELL_COLUMNS: &[Column] = &[
    Column::AllocatorShort,
    Column::Metric(MetricId::TreePssAnonMean, false),
    Column::RatioTo(MetricId::TreePssAnonMean),
    Column::Metric(MetricId::TreePssAnonPeak, false),
    Column::Metric(MetricId::Restarts, false),
    Column::Metric(MetricId::ThroughputRps, false),
    Column::Metric(MetricId::LatencyP99Us, false),
];

/// The one-run table with every column (`--wide`, Markdown).
const WIDE_CELL_COLUMNS: &[Column] = &[
    Column::Allocator,
    Column::Metric(MetricId::TreePssAnonSteady, true),
    Column::Metric(MetricId::TreePssAnonTrimmed, true),
    Column::Metric(MetricId::WorkerPrivateDirtyGrowth, true),
    Column::CowCopied,
    Column::Metric(MetricId::CowEfficiency, false),
    Column::Metric(MetricId::Fragmentation, true),
    Column::Growth,
    Column::Returned,
    Column::Metric(MetricId::ThroughputRps, true),
    Column::Metric(MetricId::LatencyP99Us, true),
];

/// One finished cell's figure in `column`; `base` is the baseline's
/// metrics in the same group.
fn cell_figure(
    doc: &Document,
    c: &CellResult,
    m: &Metrics,
    base: Option<&Metrics>,
    column: Column,
) -> String {
    match column {
        Column::AllocatorShort => allocator_short(c),
        Column::Allocator => {
            let arenas = m
                .arenas
                .map(|n| format!(", {n} arena{}", if n == 1 { "" } else { "s" }))
                .unwrap_or_default();
            format!("{}{arenas}", allocator_label(c))
        }
        Column::Metric(id, ratio) => match id.get(m) {
            Some(v) => with_ratio(
                id.format(v),
                v,
                base.filter(|_| ratio).and_then(|b| id.get(b)),
            ),
            None => "—".into(),
        },
        Column::CowCopied => cow_copied(doc, c, m),
        Column::Growth => match (&m.growth_verdict, m.growth_bytes_per_1k_requests) {
            (Some(v), Some(slope)) => format!("{v} {}", per_1k(slope)),
            _ => "—".into(),
        },
        Column::Returned => {
            // Above 100%: the tree ended below its size at the fork (noted
            // under the table).
            let show = |id: MetricId| {
                let mark = if id.get(m).is_some_and(|r| r > 1.0) {
                    "*"
                } else {
                    ""
                };
                format!("{}{mark}", id.show(m))
            };
            format!(
                "{} / {}",
                show(MetricId::ReturnedDrained),
                show(MetricId::ReturnedTrimmed)
            )
        }
        Column::RatioTo(id) => match (id.get(m), base.and_then(|b| id.get(b))) {
            (Some(v), Some(b)) => ratio(v, b),
            _ => "—".into(),
        },
    }
}

/// The most anonymous memory on huge pages a document's variants may have
/// for its tables to leave the `huge` column out.
pub(super) const HUGE_SHOWN_ABOVE: u64 = 1 << 20;

/// Whether a finished cell of `doc` has more than 1 MiB of its tree's
/// anonymous memory on transparent huge pages at steady.
pub fn shows_huge(doc: &Document) -> bool {
    doc.cells
        .iter()
        .filter_map(|c| c.metrics.as_ref())
        .any(|m| m.anon_huge_steady.is_some_and(|h| h > HUGE_SHOWN_ABOVE))
}

/// Whether a finished cell's tree ended below its size at the fork, which
/// puts a `returned` share above 100%.
pub fn returned_above_all(doc: &Document) -> bool {
    doc.cells
        .iter()
        .filter_map(|c| c.metrics.as_ref())
        .any(|m| m.returned.values().any(|&r| r > 1.0))
}

/// `columns` with `huge` after the memory figure and its ratio when `huge`.
fn with_huge<C: Copy>(columns: &[C], huge: bool, is_memory: fn(&C) -> bool, column: C) -> Vec<C> {
    let mut out = columns.to_vec();
    if huge {
        let at = out.iter().rposition(is_memory).map_or(out.len(), |i| i + 1);
        out.insert(at, column);
    }
    out
}

/// One row per cell; every column when `wide`.
pub fn compare_table(doc: &Document, wide: bool) -> Table {
    let shape = shape(doc);
    let cell_columns = with_huge(
        if shape.lifecycles {
            LIFECYCLE_CELL_COLUMNS
        } else if wide {
            WIDE_CELL_COLUMNS
        } else {
            CELL_COLUMNS
        },
        shows_huge(doc),
        |c| {
            matches!(
                c,
                Column::Metric(MetricId::TreePssAnonSteady | MetricId::TreePssAnonMean, _)
                    | Column::RatioTo(MetricId::TreePssAnonSteady | MetricId::TreePssAnonMean)
            )
        },
        Column::Metric(MetricId::AnonHugeSteady, false),
    );
    let cell_columns = &cell_columns[..];
    let base = baseline_name(doc);
    // The allocator is text: left-aligned.
    let figures = cell_columns
        .iter()
        .map(|c| {
            (
                c.heading(base.as_deref()),
                !matches!(c, Column::Allocator | Column::AllocatorShort),
            )
        })
        .collect();
    let mut table = table(&shape, figures);
    let columns = table.headers.len();
    let base_name = base.unwrap_or_default();
    for c in &doc.cells {
        let mut row = shape.row(&c.variant, c.prefork, &c.lifecycle, app_writes(c));
        match (&c.status, &c.metrics) {
            (Status::Ok, Some(m)) => {
                let b = partner(doc, c, &base_name, app_writes(c));
                for &column in cell_columns {
                    row.push(cell_figure(doc, c, m, b, column));
                }
            }
            _ => {
                row.push(format!("{}: FAILED", allocator_label(c)));
                while row.len() < columns {
                    row.push("—".into());
                }
            }
        }
        table.push(row);
    }
    table
}

/// CoW copied, and for a cell with application writes whose allocator-only
/// partner ran, the application's share as the difference of the two runs.
fn cow_copied(doc: &Document, c: &CellResult, m: &Metrics) -> String {
    let Some(total) = m.cow_copied else {
        return "—".into();
    };
    let alone = app_writes(c)
        .then(|| partner(doc, c, &c.variant, false))
        .flatten()
        .and_then(|p| p.cow_copied);
    match alone {
        Some(alloc) => format!(
            "{} (app {})",
            mib(total),
            signed_mib(total as i64 - alloc as i64)
        ),
        None => mib(total),
    }
}

/// Whether the document holds several repetitions.
pub fn repeated(doc: &Document) -> bool {
    doc.cells.iter().any(|c| c.repetition > 0)
}
