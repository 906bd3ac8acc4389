//! CSV with raw numbers: bytes, fractions, requests per second,
//! microseconds. One row per cell.

use super::Exporter;
use crate::result::{Document, Status};

pub struct Csv;

const COLUMNS: &[&str] = &[
    "workload",
    "variant",
    "prefork",
    "repetition",
    "status",
    "error",
    "allocator",
    "allocator_version",
    "arenas",
    "tree_pss_steady",
    "tree_pss_anon_steady",
    "tree_uss_steady",
    "tree_rss_steady",
    "tree_pss_anon_trimmed",
    "worker_private_dirty_growth",
    "cow_efficiency",
    "fragmentation",
    "returned_drained",
    "returned_trimmed",
    "throughput_rps",
    "latency_p50_us",
    "latency_p99_us",
    "latency_p999_us",
];

/// Quotes a field when it holds a comma, quote or line break.
pub(crate) fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

impl Exporter for Csv {
    fn serialize(&self, doc: &Document) -> anyhow::Result<String> {
        let mut out = COLUMNS.join(",") + "\n";
        for c in &doc.cells {
            let m = c.metrics.as_ref();
            let a = c.allocator.as_ref();
            let row = [
                c.workload.clone(),
                c.variant.clone(),
                c.prefork.clone(),
                c.repetition.to_string(),
                match c.status {
                    Status::Ok => "ok".into(),
                    Status::Failed => "failed".into(),
                },
                c.error.clone().unwrap_or_default(),
                opt(a.map(|a| a.name.clone())),
                opt(a.and_then(|a| a.version.clone())),
                opt(m.and_then(|m| m.arenas)),
                opt(m.map(|m| m.tree_pss_steady)),
                opt(m.map(|m| m.tree_pss_anon_steady)),
                opt(m.map(|m| m.tree_uss_steady)),
                opt(m.map(|m| m.tree_rss_steady)),
                opt(m.map(|m| m.tree_pss_anon_trimmed)),
                opt(m.map(|m| m.worker_private_dirty_growth)),
                opt(m.and_then(|m| m.cow_efficiency)),
                opt(m.and_then(|m| m.fragmentation)),
                opt(m.and_then(|m| m.returned.get("drained").copied())),
                opt(m.and_then(|m| m.returned.get("trimmed").copied())),
                opt(m.map(|m| m.throughput_rps)),
                opt(m.map(|m| m.latency_p50_us)),
                opt(m.map(|m| m.latency_p99_us)),
                opt(m.map(|m| m.latency_p999_us)),
            ];
            out.push_str(&row.iter().map(|s| field(s)).collect::<Vec<_>>().join(","));
            out.push('\n');
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_needed() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
