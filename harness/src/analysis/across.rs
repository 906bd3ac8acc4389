//! "What to choose" across machines: when one configuration ran on several
//! machine shapes (a merged document, or documents of several machines),
//! which answers hold on all of them and which settings matter on some
//! only.

use super::choose::{Advice, WITHIN, median, plain, ratio, times};
use super::report::{Group, Report};
use crate::results::metric::MetricId;

/// The variant with the least tree PSS on each machine of `g`, and the
/// variants whose memory differs from the baseline's by [`WITHIN`] or more
/// on some machines and not on others.
pub fn across_machines(report: &Report, g: &Group) -> Option<Advice> {
    if g.runs.len() < 2 {
        return None;
    }
    let label = |m: usize| report.machines[m].label.clone();
    let summaries: Vec<(usize, Vec<crate::results::summary::SummaryRow>)> = g
        .runs
        .iter()
        .map(|(m, _)| (*m, report.summary(g, *m)))
        .collect();
    let mut lines = Vec::new();
    // The least memory, machine by machine.
    let mut least: Vec<(String, usize)> = Vec::new();
    for (m, rows) in &summaries {
        let rows = plain(rows);
        if let Some((_, r)) = rows
            .iter()
            .filter_map(|r| Some((median(r, MetricId::TreePssAnonSteady)?, *r)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
        {
            least.push((r.variant.clone(), *m));
        }
    }
    // Machines whose rows name a least: those with finished rows.
    let n = least.len();
    let mut winners: Vec<(&str, Vec<usize>)> = Vec::new();
    for (v, m) in &least {
        match winners.iter_mut().find(|(w, _)| w == v) {
            Some((_, ms)) => ms.push(*m),
            None => winners.push((v, vec![*m])),
        }
    }
    winners.sort_by_key(|w| std::cmp::Reverse(w.1.len()));
    let names = |ms: &[usize]| {
        ms.iter()
            .map(|&m| format!("[{}]", label(m)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some((v, ms)) = winners.first()
        && n > 1
    {
        let mut line = format!(
            "**{v}** has the least memory on {} of {n} machines",
            ms.len()
        );
        if ms.len() < n {
            line.push_str(&format!(
                " ({}); elsewhere {}",
                names(ms),
                winners[1..]
                    .iter()
                    .map(|(w, ms)| format!("{w} on {}", names(ms)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        line.push_str(". Rule: lowest tree PSS, per machine.");
        lines.push(line);
    }
    // Settings whose effect on memory depends on the machine.
    let mut variants: Vec<&str> = Vec::new();
    for (_, rows) in &summaries {
        for r in plain(rows) {
            if !variants.contains(&r.variant.as_str()) {
                variants.push(&r.variant);
            }
        }
    }
    for v in variants {
        let mut on = Vec::new();
        let mut off = Vec::new();
        let mut base = String::new();
        for (m, rows) in &summaries {
            let Some(r) = plain(rows).into_iter().find(|r| r.variant == v) else {
                continue;
            };
            let Some(x) = ratio(r, MetricId::TreePssAnonSteady) else {
                continue;
            };
            base = super::choose::baseline(r);
            let at = format!("{} on [{}]", times(Some(x)), label(*m));
            if (x - 1.0).abs() >= WITHIN {
                on.push(at);
            } else {
                off.push(at);
            }
        }
        if !on.is_empty() && !off.is_empty() {
            lines.push(format!(
                "{v}'s memory against {base} depends on the machine: {}, but {} (within {:.0}%). \
                 Rule: tree PSS ratio to {base}, per machine.",
                on.join(", "),
                off.join(", "),
                WITHIN * 100.0
            ));
        }
    }
    Some(Advice {
        at: format!("{} — across {n} machines", g.title),
        table: Vec::new(),
        lines,
    })
}
