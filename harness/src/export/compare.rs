//! The comparison table: one row per cell, figures relative to the baseline
//! variant (`glibc` when it ran, else the first variant) of the same
//! workload, hook and repetition.

use super::markup::Table;
use crate::result::{CellResult, Document, Metrics, Status};
use crate::units::{mib, micros, pct, rate, ratio, signed_mib};

/// The variant ratios are taken against.
pub fn baseline_name(doc: &Document) -> Option<String> {
    if doc.cells.iter().any(|c| c.variant == "glibc") {
        Some("glibc".into())
    } else {
        doc.cells.first().map(|c| c.variant.clone())
    }
}

fn baseline<'a>(doc: &'a Document, cell: &CellResult, base: &str) -> Option<&'a Metrics> {
    doc.cells
        .iter()
        .find(|c| {
            c.variant == base
                && c.workload == cell.workload
                && c.prefork == cell.prefork
                && c.repetition == cell.repetition
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
                format!("{} (prefork {})", c.variant, c.prefork),
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

pub fn compare_table(doc: &Document) -> Table {
    let hooks: std::collections::BTreeSet<&str> =
        doc.cells.iter().map(|c| c.prefork.as_str()).collect();
    let show_hook = hooks.len() > 1;
    let mut columns = vec![("variant", false)];
    if show_hook {
        columns.push(("prefork", false));
    }
    columns.extend([
        ("allocator", false),
        ("PSS anon steady", true),
        ("PSS anon trimmed", true),
        ("worker priv dirty", true),
        ("CoW shared", true),
        ("frag", true),
        ("returned drained/trimmed", true),
        ("req/s", true),
        ("p99", true),
    ]);
    let mut table = Table::new(&columns);
    let base_name = baseline_name(doc).unwrap_or_default();
    for c in &doc.cells {
        let mut row = vec![c.variant.clone()];
        if show_hook {
            row.push(c.prefork.clone());
        }
        let allocator = c
            .allocator
            .as_ref()
            .map(|a| {
                let mut s = a.name.clone();
                if let Some(v) = &a.version {
                    s.push(' ');
                    s.push_str(v.split('-').next().unwrap_or(v));
                }
                s
            })
            .unwrap_or_else(|| "?".into());
        match (&c.status, &c.metrics) {
            (Status::Ok, Some(m)) => {
                let b = baseline(doc, c, &base_name);
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
                row.push(signed_mib(m.worker_private_dirty_growth));
                row.push(m.cow_efficiency.map(pct).unwrap_or_else(|| "—".into()));
                row.push(
                    m.fragmentation
                        .map(|f| format!("{f:.2}"))
                        .unwrap_or_else(|| "—".into()),
                );
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
