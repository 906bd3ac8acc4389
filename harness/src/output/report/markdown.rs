//! The report as Markdown: "What to choose", the machines, the variants,
//! each group's table with links to its charts, and the sources.

use std::path::Path;

use super::{Plots, answers, caveat, environment_lines, failed_cells, group_table, variants_table};
use crate::analysis::choose;
use crate::analysis::report::Report;
use crate::output::measure_report;
use crate::output::{Markup, render};

/// The report as Markdown; chart links relative to `output`, the file the
/// report goes to.
pub fn markdown(report: &Report, plots: &Plots, output: Option<&Path>) -> String {
    let mut out = String::from("# allocbench results\n\n");
    let choices = choose::choose(report);
    if !choices.is_empty() {
        out.push_str("## What to choose\n\n");
        out.push_str(
            "Each line is derived from the tables below by a rule written in allocbench's \
             code (`allocbench report`); it holds for the machine and the configuration named \
             (processes, threads, GVL or not, the pre-fork hook, idle time), and nowhere else \
             until measured there. Measured on:\n\n",
        );
        for m in &report.machines {
            out.push_str(&format!("- {}: {}\n", m.label, caveat(m)));
        }
        out.push('\n');
        for advice in &choices {
            out.push_str(&format!("**{}**\n\n", advice.at));
            if !advice.table.is_empty() {
                out.push_str(&render(&answers(&advice.table), Markup::Markdown));
                out.push_str("\n\n");
            }
            for line in &advice.lines {
                out.push_str(&format!("- {line}\n"));
            }
            out.push('\n');
        }
    }
    let servers = measure_report::server_choices(report);
    if !servers.is_empty() {
        out.push_str("## What to choose for this server\n\n");
        out.push_str(
            "Derived from each measured command's table below by the rule named on the line; \
             it holds for that command, its load and the machine it ran on.\n\n",
        );
        for (at, lines) in &servers {
            out.push_str(&format!("**{at}**\n\n"));
            for line in lines {
                out.push_str(&format!("- {line}\n"));
            }
            out.push('\n');
        }
    }
    out.push_str("## Machines\n\n");
    for (i, m) in report.machines.iter().enumerate() {
        out.push_str(&format!("**{}**\n\n", m.label));
        for l in environment_lines(report, i) {
            out.push_str(&format!("- {l}\n"));
        }
        out.push('\n');
    }
    out.push_str("## Variants\n\n");
    out.push_str(&render(&variants_table(report), Markup::Markdown));
    out.push('\n');
    out.push_str("## Tables\n\n");
    if report.groups.iter().any(|g| !measure_report::is_measure(g)) {
        out.push_str(
            "Medians over the repetitions; in brackets the ratio to glibc (or to the \
         first variant when glibc did not run), paired by repetition, ± the median absolute \
         deviation of those ratios. Memory is anonymous PSS summed over the process tree; \
         `CoW copied` the pages the workers inherited and now hold as their own copies; \
         `arenas` the largest arena count a serving process reported; `growth` the slope of \
         tree PSS per 1,000 requests over the second half of serving and its `verdict`; \
         `frag start`/`end` the serving processes' private memory (USS) grown since the fork \
         over the bytes they hold live, at the first and last timeline point while serving; \
         `huge` (when a variant has more than 1 MiB of it) `AnonHugePages` summed over the \
         tree at steady (a huge page shared after the fork counts in each process that maps it); \
         `returned` the share of the tree's growth of anonymous PSS since the fork given back \
         to the OS when the workers freed their caches (drained) and after the allocator's \
         release call (trimmed).\n\n",
        );
    }
    for g in &report.groups {
        out.push_str(&format!("### {}\n\n", g.title));
        if measure_report::is_measure(g) {
            for (label, table, notes) in measure_report::report_tables(report, g, false) {
                if !label.is_empty() {
                    out.push_str(&format!("{label}\n\n"));
                }
                out.push_str(&table);
                out.push('\n');
                out.push_str(&notes);
            }
        } else {
            out.push_str(&render(&group_table(report, g), Markup::Markdown));
        }
        if let Some(files) = plots.get(&g.title) {
            out.push('\n');
            for (caption, path) in files {
                out.push_str(&format!(
                    "![{caption}]({})\n\n",
                    crate::plot::link(path, output)
                ));
            }
        }
        let failed = failed_cells(g);
        if !failed.is_empty() && !measure_report::is_measure(g) {
            out.push_str("\nFailed cells:\n\n");
            for f in failed {
                out.push_str(&format!("- {f}\n"));
            }
        }
        out.push('\n');
    }
    out.push_str("## Sources\n\n");
    for s in &report.sources {
        // A document that recorded no duration (a measure document from
        // before it did) says nothing rather than "(0 s)".
        let took = if s.wall_s > 0.0 {
            format!(" ({})", crate::units::seconds(s.wall_s))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "- `{}`: `allocbench {}`{took}\n",
            s.path, s.command
        ));
        if !s.merged.is_empty() {
            out.push_str(&format!("  merged from: {}\n", s.merged.join("; ")));
        }
    }
    out
}
