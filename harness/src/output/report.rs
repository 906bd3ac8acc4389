//! `allocbench report`: the report (grouped in `analysis::report`) rendered
//! as Markdown, HTML or CSV, with its tables, the "What to choose" rules'
//! lines and links to the charts.

use allocbench_workloads::{Focus, Lifecycle, PreforkHook};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::analysis::choose;
use crate::analysis::questions::Answer;
use crate::analysis::report::{Group, Machine, Report};
use crate::output::measure_report;
use crate::output::{Markup, Table, render};
use crate::results::environment::Environment;
use crate::results::metric::MetricId;
use crate::results::summary::SummaryRow;
use crate::results::{Document, FORMAT_VERSION, Status};

/// A value with its ratio to the baseline and the ratio's spread (not for
/// shares, whose ratios mean nothing, nor for the baseline itself).
fn cell_text(row: &SummaryRow, id: MetricId, with_ratio: bool) -> String {
    let Some(m) = row.metric(id) else {
        return "—".into();
    };
    let mut s = id.format(m.stat.median);
    if let Some(r) = m
        .ratio
        .as_ref()
        .filter(|r| with_ratio && r.baseline != row.variant)
    {
        s.push_str(&format!(" ({:.2}", r.median));
        if m.stat.n > 1 {
            s.push_str(&format!(" ± {:.2}", r.mad));
        }
        s.push_str("×)");
    }
    s
}

/// A column of a report table: a metric, and whether its ratio to the
/// baseline is shown beside it.
type Column = (MetricId, bool);
const PSS_STEADY: Column = (MetricId::TreePssAnonSteady, true);
const PSS_TRIMMED: Column = (MetricId::TreePssAnonTrimmed, true);
const COW_COPIED: Column = (MetricId::CowCopied, true);
const RETURNED_DRAINED: Column = (MetricId::ReturnedDrained, false);
const RETURNED_TRIMMED: Column = (MetricId::ReturnedTrimmed, false);
const ARENAS: Column = (MetricId::Arenas, false);
const RPS: Column = (MetricId::ThroughputRps, true);
const P99: Column = (MetricId::LatencyP99Us, true);

/// A group with lifecycle policies: the memory paid over serving, the
/// restarts and what they cost.
const LIFECYCLE: &[Column] = &[
    (MetricId::TreePssAnonMean, true),
    (MetricId::TreePssAnonPeak, false),
    (MetricId::TreePssAnonSteady, false),
    (MetricId::Restarts, false),
    RPS,
    P99,
];

/// What a workload's table shows: the figures its question, its [`Focus`],
/// is about.
fn columns(focus: Focus) -> &'static [Column] {
    match focus {
        Focus::CopyOnWrite => &[
            PSS_STEADY,
            COW_COPIED,
            (MetricId::CowEfficiency, false),
            RPS,
        ],
        Focus::Threads => &[
            PSS_STEADY,
            PSS_TRIMMED,
            ARENAS,
            RETURNED_DRAINED,
            RETURNED_TRIMMED,
            RPS,
            P99,
        ],
        Focus::Growth => &[
            PSS_STEADY,
            (MetricId::GrowthBytesPer1kRequests, false),
            (MetricId::Growing, false),
            (MetricId::FragmentationStart, false),
            (MetricId::FragmentationEnd, false),
            RETURNED_DRAINED,
            RETURNED_TRIMMED,
            RPS,
            P99,
        ],
        Focus::Serving => &[
            PSS_STEADY,
            PSS_TRIMMED,
            COW_COPIED,
            ARENAS,
            RETURNED_DRAINED,
            RETURNED_TRIMMED,
            RPS,
            P99,
        ],
    }
}

/// The columns of `g`'s table: its workload's, and `huge` after the memory
/// figure when a variant has more than 1 MiB on huge pages.
fn group_columns(g: &Group) -> Vec<Column> {
    let lifecycles = g
        .runs
        .iter()
        .flat_map(|(_, cells)| cells)
        .any(|c| !c.lifecycle.is_none());
    let mut out = if lifecycles {
        LIFECYCLE.to_vec()
    } else {
        columns(g.focus()).to_vec()
    };
    let huge = g.runs.iter().flat_map(|(_, cells)| cells).any(|c| {
        c.metrics
            .as_ref()
            .and_then(|m| m.anon_huge_steady)
            .is_some_and(|h| h > 1 << 20)
    });
    if huge {
        out.insert(1, (MetricId::AnonHugeSteady, false));
    }
    out
}

