//! "What to choose" around the fork: what each pre-fork hook does to the
//! pages copied after it, and how much each allocator keeps shared.

use super::median;
use crate::results::metric::MetricId;
use crate::results::summary::SummaryRow;
use crate::units::mib;
use allocbench_workloads::PreforkHook;

/// A change in pages copied small enough to be noise: under 10%, or under
/// 1 MiB.
fn material(from: f64, to: f64) -> Option<&'static str> {
    let change = to - from;
    if change.abs() < (1u64 << 20) as f64 || (from > 0.0 && (change / from).abs() < 0.10) {
        None
    } else if change < 0.0 {
        Some("helps")
    } else {
        Some("hurts")
    }
}

/// What each pre-fork hook does to the pages copied after fork, against
/// no hook: a line per variant where a hook matters, one line for the rest.
pub(super) fn hooks_before_fork(rows: &[SummaryRow]) -> Vec<String> {
    let mut out = Vec::new();
    let mut alike: Vec<(String, Vec<String>)> = Vec::new();
    let mut unmoved = Vec::new();
    for none in rows
        .iter()
        .filter(|r| r.prefork == PreforkHook::None && r.lifecycle.is_none() && r.ok > 0)
    {
        let Some(a) = median(none, MetricId::CowCopied) else {
            continue;
        };
        let hooks: Vec<(&SummaryRow, f64)> = rows
            .iter()
            .filter(|r| {
                r.prefork != PreforkHook::None
                    && r.lifecycle.is_none()
                    && r.variant == none.variant
                    && r.app_writes == none.app_writes
                    && r.ok > 0
            })
            .filter_map(|r| Some((r, median(r, MetricId::CowCopied)?)))
            .collect();
        if hooks.is_empty() {
            continue;
        }
        if hooks.iter().all(|(_, b)| material(a, *b).is_none()) {
            unmoved.push(format!("{} ({})", none.variant, mib(a as u64)));
            continue;
        }
        let parts: Vec<String> = hooks
            .iter()
            .map(|(r, b)| {
                format!(
                    "{} {} ({})",
                    r.prefork,
                    mib(*b as u64),
                    material(a, *b).unwrap_or("no difference")
                )
            })
            .collect();
        let said = format!(
            "pages copied after fork {} with no hook; {}",
            mib(a as u64),
            parts.join("; ")
        );
        // Variants whose figures read alike share a line.
        match alike.iter_mut().find(|(s, _)| *s == said) {
            Some((_, vs)) => vs.push(none.variant.clone()),
            None => alike.push((said, vec![none.variant.clone()])),
        }
    }
    for (said, vs) in alike {
        out.push(format!(
            "Before fork, for {}: {said}. Rows: {} with every hook.",
            vs.iter()
                .map(|v| format!("**{v}**"))
                .collect::<Vec<_>>()
                .join(", "),
            vs.join(", ")
        ));
    }
    if !unmoved.is_empty() {
        out.push(format!(
            "No pre-fork hook changes the pages copied after fork for: {}. Rows: those variants with every hook.",
            unmoved.join(", ")
        ));
    }
    if !out.is_empty() {
        out.push(
            "Rule for the hooks: a change in pages copied after fork of 10% and 1 MiB or more counts."
                .into(),
        );
    }
    out
}

/// How much of the inheritance each allocator keeps shared.
pub(super) fn sharing(rows: &[&SummaryRow]) -> Option<String> {
    let mut ranked: Vec<(f64, &SummaryRow)> = rows
        .iter()
        .filter_map(|r| Some((median(r, MetricId::CowCopied)?, *r)))
        .collect();
    if ranked.len() < 2 {
        return None;
    }
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    let list: Vec<String> = ranked
        .iter()
        .map(|(v, r)| format!("{} {}", r.variant, mib(*v as u64)))
        .collect();
    Some(format!(
        "CoW sharing kept: pages copied after fork with no hook, fewest first (the allocator's doing: the workers write nothing of the master's): {}. Rows: all.",
        list.join(", ")
    ))
}
