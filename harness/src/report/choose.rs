//! "What to choose": recommendations derived from the report's tables by
//! rules written here, each naming the row it rests on and the conditions it
//! holds under. Nothing is written by hand: a rule that finds no rows says
//! nothing.

use super::{Group, Report};
use crate::result::{CellResult, Status};
use crate::stats::SummaryRow;
use crate::units::{mib, pct, rate};

/// How close to the best throughput a variant must be to count as "as fast".
const WITHIN: f64 = 0.05;

fn median(r: &SummaryRow, key: &str) -> Option<f64> {
    r.metrics.get(key).map(|m| m.stat.median)
}

fn ratio(r: &SummaryRow, key: &str) -> Option<f64> {
    r.metrics
        .get(key)
        .and_then(|m| m.ratio.as_ref())
        .map(|x| x.median)
}

/// The variant ratios in a row are taken against.
fn baseline(r: &SummaryRow) -> String {
    r.metrics
        .values()
        .find_map(|m| m.ratio.as_ref())
        .map(|x| x.baseline.clone())
        .unwrap_or_else(|| "glibc".into())
}

/// The rows of the plain configuration: no pre-fork hook, application
/// writes as the workload makes them (the first write mode seen).
fn plain(rows: &[SummaryRow]) -> Vec<&SummaryRow> {
    let writes = rows.first().map(|r| r.app_writes);
    rows.iter()
        .filter(|r| r.prefork == "none" && Some(r.app_writes) == writes && r.ok > 0)
        .collect()
}

fn where_(g: &Group, machine: &str, several: bool) -> String {
    if several {
        format!("{} on {machine}", g.title)
    } else {
        g.title.clone()
    }
}

fn times(r: Option<f64>) -> String {
    r.map(|x| format!("{x:.2}×")).unwrap_or_else(|| "—".into())
}

/// Lowest memory among the variants within 5% of the best throughput.
fn leanest_fast(g: &Group, rows: &[&SummaryRow], at: &str) -> Option<String> {
    let best = rows
        .iter()
        .filter_map(|r| Some((median(r, "throughput_rps")?, *r)))
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    let pick = rows
        .iter()
        .filter(|r| median(r, "throughput_rps").is_some_and(|t| t >= (1.0 - WITHIN) * best.0))
        .filter_map(|r| Some((median(r, "tree_pss_anon_steady")?, *r)))
        .min_by(|a, b| a.0.total_cmp(&b.0))?;
    Some(format!(
        "**{at}** ({workload}): use **{v}**: the least memory ({m}, {mr} {base}'s) among the variants within 5% of the best throughput ({bv}, {bt} req/s). \
         Rule: lowest tree PSS whose throughput is within 5% of the best. Row: {v}.",
        workload = g.workload,
        base = baseline(pick.1),
        v = pick.1.variant,
        m = mib(pick.0 as u64),
        mr = times(ratio(pick.1, "tree_pss_anon_steady")),
        bv = best.1.variant,
        bt = rate(best.0),
    ))
}

/// jemalloc against `MALLOC_ARENA_MAX=2`, with the CPU and latency cost.
fn jemalloc_vs_arena2(at: &str, rows: &[&SummaryRow]) -> Option<String> {
    let find = |name: &str| rows.iter().find(|r| r.variant == name).copied();
    let a2 = find("glibc-arena2")?;
    let je = find("jemalloc").or_else(|| find("jemalloc-so"))?;
    let r = |x: &SummaryRow, y: &SummaryRow, k: &str| Some(median(x, k)? / median(y, k)?);
    Some(format!(
        "**{at}**: {je} against glibc-arena2 (`MALLOC_ARENA_MAX=2`): memory {m}, throughput {t}, p99 latency {p} \
         (ratios of {je} to glibc-arena2; below 1 is less). Rows: {je}, glibc-arena2.",
        je = je.variant,
        m = times(r(je, a2, "tree_pss_anon_steady")),
        t = times(r(je, a2, "throughput_rps")),
        p = times(r(je, a2, "latency_p99_us")),
    ))
}

