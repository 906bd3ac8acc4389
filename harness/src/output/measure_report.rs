//! `report` on measure documents: the verdicts, the tables and the CSV
//! rows of each measured command.

use super::markup::{Markup, render};
use super::measure::{huge_note, legend, notes, table_of, verdict_line};
use crate::analysis::measure::{cluster_notes, summarize};
use crate::analysis::report::{Group, Report};
use crate::results::measure::WORKLOAD;
/// Whether a report's group is a measured command's.
pub(super) fn is_measure(g: &Group) -> bool {
    g.workload == WORKLOAD
}

/// The group's title, with the machine when there are several.
fn at(report: &Report, g: &Group, m: usize) -> String {
    if report.machines.len() > 1 {
        format!("{} on {}", g.title, report.machines[m].label)
    } else {
        g.title.clone()
    }
}

/// "What to choose for this server": for each measured command (and
/// machine), the verdict with its rule, and the variants whose runs fell
/// into separate states.
pub(super) fn server_choices(report: &Report) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for g in report.groups.iter().filter(|g| is_measure(g)) {
        for (m, cells) in &g.runs {
            let rows = summarize(cells);
            let mut lines = vec![verdict_line(cells, &rows)];
            lines.extend(cluster_notes(&rows));
            out.push((at(report, g, *m), lines));
        }
    }
    out
}

/// A measured command's tables (one per machine), with their legends and
/// notes: (machine label, table as Markdown or as HTML, notes).
pub(super) fn report_tables(
    report: &Report,
    g: &Group,
    html: bool,
) -> Vec<(String, String, String)> {
    g.runs
        .iter()
        .map(|(m, cells)| {
            let table = table_of(cells, true);
            let text = if html {
                super::report::html_table(&table)
            } else {
                render(&table, Markup::Markdown)
            };
            let legend = legend(cells);
            let huge = huge_note(cells, &report.machines[*m].environment);
            let notes = notes(cells);
            let label = if report.machines.len() > 1 {
                format!("On {}:", report.machines[*m].label)
            } else {
                String::new()
            };
            (label, text, format!("{legend}{huge}{notes}"))
        })
        .collect()
}

/// A measured command's figures over repetitions as the report's CSV rows
/// (the columns of `report --format csv`).
pub(super) fn report_csv_rows(report: &Report, g: &Group) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for (m, cells) in &g.runs {
        for r in summarize(cells) {
            for (f, s) in &r.figures {
                let (rm, rd) = s
                    .ratio
                    .as_ref()
                    .map(|x| (x.median.to_string(), x.mad.to_string()))
                    .unwrap_or_default();
                rows.push(vec![
                    report.machines[*m].label.clone(),
                    g.title.clone(),
                    r.variant.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    f.key().to_string(),
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
    rows
}
