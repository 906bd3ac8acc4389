//! Memory given back to the OS, idle timing, the timeline and growth, with
//! known answers.

use allocbench::results::{Document, Status};

use crate::common::*;

fn spec_file(name: &str, text: &str) -> String {
    let dir = temp_dir(name);
    let p = dir.join("spec.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// A worker that frees everything it allocated since the fork: no writes
/// into the master's objects, half of all objects cached. One thread (the
/// main thread, main arena): a glibc thread arena keeps about 2 MiB after a
/// trim, which the table shows for threaded variants.
const FREES_EVERYTHING: &str =
    "static_writes_per_request = 0\nretain_share = 0.5\ncache_objects = 20000\n";

/// After the trim, what glibc has not given back of the tree's growth is
/// what the workers still hold privately, which the pagemap counts to the
/// page: their copies of the master's pages (glibc writes its bookkeeping
/// into inherited chunks, which a trim cannot give back) and their own pages.
#[test]
fn what_glibc_keeps_after_trim_is_what_the_workers_still_hold() {
    let spec = spec_file("trim", FREES_EVERYTHING);
    let r = compare(&["--spec", &spec, "--variants", "glibc", "--threads", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let cell = &doc.cells[0];
    let m = cell.metrics.clone().unwrap();
    assert!(m.live_bytes_steady > 1 << 20);
    let trimmed = m.returned["trimmed"];
    let at = |name: &str| cell.phases.iter().find(|p| p.name == name).unwrap();
    let growth = at("steady").tree.pss_anon_net() - at("forked").tree.pss_anon_net();
    let kept = (1.0 - trimmed) * growth as f64;
    let held: u64 = at("trimmed")
        .processes
        .iter()
        .filter_map(|p| p.cow.as_ref())
        .map(|c| c.cow_copied + c.cow_new)
        .sum();
    assert!(
        (kept - held as f64).abs() <= (1 << 20) as f64,
        "returned {trimmed} of {growth} bytes: {kept} kept, {held} held privately"
    );
    assert!(trimmed >= 0.5, "returned after trim: {trimmed}");
}

#[test]
fn mimalloc_that_never_purges_gives_back_nothing_before_collect() {
    let spec = spec_file("never-purge", FREES_EVERYTHING);
    let dir = temp_dir("never-purge-variants");
    let file = variants_file(
        &dir,
        "[variants.mi-never]\nbase = \"mimalloc\"\nenv = { MIMALLOC_PURGE_DELAY = \"-1\" }\n",
    );
    let r = compare(&[
        "--spec",
        &spec,
        "--variants-file",
        &file,
        "--variants",
        "mi-never",
        "--idle",
        "0,0.3",
        "--threads",
        "1",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = r.doc().cells[0].metrics.clone().unwrap();
    for phase in ["drained", "idle+0s", "idle+0.3s"] {
        assert!(m.returned[phase] < 0.05, "{phase}: {}", m.returned[phase]);
    }
}

fn one(extra: &[&str]) -> Document {
    let r = run(&with_small(
        &["run", "--format", "json", "--variant", "glibc"],
        extra,
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.doc()
}

/// Never early (the offset is a wait that has passed), in order, and late
/// by less than a second: a bound a loaded 2-CPU machine keeps, where a
/// thread can be scheduled tens of milliseconds late.
#[test]
fn idle_samples_are_never_early_and_less_than_a_second_late() {
    let doc = one(&["--idle", "0,0.2,0.5"]);
    let phases = &doc.cells[0].phases;
    let t = |name: &str| phases.iter().find(|p| p.name == name).unwrap().t_ms;
    let drained = t("drained");
    let mut last = drained;
    for (name, offset) in [("idle+0s", 0.0), ("idle+0.2s", 200.0), ("idle+0.5s", 500.0)] {
        let late = t(name) - drained - offset;
        assert!((0.0..1000.0).contains(&late), "{name} is {late} ms off");
        assert!(t(name) >= last, "{name} before the sample ahead of it");
        last = t(name);
    }
}

#[test]
fn the_timeline_is_monotone_and_spans_every_phase() {
    let doc = one(&["--sample-hz", "100", "--idle", "0,0.3"]);
    let cell = &doc.cells[0];
    let t = &cell.timeline;
    // The timer's points and one at every phase boundary, in time order.
    assert!(t.len() > cell.phases.len(), "{} points", t.len());
    assert!(t.t_ms.windows(2).all(|w| w[0] <= w[1]));
    assert!(t.requests.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(*t.requests.last().unwrap(), 800);
    for p in &cell.phases {
        let i = t.t_ms.iter().position(|&x| x == p.t_ms);
        let i = i.unwrap_or_else(|| panic!("no point at {} ({} ms)", p.name, p.t_ms));
        assert_eq!(t.tree.pss_anon[i], Some(p.tree.pss_anon), "{}", p.name);
        assert_eq!(t.requests[i], p.requests, "{}", p.name);
    }
    let periods = [
        "started",
        "preloaded",
        "forked",
        "steady",
        "drained",
        "idle",
        "trimmed",
    ];
    for period in periods {
        assert!(t.phase.iter().any(|p| p == period), "no point in {period}");
    }
    // Every column has a value per point; workers only from the fork on.
    assert_eq!(t.tree.pss_anon.len(), t.len());
    assert_eq!(t.phase.len(), t.len());
    for p in &t.processes {
        assert_eq!(p.mem.pss.len(), t.len());
        assert_eq!(p.cow_copied.len(), t.len());
    }
}

#[test]
fn the_timer_walks_within_its_budget_and_reads_counters_between() {
    // Many points a second, and a budget that affords only some walks.
    let doc = one(&[
        "--sample-hz",
        "200",
        "--sample-budget",
        "2",
        "--requests",
        "20000",
        "--idle",
        "0,0.3",
    ]);
    let cell = &doc.cells[0];
    let t = &cell.timeline;
    assert_eq!(t.walked.len(), t.len());
    assert_eq!(t.walk_budget, Some(0.02));
    assert!(t.sampler_cpu_ms.unwrap() > 0.0);
    let walked = t.walked.iter().filter(|w| **w).count();
    assert!(
        walked > cell.phases.len() && walked < t.len(),
        "{walked} of {}",
        t.len()
    );
    for i in 0..t.len() {
        // Every point has the counters' figures; only walks have the rest.
        assert!(t.tree.rss[i].is_some() && t.tree.anonymous[i].is_some());
        assert_eq!(t.tree.pss[i].is_some(), t.walked[i], "point {i}");
        assert_eq!(t.tree.lazyfree[i].is_some(), t.walked[i], "point {i}");
        for p in &t.processes {
            if p.mem.rss[i].is_some() {
                assert_eq!(p.mem.uss[i].is_some(), t.walked[i], "point {i}");
            }
        }
    }
    // Every phase boundary walks.
    for p in &cell.phases {
        let i = t.t_ms.iter().position(|&x| x == p.t_ms).unwrap();
        assert!(t.walked[i], "{}", p.name);
    }
    // The growth slope has its walks in the second half of serving.
    assert!(cell.metrics.as_ref().unwrap().growth_verdict.is_some());

    // A budget that affords almost no walk still walks through the second
    // half of serving, evenly over its requests, for the growth slope.
    let doc = one(&[
        "--sample-hz",
        "100",
        "--sample-budget",
        "0.01",
        "--requests",
        "20000",
    ]);
    let t = &doc.cells[0].timeline;
    let last = *t.requests.iter().max().unwrap();
    let late_walks = (0..t.len())
        .filter(|&i| t.phase[i] == "steady" && t.requests[i] * 2 >= last && t.walked[i])
        .count();
    assert!(late_walks >= 4, "{late_walks} walks in the second half");

    // A budget of 100% walks at every point.
    let doc = one(&["--sample-hz", "50", "--sample-budget", "100"]);
    let t = &doc.cells[0].timeline;
    assert!(t.walked.iter().all(|w| *w));
    assert!(t.tree.pss.iter().all(Option::is_some));
}

#[test]
fn the_toggle_turns_the_timer_off_and_on_in_windows_while_serving() {
    let doc = one(&[
        "--sample-hz",
        "50",
        "--sample-toggle",
        "0.2",
        "--requests",
        "150000",
        "--processes",
        "1",
        "--threads",
        "1",
    ]);
    let cell = &doc.cells[0];
    let (t, ws) = (&cell.timeline, &cell.timeline.toggle);
    assert!(ws.len() >= 4, "{} windows", ws.len());
    let steady = cell.phases.iter().find(|p| p.name == "steady").unwrap();
    for (k, w) in ws.iter().enumerate() {
        // On, off, off, on, …: back to back, all within serving.
        assert_eq!(w.sampling, matches!(k % 4, 0 | 3), "window {k}");
        assert!(w.end_ms > w.start_ms && w.end_ms <= steady.t_ms);
        if k > 0 {
            assert_eq!(w.start_ms, ws[k - 1].end_ms);
        }
        // Windows close at the first tick past their end, so a late tick
        // (a loaded machine) can leave one a tick long, shorter than the
        // workers' 20 ms progress reports: only windows of at least half
        // their length must have seen requests.
        if w.end_ms - w.start_ms >= 100.0 {
            assert!(w.requests > 0 && w.rate() > 0.0, "window {k}: {w:?}");
        }
        // The timer sampled in the on windows and not in the off ones.
        let points = t
            .t_ms
            .iter()
            .filter(|&&x| x > w.start_ms && x < w.end_ms)
            .count();
        if w.sampling {
            assert!(points > 0, "window {k}: no points");
            assert!(w.sampler_cpu_ms > 0.0);
        } else {
            assert_eq!(points, 0, "window {k} is off but has {points} points");
        }
    }
    let served: u64 = ws.iter().map(|w| w.requests).sum();
    assert!(served > 0 && served <= steady.requests, "{served} requests");
}

fn growth_of(spec: &str) -> String {
    let spec = spec_file(&format!("growth-{}", spec.len()), spec);
    let doc = one(&[
        "--spec",
        &spec,
        "--processes",
        "1",
        "--threads",
        "1",
        "--requests",
        "200000",
        "--sample-hz",
        "100",
    ]);
    let m = doc.cells[0].metrics.clone().unwrap();
    assert!(m.growth_bytes_per_1k_requests.is_some());
    m.growth_verdict.unwrap().to_string()
}

#[test]
fn a_leak_is_growing_and_a_steady_load_is_a_plateau() {
    // Every object kept forever, against none kept.
    let leak = "objects_per_request = 4\nsizes = [{ min = 64, max = 128 }]\n\
                retain_share = 1.0\nretain_max_size = 4096\ncache_objects = 10000000\n";
    let steady = "objects_per_request = 4\nsizes = [{ min = 64, max = 128 }]\nretain_share = 0.0\n";
    assert_eq!(growth_of(leak), "growing");
    assert_eq!(growth_of(steady), "plateau");
}

#[test]
fn variant_and_workload_options_reach_the_processes() {
    let dir = temp_dir("options");
    let file = variants_file(
        &dir,
        "[variants.nothp]\nbase = \"glibc\"\nthp_disable = true\n",
    );
    let r = compare(&[
        "--variants-file",
        &file,
        "--variants",
        "glibc,nothp,jemalloc-bg,jemalloc-bg-workers",
        "--cpus",
        "1",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let m = |i: usize| doc.cells[i].metrics.clone().unwrap();
    assert_eq!(m(0).thp_disabled, Some(false));
    assert_eq!(m(1).thp_disabled, Some(true));
    // Checked in every process at steady (the cell would have failed).
    assert_eq!(m(1).anon_huge_steady, Some(0));
    // jemalloc's background threads do not survive the fork unless the
    // workers turn them on again.
    assert_eq!(m(2).background_thread, Some(false));
    assert_eq!(m(3).background_thread, Some(true));
    for c in &doc.cells {
        assert_eq!((c.cpus_pinned, c.cpus_allowed), (Some(1), Some(1)));
        assert_eq!(c.status, Status::Ok);
    }
}

#[test]
fn cow_attribution_runs_each_variant_with_and_without_app_writes() {
    let r = compare(&[
        "--variants",
        "glibc",
        "--cow-attribution",
        "--requests",
        "2000",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    assert_eq!(doc.cells.len(), 2);
    assert!(doc.cells[0].app_writes());
    assert!(!doc.cells[1].app_writes());
    let copied = |i: usize| doc.cells[i].metrics.as_ref().unwrap().cow_copied.unwrap();
    // The application's writes into shared objects copy pages of their own.
    assert!(copied(0) > copied(1), "{} vs {}", copied(0), copied(1));
}

#[test]
fn repetitions_interleave_and_summarise() {
    let r = compare(&["--variants", "glibc,jemalloc", "--repeat", "3"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let order: Vec<(String, u32)> = doc
        .cells
        .iter()
        .map(|c| (c.variant.clone(), c.repetition))
        .collect();
    let expect: Vec<(String, u32)> = (0..3)
        .flat_map(|rep| [("glibc".to_string(), rep), ("jemalloc".to_string(), rep)])
        .collect();
    assert_eq!(order, expect);
    assert_eq!(doc.summary.len(), 2);
    let je = &doc.summary[1];
    assert_eq!((je.variant.as_str(), je.ok), ("jemalloc", 3));
    let pss = &je.metrics["tree_pss_anon_steady"];
    assert_eq!(pss.stat.n, 3);
    assert!(pss.stat.min <= pss.stat.median && pss.stat.median <= pss.stat.max);
    let ratio = pss.ratio.as_ref().unwrap();
    assert_eq!(ratio.baseline, "glibc");
    // The baseline's ratio to itself is exactly 1.
    let g = doc.summary[0].metrics["tree_pss_anon_steady"]
        .ratio
        .clone()
        .unwrap();
    assert_eq!((g.median, g.mad), (1.0, 0.0));
}

/// `--idle-trickle` serves requests through the idle window: each worker
/// about RPS per second of it, none without it.
#[test]
fn an_idle_trickle_serves_requests_while_idle() {
    let r = compare(&[
        "--variants",
        "glibc",
        "--processes",
        "2",
        "--idle",
        "0,0.5",
        "--idle-trickle",
        "40",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let cell = &doc.cells[0];
    assert_eq!(cell.spec.as_ref().unwrap().idle_trickle_rps, 40.0);
    let n = cell.metrics.as_ref().unwrap().idle_requests.unwrap();
    // Two workers at 40/s through at least the 0.5 s window; the window
    // ends when the harness has taken its last idle sample.
    assert!((20..=2 * 40 * 10).contains(&n), "{n} idle requests");

    let none = compare(&["--variants", "glibc", "--idle", "0"]);
    assert_eq!(none.code, 0, "{}", none.stderr);
    assert_eq!(
        none.doc().cells[0].metrics.as_ref().unwrap().idle_requests,
        None
    );

    let bad = compare(&["--variants", "glibc", "--idle-trickle", "-1"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("idle_trickle_rps"), "{}", bad.stderr);
}
