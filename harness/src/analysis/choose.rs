//! "What to choose": recommendations derived from the report's tables by
//! rules written here, each naming the row it rests on and the conditions it
//! holds under. Nothing is written by hand: a rule that finds no rows says
//! nothing.

use super::questions::{self, Answer};
use super::report::{Group, Report};
use crate::results::metric::MetricId;
use crate::results::summary::SummaryRow;
use crate::results::{CellResult, Status};
use crate::units::{mib, pct, per_1k, rate};
use allocbench_workloads::{Focus, PreforkHook};

/// How close to the best throughput a variant must be to count as "as fast".
pub(crate) const WITHIN: f64 = 0.05;

pub(super) fn median(r: &SummaryRow, id: MetricId) -> Option<f64> {
    r.median(id)
}

pub(super) fn ratio(r: &SummaryRow, id: MetricId) -> Option<f64> {
    r.metric(id)
        .and_then(|m| m.ratio.as_ref())
        .map(|x| x.median)
}

/// The variant ratios in a row are taken against.
pub(super) fn baseline(r: &SummaryRow) -> String {
    r.metrics
        .values()
        .find_map(|m| m.ratio.as_ref())
        .map(|x| x.baseline.clone())
        .unwrap_or_else(|| "glibc".into())
}

/// The rows of the plain configuration: no pre-fork hook, application
/// writes as the workload makes them (the first write mode seen), no
/// lifecycle policy (or the first one seen when every row has one).
pub(super) fn plain(rows: &[SummaryRow]) -> Vec<&SummaryRow> {
    let writes = rows.first().map(|r| r.app_writes);
    let lifecycle = rows
        .iter()
        .map(|r| &r.lifecycle)
        .find(|l| l.is_none())
        .or(rows.first().map(|r| &r.lifecycle));
    rows.iter()
        .filter(|r| {
            r.prefork == PreforkHook::None
                && Some(r.app_writes) == writes
                && Some(&r.lifecycle) == lifecycle
                && r.ok > 0
        })
        .collect()
}

fn where_(g: &Group, machine: &str, several: bool) -> String {
    if several {
        format!("{} on {machine}", g.title)
    } else {
        g.title.clone()
    }
}

pub(super) fn times(r: Option<f64>) -> String {
    r.map(|x| format!("{x:.2}×")).unwrap_or_else(|| "—".into())
}

/// The fastest variant, with its throughput.
pub(super) fn fastest<'a>(rows: &[&'a SummaryRow]) -> Option<(f64, &'a SummaryRow)> {
    rows.iter()
        .filter_map(|r| Some((median(r, MetricId::ThroughputRps)?, *r)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// Lowest memory among the variants within 5% of the best throughput.
pub(super) fn leanest_fast_pick<'a>(rows: &[&'a SummaryRow]) -> Option<&'a SummaryRow> {
    least_within_best(
        rows,
        |r| median(r, MetricId::TreePssAnonSteady),
        |r| median(r, MetricId::ThroughputRps),
    )
    .copied()
}

/// The rule behind "Use …": of the rows whose throughput is within
/// [`WITHIN`] of the best, the one with the least memory. `measure`'s
/// verdict applies it to its own figures.
pub(crate) fn least_within_best<T>(
    rows: &[T],
    memory: impl Fn(&T) -> Option<f64>,
    throughput: impl Fn(&T) -> Option<f64>,
) -> Option<&T> {
    let best = rows.iter().filter_map(&throughput).max_by(f64::total_cmp)?;
    rows.iter()
        .filter(|r| throughput(r).is_some_and(|t| t >= (1.0 - WITHIN) * best))
        .filter_map(|r| Some((memory(r)?, r)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, r)| r)
}

