//! What a report is made of: result documents grouped by machine and by
//! workload configuration, never silently merged. A group is one workload
//! with one set of parameters (the pre-fork hook and the application-writes
//! mode excepted, which are rows); results from several machines of one
//! group are kept apart, a column group each.

use crate::analysis::stats::summarize;
use crate::results::environment::Environment;
use crate::results::summary::SummaryRow;
use crate::results::{CellResult, Document, Status};
use crate::units::{pct, rate};
use allocbench_workloads::Focus;

/// A machine results came from, by the facts that make results comparable.
#[derive(Debug, Clone)]
pub struct Machine {
    pub label: String,
    pub environment: Environment,
}

/// One workload configuration on every machine it ran on.
#[derive(Debug, Clone)]
pub struct Group {
    pub workload: String,
    pub title: String,
    /// (machine index, the cells of this configuration there).
    pub runs: Vec<(usize, Vec<CellResult>)>,
}

impl Group {
    /// What its table and advice are about: its workload preset's focus, or
    /// a server's for a workload that is no preset (a document records only
    /// the name).
    pub fn focus(&self) -> Focus {
        focus(&self.workload)
    }
}

/// The focus of the workload named `workload` ([`Group::focus`]).
pub fn focus(workload: &str) -> Focus {
    allocbench_workloads::workloads()
        .into_iter()
        .find(|w| w.name == workload)
        .map_or(Focus::Serving, |w| w.focus)
}

/// A result file and how it was made.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: String,
    /// The allocbench command line that wrote it (without the program).
    pub command: String,
    pub wall_s: f64,
    /// A merged document's own sources: path (host, shard, cells).
    pub merged: Vec<String>,
}

/// Everything a report shows.
#[derive(Debug, Clone)]
pub struct Report {
    pub sources: Vec<Source>,
    pub machines: Vec<Machine>,
    pub groups: Vec<Group>,
}

fn machine_key(e: &Environment) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}{}",
        e.hostname,
        e.kernel,
        e.cpu_model,
        e.cpus,
        e.mem_total_bytes >> 30,
        e.glibc_version,
        cgroup_limits(e)
    )
}

/// A cgroup's limits, for a machine's key and label: empty without any
/// (or before they were recorded).
fn cgroup_limits(e: &Environment) -> String {
    let mut parts = Vec::new();
    if let Some(cpus) = e.cpu_limit() {
        parts.push(crate::units::cpus(cpus));
    }
    if let Some(bytes) = e.memory_limit() {
        parts.push(crate::units::size(bytes));
    }
    if parts.is_empty() {
        return String::new();
    }
    format!("; cgroup: {}", parts.join(", "))
}

/// The parameters that make cells of one workload comparable: everything in
/// the spec but the hook and the application's writes (shown as rows).
fn group_key(c: &CellResult) -> String {
    crate::analysis::stats::configuration(c)
}

fn title(c: &CellResult) -> String {
    let Some(s) = &c.spec else {
        let command = c
            .measure
            .as_ref()
            .map(|m| crate::units::shell_words(&m.command))
            .unwrap_or_default();
        return format!("{}: {command}", c.workload);
    };
    let plural = |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let threads = plural(s.threads, "thread", "threads");
    let shape = if s.processes == 0 {
        format!("one process × {threads}")
    } else {
        format!("{} × {threads}", plural(s.processes, "worker", "workers"))
    };
    let mut t = format!(
        "{}: {shape}, {} MiB static, {} requests per {}",
        c.workload,
        s.static_mib,
        rate(s.requests as f64),
        if s.processes == 0 {
            "process"
        } else {
            "worker"
        }
    );
    if s.gvl {
        t.push_str(&format!(", with a GVL (I/O wait {})", pct(s.io_wait_share)));
    }
    if s.idle_trickle_rps > 0.0 {
        t.push_str(&format!(
            ", {} req/s per {} while idle",
            s.idle_trickle_rps,
            if s.processes == 0 {
                "process"
            } else {
                "worker"
            }
        ));
    }
    if let Some(n) = c.cpus_pinned {
        t.push_str(&format!(", pinned to {n} CPUs"));
    }
    t
}

/// Whether a cell has figures a report can show: a finished cell with its
/// metrics, or a finished `measure` row with its own.
fn renders(c: &CellResult) -> bool {
    c.status == Status::Ok
        && (c.metrics.is_some() || c.measure.as_ref().is_some_and(|m| m.metrics.is_some()))
}

