//! `allocbench run`'s per-phase detail of one cell, for a terminal or Markdown.

use crate::output::{Markup, Table, render};
use crate::results::metric::MetricId;
use crate::results::{CellResult, Mem, Status};
use crate::units::{mib, pct};

fn mem_columns(first: &str) -> Vec<(&str, bool)> {
    vec![
        (first, false),
        ("PSS", true),
        ("PSS anon", true),
        ("RSS", true),
        ("USS", true),
        ("shared", true),
        ("priv dirty", true),
        ("anonymous", true),
        ("lazyfree", true),
        ("anon huge", true),
    ]
}

fn mem_cells(m: &Mem) -> Vec<String> {
    vec![
        mib(m.pss),
        mib(m.pss_anon),
        mib(m.rss),
        mib(m.uss),
        mib(m.shared()),
        mib(m.private_dirty),
        mib(m.anonymous),
        mib(m.lazyfree),
        mib(m.anon_huge),
    ]
}

/// `drained 25%, idle+0s 25%, …` in the order the phases were sampled.
fn in_phase_order(cell: &CellResult, map: &std::collections::BTreeMap<String, f64>) -> String {
    let parts: Vec<String> = cell
        .phases
        .iter()
        .filter_map(|p| {
            map.get(&p.name.to_string())
                .map(|v| format!("{} {}", p.name, pct(*v)))
        })
        .collect();
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join(", ")
    }
}

/// `7 (quota 6, mold 1)`: the restarts under a lifecycle policy, by reason.
fn restarts(cell: &CellResult) -> String {
    let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in &cell.timeline.restarts {
        *by.entry(r.reason.name()).or_default() += 1;
    }
    let n = cell.timeline.restarts.len();
    if by.is_empty() {
        return n.to_string();
    }
    let parts: Vec<String> = by.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!("{n} ({})", parts.join(", "))
}

/// A line of the figures under a cell.
enum Line {
    /// Metrics of the registry, joined by ` / `, under a label that says
    /// what they are in this place.
    Metrics(&'static str, &'static [MetricId]),
    /// `returned` at each phase after steady.
    Returned,
    /// The share still in `LazyFree` at each phase after steady.
    LazyFree,
    /// Requests per second and the requests served.
    Throughput,
}

use MetricId as M;

/// The figures `run` lists under a finished cell, in order.
const FIGURES: &[Line] = &[
    Line::Metrics("tree PSS anon at steady", &[M::TreePssAnonSteady]),
    Line::Metrics("tree PSS anon after trim", &[M::TreePssAnonTrimmed]),
    Line::Metrics(
        "tree PSS / USS / RSS at steady",
        &[M::TreePssSteady, M::TreeUssSteady, M::TreeRssSteady],
    ),
    Line::Metrics("static live bytes (master)", &[M::StaticLiveBytes]),
    Line::Metrics(
        "worker private dirty growth",
        &[M::WorkerPrivateDirtyGrowth],
    ),
    Line::Metrics(
        "CoW efficiency (worker shared / master RSS)",
        &[M::CowEfficiency],
    ),
    Line::Metrics("fragmentation (anon growth / live)", &[M::Fragmentation]),
    Line::Metrics("live bytes in caches at steady", &[M::LiveBytesSteady]),
    Line::Returned,
    Line::LazyFree,
    Line::Throughput,
    Line::Metrics(
        "latency p50 / p99 / p99.9 / max",
        &[
            M::LatencyP50Us,
            M::LatencyP99Us,
            M::LatencyP999Us,
            M::LatencyMaxUs,
        ],
    ),
    Line::Metrics("arenas", &[M::Arenas]),
];

