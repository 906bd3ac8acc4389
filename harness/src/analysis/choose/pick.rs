//! "What to choose" for serving: which allocator, and which settings of it
//! (the leanest as fast as the fastest, the leanest of all, jemalloc against
//! two glibc arenas, capping glibc's arenas, jemalloc's `MALLOC_CONF`).

use super::{baseline, fastest, leanest_fast_pick, median, ratio, times};
use crate::results::metric::MetricId;
use crate::results::summary::SummaryRow;
use crate::units::{mib, pct, rate};

/// Lowest memory among the variants within 5% of the best throughput.
pub(super) fn leanest_fast(rows: &[&SummaryRow]) -> Option<String> {
    let best = fastest(rows)?;
    let pick = leanest_fast_pick(rows)?;
    let pick = (median(pick, MetricId::TreePssAnonSteady)?, pick);
    Some(format!(
        "Use **{v}**: the least memory ({m}, {mr} {base}'s) among the variants within 5% of the best throughput \
         ({bv}, {bt} req/s). Rule: lowest tree PSS whose throughput is within 5% of the best. Row: {v}.",
        base = baseline(pick.1),
        v = pick.1.variant,
        m = mib(pick.0 as u64),
        mr = times(ratio(pick.1, MetricId::TreePssAnonSteady)),
        bv = best.1.variant,
        bt = rate(best.0),
    ))
}

/// The least memory of all, with what it costs in throughput, when that is
/// not the variant [`leanest_fast`] picks.
pub(super) fn leanest(rows: &[&SummaryRow]) -> Option<String> {
    let pick = rows
        .iter()
        .filter_map(|r| Some((median(r, MetricId::TreePssAnonSteady)?, *r)))
        .min_by(|a, b| a.0.total_cmp(&b.0))?;
    let fast = leanest_fast_pick(rows)?;
    if fast.variant == pick.1.variant {
        return None;
    }
    Some(format!(
        "For the least memory of all: **{v}** ({m}, {mr} {base}'s), at {tr} {base}'s throughput and {pr} its p99 latency. \
         Rule: lowest tree PSS. Row: {v}.",
        base = baseline(pick.1),
        v = pick.1.variant,
        m = mib(pick.0 as u64),
        mr = times(ratio(pick.1, MetricId::TreePssAnonSteady)),
        tr = times(ratio(pick.1, MetricId::ThroughputRps)),
        pr = times(ratio(pick.1, MetricId::LatencyP99Us)),
    ))
}

/// jemalloc against `MALLOC_ARENA_MAX=2`, with the CPU and latency cost.
pub(super) fn jemalloc_vs_arena2(rows: &[&SummaryRow]) -> Option<String> {
    let find = |name: &str| rows.iter().find(|r| r.variant == name).copied();
    let a2 = find("glibc-arena2")?;
    let je = find("jemalloc").or_else(|| find("jemalloc-so"))?;
    let r = |x: &SummaryRow, y: &SummaryRow, k: MetricId| Some(median(x, k)? / median(y, k)?);
    Some(format!(
        "jemalloc or `MALLOC_ARENA_MAX=2`: {je} against glibc-arena2, memory {m}, throughput {t}, p99 latency {p} \
         (ratios of {je} to glibc-arena2; below 1 is less). Rows: {je}, glibc-arena2.",
        je = je.variant,
        m = times(r(je, a2, MetricId::TreePssAnonSteady)),
        t = times(r(je, a2, MetricId::ThroughputRps)),
        p = times(r(je, a2, MetricId::LatencyP99Us)),
    ))
}

/// What capping glibc's arenas does against the default.
pub(super) fn arena_max(rows: &[&SummaryRow]) -> Option<String> {
    let glibc = rows.iter().find(|r| r.variant == "glibc")?;
    let arenas = |r: &SummaryRow| {
        median(r, MetricId::Arenas)
            .map(|a| format!("{a:.0}"))
            .unwrap_or_else(|| "—".into())
    };
    let parts: Vec<String> = ["glibc-arena1", "glibc-arena2"]
        .iter()
        .filter_map(|name| {
            let r = rows.iter().find(|r| r.variant == *name)?;
            Some(format!(
                "{name} memory {}, throughput {}, p99 {} (arenas {} → {})",
                times(ratio(r, MetricId::TreePssAnonSteady)),
                times(ratio(r, MetricId::ThroughputRps)),
                times(ratio(r, MetricId::LatencyP99Us)),
                arenas(glibc),
                arenas(r)
            ))
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "Capping glibc's arenas (`MALLOC_ARENA_MAX`), against default glibc: {}. Rows: glibc, {}.",
        parts.join("; "),
        ["glibc-arena1", "glibc-arena2"]
            .iter()
            .filter(|n| rows.iter().any(|r| r.variant == **n))
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Which `MALLOC_CONF`: the jemalloc variants against each other.
pub(super) fn malloc_conf(rows: &[&SummaryRow]) -> Option<String> {
    let je: Vec<&SummaryRow> = rows
        .iter()
        .filter(|r| r.variant.starts_with("jemalloc") && !r.variant.ends_with("-so"))
        .copied()
        .collect();
    if je.len() < 2 {
        return None;
    }
    let pick = leanest_fast_pick(&je)?;
    let listing: Vec<String> = je
        .iter()
        .filter_map(|r| {
            Some(format!(
                "{} {} / {} req/s / {} returned at drain",
                r.variant,
                mib(median(r, MetricId::TreePssAnonSteady)? as u64),
                rate(median(r, MetricId::ThroughputRps)?),
                median(r, MetricId::ReturnedDrained)
                    .map(pct)
                    .unwrap_or_else(|| "—".into())
            ))
        })
        .collect();
    Some(format!(
        "Which `MALLOC_CONF`: of the jemalloc settings, **{}** uses the least memory within 5% of the fastest jemalloc ({}). Rows: {}.",
        pick.variant,
        listing.join("; "),
        je.iter()
            .map(|r| r.variant.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