/// Refuses (exit 2) a document with nothing a report can show: no cell,
/// or none finished with figures. A report of it would be a table of "—".
pub fn check_renderable(docs: &[(String, Document)]) -> anyhow::Result<()> {
    for (path, doc) in docs {
        if doc.cells.iter().any(renders) {
            continue;
        }
        let why = match doc.cells.len() {
            0 => "it holds no cell".to_string(),
            n => {
                let failed = doc
                    .cells
                    .iter()
                    .filter(|c| c.status == Status::Failed)
                    .count();
                format!(
                    "none of its {n} cell{} finished with figures ({failed} failed)",
                    if n == 1 { "" } else { "s" }
                )
            }
        };
        return Err(crate::error::usage(format!(
            "{path}: nothing to report: {why}"
        )));
    }
    Ok(())
}

impl Report {
    pub fn build(docs: Vec<(String, Document)>) -> Report {
        let mut machines: Vec<(String, Machine)> = Vec::new();
        let mut groups: Vec<(String, Group)> = Vec::new();
        let mut sources = Vec::new();
        for (path, doc) in docs {
            sources.push(Source {
                command: crate::units::shell_words(doc.command.get(1..).unwrap_or_default()),
                wall_s: doc.harness.wall_s,
                merged: doc
                    .machines
                    .iter()
                    .flat_map(|m| m.sources.iter())
                    .map(|s| {
                        let shard = s.shard.map(|k| format!(", shard {k}")).unwrap_or_default();
                        format!("{} ({}{shard}, {} cells)", s.path, s.hostname, s.cells)
                    })
                    .collect(),
                path,
            });
            // The machines of this document: its own, or a merged
            // document's shapes (each cell says which).
            let entries: Vec<(String, String, &Environment)> = if doc.machines.is_empty() {
                let e = &doc.environment;
                vec![(
                    machine_key(e),
                    format!(
                        "{} ({} CPUs, {} GiB{})",
                        e.hostname,
                        e.cpus,
                        e.mem_total_bytes >> 30,
                        cgroup_limits(e)
                    ),
                    e,
                )]
            } else {
                doc.machines
                    .iter()
                    .map(|m| {
                        (
                            format!("shape|{}", m.label),
                            m.label.clone(),
                            &m.environment,
                        )
                    })
                    .collect()
            };
            let mut index = Vec::new();
            for (mkey, label, e) in entries {
                let m = match machines.iter().position(|(k, _)| *k == mkey) {
                    Some(i) => i,
                    None => {
                        machines.push((
                            mkey,
                            Machine {
                                label,
                                environment: e.clone(),
                            },
                        ));
                        machines.len() - 1
                    }
                };
                // Versions a later document reported add to the machine's facts.
                for (k, v) in &e.allocator_versions {
                    machines[m]
                        .1
                        .environment
                        .allocator_versions
                        .entry(k.clone())
                        .or_insert_with(|| v.clone());
                }
                index.push(m);
            }
            for c in doc.cells {
                let m = index[c.machine.map_or(0, |i| i as usize).min(index.len() - 1)];
                let gkey = group_key(&c);
                let g = match groups.iter().position(|(k, _)| *k == gkey) {
                    Some(i) => i,
                    None => {
                        groups.push((
                            gkey,
                            Group {
                                workload: c.workload.clone(),
                                title: title(&c),
                                runs: Vec::new(),
                            },
                        ));
                        groups.len() - 1
                    }
                };
                let runs = &mut groups[g].1.runs;
                match runs.iter_mut().find(|(mi, _)| *mi == m) {
                    Some((_, cells)) => cells.push(c),
                    None => runs.push((m, vec![c])),
                }
            }
        }
        Report {
            sources,
            machines: machines.into_iter().map(|(_, m)| m).collect(),
            groups: groups.into_iter().map(|(_, g)| g).collect(),
        }
    }

    /// The summary rows of a group on one machine.
    pub fn summary(&self, g: &Group, machine: usize) -> Vec<SummaryRow> {
        g.runs
            .iter()
            .find(|(m, _)| *m == machine)
            .map(|(_, cells)| summarize(cells))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_that_is_no_preset_is_a_servers() {
        assert_eq!(focus("cow"), Focus::CopyOnWrite);
        assert_eq!(focus("threaded"), Focus::Threads);
        assert_eq!(focus("churn"), Focus::Growth);
        assert_eq!(focus("server"), Focus::Serving);
        for other in [
            "my-spec",
            "measure",
            "threaded-gvl",
            "server-trickle",
            "COW",
            "",
        ] {
            assert_eq!(focus(other), Focus::Serving, "{other}");
        }
    }
}
