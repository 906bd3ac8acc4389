//! "What to choose": recommendations derived from the report's tables by
//! rules (here the helpers they share and `choose()`, which runs them by the
//! workload's focus; the rules by question in `choose/`), each naming the
//! row it rests on and the conditions it holds under. Nothing is written by
//! hand: a rule that finds no rows says nothing.

use super::questions::{self, Answer};
use super::report::{Group, Report};
use crate::results::metric::MetricId;
use crate::results::summary::SummaryRow;
use crate::results::{CellResult, Status};
use crate::units::mib;
use allocbench_workloads::{Focus, PreforkHook};

mod caveats;
mod fork;
mod memory;
mod pick;
use caveats::{caveats, surprises};
use fork::{hooks_before_fork, sharing};
use memory::{growth, huge_pages, idle};
use pick::{arena_max, jemalloc_vs_arena2, leanest, leanest_fast, malloc_conf};

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
