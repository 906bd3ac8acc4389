//! `report --format csv`: the summary rows, raw numbers.

use super::measure_report;
use crate::analysis::report::Report;

/// The report's summary rows as CSV: one line per machine, group, row and
/// metric, raw numbers.
pub fn csv(report: &Report) -> anyhow::Result<String> {
    const HEADER: &[&str] = &[
        "machine",
        "group",
        "variant",
        "prefork",
        "lifecycle",
        "app_writes",
        "metric",
        "n",
        "median",
        "min",
        "max",
        "mad",
        "ratio_median",
        "ratio_mad",
    ];
    let mut rows = Vec::new();
    for g in &report.groups {
        if measure_report::is_measure(g) {
            rows.extend(measure_report::report_csv_rows(report, g));
            continue;
        }
        for (m, _) in &g.runs {
            for r in report.summary(g, *m) {
                for (name, s) in &r.metrics {
                    let (rm, rd) = s
                        .ratio
                        .as_ref()
                        .map(|x| (x.median.to_string(), x.mad.to_string()))
                        .unwrap_or_default();
                    rows.push(vec![
                        report.machines[*m].label.clone(),
                        g.title.clone(),
                        r.variant.clone(),
                        r.prefork.to_string(),
                        r.lifecycle.to_string(),
                        r.app_writes.to_string(),
                        name.clone(),
                        s.stat.n.to_string(),
                        s.stat.median.to_string(),
                        s.stat.min.to_string(),
                        s.stat.max.to_string(),
                        s.stat.mad.to_string(),
                        rm,
                        rd,
                    ]);
                }
            }
        }
    }
    crate::output::csv::text(HEADER, rows)
}
