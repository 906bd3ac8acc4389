//! `measure`'s CSV: one row per cell, every figure of its record with
//! raw numbers (bytes, fractions), named as in the JSON.

use super::Exporter;
use super::csv::opt;
use crate::results::{Document, Status};

const COLUMNS: &[&str] = &[
    "workload",
    "variant",
    "repetition",
    "status",
    "error",
    "ld_preload",
    "processes_started",
    "processes_loaded",
    "processes_idle",
    "processes_seen",
    "tree_pss_started",
    "tree_pss_anon_started",
    "tree_pss_loaded",
    "tree_pss_anon_loaded",
    "tree_uss_started",
    "tree_uss_loaded",
    "tree_uss_idle",
    "tree_rss_loaded",
    "tree_pss_idle",
    "tree_pss_anon_idle",
    "tree_anon_huge_loaded",
    "tree_anon_huge_idle",
    "worker_private_dirty_loaded",
    "worker_private_dirty_idle",
    "worker_private_dirty_growth",
    "worker_uss_loaded_mean",
    "worker_uss_loaded_max",
    "cow_copied_loaded",
    "cow_shared_loaded",
    "cow_copied_idle",
    "cow_efficiency_loaded",
    "returned_idle",
    "returned_lazyfree_idle",
    "load_status",
    "load_error",
    "load_summary",
    "load_rps",
    "load_latency_p50_ms",
    "load_latency_p99_ms",
    "load_tool",
];

/// CSV with raw numbers (bytes, fractions); empty where a figure is `null`.
pub(super) struct MeasureCsv;

impl Exporter for MeasureCsv {
    fn serialize(&self, doc: &Document) -> anyhow::Result<String> {
        let rows = doc.cells.iter().map(|c| {
            let r = c.measure.as_ref();
            let m = r.and_then(|r| r.metrics.as_ref());
            [
                c.workload.clone(),
                c.variant.clone(),
                c.repetition.to_string(),
                match c.status {
                    Status::Ok => "ok".into(),
                    Status::Failed => "failed".into(),
                },
                c.error.clone().unwrap_or_default(),
                c.launch_env.get("LD_PRELOAD").cloned().unwrap_or_default(),
                opt(m.and_then(|m| m.processes_started)),
                opt(m.and_then(|m| m.processes_loaded)),
                opt(m.and_then(|m| m.processes_idle)),
                opt(m.map(|m| m.processes_seen)),
                opt(m.and_then(|m| m.tree_pss_started)),
                opt(m.and_then(|m| m.tree_pss_anon_started)),
                opt(m.and_then(|m| m.tree_pss_loaded)),
                opt(m.and_then(|m| m.tree_pss_anon_loaded)),
                opt(m.and_then(|m| m.tree_uss_started)),
                opt(m.and_then(|m| m.tree_uss_loaded)),
                opt(m.and_then(|m| m.tree_uss_idle)),
                opt(m.and_then(|m| m.tree_rss_loaded)),
                opt(m.and_then(|m| m.tree_pss_idle)),
                opt(m.and_then(|m| m.tree_pss_anon_idle)),
                opt(m.and_then(|m| m.tree_anon_huge_loaded)),
                opt(m.and_then(|m| m.tree_anon_huge_idle)),
                opt(m.and_then(|m| m.worker_private_dirty_loaded)),
                opt(m.and_then(|m| m.worker_private_dirty_idle)),
                opt(m.and_then(|m| m.worker_private_dirty_growth)),
                opt(m.and_then(|m| m.worker_uss_loaded_mean)),
                opt(m.and_then(|m| m.worker_uss_loaded_max)),
                opt(m.and_then(|m| m.cow_copied_loaded)),
                opt(m.and_then(|m| m.cow_shared_loaded)),
                opt(m.and_then(|m| m.cow_copied_idle)),
                opt(m.and_then(|m| m.cow_efficiency_loaded)),
                opt(m.and_then(|m| m.returned_idle)),
                opt(m.and_then(|m| m.returned_lazyfree_idle)),
                opt(r.and_then(|r| r.load_status.clone())),
                opt(r.and_then(|r| r.load_error.clone())),
                c.load_summary.clone().unwrap_or_default(),
                opt(m.and_then(|m| m.load_rps)),
                opt(m.and_then(|m| m.load_latency_p50_ms)),
                opt(m.and_then(|m| m.load_latency_p99_ms)),
                opt(m.and_then(|m| m.load_tool.clone())),
            ]
        });
        super::csv::text(COLUMNS, rows)
    }
}