/// Lowest memory among the variants within 5% of the best throughput.
fn leanest_fast(rows: &[&SummaryRow]) -> Option<String> {
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
fn leanest(rows: &[&SummaryRow]) -> Option<String> {
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
fn jemalloc_vs_arena2(rows: &[&SummaryRow]) -> Option<String> {
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
fn arena_max(rows: &[&SummaryRow]) -> Option<String> {
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
fn malloc_conf(rows: &[&SummaryRow]) -> Option<String> {
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
fn hooks_before_fork(rows: &[SummaryRow]) -> Vec<String> {
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

/// The median over repetitions of `returned` at the last idle sample.
pub(super) fn idle_return(cells: &[CellResult], variant: &str) -> Option<(String, f64)> {
    let mut name = None;
    let mut values: Vec<f64> = cells
        .iter()
        .filter(|c| {
            c.variant == variant
                && c.status == Status::Ok
                && c.prefork == PreforkHook::None
                && c.lifecycle.is_none()
        })
        .filter_map(|c| {
            let m = c.metrics.as_ref()?;
            let last = c.phases.iter().rfind(|p| p.name.idle_offset().is_some())?;
            name = Some(last.name.to_string());
            m.returned.get(&last.name.to_string()).copied()
        })
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some((name?, values[values.len() / 2]))
}

/// How fast each allocator gives memory back when idle.
fn idle(rows: &[&SummaryRow], cells: &[CellResult]) -> Option<String> {
    let parts: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let (phase, v) = idle_return(cells, &r.variant)?;
            let trimmed = median(r, MetricId::ReturnedTrimmed)?;
            // Only an idle window of a second or more says how fast.
            let secs: f64 = phase
                .trim_start_matches("idle+")
                .trim_end_matches('s')
                .parse()
                .ok()?;
            (secs >= 1.0).then(|| format!("{} {} → {}", r.variant, pct(v), pct(trimmed)))
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let phase = rows
        .iter()
        .find_map(|r| idle_return(cells, &r.variant))
        .map(|(p, _)| p)?;
    Some(format!(
        "Given back to the OS while idle, at {phase} without an explicit release → after the release call \
         (share of the tree's growth of anonymous PSS since the fork): {}. Rows: all (returned columns).",
        parts.join("; ")
    ))
}

/// How much of the inheritance each allocator keeps shared.
fn sharing(rows: &[&SummaryRow]) -> Option<String> {
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

/// Growth over requests: which variants keep growing.
fn growth(rows: &[&SummaryRow]) -> Option<String> {
    let judged: Vec<(&SummaryRow, f64, f64)> = rows
        .iter()
        .filter_map(|r| {
            Some((
                *r,
                median(r, MetricId::Growing)?,
                median(r, MetricId::GrowthBytesPer1kRequests)?,
            ))
        })
        .collect();
    let growing: Vec<String> = judged
        .iter()
        .filter(|(_, g, _)| *g > 0.5)
        .map(|(r, _, slope)| format!("{} ({})", r.variant, per_1k(*slope)))
        .collect();
    if growing.is_empty() {
        return None;
    }
    let plateau: Vec<&str> = judged
        .iter()
        .filter(|(_, g, _)| *g <= 0.5)
        .map(|(r, _, _)| r.variant.as_str())
        .collect();
    Some(format!(
        "Still growing at the end of the run (tree PSS against requests, second half): {}; plateau: {}. \
         Rule: growing when the slope adds more than 2% (and 1 MiB) over the second half, in most repetitions. Rows: all (growth, verdict).",
        growing.join(", "),
        if plateau.is_empty() {
            "none".to_string()
        } else {
            plateau.join(", ")
        }
    ))
}

/// Figures far from the baseline, stated plainly, in one line.
fn surprises(rows: &[&SummaryRow]) -> Option<String> {
    let mut parts = Vec::new();
    for r in rows {
        if let Some(x) = ratio(r, MetricId::TreePssAnonSteady)
            && x >= 1.25
        {
            parts.push(format!("{} {x:.2}× the memory", r.variant));
        }
        if let Some(x) = ratio(r, MetricId::ThroughputRps)
            && x <= 0.5
        {
            parts.push(format!("{} {x:.2}× the requests per second", r.variant));
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "Far from {}: {}. Rule: memory at 1.25× or more, or throughput at half or less. Rows: those named.",
        rows.first()
            .map(|r| baseline(r))
            .unwrap_or_else(|| "glibc".into()),
        parts.join("; ")
    ))
}

/// The known cause of a slow variant that setting `key` to `value` names.
fn slow_because(key: &str, value: &str) -> Option<&'static str> {
    let fixed_threshold = matches!(
        key,
        "MALLOC_MMAP_THRESHOLD_"
            | "MALLOC_TRIM_THRESHOLD_"
            | "MALLOC_TOP_PAD_"
            | "MALLOC_MMAP_MAX_"
    ) || (key == "GLIBC_TUNABLES"
        && ["mmap_threshold", "trim_threshold", "top_pad", "mmap_max"]
            .iter()
            .any(|t| value.contains(&format!("glibc.malloc.{t}="))));
    let purge_at_once = (key == "MALLOC_CONF" && value.contains("dirty_decay_ms:0"))
        || (key == "MIMALLOC_PURGE_DELAY" && value == "0");
    if fixed_threshold {
        Some(
            "setting glibc's mmap threshold, trim threshold, top pad or mmap maximum, by variable or \
             tunable, stops glibc from raising its mmap threshold as it does by default, so every \
             request object of 128 KiB or more is an mmap, page faults and an munmap",
        )
    } else if purge_at_once {
        Some(
            "returning freed pages to the OS at once makes every free of a large block a madvise and \
             its next use page faults",
        )
    } else {
        None
    }
}

/// The known cause of each variant's low throughput, stated with the
/// variant: a caveat to the "far from" line.
fn caveats(rows: &[&SummaryRow], cells: &[CellResult]) -> Vec<String> {
    let mut by_cause: Vec<(&str, Vec<String>)> = Vec::new();
    for r in rows {
        let Some(x) = ratio(r, MetricId::ThroughputRps).filter(|x| *x <= 0.5) else {
            continue;
        };
        let Some(cell) = cells.iter().find(|c| c.variant == r.variant) else {
            continue;
        };
        let Some(cause) = cell
            .variant_def
            .env
            .iter()
            .find_map(|(k, v)| slow_because(k, v))
        else {
            continue;
        };
        let named = format!("{} ({x:.2}×)", r.variant);
        match by_cause.iter_mut().find(|(c, _)| *c == cause) {
            Some((_, vs)) => vs.push(named),
            None => by_cause.push((cause, vec![named])),
        }
    }
    by_cause
        .into_iter()
        .map(|(cause, vs)| {
            format!(
                "Why {} {} slow here: {cause}. Rule: a variant at half the baseline's throughput or less whose settings name a known cause. Rows: {}.",
                vs.join(", "),
                if vs.len() == 1 { "is" } else { "are" },
                vs.iter()
                    .map(|v| v.split(' ').next().unwrap_or(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect()
}

/// The share of its memory above which a variant counts as mostly on huge
/// pages.
const MOSTLY_HUGE: f64 = 0.5;

/// Whether a variant turns transparent huge pages off: for the whole tree,
/// or in its allocator.
fn thp_off(c: &CellResult) -> bool {
    let v = &c.variant_def;
    v.thp_disable
        || v.env.iter().any(|(k, val)| {
            (k == "MIMALLOC_ALLOW_THP" && val == "0")
                || (k == "MALLOC_CONF" && val.contains("thp:never"))
        })
}

/// A variant whose memory is mostly on transparent huge pages.
pub(super) struct Huge<'a> {
    pub row: &'a SummaryRow,
    /// Median bytes on huge pages, and of the tree's anonymous PSS.
    pub huge: f64,
    pub total: f64,
    /// A variant of the same allocator with THP off, and its PSS anon.
    pub off: Option<(&'a str, f64)>,
}

/// The variants with more than half of their anonymous PSS on huge pages.
pub(super) fn mostly_huge<'a>(rows: &[&'a SummaryRow], cells: &[CellResult]) -> Vec<Huge<'a>> {
    let def = |variant: &str| cells.iter().find(|c| c.variant == variant);
    rows.iter()
        .filter_map(|r| {
            let huge = median(r, MetricId::AnonHugeSteady)?;
            let total = median(r, MetricId::TreePssAnonSteady)?;
            if total <= 0.0 || huge / total <= MOSTLY_HUGE {
                return None;
            }
            let base = &def(&r.variant)?.variant_def.base;
            let off = rows.iter().find_map(|o| {
                let c = def(&o.variant)?;
                (c.variant_def.base == *base && thp_off(c))
                    .then(|| Some((o.variant.as_str(), median(o, MetricId::TreePssAnonSteady)?)))?
            });
            Some(Huge {
                row: r,
                huge,
                total,
                off,
            })
        })
        .collect()
}

impl Huge<'_> {
    /// `mimalloc 238.0 MiB of 276.3 MiB (mimalloc-nothp 227.6 MiB)`.
    pub(super) fn text(&self) -> String {
        let beside = match self.off {
            Some((name, v)) => format!("{name} {}", mib(v as u64)),
            None => "no variant of it with THP off ran".into(),
        };
        format!(
            "{} {} of {} ({beside})",
            self.row.variant,
            mib(self.huge as u64),
            mib(self.total as u64)
        )
    }
}

/// The variants whose memory is mostly on transparent huge pages, each with
/// the figure of a variant of the same allocator with THP off when one ran.
fn huge_pages(rows: &[&SummaryRow], cells: &[CellResult]) -> Option<String> {
    let parts: Vec<String> = mostly_huge(rows, cells).iter().map(Huge::text).collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "Mostly on transparent huge pages at steady (huge of PSS anon; with THP off beside): {}. \
         A huge page is resident whole, so a heap on them holds more RAM. \
         Rule: more than half of the tree's anonymous PSS in AnonHugePages. Rows: those named.",
        parts.join("; ")
    ))
}

/// The recommendations for one configuration on one machine.
pub struct Advice {
    /// The configuration (and the machine, when there are several).
    pub at: String,
    /// The questions, their answers and the figures behind them.
    pub table: Vec<Answer>,
    pub lines: Vec<String>,
}

/// Every recommendation the tables support, by configuration.
pub fn choose(report: &Report) -> Vec<Advice> {
    let several = report.machines.len() > 1;
    let mut out = Vec::new();
    for g in &report.groups {
        // A measured command has its own verdict (`analysis::measure`).
        if g.workload == crate::results::measure::WORKLOAD {
            continue;
        }
        for (m, cells) in &g.runs {
            let summary = report.summary(g, *m);
            let rows = plain(&summary);
            let lifecycle = super::lifecycle::advice(&summary);
            if rows.len() < 2 && lifecycle.is_empty() {
                continue;
            }
            let mut lines = lifecycle;
            let table = match g.focus() {
                _ if rows.len() < 2 => Vec::new(),
                Focus::CopyOnWrite => questions::cow(&rows),
                Focus::Serving | Focus::Threads | Focus::Growth => questions::serving(&rows, cells),
            };
            match g.focus() {
                _ if rows.len() < 2 => {}
                Focus::CopyOnWrite => {
                    lines.extend(hooks_before_fork(&summary));
                    lines.extend(sharing(&rows));
                }
                Focus::Serving | Focus::Threads | Focus::Growth => {
                    lines.extend(leanest_fast(&rows));
                    lines.extend(leanest(&rows));
                    lines.extend(jemalloc_vs_arena2(&rows));
                    lines.extend(arena_max(&rows));
                    lines.extend(malloc_conf(&rows));
                    lines.extend(idle(&rows, cells));
                    lines.extend(huge_pages(&rows, cells));
                    lines.extend(growth(&rows));
                    lines.extend(surprises(&rows));
                    lines.extend(caveats(&rows, cells));
                }
            }
            if !lines.is_empty() {
                out.push(Advice {
                    at: where_(g, &report.machines[*m].label, several),
                    table,
                    lines,
                });
            }
        }
        out.extend(super::across::across_machines(report, g).filter(|a| !a.lines.is_empty()));
    }
    out
}
