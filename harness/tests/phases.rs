//! The phases of a cell, in order, and the sums and documents built on them.

use allocbench::results::{Document, ProcessRole, Status};

use crate::common::*;

fn one_cell(variant: &str, extra: &[&str]) -> Document {
    let r = run(&with_small(
        &["run", "--format", "json", "--variant", variant],
        extra,
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.doc()
}

#[test]
fn phases_come_in_the_specified_order() {
    let doc = one_cell("glibc", &["--idle", "0,0.1,0.25"]);
    let cell = &doc.cells[0];
    assert_eq!(cell.status, Status::Ok);
    let names: Vec<String> = cell.phases.iter().map(|p| p.name.to_string()).collect();
    assert_eq!(
        names,
        [
            "started",
            "preloaded",
            "forked",
            "steady",
            "drained",
            "idle+0s",
            "idle+0.1s",
            "idle+0.25s",
            "trimmed"
        ]
    );
    let t: Vec<f64> = cell.phases.iter().map(|p| p.t_ms).collect();
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "{t:?}");
    // Idle samples are taken at their offsets after drained.
    let drained = t[4];
    assert!(t[6] - drained >= 100.0 && t[7] - drained >= 250.0, "{t:?}");
}

#[test]
fn tree_figures_are_the_sums_of_the_processes() {
    let doc = one_cell("glibc", &[]);
    let cell = &doc.cells[0];
    for p in &cell.phases {
        let procs: Vec<_> = p.processes.iter().map(|p| p.mem.unwrap()).collect();
        assert_eq!(
            p.tree.pss,
            procs.iter().map(|m| m.pss).sum::<u64>(),
            "{}",
            p.name
        );
        assert_eq!(
            p.tree.pss_anon,
            procs.iter().map(|m| m.pss_anon).sum::<u64>()
        );
        assert_eq!(p.tree.rss, procs.iter().map(|m| m.rss).sum::<u64>());
        assert_eq!(p.tree.uss, procs.iter().map(|m| m.uss).sum::<u64>());
        assert_eq!(
            p.tree.lazyfree,
            procs.iter().map(|m| m.lazyfree).sum::<u64>()
        );
        // USS never exceeds PSS, PSS never exceeds RSS.
        for m in &procs {
            assert!(m.uss <= m.pss && m.pss <= m.rss, "{}: {m:?}", p.name);
        }
    }
    // The master alone until the fork, then master and both workers.
    let count = |name: &str| {
        cell.phases
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .processes
            .len()
    };
    assert_eq!(count("preloaded"), 1);
    assert_eq!(count("forked"), 3);
    assert_eq!(count("steady"), 3);
    let steady = cell.phases.iter().find(|p| p.name == "steady").unwrap();
    assert_eq!(steady.processes[0].role, ProcessRole::Master);
    assert_eq!(
        steady.processes[1..]
            .iter()
            .map(|p| p.index)
            .collect::<Vec<_>>(),
        [Some(0), Some(1)]
    );
}

#[test]
fn the_master_preloads_what_was_asked() {
    let doc = one_cell("glibc", &["--static-mib", "16"]);
    let cell = &doc.cells[0];
    let anon = |name: &str| {
        cell.phases
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .tree
            .anonymous as i64
    };
    let grown = anon("preloaded") - anon("started");
    let m = cell.metrics.as_ref().unwrap();
    // 16 MiB allocated, of which a quarter of the small objects freed again:
    // the master's anonymous memory grows by about the allocated amount
    // (glibc keeps the holes).
    assert!(
        (15 << 20..=20 << 20).contains(&grown),
        "preload grew anonymous memory by {grown}"
    );
    assert!(m.static_live_bytes > 12 << 20 && m.static_live_bytes < 16 << 20);
    // The requests were all served and the writes happened.
    assert_eq!(m.requests, 800);
    assert!(m.throughput_rps > 0.0 && m.latency_p50_us > 0.0);
}

#[test]
fn the_glibc_process_carries_almost_nothing_before_the_workload() {
    // The same executable links jemalloc and mimalloc; mimalloc's load-time
    // initialiser runs in every process. Its footprint at `started` is
    // bounded: the whole master is under 2 MiB of anonymous memory.
    let doc = one_cell("glibc", &[]);
    let started = &doc.cells[0].phases[0];
    assert_eq!(started.name, "started");
    assert!(started.tree.anonymous < 2 << 20, "{:?}", started.tree);
}

#[test]
fn documents_parse_back_and_reserialize_identically() {
    let mut args = vec![
        "compare",
        "--format",
        "json",
        "--variants",
        "glibc,jemalloc",
    ];
    args.extend_from_slice(SMALL);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    assert_eq!(doc.cells.len(), 2);
    assert_eq!(doc.format_version, allocbench::results::FORMAT_VERSION);
    assert!(doc.environment.glibc_version.starts_with("2."));
    assert!(!doc.environment.thp_enabled.is_empty());
    // Nothing is lost or added on the way back.
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        serde_json::to_value(&doc).unwrap() == v,
        "the document changed on a round trip"
    );
    // The contract's field names are present.
    for key in ["allocbench_version", "environment", "cells"] {
        assert!(v.get(key).is_some(), "{key}");
    }
    let cell = &v["cells"][0];
    for key in [
        "workload",
        "variant",
        "status",
        "error",
        "allocator",
        "phases",
        "metrics",
    ] {
        assert!(cell.get(key).is_some(), "{key}");
    }
    let tree = &cell["phases"][0]["tree"];
    for key in [
        "pss",
        "pss_anon",
        "rss",
        "uss",
        "anonymous",
        "lazyfree",
        "anon_huge",
    ] {
        assert!(tree.get(key).is_some(), "{key}");
    }
    assert_eq!(cell["phases"][0]["processes"][0]["role"], "master");
    assert!(cell["phases"][0]["processes"][0]["pss"].is_u64());
}

#[test]
fn every_output_format_renders() {
    for (format, marker) in [
        ("table", "PSS anon steady"),
        ("md", "| variant"),
        ("csv", "workload,variant,prefork"),
    ] {
        let mut args = vec!["compare", "--format", format, "--variants", "glibc"];
        args.extend_from_slice(SMALL);
        let r = run(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains(marker), "{format}: {}", r.stdout);
    }
}

#[test]
fn plots_are_written_with_a_line_per_variant() {
    let dir = temp_dir("plots");
    let plots = dir.join("plots");
    let out = dir.join("report.md");
    let args = with_small(
        &["compare", "--format", "md"],
        &[
            "--variants",
            "glibc,jemalloc",
            "--idle",
            "0,0.2",
            "--sample-hz",
            "100",
            "--plot",
            plots.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
    );
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for chart in ["tree-pss", "worker-uss", "returned"] {
        let f = plots.join(format!("server-none-{chart}.svg"));
        let svg = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{chart}"
        );
        for v in ["glibc", "jemalloc"] {
            // A legend entry is an SVG text element of its own line.
            assert!(
                svg.lines()
                    .any(|l| l == v || l.starts_with(&format!("{v} ("))),
                "{chart}: no legend for {v}"
            );
        }
    }
    // The Markdown links them relative to its own directory.
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(md.contains("](plots/server-none-tree-pss.svg)"), "{md}");
}
