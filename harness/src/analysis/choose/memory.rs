//! "What to choose" on how memory behaves over a run: what each allocator
//! gives back when idle, which variants keep growing, and which sit mostly
//! on transparent huge pages.

use super::{Huge, idle_return, median, mostly_huge};
use crate::results::CellResult;
use crate::results::metric::MetricId;
use crate::results::summary::SummaryRow;
use crate::units::{pct, per_1k};

/// How fast each allocator gives memory back when idle.
pub(super) fn idle(rows: &[&SummaryRow], cells: &[CellResult]) -> Option<String> {
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

/// Growth over requests: which variants keep growing.
pub(super) fn growth(rows: &[&SummaryRow]) -> Option<String> {
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

/// The variants whose memory is mostly on transparent huge pages, each with
/// the figure of a variant of the same allocator with THP off when one ran.
pub(super) fn huge_pages(rows: &[&SummaryRow], cells: &[CellResult]) -> Option<String> {
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
