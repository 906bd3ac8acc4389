//! "What to choose"'s warnings: figures far from the baseline, and the known
//! cause of a variant's low throughput.

use super::{baseline, ratio};
use crate::results::CellResult;
use crate::results::metric::MetricId;
use crate::results::summary::SummaryRow;

/// Figures far from the baseline, stated plainly, in one line.
pub(super) fn surprises(rows: &[&SummaryRow]) -> Option<String> {
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
pub(super) fn caveats(rows: &[&SummaryRow], cells: &[CellResult]) -> Vec<String> {
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
