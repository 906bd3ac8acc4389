//! The report as one HTML page: the same sections as the Markdown, with
//! tables as HTML tables and the charts embedded.

use super::{Plots, answers, caveat, environment_lines, failed_cells, group_table, variants_table};
use crate::analysis::choose;
use crate::analysis::report::Report;
use crate::output::Table;
use crate::output::measure_report;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(in crate::output) fn html_table(t: &Table) -> String {
    let mut out = String::from("<table>\n<tr>");
    for h in &t.headers {
        out.push_str(&format!("<th>{}</th>", escape(h)));
    }
    out.push_str("</tr>\n");
    for r in &t.rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let align = if t.right[i] {
                " style=\"text-align:right\""
            } else {
                ""
            };
            out.push_str(&format!("<td{align}>{}</td>", escape(c)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// The report as one HTML page, plots embedded.
pub fn html(report: &Report, plots: &Plots) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>allocbench results</title>\n\
         <style>body{font-family:sans-serif;max-width:90em;margin:auto}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>\n<h1>allocbench results</h1>\n",
    );
    let choices = choose::choose(report);
    if !choices.is_empty() {
        out.push_str("<h2>What to choose</h2>\n<ul>\n");
        for m in &report.machines {
            out.push_str(&format!(
                "<li>{}: {}</li>\n",
                escape(&m.label),
                escape(&caveat(m))
            ));
        }
        out.push_str("</ul>\n");
        for advice in &choices {
            out.push_str(&format!("<h3>{}</h3>\n", escape(&advice.at)));
            if !advice.table.is_empty() {
                out.push_str(&html_table(&answers(&advice.table)));
            }
            out.push_str("<ul>\n");
            for line in &advice.lines {
                out.push_str(&format!("<li>{}</li>\n", escape(line)));
            }
            out.push_str("</ul>\n");
        }
    }
    let servers = measure_report::server_choices(report);
    if !servers.is_empty() {
        out.push_str("<h2>What to choose for this server</h2>\n");
        for (at, lines) in &servers {
            out.push_str(&format!("<h3>{}</h3>\n<ul>\n", escape(at)));
            for line in lines {
                out.push_str(&format!("<li>{}</li>\n", escape(line)));
            }
            out.push_str("</ul>\n");
        }
    }
    out.push_str("<h2>Machines</h2>\n");
    for (i, m) in report.machines.iter().enumerate() {
        out.push_str(&format!("<h3>{}</h3>\n<ul>\n", escape(&m.label)));
        for l in environment_lines(report, i) {
            out.push_str(&format!("<li>{}</li>\n", escape(&l)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<h2>Variants</h2>\n");
    out.push_str(&html_table(&variants_table(report)));
    for g in &report.groups {
        out.push_str(&format!("<h2>{}</h2>\n", escape(&g.title)));
        if measure_report::is_measure(g) {
            for (label, table, notes) in measure_report::report_tables(report, g, true) {
                if !label.is_empty() {
                    out.push_str(&format!("<p>{}</p>\n", escape(&label)));
                }
                out.push_str(&table);
                out.push_str(&format!("<pre>{}</pre>\n", escape(notes.trim())));
            }
        } else {
            out.push_str(&html_table(&group_table(report, g)));
        }
        for (caption, path) in plots.get(&g.title).into_iter().flatten() {
            match std::fs::read_to_string(path) {
                Ok(svg) => out.push_str(&format!(
                    "<figure>{svg}<figcaption>{}</figcaption></figure>\n",
                    escape(caption)
                )),
                Err(_) => out.push_str(&format!(
                    "<p>{}: {} is missing</p>\n",
                    escape(caption),
                    escape(&path.display().to_string())
                )),
            }
        }
        let failed = failed_cells(g);
        if !failed.is_empty() && !measure_report::is_measure(g) {
            out.push_str("<p>Failed cells:</p>\n<ul>\n");
            for f in failed {
                out.push_str(&format!("<li>{}</li>\n", escape(&f)));
            }
            out.push_str("</ul>\n");
        }
    }
    out.push_str("</body></html>\n");
    out
}
