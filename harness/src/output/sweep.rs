//! `sweep`'s tables: the grid's cells, the fitted model and each cell's
//! error.

use crate::analysis::sweep;
use crate::cli::Format;
use crate::results::Document;
use crate::results::model::Fit;
use crate::units::{mib, micros, rate};

use super::{Markup, Table, render};

/// The sweep's table and, per variant the grid allows, the fitted model.
pub(super) fn sweep_text(doc: &Document, format: Format) -> String {
    let markup = if format == Format::Md {
        Markup::Markdown
    } else {
        Markup::Terminal
    };
    let mut out = render(&sweep_table(doc), markup);
    out.push_str(
        "\nCPUs pinned/online: the CPUs a cell was pinned to (--cpus; — when not pinned) and \
         the CPUs online, from which glibc sizes its arena limit even when pinned.\n",
    );
    let fitted = crate::analysis::sweep::fit(&doc.cells);
    if !fitted.fits.is_empty() {
        let (model, cells) = fit_tables(&fitted.fits);
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

/// One row per sweep cell: variant, P, T, tree PSS, throughput, p99.
pub fn sweep_table(doc: &Document) -> Table {
    let mut t = Table::new(&[
        ("variant", false),
        ("processes", true),
        ("threads", true),
        ("repetition", true),
        ("PSS anon steady", true),
        ("req/s", true),
        ("p99", true),
        ("arenas", true),
        ("CPUs pinned/online", true),
    ]);
    for c in &doc.cells {
        let (processes, threads) = sweep::shape(c).unwrap_or_default();
        let mut row = vec![
            c.variant.clone(),
            processes.to_string(),
            threads.to_string(),
            c.repetition.to_string(),
        ];
        match &c.metrics {
            Some(m) => row.extend([
                mib(m.tree_pss_anon_steady),
                rate(m.throughput_rps),
                micros(m.latency_p99_us),
                m.arenas
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "—".into()),
            ]),
            None => row.extend(["FAILED".to_string(), "—".into(), "—".into(), "—".into()]),
        }
        // The pinned count is what the master's affinity allowed (it
        // reports it); glibc sizes its arena limit from the CPUs online.
        let pinned = c
            .cpus_pinned
            .map(|n| c.cpus_allowed.map_or(n, |a| a as usize));
        row.push(format!(
            "{}/{}",
            pinned.map(|n| n.to_string()).unwrap_or_else(|| "—".into()),
            doc.environment.cpus_online
        ));
        t.push(row);
    }
    t
}

/// The fitted model, one row per variant, and each cell's error.
pub fn fit_tables(fits: &[Fit]) -> (Table, Table) {
    let mut model = Table::new(&[
        ("variant", false),
        ("shared once (a)", true),
        ("per process (b)", true),
        ("per thread (c)", true),
        ("static S", true),
        ("CoW kept ≥", true),
        ("R²", true),
    ]);
    let mut cells = Table::new(&[
        ("variant", false),
        ("processes", true),
        ("threads", true),
        ("measured", true),
        ("predicted", true),
        ("error", true),
    ]);
    let signed = |b: f64| format!("{:+.1} MiB", b / (1u64 << 20) as f64);
    for f in fits {
        model.push(vec![
            f.variant.clone(),
            signed(f.shared_once),
            signed(f.per_process),
            signed(f.per_thread),
            f.static_bytes
                .map(|s| mib(s as u64))
                .unwrap_or_else(|| "—".into()),
            f.cow_efficiency_lower
                .map(|e| format!("{:.0}%", e * 100.0))
                .unwrap_or_else(|| "—".into()),
            format!("{:.3}", f.r2),
        ]);
        for p in &f.points {
            cells.push(vec![
                f.variant.clone(),
                p.processes.to_string(),
                p.threads.to_string(),
                mib(p.measured as u64),
                mib(p.predicted.max(0.0) as u64),
                format!("{:+.1}%", p.error_pct),
            ]);
        }
    }
    (model, cells)
}
