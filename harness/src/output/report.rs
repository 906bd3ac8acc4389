//! `allocbench report`: the report's tables (grouped in
//! `analysis::report`), the "What to choose" rules' lines and links to the
//! charts, rendered as Markdown (`report/markdown.rs`), HTML
//! (`report/html.rs`) or CSV (`report_csv.rs`).

use allocbench_workloads::{Focus, Lifecycle, PreforkHook};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::analysis::questions::Answer;
use crate::analysis::report::{Group, Machine, Report};
use crate::output::Table;
use crate::results::environment::Environment;
use crate::results::metric::MetricId;
use crate::results::summary::SummaryRow;
use crate::results::{Document, FORMAT_VERSION, Status};

mod html;
mod markdown;
pub use html::html;
pub(super) use html::html_table;
pub use markdown::markdown;

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
