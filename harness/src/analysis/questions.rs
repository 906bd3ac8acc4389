//! The compact table "What to choose" opens each configuration with: the
//! questions an operator asks, the variant each answer names, and the
//! figures behind it, all from the same rows as the rules' sentences under
//! it (which say the rule and every row).

use super::choose::{
    baseline as base, fastest, idle_return, leanest_fast_pick, median, mostly_huge, ratio, times,
};
use crate::results::CellResult;
use crate::results::metric::MetricId;
use crate::results::summary::SummaryRow;
use crate::units::{mib, pct, rate};

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub question: &'static str,
    /// The variant the answer names (or the verdict between two).
    pub answer: String,
    pub figures: String,
}

fn memory(r: &SummaryRow) -> Option<String> {
    let m = median(r, MetricId::TreePssAnonSteady)?;
    Some(format!(
        "{} ({} {})",
        mib(m as u64),
        times(ratio(r, MetricId::TreePssAnonSteady)),
        base(r)
    ))
}

/// The table for a serving configuration (`rows`: the plain configuration's
/// summary rows; `cells`: its cells).
pub fn serving(rows: &[&SummaryRow], cells: &[CellResult]) -> Vec<Answer> {
    let mut out = Vec::new();
    if let Some(pick) = leanest_fast_pick(rows)
        && let Some(m) = memory(pick)
    {
        out.push(Answer {
            question: "Least memory at full speed (within 5% of the best throughput)",
            answer: pick.variant.clone(),
            figures: format!(
                "{m}, {} req/s",
                median(pick, MetricId::ThroughputRps)
                    .map(rate)
                    .unwrap_or_else(|| "—".into())
            ),
        });
    }
    if let Some(r) = rows
        .iter()
        .filter_map(|r| Some((median(r, MetricId::TreePssAnonSteady)?, *r)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, r)| r)
        && let Some(m) = memory(r)
    {
        out.push(Answer {
            question: "Least memory at any speed",
            answer: r.variant.clone(),
            figures: format!(
                "{m}, at {} the throughput",
                times(ratio(r, MetricId::ThroughputRps))
            ),
        });
    }
    if let Some((rps, r)) = fastest(rows) {
        out.push(Answer {
            question: "Most requests per second",
            answer: r.variant.clone(),
            figures: format!(
                "{} req/s ({} {}), memory {}",
                rate(rps),
                times(ratio(r, MetricId::ThroughputRps)),
                base(r),
                times(ratio(r, MetricId::TreePssAnonSteady))
            ),
        });
    }
    let find = |name: &str| rows.iter().find(|r| r.variant == name).copied();
    if let (Some(a2), Some(je)) = (
        find("glibc-arena2"),
        find("jemalloc").or_else(|| find("jemalloc-so")),
    ) {
        let of = |x: &SummaryRow, y: &SummaryRow, k: MetricId| Some(median(x, k)? / median(y, k)?);
        if let Some(mem) = of(je, a2, MetricId::TreePssAnonSteady) {
            let thr = of(je, a2, MetricId::ThroughputRps);
            let answer = if mem <= 1.0 {
                je.variant.clone()
            } else {
                "glibc-arena2".to_string()
            };
            out.push(Answer {
                question: "Less memory: jemalloc or `MALLOC_ARENA_MAX=2`",
                answer,
                figures: format!(
                    "{} against glibc-arena2: memory {}, throughput {}",
                    je.variant,
                    times(Some(mem)),
                    times(thr)
                ),
            });
        }
    }
    let idle: Vec<(String, f64, &SummaryRow)> = rows
        .iter()
        .filter_map(|r| {
            let (phase, v) = idle_return(cells, &r.variant)?;
            Some((phase, v, *r))
        })
        .collect();
    if let Some((phase, v, r)) = idle.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        out.push(Answer {
            question: "Gives back the most when idle, without a release call",
            answer: r.variant.clone(),
            figures: format!("{} of the tree's growth at {phase}", pct(*v)),
        });
    }
    let huge = mostly_huge(rows, cells);
    if !huge.is_empty() {
        out.push(Answer {
            question: "Mostly on transparent huge pages (with THP off beside)",
            answer: huge
                .iter()
                .map(|h| h.row.variant.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            figures: huge.iter().map(|h| h.text()).collect::<Vec<_>>().join("; "),
        });
    }
    out
}

/// The table for the copy-on-write configuration.
pub fn cow(rows: &[&SummaryRow]) -> Vec<Answer> {
    let copied = |r: &&SummaryRow| median(r, MetricId::CowCopied);
    let mut ranked: Vec<(f64, &SummaryRow)> =
        rows.iter().filter_map(|r| Some((copied(r)?, *r))).collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (Some(first), Some(last)) = (ranked.first(), ranked.last()) else {
        return Vec::new();
    };
    vec![Answer {
        question: "Fewest pages copied after fork (no hook)",
        answer: first.1.variant.clone(),
        figures: format!(
            "{} ({} {})",
            mib(first.0 as u64),
            last.1.variant,
            mib(last.0 as u64)
        ),
    }]
}