pub fn render_cell(cell: &CellResult, markup: Markup) -> String {
    let mut out = format!(
        "workload {} · variant {} · {}",
        cell.workload,
        cell.variant,
        crate::results::arm(cell.prefork, &cell.lifecycle).replacen(", ", " · ", 1),
    );
    if let Some(spec) = &cell.spec {
        let per = if !spec.lifecycle.is_none() {
            "worker slot"
        } else {
            "worker"
        };
        out.push_str(&format!(
            " · {} workers × {} threads · {} requests per {per} · {} MiB static",
            spec.processes, spec.threads, spec.requests, spec.static_mib
        ));
    }
    out.push('\n');
    if let Some(a) = &cell.allocator {
        out.push_str(&format!(
            "allocator: {} {}{}{}\n",
            a.name,
            a.version.as_deref().unwrap_or("(version unknown)"),
            if a.builtin { " (built-in)" } else { "" },
            a.library
                .as_deref()
                .map(|l| format!(", malloc from {l}"))
                .unwrap_or_default()
        ));
    }
    if !cell.launch_env.is_empty() {
        let env: Vec<String> = cell
            .launch_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("environment: {}\n", env.join(" ")));
    }
    out.push('\n');

    let mut cols = mem_columns("phase");
    cols.insert(1, ("t", true));
    let mut t = Table::new(&cols);
    for p in &cell.phases {
        let mut row = vec![p.name.to_string(), format!("{:.2} s", p.t_ms / 1e3)];
        row.extend(mem_cells(&p.tree));
        t.push(row);
    }
    out.push_str("Process tree (sums over master and workers):\n");
    out.push_str(&render(&t, markup));
    let t = &cell.timeline;
    if let Some(hz) = t.achieved_hz() {
        out.push_str(&format!(
            "Timeline: {} samples at {hz:.1} Hz (asked {} Hz)",
            t.len(),
            t.sample_hz
        ));
        if let Some(budget) = t.walk_budget {
            out.push_str(&format!(
                "; {} walked the page tables (budget {}% of a CPU), the rest read RSS and anonymous from the counters",
                t.walked.iter().filter(|w| **w).count(),
                budget * 100.0
            ));
        }
        if let Some(ms) = t.sampler_cpu_ms {
            out.push_str(&format!("; the sampler used {:.0} ms of CPU", ms));
        }
        out.push_str(".\n");
    }

    if let Some(steady) = cell
        .phases
        .iter()
        .find(|p| p.name == allocbench_workloads::Phase::Steady)
    {
        let mut t = Table::new(&mem_columns("process at steady"));
        for p in &steady.processes {
            let who = match (p.role, p.index) {
                (crate::results::ProcessRole::Mold, Some(i)) => {
                    format!("mold, was worker {i} ({})", p.pid)
                }
                (_, Some(i)) => format!("worker {i} ({})", p.pid),
                (_, None) => format!("master ({})", p.pid),
            };
            let mut row = vec![who];
            match &p.mem {
                Some(m) => row.extend(mem_cells(m)),
                None => {
                    row.push(format!("missed: {}", p.missed.as_deref().unwrap_or("?")));
                    while row.len() < t.headers.len() {
                        row.push(String::new());
                    }
                }
            }
            t.push(row);
        }
        out.push('\n');
        out.push_str(&render(&t, markup));
    }

    out.push('\n');
    match (&cell.status, &cell.metrics) {
        (Status::Ok, Some(m)) => {
            let mut t = Table::new(&[("metric", false), ("value", false)]);
            for line in FIGURES {
                t.push(match line {
                    Line::Metrics(label, ids) => vec![
                        label.to_string(),
                        ids.iter()
                            .map(|id| id.show(m))
                            .collect::<Vec<_>>()
                            .join(" / "),
                    ],
                    Line::Returned => vec!["returned".into(), in_phase_order(cell, &m.returned)],
                    Line::LazyFree => vec![
                        "still in LazyFree".into(),
                        in_phase_order(cell, &m.returned_lazyfree),
                    ],
                    Line::Throughput => vec![
                        "throughput".into(),
                        format!(
                            "{} req/s ({} requests)",
                            MetricId::ThroughputRps.show(m),
                            m.requests
                        ),
                    ],
                });
            }
            if !cell.lifecycle.is_none() {
                t.push(vec![
                    "tree PSS anon mean / peak over serving".into(),
                    format!(
                        "{} / {}",
                        MetricId::TreePssAnonMean.show(m),
                        MetricId::TreePssAnonPeak.show(m)
                    ),
                ]);
                t.push(vec!["workers replaced".into(), restarts(cell)]);
            }
            out.push_str(&render(&t, markup));
        }
        _ => out.push_str(&format!(
            "FAILED: {}\n",
            cell.error.as_deref().unwrap_or("unknown reason")
        )),
    }
    out
}