/// A group's table: one row per variant × hook × write mode, a column group
/// per machine.
pub fn group_table(report: &Report, g: &Group) -> Table {
    let columns = group_columns(g);
    let machines: Vec<usize> = g.runs.iter().map(|(m, _)| *m).collect();
    let summaries: BTreeMap<usize, Vec<SummaryRow>> = machines
        .iter()
        .map(|&m| (m, report.summary(g, m)))
        .collect();
    let hooks = summaries
        .values()
        .flatten()
        .map(|r| r.prefork.name())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    let writes = summaries
        .values()
        .flatten()
        .map(|r| r.app_writes)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    let lifecycles = summaries.values().flatten().any(|r| !r.lifecycle.is_none());
    let mut headers: Vec<String> = vec!["variant".into()];
    if hooks {
        headers.push("prefork".into());
    }
    if lifecycles {
        headers.push("lifecycle".into());
    }
    if writes {
        headers.push("app writes".into());
    }
    let several = machines.len() > 1;
    for &m in &machines {
        let suffix = if several {
            format!(" ({})", report.machines[m].label)
        } else {
            String::new()
        };
        headers.push(format!("runs{suffix}"));
        for (id, _) in &columns {
            headers.push(format!("{}{suffix}", id.label()));
        }
    }
    let key = |r: &SummaryRow| {
        (
            r.variant.clone(),
            r.prefork,
            r.lifecycle.clone(),
            r.app_writes,
        )
    };
    let mut rows: Vec<(String, PreforkHook, Lifecycle, bool)> = Vec::new();
    for r in summaries.values().flatten() {
        if !rows.contains(&key(r)) {
            rows.push(key(r));
        }
    }
    // The row's labels (variant, hook, lifecycle, write mode) to the left.
    let labels = 1 + usize::from(hooks) + usize::from(lifecycles) + usize::from(writes);
    let mut table = Table {
        right: headers
            .iter()
            .enumerate()
            .map(|(i, _)| i >= labels)
            .collect(),
        headers,
        rows: Vec::new(),
    };
    for (variant, prefork, lifecycle, app) in rows {
        let mut row = vec![variant.clone()];
        if hooks {
            row.push(prefork.to_string());
        }
        if lifecycles {
            row.push(lifecycle.to_string());
        }
        if writes {
            row.push(if app { "yes" } else { "no" }.into());
        }
        for m in &machines {
            match summaries[m]
                .iter()
                .find(|r| key(r) == (variant.clone(), prefork, lifecycle.clone(), app))
            {
                Some(r) => {
                    row.push(if r.failed > 0 {
                        format!("{} ({} failed)", r.ok, r.failed)
                    } else {
                        r.ok.to_string()
                    });
                    for &(id, with_ratio) in &columns {
                        row.push(cell_text(r, id, with_ratio));
                    }
                }
                None => row.extend(std::iter::repeat_n("—".to_string(), columns.len() + 1)),
            }
        }
        table.push(row);
    }
    table
}

/// Machine `i`'s facts, and what its cgroup's CPU limit means for glibc's
/// arenas where that differs from the CPUs online.
fn environment_lines(report: &Report, i: usize) -> Vec<String> {
    let e = &report.machines[i].environment;
    let mut lines = vec![
        format!("kernel {} ({})", e.kernel, e.arch),
        format!("{}", e.os),
        format!("glibc {}", e.glibc_version),
        format!(
            "transparent huge pages: enabled {}, defrag {}",
            e.thp_enabled, e.thp_defrag
        ),
        format!(
            "{} usable ({} online), {}",
            crate::units::cpus(e.cpus as f64),
            e.cpus_online,
            e.cpu_model
        ),
        format!("{} GiB memory", e.mem_total_bytes >> 30),
        format!("allocbench {}", e.allocbench_version),
    ];
    lines.push(format!("allocators: {}", versions(e)));
    // Documents from before the cgroup's limits were recorded say nothing.
    if e.cgroup_cpu_limit.is_some() || e.cgroup_memory_limit.is_some() {
        let cpu = e.cpu_limit().map_or("no cgroup CPU limit".into(), |c| {
            format!("cgroup CPU limit {}", crate::units::cpus(c))
        });
        let memory = e
            .memory_limit()
            .map_or("no cgroup memory limit".into(), |b| {
                format!("cgroup memory limit {}", crate::units::size(b))
            });
        lines.push(format!("{cpu}, {memory}"));
    }
    lines.extend(crate::analysis::arenas::machine_notes(report, i));
    lines
}

/// The allocators' versions, without their build suffixes.
fn versions(e: &Environment) -> String {
    let versions: Vec<String> = e
        .allocator_versions
        .iter()
        .map(|(k, v)| format!("{k} {}", v.split('-').next().unwrap_or(v)))
        .collect();
    versions.join(", ")
}

/// Every variant the report's cells ran, as defined then: what it is and the
/// environment it set.
fn variants_table(report: &Report) -> Table {
    let mut t = Table::new(&[
        ("variant", false),
        ("allocator", false),
        ("environment", false),
        ("description", false),
    ]);
    let mut seen: Vec<&allocbench_allocators::Variant> = Vec::new();
    let cells = report
        .groups
        .iter()
        .flat_map(|g| g.runs.iter().flat_map(|(_, cells)| cells));
    for c in cells {
        let v = &c.variant_def;
        if seen.contains(&v) {
            continue;
        }
        seen.push(v);
        use allocbench_allocators::Base;
        let allocator = match &v.base {
            Base::Glibc => "glibc".to_string(),
            Base::Jemalloc => "jemalloc (built in)".to_string(),
            Base::Mimalloc => "mimalloc (built in)".to_string(),
            Base::Snmalloc => "snmalloc (built in)".to_string(),
            Base::Preload { library, .. } => format!("LD_PRELOAD {library}"),
        };
        let env: Vec<String> = v.env.iter().map(|(k, x)| format!("{k}={x}")).collect();
        t.push(vec![
            v.name.clone(),
            allocator,
            env.join(" "),
            v.description.clone(),
        ]);
    }
    t
}

