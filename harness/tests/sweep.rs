//! Threads against processes: arenas in the threaded workload, sweeps, plans.

use crate::common::*;

fn threaded(variants: &str, extra: &[&str]) -> allocbench::results::Document {
    let mut args = vec![
        "--workload",
        "threaded",
        "--variants",
        variants,
        "--processes",
        "0",
        "--threads",
        "8",
    ];
    args.extend_from_slice(extra);
    let r = compare(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.doc()
}

#[test]
fn arena_counts_follow_malloc_arena_max_and_glibc_tunables() {
    let dir = temp_dir("tunables");
    let file = variants_file(
        &dir,
        "[variants.tun2]\nbase = \"glibc\"\nenv = { GLIBC_TUNABLES = \"glibc.malloc.arena_max=2\" }\n",
    );
    let doc = threaded("glibc,glibc-arena1,tun2", &["--variants-file", &file]);
    let arenas = |i: usize| doc.cells[i].metrics.as_ref().unwrap().arenas.unwrap();
    assert!(arenas(0) > 1, "default glibc, 8 threads: {}", arenas(0));
    assert_eq!(arenas(1), 1);
    assert!(arenas(2) <= 2, "arena_max=2: {}", arenas(2));
    // One process, no fork: no forked phase, the master serves.
    let names: Vec<String> = doc.cells[0]
        .phases
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    assert!(!names.iter().any(|n| n == "forked"), "{names:?}");
    assert_eq!(doc.cells[0].phases[2].processes.len(), 1);
}

#[test]
fn gvl_options_reach_the_workload() {
    let doc = threaded("glibc", &["--gvl", "--io-wait-share", "0.5"]);
    let c = &doc.cells[0];
    assert!(c.spec.as_ref().unwrap().gvl);
    assert_eq!(c.spec.as_ref().unwrap().io_wait_share, 0.5);
    let m = c.metrics.as_ref().unwrap();
    assert_eq!(m.requests, 400);
}

#[test]
fn a_sweep_runs_the_grid_with_variants_interleaved_and_fits_it() {
    let r = run(&with_small(
        &["sweep", "--format", "json"],
        &[
            "--variants",
            "glibc,jemalloc",
            "--processes",
            "1,2",
            "--threads",
            "1,2",
        ],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let order: Vec<(u32, u32, &str)> = doc
        .cells
        .iter()
        .map(|c| {
            (
                c.spec.as_ref().unwrap().processes,
                c.spec.as_ref().unwrap().threads,
                c.variant.as_str(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            (1, 1, "glibc"),
            (1, 1, "jemalloc"),
            (1, 2, "glibc"),
            (1, 2, "jemalloc"),
            (2, 1, "glibc"),
            (2, 1, "jemalloc"),
            (2, 2, "glibc"),
            (2, 2, "jemalloc"),
        ]
    );
    assert_eq!(doc.fits.len(), 2);
    assert!(doc.unfitted.is_empty(), "{:?}", doc.unfitted);
    // The summary has a row per grid point and variant; each grid point's
    // baseline is glibc at that point.
    assert_eq!(doc.summary.len(), 8);
    for (r, &(p, t, v)) in doc.summary.iter().zip(&order) {
        assert_eq!(
            (r.processes, r.threads, r.variant.as_str()),
            (Some(p), Some(t), v)
        );
        if v == "glibc" {
            let ratio = r.metrics["tree_pss_anon_steady"].ratio.as_ref().unwrap();
            assert_eq!(ratio.median, 1.0);
        }
    }
    for f in &doc.fits {
        assert_eq!(f.points.len(), 4);
        for p in &f.points {
            assert!(p.measured > 0.0 && p.predicted.is_finite());
        }
    }
}

#[test]
fn plan_refuses_a_bad_budget_and_recommends_within_one() {
    let dir = temp_dir("plan");
    let out = dir.join("sweep.json");
    let r = run(&with_small(
        &["sweep", "--format", "json"],
        &[
            "--variants",
            "glibc",
            "--processes",
            "1,2",
            "--threads",
            "1,2",
            "--output",
            out.to_str().unwrap(),
        ],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let from = out.to_str().unwrap();
    let bad = run(&["plan", "--memory", "two gigs", "--from", from]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--memory"), "{}", bad.stderr);
    let ok = run(&[
        "plan", "--memory", "1GiB", "--from", from, "--format", "json",
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let v: serde_json::Value = serde_json::from_str(&ok.stdout).unwrap();
    let best = &v["recommended"];
    assert!(best["predicted_pss"].as_f64().unwrap() <= (1u64 << 30) as f64);
    let tiny = run(&["plan", "--memory", "1MiB", "--from", from]);
    assert_eq!(tiny.code, 1);
    assert!(
        tiny.stderr.contains("No configuration fits"),
        "{}",
        tiny.stderr
    );
}

#[test]
fn lists_of_counts_are_for_sweeps_only() {
    let r = run(&["compare", "--processes", "1,2"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("use sweep"), "{}", r.stderr);
}

/// A sweep of glibc over processes 1,2 × threads 1,2 at small sizes with
/// seed 7, written to `dir/sweep.json`; `extra` adds flags.
fn small_sweep(dir: &std::path::Path, extra: &[&str]) -> String {
    let out = dir.join("sweep.json");
    let path = out.to_str().unwrap().to_string();
    let mut args = vec![
        "--variants",
        "glibc",
        "--processes",
        "1,2",
        "--threads",
        "1,2",
        "--seed",
        "7",
        "--output",
        &path,
    ];
    args.extend_from_slice(extra);
    let r = run(&with_small(&["sweep", "--format", "json"], &args));
    assert_eq!(r.code, 0, "{}", r.stderr);
    path
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}\n{}", r.stdout, r.stderr))
}

/// The verification ran the sweep's spec with only the processes and
/// threads replaced by the recommendation's.
fn assert_verified_on_the_sweeps_spec(v: &serde_json::Value) {
    let ver = &v["verification"];
    assert_eq!(ver["status"], "ok", "{ver}");
    let mut expected = v["sweep"]["spec"].clone();
    expected["processes"] = v["recommended"]["processes"].clone();
    expected["threads"] = v["recommended"]["threads"].clone();
    assert_eq!(ver["spec"], expected);
    assert_eq!(ver["spec"]["requests"], 400);
    assert_eq!(ver["spec"]["static_mib"], 4);
    assert_eq!(ver["workload"], v["sweep"]["workload"]);
    assert_eq!(ver["cpus_pinned"], v["sweep"]["cpus_pinned"]);
    assert!(ver["measured_pss_anon"].as_u64().unwrap() > 0);
}

#[test]
fn plan_verify_from_a_sweep_runs_the_sweeps_spec_and_pinning() {
    let dir = temp_dir("verify-from");
    let from = small_sweep(&dir, &["--cpus", "1"]);
    let r = run(&[
        "plan", "--memory", "1GiB", "--from", &from, "--verify", "--format", "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r);
    assert_verified_on_the_sweeps_spec(&v);
    assert_eq!(v["sweep"]["spec"]["seed"], 7);
    assert_eq!(v["verification"]["cpus_pinned"], 1);
    assert_eq!(v["cpus"], 1);
    assert_eq!(v["verification"]["within_budget"], true);
    // Workload flags that disagree with the sweep are refused before any work.
    for (flags, says) in [
        (
            &["--requests", "999"][..],
            "--requests 999 (the sweep has 400)",
        ),
        (
            &["--workload", "threaded"][..],
            "--workload threaded (the sweep has server)",
        ),
        (&["--cpus", "2"][..], "--cpus 2 (the sweep was pinned to 1)"),
        (&["--threads", "8"][..], "--processes/--threads"),
    ] {
        let mut args = vec!["plan", "--memory", "1GiB", "--from", &from, "--verify"];
        args.extend_from_slice(flags);
        let bad = run(&args);
        assert_eq!(bad.code, 2, "{flags:?}: {}", bad.stderr);
        assert!(bad.stderr.contains(says), "{flags:?}: {}", bad.stderr);
    }
    // Flags that agree are not a conflict.
    let same = run(&[
        "plan",
        "--memory",
        "1GiB",
        "--from",
        &from,
        "--requests",
        "400",
        "--seed",
        "7",
    ]);
    assert_eq!(same.code, 0, "{}", same.stderr);
    // A variant the sweep does not have is named as such.
    let absent = run(&[
        "plan",
        "--memory",
        "1GiB",
        "--from",
        &from,
        "--variants",
        "jemalloc",
    ]);
    assert_eq!(absent.code, 2, "{}", absent.stderr);
    assert!(
        absent
            .stderr
            .contains("jemalloc is not in the sweep (it has glibc)"),
        "{}",
        absent.stderr
    );
}

#[test]
fn plan_verify_without_from_runs_the_quick_sweeps_spec() {
    let r = run(&with_small(
        &["plan", "--memory", "1GiB", "--verify", "--format", "json"],
        &[
            "--variants",
            "glibc",
            "--processes",
            "1,2",
            "--threads",
            "1,2",
        ],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("quick sweep (processes 1,2 × threads 1,2"),
        "{}",
        r.stderr
    );
    let v = json(&r);
    assert!(v["sweep"]["from"].is_null());
    assert_verified_on_the_sweeps_spec(&v);
    assert!(v["verification"]["cpus_pinned"].is_null());
}

#[test]
fn plan_verify_says_plainly_when_the_measured_tree_exceeds_the_budget() {
    let dir = temp_dir("verify-over");
    let from = small_sweep(&dir, &[]);
    // A sweep whose trees read a thousand times smaller than they are: the
    // model predicts a few KiB, the verification measures the real tree,
    // which holds at least the master's 4 MiB of static memory.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&from).unwrap()).unwrap();
    for c in doc["cells"].as_array_mut().unwrap() {
        let m = &mut c["metrics"]["tree_pss_anon_steady"];
        *m = (m.as_u64().unwrap() / 1000).into();
    }
    let scaled = dir.join("scaled.json");
    std::fs::write(&scaled, doc.to_string()).unwrap();
    let r = run(&[
        "plan",
        "--memory",
        "2MiB",
        "--from",
        scaled.to_str().unwrap(),
        "--verify",
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("recommended"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("OVER BUDGET: the measured tree exceeds the budget of 2.0 MiB"),
        "{}",
        r.stdout
    );
}
