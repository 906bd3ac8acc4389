//! "What to choose" for worker lifecycles: per variant, what each policy
//! saves of the memory paid over serving against no restarts and what it
//! costs; and whether an allocator without restarts does as well as glibc
//! with its best policy.

use super::choose::{median, times};
use crate::results::metric::MetricId;
use crate::results::summary::SummaryRow;
use crate::units::mib;
use allocbench_workloads::PreforkHook;

/// A policy's row against its variant's row without restarts.
struct Against<'a> {
    row: &'a SummaryRow,
    /// Mean tree PSS anon over serving, this policy and none.
    mean: f64,
    none: f64,
}

impl Against<'_> {
    /// The share of the mean saved (negative: it costs memory).
    fn saving(&self) -> f64 {
        1.0 - self.mean / self.none
    }
}

fn ratio_to(row: &SummaryRow, none: &SummaryRow, id: MetricId) -> Option<f64> {
    Some(median(row, id)? / median(none, id)?)
}

/// The lines of the lifecycle rule for one configuration's summary rows;
/// none without a policy beside `none`.
pub(super) fn advice(rows: &[SummaryRow]) -> Vec<String> {
    let plain = |r: &&SummaryRow| r.prefork == PreforkHook::None && r.ok > 0;
    let mut out = Vec::new();
    // (variant, mean without restarts, best policy against it)
    let mut bests: Vec<(&str, f64, Option<Against>)> = Vec::new();
    for none in rows.iter().filter(plain).filter(|r| r.lifecycle.is_none()) {
        let Some(base) = median(none, MetricId::TreePssAnonMean) else {
            continue;
        };
        let policies: Vec<Against> = rows
            .iter()
            .filter(plain)
            .filter(|r| {
                r.variant == none.variant
                    && r.app_writes == none.app_writes
                    && !r.lifecycle.is_none()
            })
            .filter_map(|r| {
                Some(Against {
                    row: r,
                    mean: median(r, MetricId::TreePssAnonMean)?,
                    none: base,
                })
            })
            .collect();
        if policies.is_empty() {
            continue;
        }
        let parts: Vec<String> = policies
            .iter()
            .map(|a| {
                if median(a.row, MetricId::Restarts) == Some(0.0) {
                    return format!(
                        "{} never acted ({}; the difference is the runs' own)",
                        a.row.lifecycle,
                        mib(a.mean as u64)
                    );
                }
                format!(
                    "{} {} ({}{:.0}%; {} restarts, req/s {}, p99 {})",
                    a.row.lifecycle,
                    mib(a.mean as u64),
                    if a.saving() >= 0.0 { "−" } else { "+" },
                    a.saving().abs() * 100.0,
                    median(a.row, MetricId::Restarts)
                        .map(|n| format!("{n:.0}"))
                        .unwrap_or_else(|| "—".into()),
                    times(ratio_to(a.row, none, MetricId::ThroughputRps)),
                    times(ratio_to(a.row, none, MetricId::LatencyP99Us)),
                )
            })
            .collect();
        out.push(format!(
            "With **{}**, mean tree PSS anon over serving is {} without restarts; {}. Rows: {} with every lifecycle.",
            none.variant,
            mib(base as u64),
            parts.join("; "),
            none.variant
        ));
        let best = policies
            .into_iter()
            .filter(|a| median(a.row, MetricId::Restarts) != Some(0.0))
            .max_by(|a, b| a.saving().total_cmp(&b.saving()));
        bests.push((none.variant.as_str(), base, best));
    }
    if bests.is_empty() {
        return out;
    }
    let saves: Vec<String> = bests
        .iter()
        .filter_map(|(v, _, best)| {
            let b = best.as_ref()?;
            Some(format!(
                "{v} {}{:.0}% ({})",
                if b.saving() >= 0.0 { "" } else { "+" },
                b.saving().abs() * 100.0,
                b.row.lifecycle
            ))
        })
        .collect();
    out.push(format!(
        "Restarts save, at best, of the mean memory: {}.",
        saves.join(", ")
    ));
    // Does a better allocator make restarts unnecessary?
    let glibc = bests.iter().find(|(v, _, _)| *v == "glibc");
    let leanest_none = bests
        .iter()
        .filter(|(v, _, _)| *v != "glibc")
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let (Some((_, _, Some(g))), Some((v, m, _))) = (glibc, leanest_none) {
        let verdict = if *m <= g.mean {
            format!(
                "**{v}** without restarts ({}) needs no more memory than glibc with its best policy ({}: {}): \
                 here a better allocator makes restarts unnecessary",
                mib(*m as u64),
                g.row.lifecycle,
                mib(g.mean as u64)
            )
        } else {
            format!(
                "glibc with {} ({}) needs less memory than any other variant without restarts (least: {v}, {}): \
                 here restarts save more than the allocator",
                g.row.lifecycle,
                mib(g.mean as u64),
                mib(*m as u64)
            )
        };
        out.push(format!(
            "{verdict}. Rule: mean tree PSS anon over serving, the leanest variant with lifecycle none against glibc with the policy that saves it most. Rows: glibc, {v}."
        ));
    }
    out
}
