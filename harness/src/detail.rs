//! `allocbench run`'s per-phase detail of one cell, for a terminal or Markdown.

use crate::export::{Markup, Table, render};
use crate::result::{CellResult, Mem, Status};
use crate::units::{mib, micros, pct, rate, signed_mib};

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
        .filter_map(|p| map.get(&p.name).map(|v| format!("{} {}", p.name, pct(*v))))
        .collect();
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join(", ")
    }
}

pub fn render_cell(cell: &CellResult, markup: Markup) -> String {
    let mut out = format!(
        "workload {} · variant {} · prefork {}",
        cell.workload, cell.variant, cell.prefork,
    );
    if let Some(spec) = &cell.spec {
        out.push_str(&format!(
            " · {} workers × {} threads · {} requests per worker · {} MiB static",
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
        let mut row = vec![p.name.clone(), format!("{:.2} s", p.t_ms / 1e3)];
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

    if let Some(steady) = cell.phases.iter().find(|p| p.name == "steady") {
        let mut t = Table::new(&mem_columns("process at steady"));
        for p in &steady.processes {
            let who = match p.index {
                Some(i) => format!("worker {i} ({})", p.pid),
                None => format!("master ({})", p.pid),
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
            let opt = |v: Option<String>| v.unwrap_or_else(|| "—".into());
            let lines = [
                ("tree PSS anon at steady", mib(m.tree_pss_anon_steady)),
                ("tree PSS anon after trim", mib(m.tree_pss_anon_trimmed)),
                (
                    "tree PSS / USS / RSS at steady",
                    format!(
                        "{} / {} / {}",
                        mib(m.tree_pss_steady),
                        mib(m.tree_uss_steady),
                        mib(m.tree_rss_steady)
                    ),
                ),
                ("static live bytes (master)", mib(m.static_live_bytes)),
                (
                    "worker private dirty growth",
                    signed_mib(m.worker_private_dirty_growth),
                ),
                (
                    "CoW efficiency (worker shared / master RSS)",
                    opt(m.cow_efficiency.map(pct)),
                ),
                (
                    "fragmentation (anon growth / live)",
                    opt(m.fragmentation.map(|f| format!("{f:.2}"))),
                ),
                ("live bytes in caches at steady", mib(m.live_bytes_steady)),
                ("returned", in_phase_order(cell, &m.returned)),
                (
                    "still in LazyFree",
                    in_phase_order(cell, &m.returned_lazyfree),
                ),
                (
                    "throughput",
                    format!("{} req/s ({} requests)", rate(m.throughput_rps), m.requests),
                ),
                (
                    "latency p50 / p99 / p99.9 / max",
                    format!(
                        "{} / {} / {} / {}",
                        micros(m.latency_p50_us),
                        micros(m.latency_p99_us),
                        micros(m.latency_p999_us),
                        micros(m.latency_max_us)
                    ),
                ),
                ("arenas", opt(m.arenas.map(|a| a.to_string()))),
            ];
            let mut t = Table::new(&[("metric", false), ("value", false)]);
            for (k, v) in lines {
                t.push(vec![k.into(), v]);
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