/// Which `MALLOC_CONF`: the jemalloc variants against each other.
fn malloc_conf(at: &str, rows: &[&SummaryRow]) -> Option<String> {
    let je: Vec<&SummaryRow> = rows
        .iter()
        .filter(|r| r.variant.starts_with("jemalloc") && !r.variant.ends_with("-so"))
        .copied()
        .collect();
    if je.len() < 2 {
        return None;
    }
    let best = je
        .iter()
        .filter_map(|r| median(r, "throughput_rps"))
        .fold(f64::MIN, f64::max);
    let pick = je
        .iter()
        .filter(|r| median(r, "throughput_rps").is_some_and(|t| t >= (1.0 - WITHIN) * best))
        .filter_map(|r| Some((median(r, "tree_pss_anon_steady")?, *r)))
        .min_by(|a, b| a.0.total_cmp(&b.0))?;
    let listing: Vec<String> = je
        .iter()
        .filter_map(|r| {
            Some(format!(
                "{} {} / {} req/s / {} returned at drain",
                r.variant,
                mib(median(r, "tree_pss_anon_steady")? as u64),
                rate(median(r, "throughput_rps")?),
                median(r, "returned_drained")
                    .map(pct)
                    .unwrap_or_else(|| "—".into())
            ))
        })
        .collect();
    Some(format!(
        "**{at}**: of the jemalloc settings, **{}** uses the least memory within 5% of the fastest jemalloc ({}). Rows: {}.",
        pick.1.variant,
        listing.join("; "),
        je.iter()
            .map(|r| r.variant.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Does the allocator's release call before fork reduce the copies?
fn trim_before_fork(at: &str, rows: &[SummaryRow]) -> Vec<String> {
    let mut out = Vec::new();
    for none in rows.iter().filter(|r| r.prefork == "none" && r.ok > 0) {
        let Some(trim) = rows.iter().find(|r| {
            r.prefork == "trim"
                && r.variant == none.variant
                && r.app_writes == none.app_writes
                && r.ok > 0
        }) else {
            continue;
        };
        let (Some(a), Some(b)) = (median(none, "cow_copied"), median(trim, "cow_copied")) else {
            continue;
        };
        let change = if a > 0.0 { (b - a) / a } else { 0.0 };
        let verdict = if change <= -0.10 {
            "helps"
        } else if change >= 0.10 {
            "hurts"
        } else {
            "makes no difference"
        };
        out.push(format!(
            "**{at}**: the release call before fork {verdict} for {v}: copied pages after fork {a} without, {b} with ({c:+.0}%). \
             Rule: a change of 10% or more counts. Rows: {v} with prefork none and trim.",
            v = none.variant,
            a = mib(a as u64),
            b = mib(b as u64),
            c = change * 100.0
        ));
    }
    out
}

/// The median over repetitions of `returned` at the last idle sample.
fn idle_return(cells: &[CellResult], variant: &str) -> Option<(String, f64)> {
    let mut name = None;
    let mut values: Vec<f64> = cells
        .iter()
        .filter(|c| c.variant == variant && c.status == Status::Ok && c.prefork == "none")
        .filter_map(|c| {
            let m = c.metrics.as_ref()?;
            let last = c.phases.iter().rfind(|p| p.name.starts_with("idle+"))?;
            name = Some(last.name.clone());
            m.returned.get(&last.name).copied()
        })
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some((name?, values[values.len() / 2]))
}

/// How fast each allocator gives memory back when idle.
fn idle(at: &str, rows: &[&SummaryRow], cells: &[CellResult]) -> Option<String> {
    let parts: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let (phase, v) = idle_return(cells, &r.variant)?;
            let trimmed = median(r, "returned_trimmed")?;
            Some(format!(
                "{} {} at {phase} ({} after the release call)",
                r.variant,
                pct(v),
                pct(trimmed)
            ))
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "**{at}**: memory given back to the OS while idle, without an explicit release: {}. Rows: all.",
        parts.join("; ")
    ))
}

/// How much of the inheritance each allocator keeps shared.
fn sharing(at: &str, rows: &[&SummaryRow]) -> Option<String> {
    let mut ranked: Vec<(f64, &SummaryRow)> = rows
        .iter()
        .filter_map(|r| Some((median(r, "cow_copied")?, *r)))
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
        "**{at}**: pages copied after fork, fewest first (the allocator's doing when the workload writes nothing of the master's): {}. Rows: all.",
        list.join(", ")
    ))
}

/// Figures far from the baseline, stated plainly.
fn surprises(at: &str, rows: &[&SummaryRow]) -> Vec<String> {
    let mut out = Vec::new();
    for r in rows {
        if let Some(x) = ratio(r, "tree_pss_anon_steady")
            && x >= 1.25
        {
            out.push(format!(
                "**{at}**: {} uses {x:.2}× {}'s memory at steady. Row: {}.",
                r.variant,
                baseline(r),
                r.variant
            ));
        }
        if let Some(x) = ratio(r, "throughput_rps")
            && x <= 0.5
        {
            out.push(format!(
                "**{at}**: {} serves {x:.2}× {}'s requests per second. Row: {}.",
                r.variant,
                baseline(r),
                r.variant
            ));
        }
    }
    out
}

/// Every recommendation the tables support.
pub fn choose(report: &Report) -> Vec<String> {
    let several = report.machines.len() > 1;
    let mut out = Vec::new();
    for g in &report.groups {
        for (m, cells) in &g.runs {
            let at = where_(g, &report.machines[*m].label, several);
            let summary = report.summary(g, *m);
            let rows = plain(&summary);
            if rows.len() < 2 {
                continue;
            }
            match g.workload.as_str() {
                "cow" => {
                    out.extend(trim_before_fork(&at, &summary));
                    out.extend(sharing(&at, &rows));
                }
                _ => {
                    out.extend(leanest_fast(g, &rows, &at));
                    out.extend(jemalloc_vs_arena2(&at, &rows));
                    out.extend(malloc_conf(&at, &rows));
                    if g.workload == "server" {
                        out.extend(idle(&at, &rows, cells));
                    }
                    out.extend(surprises(&at, &rows));
                }
            }
        }
    }
    out
}
