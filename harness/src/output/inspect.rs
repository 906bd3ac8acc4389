//! `inspect`'s table: a table per process tree, then what is wrong.

use super::markup::{Markup, Table, render as render_table};
use crate::results::ProcessRole;
use crate::results::inspect::Inspection;
use crate::units::mib;

/// The inspection as a table per tree, and its problems.
pub fn render(ins: &Inspection) -> String {
    let mut out = String::new();
    for t in &ins.trees {
        let root = t.processes.first();
        out.push_str(&format!(
            "Process {} ({}) and its descendants: {} process{}\n\n",
            t.pid,
            root.map_or("?", |p| p.command.as_str()),
            t.processes.len(),
            if t.processes.len() == 1 { "" } else { "es" }
        ));
        let mut table = Table::new(&[
            ("role", false),
            ("pid", true),
            ("command", false),
            ("malloc from", false),
            ("allocator variables", false),
            ("arenas", true),
            ("PSS", true),
            ("USS", true),
        ]);
        for p in &t.processes {
            let vars = match &p.variables_unread {
                Some(_) => "(unread: process title)".to_string(),
                None if p.variables.is_empty() => "—".to_string(),
                None => p
                    .variables
                    .iter()
                    .map(|v| {
                        let ignored = match (&v.read_by, v.read_here) {
                            (Some(by), false) => format!(" (ignored: {by}'s)"),
                            _ => String::new(),
                        };
                        format!("{}={}{ignored}", v.name, v.value)
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            let from = {
                let mut s = p.allocator.clone();
                if let Some(v) = &p.version {
                    s.push_str(&format!(" {v}"));
                }
                if let Some(lib) = p.library.as_ref().and_then(|l| l.file_name()) {
                    s.push_str(&format!(" ({})", lib.to_string_lossy()));
                }
                s
            };
            table.push(vec![
                p.role.name().to_string(),
                p.pid.to_string(),
                p.command.clone(),
                from,
                vars,
                p.arenas.map_or("—".into(), |a| a.to_string()),
                p.pss.map_or("—".into(), mib),
                p.uss.map_or("—".into(), mib),
            ]);
        }
        out.push_str(&render_table(&table, Markup::Terminal));
        out.push('\n');
        for p in &t.processes {
            for e in &p.errors {
                out.push_str(&format!(
                    "- {} {}: could not read {e}\n",
                    p.role.name(),
                    p.pid
                ));
            }
        }
        if t.problems.is_empty() {
            let n = t
                .processes
                .iter()
                .filter(|p| matches!(p.role, ProcessRole::Master | ProcessRole::Worker))
                .count();
            if let Some(m) = t.processes.iter().find(|p| p.role == ProcessRole::Master) {
                out.push_str(&match n {
                    1 => format!("The server's one process: {}.\n", m.describe()),
                    _ => format!(
                        "The server's {n} processes (master and workers) agree: {}.\n",
                        m.describe()
                    ),
                });
            }
        } else {
            for p in &t.problems {
                out.push_str(&format!("PROBLEM: {p}\n"));
            }
        }
        out.push('\n');
    }
    out
}
