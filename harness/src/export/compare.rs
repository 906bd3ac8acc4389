//! The comparison tables. One run per cell: a row per cell, figures relative
//! to the baseline variant (`glibc` when it ran, else the first variant) of
//! the same workload, hook, write mode and repetition. Several repetitions:
//! a row per variant with medians, ratios with their spread, and the
//! coefficient of variation.

use std::collections::BTreeSet;

use super::markup::Table;
use crate::result::{CellResult, Document, Metrics, Status};
use crate::stats::{SummaryMetric, SummaryRow, baseline_variant};
use crate::units::{mib, micros, pct, per_1k, rate, ratio, signed_mib, verdict};

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
                    "{} (prefork {}, repetition {})",
                    c.variant, c.prefork, c.repetition
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

/// Which optional columns a document needs.
struct Shape {
    hooks: bool,
    writes: bool,
}

fn shape(doc: &Document) -> Shape {
    let hooks: BTreeSet<&str> = doc.cells.iter().map(|c| c.prefork.as_str()).collect();
    let writes: BTreeSet<bool> = doc.cells.iter().map(app_writes).collect();
    Shape {
        hooks: hooks.len() > 1,
        writes: writes.len() > 1,
    }
}

fn head(shape: &Shape, extra: &[(&'static str, bool)]) -> Vec<(&'static str, bool)> {
    let mut columns = vec![("variant", false)];
    if shape.hooks {
        columns.push(("prefork", false));
    }
    if shape.writes {
        columns.push(("app writes", false));
    }
    columns.extend_from_slice(extra);
    columns
}

/// One row per cell.
pub fn compare_table(doc: &Document) -> Table {
    let shape = shape(doc);
    let columns = head(
        &shape,
        &[
            ("allocator", false),
            ("PSS anon steady", true),
            ("PSS anon trimmed", true),
            ("worker priv dirty", true),
            ("CoW copied", true),
            ("CoW efficiency", true),
            ("frag", true),
            ("growth", true),
            ("returned drained/trimmed", true),
            ("req/s", true),
            ("p99", true),
        ],
    );
    let mut table = Table::new(&columns);
    let base_name = baseline_name(doc).unwrap_or_default();
    for c in &doc.cells {
        let mut row = vec![c.variant.clone()];
        if shape.hooks {
            row.push(c.prefork.clone());
        }
        if shape.writes {
            row.push(if app_writes(c) { "yes" } else { "no" }.into());
        }
        let allocator = allocator_label(c);
        match (&c.status, &c.metrics) {
            (Status::Ok, Some(m)) => {
                let b = partner(doc, c, &base_name, app_writes(c));
                let arenas = m
                    .arenas
                    .map(|n| format!(", {n} arena{}", if n == 1 { "" } else { "s" }))
                    .unwrap_or_default();
                row.push(format!("{allocator}{arenas}"));
                row.push(with_ratio(
                    mib(m.tree_pss_anon_steady),
                    m.tree_pss_anon_steady as f64,
                    b.map(|b| b.tree_pss_anon_steady as f64),
                ));
                row.push(with_ratio(
                    mib(m.tree_pss_anon_trimmed),
                    m.tree_pss_anon_trimmed as f64,
                    b.map(|b| b.tree_pss_anon_trimmed as f64),
                ));
                row.push(with_ratio(
                    signed_mib(m.worker_private_dirty_growth),
                    m.worker_private_dirty_growth as f64,
                    b.map(|b| b.worker_private_dirty_growth as f64),
                ));
                row.push(cow_copied(doc, c, m));
                row.push(m.cow_efficiency.map(pct).unwrap_or_else(|| "—".into()));
                row.push(match m.fragmentation {
                    Some(f) => with_ratio(format!("{f:.2}"), f, b.and_then(|b| b.fragmentation)),
                    None => "—".into(),
                });
                row.push(match (&m.growth_verdict, m.growth_bytes_per_1k_requests) {
                    (Some(v), Some(slope)) => format!("{v} {}", per_1k(slope)),
                    _ => "—".into(),
                });
                let ret = |k: &str| {
                    m.returned
                        .get(k)
                        .map(|f| pct(*f))
                        .unwrap_or_else(|| "—".into())
                };
                row.push(format!("{} / {}", ret("drained"), ret("trimmed")));
                row.push(with_ratio(
                    rate(m.throughput_rps),
                    m.throughput_rps,
                    b.map(|b| b.throughput_rps),
                ));
                row.push(with_ratio(
                    micros(m.latency_p99_us),
                    m.latency_p99_us,
                    b.map(|b| b.latency_p99_us),
                ));
            }
            _ => {
                row.push(format!("{allocator}: FAILED"));
                while row.len() < columns.len() {
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

fn median_with_ratio(m: Option<&SummaryMetric>, fmt: fn(f64) -> String) -> String {
    let Some(m) = m else {
        return "—".into();
    };
    match &m.ratio {
        Some(r) => format!("{} ({:.2} ± {:.2}×)", fmt(m.stat.median), r.median, r.mad),
        None => fmt(m.stat.median),
    }
}

fn cv(m: Option<&SummaryMetric>) -> String {
    m.and_then(|m| m.stat.cv)
        .map(|c| format!("{:.1}%", c * 100.0))
        .unwrap_or_else(|| "—".into())
}

/// One row per variant over its repetitions: medians, ratios to the
/// baseline with their spread (± is the median absolute deviation of the
/// per-repetition ratios), and the coefficient of variation.
pub fn summary_table(doc: &Document) -> Table {
    let shape = shape(doc);
    let columns = head(
        &shape,
        &[
            ("runs", true),
            ("PSS anon steady", true),
            ("CV", true),
            ("PSS anon trimmed", true),
            ("CoW copied", true),
            ("arenas", true),
            ("growth", true),
            ("req/s", true),
            ("CV", true),
            ("p99", true),
        ],
    );
    let mut table = Table::new(&columns);
    let bytes = |v: f64| mib(v.max(0.0) as u64);
    for r in &doc.summary {
        let mut row = vec![r.variant.clone()];
        if shape.hooks {
            row.push(r.prefork.clone());
        }
        if shape.writes {
            row.push(if r.app_writes { "yes" } else { "no" }.into());
        }
        let g = |k: &str| r.metrics.get(k);
        row.push(if r.failed > 0 {
            format!("{} ({} failed)", r.ok, r.failed)
        } else {
            r.ok.to_string()
        });
        row.push(median_with_ratio(g("tree_pss_anon_steady"), bytes));
        row.push(cv(g("tree_pss_anon_steady")));
        row.push(median_with_ratio(g("tree_pss_anon_trimmed"), bytes));
        row.push(median_with_ratio(g("cow_copied"), bytes));
        row.push(
            g("arenas")
                .map(|m| format!("{:.0}", m.stat.median))
                .unwrap_or_else(|| "—".into()),
        );
        row.push(match (g("growing"), g("growth_bytes_per_1k_requests")) {
            (Some(v), Some(slope)) => {
                format!("{} {}", verdict(v.stat.median), per_1k(slope.stat.median))
            }
            _ => "—".into(),
        });
        row.push(median_with_ratio(g("throughput_rps"), rate));
        row.push(cv(g("throughput_rps")));
        row.push(median_with_ratio(g("latency_p99_us"), micros));
        table.push(row);
    }
    table
}

/// The metrics the summary table shows.
const SHOWN: &[&str] = &[
    "tree_pss_anon_steady",
    "tree_pss_anon_trimmed",
    "cow_copied",
    "throughput_rps",
    "latency_p99_us",
];

/// Lines naming the repetitions flagged as outliers, per variant and shown
/// metric (the JSON summary has them for every metric).
pub fn outlier_notes(summary: &[SummaryRow]) -> Vec<String> {
    let mut out = Vec::new();
    for r in summary {
        for (name, m) in r
            .metrics
            .iter()
            .filter(|(k, _)| SHOWN.contains(&k.as_str()))
        {
            if !m.stat.outliers.is_empty() {
                let reps: Vec<String> = m.stat.outliers.iter().map(|x| x.to_string()).collect();
                out.push(format!(
                    "{} (prefork {}): {name} of repetition {} is an outlier",
                    r.variant,
                    r.prefork,
                    reps.join(", ")
                ));
            }
        }
    }
    out
}
