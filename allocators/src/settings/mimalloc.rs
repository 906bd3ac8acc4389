//! mimalloc's settings: its documented options (`MIMALLOC_*`) and how it
//! reads each one's value.

use super::Expected;

/// How mimalloc reads an option's value.
#[derive(Clone, Copy)]
enum MiKind {
    Bool,
    Number,
    /// A number of bytes, or of KiB, MiB, … with a suffix.
    Size,
}

/// mimalloc's documented options (`mi_option_t`, v2 and v3, with their
/// legacy names, and Debian's 2.0.9) and how each value is read.
fn mimalloc_option(option: &str) -> Option<MiKind> {
    use MiKind::*;
    const OPTIONS: &[(&str, MiKind)] = &[
        ("show_errors", Bool),
        ("show_stats", Bool),
        ("verbose", Bool),
        ("eager_commit", Bool),
        ("deprecated_eager_commit", Bool),
        ("arena_eager_commit", Number),
        ("eager_region_commit", Number),
        ("purge_decommits", Bool),
        ("reset_decommits", Bool),
        ("allow_large_os_pages", Bool),
        ("large_os_pages", Bool),
        ("reserve_huge_os_pages", Number),
        ("reserve_huge_os_pages_at", Number),
        ("reserve_os_memory", Size),
        ("segment_cache", Number),
        ("deprecated_segment_cache", Number),
        ("page_reset", Bool),
        ("deprecated_page_reset", Bool),
        ("abandoned_page_purge", Bool),
        ("abandoned_page_reset", Bool),
        ("abandoned_page_decommit", Bool),
        ("deprecated_abandoned_page_purge", Bool),
        ("segment_reset", Bool),
        ("deprecated_segment_reset", Bool),
        ("eager_commit_delay", Number),
        ("deprecated_eager_commit_delay", Number),
        ("purge_delay", Number),
        ("reset_delay", Number),
        ("decommit_delay", Number),
        ("use_numa_nodes", Number),
        ("disallow_os_alloc", Bool),
        ("limit_os_alloc", Bool),
        ("os_tag", Number),
        ("max_errors", Number),
        ("max_warnings", Number),
        ("max_segment_reclaim", Number),
        ("deprecated_max_segment_reclaim", Number),
        ("allow_decommit", Bool),
        ("segment_decommit_delay", Number),
        ("destroy_on_exit", Bool),
        ("arena_reserve", Size),
        ("arena_purge_mult", Number),
        ("purge_extend_delay", Number),
        ("decommit_extend_delay", Number),
        ("deprecated_purge_extend_delay", Number),
        ("disallow_arena_alloc", Bool),
        ("retry_on_oom", Number),
        ("visit_abandoned", Bool),
        ("guarded_min", Number),
        ("guarded_max", Number),
        ("guarded_precise", Bool),
        ("guarded_sample_rate", Number),
        ("guarded_sample_seed", Number),
        ("target_segments_per_thread", Number),
        ("generic_collect", Number),
        // v2: a boolean; v3: -1, 0 or 1 (the legacy name of
        // page_reclaim_on_free).
        ("abandoned_reclaim_on_free", Number),
        ("page_reclaim_on_free", Number),
        ("page_full_retain", Number),
        ("page_max_candidates", Number),
        ("max_vabits", Number),
        ("pagemap_commit", Bool),
        ("page_commit_on_demand", Number),
        ("page_max_reclaim", Number),
        ("page_cross_thread_max_reclaim", Number),
        ("allow_thp", Number),
        ("minimal_purge_size", Size),
        ("arena_max_object_size", Size),
        ("arena_is_numa_local", Bool),
    ];
    OPTIONS
        .iter()
        .find(|(name, _)| *name == option)
        .map(|&(_, kind)| kind)
}

fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && s.parse::<i64>().is_ok()
}

pub(super) fn check_mimalloc(option: &str, value: &str) -> Result<(), Expected> {
    let upper = value.to_ascii_uppercase();
    match mimalloc_option(option) {
        // Unknown (another version's): mimalloc ignores it.
        None => Ok(()),
        Some(MiKind::Bool) => {
            let words = ["1", "0", "TRUE", "FALSE", "ON", "OFF", "YES", "NO"];
            if words.contains(&upper.as_str()) {
                Ok(())
            } else {
                Err(Expected::MiBool)
            }
        }
        Some(MiKind::Number) => {
            if is_integer(value) {
                Ok(())
            } else {
                Err(Expected::MiNumber)
            }
        }
        Some(MiKind::Size) => {
            let digits_end = upper
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(upper.len());
            let (digits, unit) = upper.split_at(digits_end);
            let unit_ok = [
                "", "B", "K", "KB", "KIB", "M", "MB", "MIB", "G", "GB", "GIB",
            ]
            .into_iter()
            .chain(["T", "TB", "TIB"])
            .any(|u| u == unit);
            if !digits.is_empty() && digits.parse::<u64>().is_ok() && unit_ok {
                Ok(())
            } else {
                Err(Expected::MiSize)
            }
        }
    }
}