/// The facts a recommendation holds under, in one line.
fn caveat(m: &Machine) -> String {
    let e = &m.environment;
    format!(
        "kernel {}, glibc {}, THP {} (defrag {}), {} of {} CPUs; {}",
        e.kernel,
        e.glibc_version,
        e.thp_enabled,
        e.thp_defrag,
        e.cpus,
        e.cpus_online,
        versions(e)
    )
}

fn failed_cells(g: &Group) -> Vec<String> {
    g.runs
        .iter()
        .flat_map(|(_, cells)| cells.iter())
        .filter(|c| c.status == Status::Failed)
        .map(|c| {
            format!(
                "{} ({}, repetition {}): {}",
                c.variant,
                crate::results::arm(c.prefork, &c.lifecycle),
                c.repetition,
                c.error.as_deref().unwrap_or("failed")
            )
        })
        .collect()
}

/// The charts of each group, by group title: (caption, file).
pub type Plots = BTreeMap<String, Vec<(String, PathBuf)>>;

/// Writes every group's charts (first repetition, no per-process charts)
/// into a directory of its own under `dir`.
pub fn write_plots(report: &Report, dir: &Path) -> anyhow::Result<Plots> {
    let mut out = BTreeMap::new();
    for (i, g) in report.groups.iter().enumerate() {
        let mut lines = Vec::new();
        for (m, cells) in &g.runs {
            let mut name = format!("{}-{}", i + 1, g.workload);
            if report.machines.len() > 1 {
                name.push_str(&format!("-{}", report.machines[*m].label));
            }
            let sub = Document {
                allocbench_version: String::new(),
                format_version: FORMAT_VERSION,
                command: Vec::new(),
                environment: report.machines[*m].environment.clone(),
                cells: cells
                    .iter()
                    .filter(|c| c.repetition == 0)
                    .cloned()
                    .collect(),
                summary: Vec::new(),
                harness: Default::default(),
                fits: Vec::new(),
                unfitted: Vec::new(),
                shard: None,
                planned_cells: None,
                machines: Vec::new(),
            };
            let sub_dir = dir.join(crate::plot::sanitize(&name));
            lines.extend(crate::plot::write_summary_plots(&sub, &sub_dir)?);
        }
        out.insert(g.title.clone(), lines);
    }
    Ok(out)
}

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

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The questions of a configuration as a table.
fn answers(table: &[Answer]) -> Table {
    let mut t = Table::new(&[("question", false), ("answer", false), ("figures", false)]);
    for a in table {
        t.push(vec![
            a.question.to_string(),
            a.answer.clone(),
            a.figures.clone(),
        ]);
    }
    t
}

pub(super) fn html_table(t: &Table) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::report::Machine;
    use crate::results::{CellResult, Mem, Metrics, test_cell};

    /// The metrics of the table of a group of `workload`'s cells.
    fn table_of(workload: &str) -> String {
        let cell = |v| CellResult {
            workload: workload.into(),
            ..test_cell(v, 2, 2, 0, Mem::default(), Metrics::default())
        };
        let g = Group {
            workload: workload.into(),
            title: workload.into(),
            runs: vec![(0, vec![cell("glibc"), cell("jemalloc")])],
        };
        let (label, environment) = ("m".into(), Environment::default());
        let report = Report {
            sources: Vec::new(),
            machines: vec![Machine { label, environment }],
            groups: vec![g.clone()],
        };
        let columns = group_columns(&g);
        let labels = columns.iter().map(|(id, _)| id.label());
        let headers: Vec<&str> = ["variant", "runs"].into_iter().chain(labels).collect();
        assert_eq!(group_table(&report, &g).headers, headers);
        let keys: Vec<&str> = columns.iter().map(|(id, _)| id.key()).collect();
        keys.join(" ")
    }

    #[test]
    fn each_focus_has_its_columns_and_a_workload_no_preset_a_servers() {
        let serving = "tree_pss_anon_steady tree_pss_anon_trimmed cow_copied arenas \
                       returned_drained returned_trimmed throughput_rps latency_p99_us";
        for workload in ["server", "lifecycle", "my-spec", "measure"] {
            assert_eq!(table_of(workload), serving, "{workload}");
        }
        let cow = "tree_pss_anon_steady cow_copied cow_efficiency throughput_rps";
        assert_eq!(table_of("cow"), cow);
        let threads = "tree_pss_anon_steady tree_pss_anon_trimmed arenas returned_drained \
                       returned_trimmed throughput_rps latency_p99_us";
        assert_eq!(table_of("threaded"), threads);
        let growth = "tree_pss_anon_steady growth_bytes_per_1k_requests growing \
                      fragmentation_start fragmentation_end returned_drained returned_trimmed \
                      throughput_rps latency_p99_us";
        assert_eq!(table_of("churn"), growth);
    }
}
