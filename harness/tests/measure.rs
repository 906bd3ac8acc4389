//! `allocbench measure -- CMD`: a real preforking server (tests/c/
//! prefork_server.c, compiled here) with known answers: N workers, each
//! copying exactly K pages of the master's memory; a worker killed and
//! re-forked; commands that fail; variants not in effect; the built-in
//! jemalloc through its preload library; workers on huge pages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use allocbench::results::{CellResult, Document, PhaseSample, ProcessRole, Status};

use crate::common::{
    self, Run, allocbench, cmdline, free_port, run, run_with, running, running_where, state,
    temp_dir,
};

const WORKERS: usize = 3;
/// Pages the master preloads, and pages each worker writes after the fork.
const PRELOAD: u64 = 1024;
const DIRTY: u64 = 100;

/// Builds a program of tests/c once per test process.
fn compile(name: &str, extra: &[&str]) -> PathBuf {
    let dir = temp_dir(&format!("measure-{name}"));
    let exe = dir.join(name);
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/prefork_server.c");
    let status = Command::new("cc")
        .args(["-O1", "-o"])
        .arg(&exe)
        .arg(src)
        .args(extra)
        .status()
        .expect("a C compiler (cc) to build the test server");
    assert!(status.success(), "cc {name} failed");
    exe
}

fn server() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| compile("prefork_server", &[]))
}

/// The server's command line, after `--`.
fn server_args(port: u16, workers: usize, preload: u64, dirty: u64) -> Vec<String> {
    vec![
        server().display().to_string(),
        port.to_string(),
        workers.to_string(),
        preload.to_string(),
        dirty.to_string(),
    ]
}

fn measure(head: &[&str], command: &[String]) -> Run {
    let mut args = vec!["measure"];
    args.extend_from_slice(head);
    args.push("--");
    args.extend(command.iter().map(String::as_str));
    let r = run(&args);
    assert_none_left(server());
    r
}

fn only_cell(doc: &Document) -> &CellResult {
    assert_eq!(doc.cells.len(), 1, "one row expected");
    &doc.cells[0]
}

fn phase<'a>(cell: &'a CellResult, name: &str) -> &'a PhaseSample {
    cell.phases
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no {name} sample"))
}

fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(") ")
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Whether a running child of `parent` has `needle` in its command line.
fn child_running(parent: i32, needle: &str) -> bool {
    !running_where(|pid, dir| ppid(pid) == Some(parent) && cmdline(dir).contains(needle)).is_empty()
}

/// Running processes of program `exe`.
fn running_of(exe: &Path) -> Vec<i32> {
    running_where(|_, dir| std::fs::read_link(dir.join("exe")).is_ok_and(|p| p == exe))
}

/// Polls `cond` until it holds (a few seconds at most).
fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// No process of `exe` runs once allocbench has exited. Killed processes
/// may take a moment to be torn down, longer on a loaded machine: the bound
/// is 10 s, as long as the other waits here.
fn assert_none_left(exe: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = running_of(exe);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes of {} left behind: {left:?}",
            exe.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Per worker, beyond its K pages, the copies fork itself causes: the
/// worker's stack, libc's data and the thread's TLS block (written in the
/// child by fork's bookkeeping), and the master's array of worker pids, which
/// the master updates after each fork (its write leaves the child's copy
/// exclusive). Measured: 3 anonymous and 4 other pages under glibc 2.36.
const FORK_PAGES_ANON: u64 = 8;
const FORK_PAGES: u64 = 16;

fn assert_worker_cow(cell: &CellResult, phase_name: &str) {
    for p in phase(cell, phase_name)
        .processes
        .iter()
        .filter(|p| p.role == ProcessRole::Worker)
    {
        let cow = p
            .cow
            .as_ref()
            .unwrap_or_else(|| panic!("worker {} has no CoW figures: {:?}", p.pid, p.cow_missed));
        let anon =
            cow.cow_by_mapping[&allocbench::results::cow::MappingKind::Anonymous].copied_pages;
        assert!(
            (DIRTY..=DIRTY + FORK_PAGES_ANON).contains(&anon),
            "worker {} copied {anon} anonymous pages, expected {DIRTY} (+ up to {FORK_PAGES_ANON})",
            p.pid
        );
        assert!(cow.cow_copied_pages <= DIRTY + FORK_PAGES, "{cow:?}");
        assert!(cow.cow_shared_pages >= PRELOAD - DIRTY, "{cow:?}");
    }
}

fn assert_tree_is_the_sum(cell: &CellResult) {
    for p in &cell.phases {
        let pss: u64 = p.processes.iter().map(|q| q.mem.unwrap().pss).sum();
        let anon: u64 = p.processes.iter().map(|q| q.mem.unwrap().pss_anon).sum();
        assert_eq!(p.tree.pss, pss, "{}", p.name);
        assert_eq!(p.tree.pss_anon, anon, "{}", p.name);
    }
}

/// The workers' private memory at `loaded` is a level: the same in every
/// run (to a page per worker), however soon after its fork the tracker
/// first saw each worker (a growth since that first sight was not).
#[test]
fn worker_private_memory_at_loaded_is_the_same_every_run() {
    let levels: Vec<u64> = (0..10)
        .map(|_| {
            let port = free_port();
            let r = measure(
                &[
                    "--variants",
                    "glibc",
                    "--ready",
                    &port.to_string(),
                    "--duration",
                    "0.2",
                    "--idle",
                    "0",
                    "--format",
                    "json",
                ],
                &server_args(port, 2, PRELOAD, DIRTY),
            );
            assert_eq!(r.code, 0, "{}", r.stderr);
            let doc = r.doc();
            let m = only_cell(&doc).measure.as_ref().unwrap().metrics.clone();
            m.unwrap().worker_private_dirty_loaded.unwrap()
        })
        .collect();
    // To a page per worker (one seen to come and go with the moment of the
    // sample), against 0 to 20 MiB for a growth since first sight.
    let (lo, hi) = (levels.iter().min().unwrap(), levels.iter().max().unwrap());
    assert!(hi - lo <= 2 * 4096, "{levels:?}");
    let k = 2 * DIRTY * 4096;
    assert!(
        (k..=k + 2 * FORK_PAGES * 4096).contains(&levels[0]),
        "{} against {k}",
        levels[0]
    );
}

#[test]
fn finds_every_worker_and_what_each_copied() {
    let port = free_port();
    let load = format!("{} client {port} 200", server().display());
    let r = measure(
        &[
            "--variants",
            "glibc",
            "--ready",
            &port.to_string(),
            "--load",
            &load,
            "--idle",
            "0.1",
            "--sample-hz",
            "50",
            "--format",
            "json",
        ],
        &server_args(port, WORKERS, PRELOAD, DIRTY),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let cell = only_cell(&doc);
    assert_eq!(cell.status, Status::Ok, "{:?}", cell.error);
    assert_eq!(cell.workload, "measure");
    assert!(cell.spec.is_none() && cell.metrics.is_none());
    let names: Vec<String> = cell.phases.iter().map(|p| p.name.to_string()).collect();
    assert_eq!(names, ["started", "loaded", "idle+0.1s"]);

    let record = cell.measure.as_ref().unwrap();
    let root = record.processes[0].pid;
    assert_eq!(record.processes[0].role, ProcessRole::Master);
    let workers: Vec<_> = record.processes.iter().skip(1).collect();
    assert_eq!(workers.len(), WORKERS, "{:?}", record.processes);
    for w in &workers {
        assert_eq!(
            (w.parent, w.depth, w.role),
            (Some(root), 1, ProcessRole::Worker)
        );
        assert_eq!(w.command, "srv-worker");
        assert!(w.cow_baseline_ms.is_some() && !w.gone);
    }
    for name in ["started", "loaded"] {
        let p = phase(cell, name);
        assert_eq!(p.processes.len(), WORKERS + 1, "{name}");
        assert_eq!(
            p.processes
                .iter()
                .filter(|q| q.role == ProcessRole::Master)
                .count(),
            1
        );
    }
    assert_worker_cow(cell, "started");
    assert_worker_cow(cell, "loaded");
    assert_tree_is_the_sum(cell);

    let m = record.metrics.as_ref().unwrap();
    assert_eq!(m.processes_loaded, Some(WORKERS as u32 + 1));
    assert_eq!(m.processes_seen, WORKERS as u32 + 1);
    assert_eq!(m.tree_pss_loaded, Some(phase(cell, "loaded").tree.pss));
    let copied: u64 = phase(cell, "loaded")
        .processes
        .iter()
        .filter_map(|p| p.cow.as_ref())
        .map(|c| c.cow_copied)
        .sum();
    assert_eq!(m.cow_copied_loaded, Some(copied));
    // Sampled first right after the fork or after their K pages: at most
    // those pages grew. A worker sampled while the master still forks the
    // others was seen to lose a page of Private_Dirty afterwards: allow the
    // fork's few pages either way.
    // Growth only from a worker whose fork was seen (its first sample held
    // at most 64 pages): then at most its K pages and the fork's grew.
    let fork = (WORKERS as u64 * FORK_PAGES * 4096) as i64;
    let most = (WORKERS as u64 * (DIRTY + FORK_PAGES) * 4096) as i64;
    if let Some(growth) = m.worker_private_dirty_growth {
        assert!((-fork..=most).contains(&growth), "{growth}");
    }
    // The level at loaded holds every worker's K pages, whenever each was
    // first seen.
    let level = m.worker_private_dirty_loaded.unwrap() as i64;
    assert!(
        (most - fork..=most).contains(&level),
        "{level} against {} pages",
        WORKERS as u64 * DIRTY
    );
    // Nothing but the load ran: no growth worth a share.
    assert_eq!(m.returned_idle, None);
    // The client prints wrk's lines; Requests/sec is not its last.
    let summary = cell.load_summary.as_deref().unwrap();
    assert!(summary.starts_with("Requests/sec: "), "{summary}");
    assert!(m.load_rps.is_some_and(|r| r > 0.0));
    assert_eq!(record.load_status.as_deref(), Some("exited with status 0"));
    assert_eq!(record.stop.as_deref(), Some("SIGTERM: killed by SIGTERM"));
    assert!(cell.stderr_tail.iter().any(|l| l.contains("listening")));

    // The timeline follows the tree from the start, without requests.
    let t = &cell.timeline;
    assert!(!t.is_empty() && t.requests.is_empty() && t.live_bytes.is_empty());
    assert_eq!(t.tree.len(), t.len());
    assert!(
        t.phase
            .iter()
            .all(|p| ["starting", "loading", "idle"].contains(&p.as_str()))
    );
    assert!(t.phase.iter().any(|p| p == "idle"));
    assert_eq!(t.processes.len(), WORKERS + 1);
}

#[test]
fn a_killed_worker_is_replaced_and_the_replacement_found() {
    let dir = temp_dir("measure-kill");
    let done = dir.join("done");
    let port = free_port();
    // The load lasts until the test says so: the replacement exists then,
    // and the `loaded` sample is taken after.
    let load = format!(
        "sh -c 'while [ ! -e {} ]; do sleep 0.01; done; echo released'",
        done.display()
    );
    let mut cmd = allocbench();
    cmd.args([
        "measure",
        "--variants",
        "glibc",
        "--ready",
        &port.to_string(),
        "--load",
        &load,
        "--idle",
        "0",
        "--format",
        "json",
        "--",
    ])
    .args(server_args(port, WORKERS, PRELOAD, DIRTY))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let harness = child.id() as i32;

    let children_of = |root: i32| -> BTreeSet<i32> {
        running_of(server())
            .into_iter()
            .filter(|&p| ppid(p) == Some(root))
            .collect()
    };
    let mut root = 0;
    until("the server's master", || {
        root = running_of(server())
            .into_iter()
            .find(|&p| ppid(p) == Some(harness))
            .unwrap_or(0);
        root != 0
    });
    // The load starts after the `started` sample, which saw every worker.
    until("the load", || {
        child_running(harness, &done.display().to_string())
    });
    let before = children_of(root);
    assert_eq!(before.len(), WORKERS);
    let victim = *before.iter().next().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let mut replacement = 0;
    until("the replacement worker", || {
        let now = children_of(root);
        let new: Vec<i32> = now.difference(&before).copied().collect();
        if now.len() == WORKERS && !now.contains(&victim) && new.len() == 1 {
            replacement = new[0];
        }
        replacement != 0
    });
    // The replacement writes its K pages right after the fork.
    until("the replacement's K pages", || {
        std::fs::read_to_string(format!("/proc/{replacement}/comm"))
            .is_ok_and(|c| c.trim() == "srv-worker")
    });
    std::fs::write(&done, "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_none_left(server());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Document = serde_json::from_str(&stdout).unwrap();
    let cell = only_cell(&doc);
    assert_eq!(cell.status, Status::Ok, "{:?}", cell.error);
    let record = cell.measure.as_ref().unwrap();
    let seen = |pid: i32| record.processes.iter().find(|p| p.pid == pid);
    let v = seen(victim).expect("the killed worker was seen");
    assert!(v.gone);
    let n = seen(replacement).expect("the replacement was found");
    assert_eq!(
        (n.parent, n.depth, n.index),
        (Some(root), 1, Some(WORKERS as u32))
    );
    assert!(!n.gone && n.cow_baseline_ms.is_some());

    let loaded = phase(cell, "loaded");
    let pids: BTreeSet<i32> = loaded.processes.iter().map(|p| p.pid).collect();
    assert!(pids.contains(&replacement) && !pids.contains(&victim));
    assert_eq!(pids.len(), WORKERS + 1);
    // The replacement dirtied its K pages like the others.
    assert_worker_cow(cell, "loaded");
    assert_tree_is_the_sum(cell);
    let m = record.metrics.as_ref().unwrap();
    assert_eq!(
        (m.processes_seen, m.processes_gone),
        (WORKERS as u32 + 2, 1)
    );
    assert_eq!(cell.load_summary.as_deref(), Some("released"));
    // The killed worker's series ends, the replacement's starts.
    let series = |pid: i32| cell.timeline.processes.iter().find(|s| s.pid == pid);
    if let (Some(a), Some(b)) = (series(victim), series(replacement)) {
        assert_eq!(a.mem.pss.last(), Some(&None));
        // Walked points have PSS; the last point may be one the sampling
        // budget left at counters (RSS only), or one after the stop.
        assert!(b.mem.pss.iter().any(Option::is_some));
    }
}

#[test]
fn descendants_below_the_children_are_followed() {
    // A shell that does not exec: the server's master is the root's child,
    // its workers the root's grandchildren.
    let port = free_port();
    let script = format!("{} ; true", server_args(port, 2, 256, 10).join(" "));
    let r = measure(
        &[
            "--variants",
            "glibc",
            "--ready",
            &port.to_string(),
            "--duration",
            "0",
            "--idle",
            "0",
            "--format",
            "json",
        ],
        &["sh".into(), "-c".into(), script],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let cell = only_cell(&doc);
    assert_eq!(cell.status, Status::Ok, "{:?}", cell.error);
    let procs = &cell.measure.as_ref().unwrap().processes;
    let depths: Vec<u32> = procs.iter().map(|p| p.depth).collect();
    assert_eq!(depths, [0, 1, 2, 2], "{procs:?}");
    // Roles by structure: the shell only launched the server.
    let roles: Vec<ProcessRole> = procs.iter().map(|p| p.role).collect();
    use ProcessRole::{Launcher, Master, Worker};
    assert_eq!(roles, [Launcher, Master, Worker, Worker], "{procs:?}");
    let loaded = phase(cell, "loaded");
    assert_eq!(loaded.workers().count(), 2);
    assert_eq!(
        loaded.master().map(|m| m.pss),
        loaded.processes[1].mem.as_ref().map(|m| m.pss)
    );
    // The server's master was exec'd by the shell: nothing inherited.
    assert!(procs[1].cow_missed.as_deref().unwrap().contains("exec"));
    for w in &procs[2..] {
        assert_eq!(w.parent, Some(procs[1].pid));
        assert!(w.cow_baseline_ms.is_some(), "{w:?}");
    }
    assert_eq!(phase(cell, "started").processes.len(), 4);
}

#[test]
fn a_command_that_cannot_start_fails_its_row() {
    let head = [
        "--variants",
        "glibc,glibc-arena2",
        "--ready-after",
        "0",
        "--format",
        "json",
    ];
    // Missing, or not executable: refused before any row runs.
    let dir = temp_dir("measure-nostart");
    let plain = dir.join("plain");
    std::fs::write(&plain, "not a program\n").unwrap();
    for (command, says) in [
        ("/nonexistent/server", "/nonexistent/server: not found"),
        (
            "no-such-server-here",
            "no-such-server-here: not found in PATH",
        ),
        (plain.to_str().unwrap(), "or not executable"),
    ] {
        let r = measure(&head, &[command.into()]);
        assert_eq!(r.code, 2, "{command}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{command}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
    }
    // Executable, but not a program (`sh` runs it, and fails): each row
    // fails with how it ended.
    std::fs::set_permissions(&plain, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // A port that never opens: it ends before it is ready.
    let port = free_port().to_string();
    let head = [&head[..2], &["--ready", &port, "--format", "json"]].concat();
    let r = measure(&head, &[plain.display().to_string()]);
    assert_eq!(r.code, 1);
    let doc = r.doc();
    assert_eq!(doc.cells.len(), 2);
    for cell in &doc.cells {
        let e = cell.error.as_deref().unwrap();
        assert!(
            e.contains("exited with status 127 before it was ready") && e.contains("not found"),
            "{e}"
        );
    }
}

#[test]
fn a_command_that_exits_before_ready_fails_with_its_status_and_output() {
    let port = free_port();
    let r = measure(
        &[
            "--variants",
            "glibc",
            "--ready",
            &port.to_string(),
            "--format",
            "json",
        ],
        &[
            "sh".into(),
            "-c".into(),
            "echo cannot bind, giving up >&2; exit 3".into(),
        ],
    );
    assert_eq!(r.code, 1);
    let doc = r.doc();
    let e = only_cell(&doc).error.as_deref().unwrap();
    assert!(
        e.contains("exited with status 3 before it was ready"),
        "{e}"
    );
    assert!(e.contains("cannot bind, giving up"), "{e}");
}

#[test]
fn a_port_that_never_opens_times_out() {
    let port = free_port();
    let r = measure(
        &[
            "--variants",
            "glibc",
            "--ready",
            &port.to_string(),
            "--timeout",
            "0.3",
            "--format",
            "json",
        ],
        &["sleep".into(), "30".into()],
    );
    assert_eq!(r.code, 1);
    let doc = r.doc();
    let cell = only_cell(&doc);
    let e = cell.error.as_deref().unwrap();
    assert_eq!(e, format!("port {port} never opened within 0.3 s"));
    let root = cell.measure.as_ref().unwrap().processes[0].pid;
    assert!(!running(root), "sleep {root} left behind");
    // No load ran: the table says so, not "no load, 10 s".
    let table = allocbench::output::measure_exporter(allocbench::cli::Format::Md, false)
        .serialize(&doc)
        .unwrap();
    let row = table.lines().find(|l| l.starts_with("| glibc")).unwrap();
    assert!(row.ends_with("| failed before the load |"), "{row}");
}

#[test]
fn a_failing_load_is_reported_and_the_measurement_still_shown() {
    let port = free_port();
    let r = measure(
        &[
            "--variants",
            "glibc",
            "--ready",
            &port.to_string(),
            "--load",
            "sh -c 'echo 12 requests done; echo connection refused >&2; exit 4'",
            "--idle",
            "0",
            "--format",
            "json",
        ],
        &server_args(port, 2, 64, 1),
    );
    assert_eq!(r.code, 1, "a failed load makes the run fail");
    let doc = r.doc();
    let cell = only_cell(&doc);
    assert_eq!(cell.status, Status::Ok, "{:?}", cell.error);
    let record = cell.measure.as_ref().unwrap();
    let e = record.load_error.as_deref().unwrap();
    assert!(
        e.contains("exited with status 4") && e.contains("connection refused"),
        "{e}"
    );
    assert_eq!(cell.load_summary.as_deref(), Some("12 requests done"));
    assert!(record.metrics.as_ref().unwrap().tree_pss_loaded.is_some());
    let table = allocbench::output::measure_exporter(allocbench::cli::Format::Md, false)
        .serialize(&doc)
        .unwrap();
    assert!(table.contains("load FAILED; 12 requests done"), "{table}");
    assert!(table.contains("exited with status 4"), "{table}");
    // No figures; a failed load's output is no tool's summary, so no hint
    // to read it with --load-metric; and no verdict from an unloaded server.
    let m = record.metrics.as_ref().unwrap();
    assert_eq!((m.load_rps, m.load_tool.as_deref()), (None, None));
    assert_eq!(record.load_note, None);
    assert!(!table.contains("--load-metric"), "{table}");
}

#[test]
fn load_metric_reads_requests_per_second_with_a_regex() {
    let port = free_port();
    let r = measure(
        &[
            "--variants",
            "glibc",
            "--ready",
            &port.to_string(),
            "--load",
            "sh -c 'echo warming up: 3 req/s; echo throughput: 1,234.5 req/s; echo done'",
            "--load-metric",
            "throughput: ([0-9.,]+)",
            "--idle",
            "0",
            "--format",
            "json",
        ],
        &server_args(port, 1, 64, 1),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let cell = only_cell(&doc);
    let record = cell.measure.as_ref().unwrap();
    let m = record.metrics.as_ref().unwrap();
    assert_eq!(m.load_rps, Some(1234.5));
    assert_eq!(m.load_tool.as_deref(), Some("--load-metric"));
    assert_eq!((m.load_latency_p50_ms, m.load_latency_p99_ms), (None, None));
    assert_eq!(record.load_note, None);
    assert_eq!(
        cell.load_summary.as_deref(),
        Some("throughput: 1,234.5 req/s")
    );
}

/// Whether `program` is in PATH.
fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn wrk_and_ab_are_read_for_real() {
    if !installed("python3") {
        eprintln!("skipped: python3 is not installed (it serves the requests)");
        return;
    }
    // Its server is a python3: not while servers.rs reads a server's PSS.
    let _python = common::interpreter_pages();
    let tools = [
        ("wrk", "wrk -t1 -c2 -d1s --latency"),
        ("ab", "ab -q -n 300 -c 2"),
    ];
    for (tool, cmd) in tools {
        if !installed(tool) {
            eprintln!("skipped {tool}: not installed (apt-get install wrk apache2-utils)");
            continue;
        }
        let port = free_port();
        let load = format!("{cmd} http://127.0.0.1:{port}/");
        let p = port.to_string();
        let args = [
            "measure",
            "--variants",
            "glibc",
            "--ready",
            &p,
            "--load",
            &load,
            "--idle",
            "0",
            "--sample-hz",
            "0",
            "--format",
            "json",
            "--",
            "python3",
            "-m",
            "http.server",
            &p,
            "--bind",
            "127.0.0.1",
            "--directory",
            env!("CARGO_MANIFEST_DIR"),
        ];
        let r = run(&args);
        assert_eq!(r.code, 0, "{tool}: {}", r.stderr);
        let doc = r.doc();
        let cell = only_cell(&doc);
        assert_eq!(cell.status, Status::Ok, "{tool}: {:?}", cell.error);
        let record = cell.measure.as_ref().unwrap();
        let m = record.metrics.as_ref().unwrap();
        assert_eq!(m.load_tool.as_deref(), Some(tool), "{record:?}");
        assert!(m.load_rps.is_some_and(|r| r > 0.0), "{tool}: {m:?}");
        // Both print the median and the 99th percentile here.
        let (p50, p99) = (
            m.load_latency_p50_ms.unwrap(),
            m.load_latency_p99_ms.unwrap(),
        );
        assert!(p50 >= 0.0 && p99 >= p50, "{tool}: {p50} {p99}");
        assert_eq!(record.load_note, None);
    }
}

/// A shared library that does nothing, to preload.
fn nothing_library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let dir = temp_dir("measure-nothing");
        let lib = dir.join("libnothing.so");
        let src = dir.join("nothing.c");
        std::fs::write(&src, "int allocbench_nothing(void) { return 0; }\n").unwrap();
        let ok = Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&lib)
            .arg(&src)
            .status()
            .unwrap();
        assert!(ok.success());
        lib
    })
}

#[test]
fn a_preload_the_dynamic_linker_ignores_fails_the_row() {
    // A static program: ld.so never runs, LD_PRELOAD means nothing.
    static STATIC: OnceLock<PathBuf> = OnceLock::new();
    let exe = STATIC.get_or_init(|| compile("prefork_server_static", &["-static"]));
    let lib = nothing_library();
    let port = free_port();
    let mut command = server_args(port, 1, 16, 1);
    command[0] = exe.display().to_string();
    let r = run(&[
        "measure",
        "--variants",
        &lib.display().to_string(),
        "--ready",
        &port.to_string(),
        "--format",
        "json",
        "--",
        &command[0],
        &command[1],
        &command[2],
        &command[3],
        &command[4],
    ]);
    assert_none_left(exe);
    assert_eq!(r.code, 1);
    let doc = r.doc();
    let e = only_cell(&doc).error.as_deref().unwrap();
    assert!(
        e.contains("is not in effect") && e.contains("libnothing.so is not mapped"),
        "{e}"
    );
}

#[test]
fn a_variable_the_command_drops_or_adds_fails_the_row() {
    // `env` execs the server, whose port opens after the exec: the check
    // then sees the server's own environment.
    let run_under = |variant: &str, env: &[&str]| -> String {
        let port = free_port();
        let mut command: Vec<String> = std::iter::once("env")
            .chain(env.iter().copied())
            .map(String::from)
            .collect();
        command.extend(server_args(port, 1, 16, 1));
        let r = measure(
            &[
                "--variants",
                variant,
                "--ready",
                &port.to_string(),
                "--format",
                "json",
            ],
            &command,
        );
        assert_eq!(r.code, 1, "{}", r.stderr);
        r.doc().cells[0].error.clone().unwrap()
    };
    let e = run_under("glibc-arena2", &["-u", "MALLOC_ARENA_MAX"]);
    assert!(
        e.contains("MALLOC_ARENA_MAX is not in its environment"),
        "{e}"
    );
    let e = run_under("glibc", &["MALLOC_ARENA_MAX=1"]);
    assert!(
        e.contains("MALLOC_ARENA_MAX=1 in its environment, which the variant does not set"),
        "{e}"
    );
}

#[test]
fn a_wrapper_that_drops_the_preload_fails_the_row_naming_the_process() {
    // The root (sh) runs with the library; the server it starts does not.
    let port = free_port();
    let script = format!(
        "env -u LD_PRELOAD {}; exit $?",
        server_args(port, 2, 16, 1).join(" ")
    );
    let r = measure(
        &[
            "--variants",
            &nothing_library().display().to_string(),
            "--ready",
            &port.to_string(),
            "--format",
            "json",
        ],
        &["sh".into(), "-c".into(), script],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc = r.doc();
    let e = only_cell(&doc).error.clone().unwrap();
    assert!(
        e.contains("is not in effect in master ")
            && e.contains("(prefork_server)")
            && e.contains("libnothing.so is not mapped")
            && e.contains("LD_PRELOAD is not in its environment"),
        "{e}"
    );
}

#[test]
fn a_worker_without_the_variable_fails_the_row_unless_ignored() {
    // The shell forks two workers; one runs without the variant's variable.
    // Each sleep is told apart by its duration, whose fraction is this test
    // process's id: no other test's sleep is counted below.
    let tag = std::process::id();
    let (nap, nap_too) = (format!("30.{tag}"), format!("31.{tag}"));
    let script = format!("(env -u MALLOC_ARENA_MAX sleep {nap}) & (sleep {nap_too}) & wait");
    let command = ["sh".to_string(), "-c".into(), script];
    let mut head = vec![
        "--variants",
        "glibc-arena2",
        "--ready-after",
        "0.4",
        "--duration",
        "0.1",
        "--idle",
        "0",
        "--format",
        "json",
    ];
    let sleeps = || running_argv(&["sleep", &nap]).len() + running_argv(&["sleep", &nap_too]).len();
    let r = measure(&head, &command);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc = r.doc();
    let e = only_cell(&doc).error.clone().unwrap();
    assert!(
        e.contains("is not in effect in worker ")
            && e.contains("(sleep)")
            && e.contains("MALLOC_ARENA_MAX is not in its environment"),
        "{e}"
    );
    assert_eq!(sleeps(), 0);

    // Not part of the server: measured, its check shown, not required.
    let ignore = format!("^sleep 30\\.{tag}$");
    head.extend(["--ignore-process", &ignore]);
    let r = measure(&head, &command);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let m = only_cell(&doc).measure.clone().unwrap();
    let ignored: Vec<_> = m
        .processes
        .iter()
        .filter(|p| p.role == ProcessRole::Ignored)
        .collect();
    assert_eq!(ignored.len(), 1, "{:#?}", m.processes);
    assert!(
        ignored[0]
            .check
            .as_deref()
            .unwrap()
            .starts_with("not in effect"),
        "{ignored:?}"
    );
    assert!(
        m.checks
            .iter()
            .any(|c| c.contains("not part of the server: not required")),
        "{:?}",
        m.checks
    );
    assert_eq!(sleeps(), 0);

    // Ignoring every process leaves nothing that shows the variant ran.
    let all = [&head[..head.len() - 1], &["."]].concat();
    let r = measure(&all, &command);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = r.doc().cells[0].error.clone().unwrap();
    assert!(e.contains("no process of the server to check"), "{e}");
}

#[test]
fn builtin_jemalloc_runs_the_server_through_its_preload_library() {
    let dir = temp_dir("measure-jemalloc");
    let variants = common::variants_file(
        &dir,
        "[variants.je-narenas2]\nbase = \"jemalloc\"\nenv = { MALLOC_CONF = \"narenas:2\" }\n\
         [variants.je-bogus]\nbase = \"jemalloc\"\nenv = { MALLOC_CONF = \"bogus_option:1\" }\n",
    );
    let done = dir.join("done");
    let port = free_port();
    let load = format!(
        "sh -c 'while [ ! -e {} ]; do sleep 0.01; done'",
        done.display()
    );
    let child = allocbench()
        .args([
            "measure",
            "--variants-file",
            &variants,
            "--variants",
            "je-narenas2",
            "--ready",
            &port.to_string(),
            "--load",
            &load,
            "--idle",
            "0",
            "--format",
            "json",
            "--",
        ])
        .args(server_args(port, 2, 64, 1))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let harness = child.id() as i32;
    // While it runs, see for ourselves what the server maps.
    let mut maps = String::new();
    until("the server under jemalloc", || {
        let root = running_of(server())
            .into_iter()
            .find(|&p| ppid(p) == Some(harness));
        if let Some(root) = root
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            maps = std::fs::read_to_string(format!("/proc/{root}/maps")).unwrap_or_default();
        }
        !maps.is_empty()
    });
    std::fs::write(&done, "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_none_left(server());
    assert!(maps.contains("/liballocbench_jemalloc.so"), "{maps}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Document = serde_json::from_slice(&out.stdout).unwrap();
    let cell = only_cell(&doc);
    assert_eq!(cell.status, Status::Ok, "{:?}", cell.error);
    // MALLOC_CONF reaches the prefixed jemalloc as _RJEM_MALLOC_CONF.
    assert_eq!(
        cell.launch_env.get("_RJEM_MALLOC_CONF").map(String::as_str),
        Some("narenas:2")
    );
    assert!(!cell.launch_env.contains_key("MALLOC_CONF"));
    let checks = &cell.measure.as_ref().unwrap().checks;
    assert!(
        checks
            .iter()
            .any(|c| c.contains("liballocbench_jemalloc.so mapped")),
        "{checks:?}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c.contains("_RJEM_MALLOC_CONF=narenas:2"))
    );

    // A configuration jemalloc rejects fails the row.
    let port = free_port();
    let r = measure(
        &[
            "--variants-file",
            &variants,
            "--variants",
            "je-bogus",
            "--ready",
            &port.to_string(),
            "--duration",
            "0",
            "--idle",
            "0",
            "--format",
            "json",
        ],
        &server_args(port, 1, 16, 1),
    );
    assert_eq!(r.code, 1);
    let e = r.doc().cells[0].error.clone().unwrap();
    assert!(
        e.contains("not in effect") && e.contains("bogus_option"),
        "{e}"
    );
}

#[test]
fn bad_input_is_refused_with_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["measure", "--ready-after", "0"], "CMD ARGS"),
        (
            &["measure", "--variants", "nope", "--", "true"],
            "unknown variant",
        ),
        (&["measure", "--ready", "0", "--", "true"], "port 0"),
        (&["measure", "--ready", "70000", "--", "true"], "70000"),
        (
            &[
                "measure",
                "--ready",
                "80",
                "--ready-after",
                "1",
                "--",
                "true",
            ],
            "cannot be used with",
        ),
        (
            &[
                "measure",
                "--variants",
                "/nonexistent/libx.so",
                "--",
                "true",
            ],
            "no such file",
        ),
        (
            &["measure", "--load", "no-such-load-tool -n 3", "--", "true"],
            "no-such-load-tool not found in PATH",
        ),
        (
            &["measure", "--load", "wrk 'x", "--", "true"],
            "unclosed quote",
        ),
        (&["measure", "--idle=-1", "--", "true"], "--idle"),
        (
            &["measure", "--load", "true", "--duration", "1", "--", "true"],
            "cannot be used with",
        ),
        (
            &["measure", "--variants", "jemalloc-bg-workers", "--", "true"],
            "background_thread_in_workers",
        ),
        (
            &["measure", "--repeat", "0", "--", "true"],
            "--repeat: between 1 and 1000 repetitions, got 0",
        ),
    ];
    for (args, needle) in cases {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn a_missing_preload_library_says_how_to_build_it() {
    // allocbench alone in a directory, as after `cargo run -p allocbench`.
    let dir = temp_dir("measure-nolib");
    let exe = dir.join("allocbench");
    let real = Path::new(env!("CARGO_BIN_EXE_allocbench"));
    if std::fs::hard_link(real, &exe).is_err() {
        std::fs::copy(real, &exe).unwrap();
    }
    let r = run_with(Command::new(&exe).args(["measure", "--variants", "mimalloc", "--", "true"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("liballocbench_mimalloc.so is not next to")
            && r.stderr.contains("cargo build"),
        "{}",
        r.stderr
    );
    // The default list skips it and runs the rest.
    let r = run_with(Command::new(&exe).args([
        "measure",
        "--ready-after",
        "0",
        "--duration",
        "0",
        "--idle",
        "0",
        "--format",
        "csv",
        "--",
        "sleep",
        "30",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("Skipping variant jemalloc"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    assert!(
        r.stdout
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("measure,glibc,0,ok,")
    );
}

#[test]
fn ctrl_c_stops_the_tree_and_exits_130() {
    let port = free_port();
    let child = allocbench()
        .args([
            "measure",
            "--variants",
            "glibc,jemalloc",
            "--repeat",
            "2",
            "--ready",
            &port.to_string(),
            "--duration",
            "600",
            "--format",
            "json",
            "--",
        ])
        .args(server_args(port, 2, 64, 1))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let harness = child.id() as i32;
    until("the server and its workers", || {
        let procs = running_of(server());
        let root = procs.iter().find(|&&p| ppid(p) == Some(harness));
        root.is_some_and(|&r| procs.iter().filter(|&&p| ppid(p) == Some(r)).count() == 2)
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(harness),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert_none_left(server());
    // The document says what was cut short: the row and those not run.
    let doc: Document = serde_json::from_slice(&out.stdout).unwrap();
    let cell = only_cell(&doc);
    let record = cell.measure.as_ref().unwrap();
    assert!(record.interrupted);
    assert_eq!(
        record.not_run,
        [
            "jemalloc (repetition 0)",
            "glibc (repetition 1)",
            "jemalloc (repetition 1)"
        ]
    );
    let table = allocbench::output::measure_exporter(allocbench::cli::Format::Table, false)
        .serialize(&doc)
        .unwrap();
    // Before or after allocbench saw the port open, as the signal falls.
    let cut = table
        .lines()
        .find(|l| {
            l.starts_with("Cut short: glibc (repetition 0): interrupted (Ctrl-C or SIGTERM) ")
        })
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        cut.ends_with(
            ": not a result; not run: jemalloc (repetition 0), glibc (repetition 1), jemalloc \
             (repetition 1)."
        ),
        "{cut}"
    );
    assert!(!table.contains("after 0 s idle"), "{table}");
}

/// Running processes whose command line is exactly `argv`.
fn running_argv(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    running_where(|_, dir| std::fs::read(dir.join("cmdline")).is_ok_and(|c| c == want))
}

/// The running watchdog of allocbench `harness`, if one runs.
fn watchdog_of(harness: i32) -> Option<i32> {
    let exe = env!("CARGO_BIN_EXE_allocbench");
    running_argv(&[exe, "__watchdog"])
        .into_iter()
        .find(|&p| ppid(p) == Some(harness))
}

#[test]
fn sigkill_to_allocbench_leaves_nothing_running() {
    // Children that outlive their parent's death: sleeps the command's
    // shell starts before it execs the server, and sleeps of the load
    // command's shell. In the second row (glibc-arena2) one of the
    // command's is in a session of its own, out of the process group (in the
    // first it would hold the stop for its grace period: SIGTERM goes to the
    // group). Each sleep is told apart by its duration.
    let tag = std::process::id();
    let naps: Vec<String> = (1..=4).map(|i| format!("{}.{tag}", 3600 + i)).collect();
    let dir = temp_dir("measure-sigkill");
    let done = dir.join("done");
    let port = free_port();
    let script = format!(
        "sleep {} & if [ -n \"$MALLOC_ARENA_MAX\" ]; then setsid sleep {} & fi; exec {}",
        naps[0],
        naps[1],
        server_args(port, 2, 64, 1).join(" ")
    );
    // The first row's load ends when the test says so, the second's never.
    let load = format!(
        "sh -c 'sleep {} & sleep {} & while [ ! -e {d} ]; do sleep 0.01; done; rm {d}'",
        naps[2],
        naps[3],
        d = done.display()
    );
    let mut child = allocbench()
        .args([
            "measure",
            "--variants",
            "glibc,glibc-arena2",
            "--ready",
            &port.to_string(),
            "--load",
            &load,
            "--idle",
            "0",
            "--format",
            "json",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let harness = child.id() as i32;
    let grandparent = |pid: i32| ppid(pid).and_then(ppid);
    // The load runs once the `started` sample has seen the whole tree.
    let loading = |watchdog: &mut i32, naps: &[&String]| {
        *watchdog = watchdog_of(harness).unwrap_or(0);
        *watchdog != 0
            && naps.iter().all(|n| {
                running_argv(&["sleep", n])
                    .iter()
                    .any(|&p| grandparent(p) == Some(harness))
            })
    };
    let mut first = 0;
    until("the first row's load", || {
        loading(&mut first, &[&naps[0], &naps[2], &naps[3]])
    });
    std::fs::write(&done, "").unwrap();
    let mut second = 0;
    until("the second row's load", || {
        loading(&mut second, &naps.iter().collect::<Vec<_>>()) && second != first
    });
    // The first row's watchdog was told its row ended, and was reaped.
    assert_eq!(state(first), None, "watchdog {first} left");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(harness),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    until(
        "nothing of the command, the load or the watchdog left",
        || {
            naps.iter().all(|n| running_argv(&["sleep", n]).is_empty())
                && running_of(server()).is_empty()
                && !running(second)
        },
    );
}

#[test]
fn a_process_that_cannot_be_read_is_named_under_the_table() {
    // Non-dumpable workers: their memory is closed to an unprivileged
    // allocbench, though they are its own user's.
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let Some(runuser) = ["/usr/sbin/runuser", "/sbin/runuser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("skipped: runuser is not installed");
        return;
    };
    let port = free_port();
    let mut cmd = Command::new(runuser);
    cmd.args(["-u", "nobody", "--", env!("CARGO_BIN_EXE_allocbench")])
        .args([
            "measure",
            "--variants",
            "glibc",
            "--ready",
            &port.to_string(),
            "--duration",
            "0",
            "--idle",
            "0",
            "--format",
            "md",
            "--",
            "env",
            "PREFORK_NODUMP=1",
        ])
        .args(server_args(port, 1, 16, 1))
        .current_dir("/tmp");
    let r = run_with(&mut cmd);
    assert_none_left(server());
    if r.stderr.contains("Permission denied") && r.stdout.is_empty() {
        eprintln!("skipped: nobody cannot run allocbench: {}", r.stderr);
        return;
    }
    assert_eq!(r.code, 0, "{}", r.stderr);
    let row = r.stdout.lines().find(|l| l.starts_with("| glibc")).unwrap();
    // procs, then PSS anon ready: the worker is there, the sum is not.
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!((cells[3], cells[4]), ("2 → 2", "—"), "{row}");
    let note = r
        .stdout
        .lines()
        .find(|l| l.starts_with("- glibc: worker "))
        .unwrap_or_else(|| panic!("no note on the missed worker:\n{}", r.stdout));
    assert!(
        note.contains("(srv-worker) could not be read at started, loaded, idle+0s: ")
            && note.ends_with("smaps_rollup: permission denied"),
        "{note}"
    );
}

#[test]
fn idle_takes_a_list_of_samples_and_reads_the_idle_columns_at_the_last() {
    let r = measure(
        &[
            "--variants",
            "glibc",
            "--ready-after",
            "0.1",
            "--duration",
            "0.1",
            "--idle",
            "0,0.2",
            "--format",
            "json",
        ],
        &["sleep".to_string(), "60".to_string()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let cell = only_cell(&doc);
    let names: Vec<String> = cell.phases.iter().map(|p| p.name.to_string()).collect();
    assert_eq!(names, ["started", "loaded", "idle+0s", "idle+0.2s"]);
    assert_eq!(cell.measure.as_ref().unwrap().idle_s, 0.2);
}

/// A `thp_disable` variant under `measure`: THP is off in the command (as
/// `/proc/PID/status` says), and a command that turns it on again fails
/// its row.
#[test]
fn thp_disabled_is_checked_in_the_command() {
    let dir = temp_dir("measure-nothp");
    let variants = common::variants_file(
        &dir,
        "[variants.nothp]\nbase = \"glibc\"\nthp_disable = true\n",
    );
    let head = [
        "--variants-file",
        variants.as_str(),
        "--variants",
        "nothp",
        "--ready-after",
        "0.3",
        // The program turns THP on once Python has started (which may take
        // longer than the wait for ready): it is caught at loaded.
        "--duration",
        "1.5",
        "--idle",
        "0",
        "--format",
        "json",
    ];
    let r = measure(&head, &["sleep".into(), "60".into()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let checks = &only_cell(&doc).measure.as_ref().unwrap().checks;
    assert!(
        checks
            .iter()
            .any(|c| c.contains("THP disabled (THP_enabled: 0)")),
        "{checks:?}"
    );

    // PR_SET_THP_DISABLE is 41; 0 turns THP on again.
    let on_again = "import ctypes, time\nctypes.CDLL(None).prctl(41, 0, 0, 0, 0)\ntime.sleep(60)";
    // A python3 of its own: not while servers.rs reads a server's PSS.
    let _python = common::interpreter_pages();
    let r = measure(&head, &["python3".into(), "-c".into(), on_again.into()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc = r.doc();
    let e = only_cell(&doc).error.clone().unwrap();
    assert!(e.contains("THP is enabled"), "{e}");
}

#[test]
fn repetitions_are_interleaved_each_a_cell_and_the_table_decides() {
    const DIRTY_MANY: u64 = 1024;
    let port = free_port();
    let load = format!("{} client {port} 100", server().display());
    let r = measure(
        &[
            "--variants",
            "glibc,jemalloc",
            "--repeat",
            "2",
            "--ready",
            &port.to_string(),
            "--load",
            &load,
            "--idle",
            "0.2",
            "--format",
            "json",
        ],
        &server_args(port, 2, 4 * DIRTY_MANY, DIRTY_MANY),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    // v1 r0, v2 r0, v1 r1, v2 r1: each repetition a cell of its own.
    let order: Vec<(&str, u32)> = doc
        .cells
        .iter()
        .map(|c| (c.variant.as_str(), c.repetition))
        .collect();
    assert_eq!(
        order,
        [("glibc", 0), ("jemalloc", 0), ("glibc", 1), ("jemalloc", 1)]
    );
    let copied = |c: &CellResult| {
        let m = c.measure.as_ref().unwrap().metrics.as_ref().unwrap();
        m.cow_copied_loaded.unwrap()
    };
    for c in &doc.cells {
        assert_eq!(c.status, Status::Ok, "{:?}", c.error);
        // Two workers, each copying exactly DIRTY_MANY pages, and a few
        // that serving requests writes (more of them under jemalloc, whose
        // metadata the workers write too).
        let k = 2 * DIRTY_MANY * 4096;
        assert!(
            (k..=k + 2 * 4 * FORK_PAGES * 4096).contains(&copied(c)),
            "{}",
            copied(c)
        );
    }
    let table = allocbench::output::measure_exporter(allocbench::cli::Format::Table, false)
        .serialize(&doc)
        .unwrap();
    for line in table.lines().take(4) {
        assert!(
            line.chars().count() <= 120,
            "wider than 120: {line}\n{table}"
        );
    }
    let head = table.lines().next().unwrap();
    for column in [
        "tree PSS",
        "CV",
        "tree USS",
        "worker USS mean/max",
        "CoW copied",
        "returned",
        "req/s",
        "p99",
    ] {
        assert!(head.contains(column), "{column} missing: {head}");
    }
    // The CoW column shows each variant's median over its two runs, and
    // its ratio to the first variant.
    for (i, variant) in ["glibc", "jemalloc"].into_iter().enumerate() {
        let median = (copied(&doc.cells[i]) + copied(&doc.cells[i + 2])) as f64 / 2.0;
        let shown = format!("{:.1} MiB", median / (1u64 << 20) as f64);
        let row = table
            .lines()
            .find(|l| l.starts_with(variant))
            .unwrap_or_else(|| panic!("no {variant} row: {table}"));
        assert!(row.contains(&shown), "{shown} not in {row}");
    }
    let glibc = table.lines().find(|l| l.starts_with("glibc")).unwrap();
    assert!(glibc.contains("(1.00×)"), "{glibc}");
    assert!(
        table.contains("Ratios (×) are to glibc, the first variant run"),
        "{table}"
    );
    // Both runs gave a throughput: the report's rule.
    let verdict = table.lines().find(|l| l.starts_with("Choose ")).unwrap();
    assert!(
        verdict.ends_with("Rule: least tree PSS within 5% of the best throughput."),
        "{verdict}"
    );
    // Markdown has every column, the runs among them.
    let md = allocbench::output::measure_exporter(allocbench::cli::Format::Md, false)
        .serialize(&doc)
        .unwrap();
    let cells = |l: &str| -> Vec<String> { l.split('|').map(|c| c.trim().to_string()).collect() };
    let runs = cells(md.lines().next().unwrap())
        .iter()
        .position(|c| c == "runs")
        .unwrap();
    let row = md.lines().find(|l| l.starts_with("| glibc")).unwrap();
    assert_eq!(cells(row)[runs], "2", "{row}");

    // The report renders it: the table, the verdict, the plots in
    // measure's words.
    let dir = temp_dir("measure-report");
    let path = dir.join("measure.json");
    std::fs::write(&path, &r.stdout).unwrap();
    let plots = dir.join("plots");
    let out = dir.join("report.md");
    let rep = run(&[
        "report",
        &path.display().to_string(),
        "--plot",
        &plots.display().to_string(),
        "--output",
        &out.display().to_string(),
    ]);
    assert_eq!(rep.code, 0, "{}", rep.stderr);
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(md.contains("## What to choose for this server"), "{md}");
    assert!(md.contains(verdict), "{md}");
    assert!(
        md.contains("| tree PSS |") || md.contains("tree PSS"),
        "{md}"
    );
    assert!(!md.contains("(0 s)"), "{md}");
    let svgs: Vec<String> = walk(&plots)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(!svgs.is_empty(), "no chart written");
    let tree = svgs
        .iter()
        .find(|s| s.contains("tree anonymous PSS over time"))
        .expect("a tree PSS chart");
    let texts = svg_texts(tree);
    assert!(texts[0].starts_with("measure: "), "{texts:?}");
    for word in ["ready", "loaded", "idle+… sample"] {
        assert!(texts.iter().any(|t| t == word), "{word} not in {texts:?}");
    }
    for svg in &svgs {
        assert!(!svg.contains("prefork none") && !svg.contains("drained"));
    }
}

/// Workers whose heap is on transparent huge pages (each of two maps an
/// aligned 64 MiB region, asks for huge pages with MADV_HUGEPAGE and writes
/// it): `tree_anon_huge_loaded` is the sum of `AnonHugePages` over the
/// tree's `smaps_rollup`, read by the load command itself (to a 2 MiB page),
/// and the table, its CSV and `report` show `huge` with the THP mode under
/// it. Under `glibc-nothp` (`thp_disable`) the same workers have none.
#[test]
fn huge_pages_at_loaded_are_the_kernels_anon_huge_pages() {
    let mode =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if mode.is_empty() || mode.contains("[never]") {
        eprintln!("skipped: transparent huge pages are off here ({mode:?})");
        return;
    }
    const MIB: u64 = 1 << 20;
    let dir = temp_dir("measure-huge");
    let (pids, rollups, script) = (dir.join("pids"), dir.join("rollups"), dir.join("read.sh"));
    // Each run appends `== PIDS` and those processes' smaps_rollup.
    std::fs::write(
        &script,
        "pids=$(cat \"$1\")\necho \"== $pids\" >> \"$2\"\n\
         for p in $pids; do cat /proc/$p/smaps_rollup >> \"$2\" || exit 1; done\n",
    )
    .unwrap();
    let port = free_port();
    let (port_text, load) = (
        port.to_string(),
        format!(
            "sh {} {} {}",
            script.display(),
            pids.display(),
            rollups.display()
        ),
    );
    let mut args = vec![
        "measure",
        "--variants",
        "glibc,glibc-nothp",
        "--ready",
        &port_text,
        "--load",
        &load,
        "--idle",
        "0",
        "--format",
        "json",
        "--",
    ];
    let command = server_args(port, 2, 16, 0);
    args.extend(command.iter().map(String::as_str));
    let r = run_with(
        allocbench()
            .env("PREFORK_HUGE_MIB", "64")
            .env("PREFORK_PIDS", &pids)
            .args(&args),
    );
    assert_none_left(server());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();

    // (pids, Σ AnonHugePages) of each run, in the order run.
    let text = std::fs::read_to_string(&rollups).unwrap();
    let mut runs: Vec<(BTreeSet<i32>, u64)> = Vec::new();
    for line in text.lines() {
        if let Some(p) = line.strip_prefix("== ") {
            runs.push((
                p.split_whitespace().map(|p| p.parse().unwrap()).collect(),
                0,
            ));
        } else if let Some(kb) = line.strip_prefix("AnonHugePages:") {
            let kb: u64 = kb.trim().trim_end_matches("kB").trim().parse().unwrap();
            runs.last_mut().unwrap().1 += kb * 1024;
        }
    }
    assert_eq!(runs.len(), 2, "{text}");
    let mut huge = Vec::new();
    for (cell, (pids, kernel)) in doc.cells.iter().zip(&runs) {
        assert_eq!(cell.status, Status::Ok, "{:?}", cell.error);
        // The same tree: master and two workers.
        let sampled: BTreeSet<i32> = phase(cell, "loaded")
            .processes
            .iter()
            .map(|p| p.pid)
            .collect();
        assert_eq!(&sampled, pids, "{}", cell.variant);
        let m = cell.measure.as_ref().unwrap().metrics.clone().unwrap();
        let loaded = m.tree_anon_huge_loaded.unwrap();
        assert!(
            loaded.abs_diff(*kernel) <= 2 * MIB,
            "{}: {loaded} bytes on huge pages, the kernel's {kernel}",
            cell.variant
        );
        assert_eq!(loaded % (2 * MIB), 0, "{}", cell.variant);
        assert!(m.tree_anon_huge_idle.is_some());
        huge.push(loaded);
    }
    assert_eq!(
        (doc.cells[0].variant.as_str(), doc.cells[1].variant.as_str()),
        ("glibc", "glibc-nothp")
    );
    // 64 aligned 2 MiB pages fit in the two regions; the kernel may give
    // small pages for some when it finds no free huge one.
    assert!(huge[0] >= 32 * MIB, "{} bytes on huge pages", huge[0]);
    assert_eq!(huge[1], 0);

    let shown = |format| {
        allocbench::output::measure_exporter(format, false)
            .serialize(&doc)
            .unwrap()
    };
    let thp = format!("THP enabled [{}]", doc.environment.thp_enabled);
    // In a terminal, in tree USS's place; Markdown has both.
    let table = shown(allocbench::cli::Format::Table);
    let head = table.lines().next().unwrap();
    assert!(
        head.contains("huge") && !head.contains("tree USS"),
        "{table}"
    );
    for line in table.lines().take(4) {
        assert!(
            line.chars().count() <= 120,
            "wider than 120: {line}\n{table}"
        );
    }
    assert!(table.contains(&thp), "{table}");
    // Markdown: the column holds each row's figure.
    let md = shown(allocbench::cli::Format::Md);
    let cells = |l: &str| -> Vec<String> { l.split('|').map(|c| c.trim().to_string()).collect() };
    let column = cells(md.lines().next().unwrap())
        .iter()
        .position(|c| c == "huge")
        .unwrap_or_else(|| panic!("no huge column:\n{md}"));
    for (variant, bytes) in [("| glibc ", huge[0]), ("| glibc-nothp ", huge[1])] {
        let row = md.lines().find(|l| l.starts_with(variant)).unwrap();
        let want = format!("{:.1} MiB", bytes as f64 / MIB as f64);
        assert_eq!(cells(row)[column], want, "{row}");
    }
    assert!(md.contains(&thp), "{md}");
    assert!(
        cells(md.lines().next().unwrap()).contains(&"tree USS".to_string()),
        "{md}"
    );
    let csv = shown(allocbench::cli::Format::Csv);
    let mut lines = csv.lines().map(|l| l.split(',').collect::<Vec<_>>());
    let head = lines.next().unwrap();
    let at = head
        .iter()
        .position(|h| *h == "tree_anon_huge_loaded")
        .unwrap();
    let values: Vec<String> = lines.map(|l| l[at].to_string()).collect();
    assert_eq!(values, [huge[0].to_string(), "0".to_string()], "{csv}");

    // `report` of the document: the same column and line.
    let path = dir.join("measure.json");
    std::fs::write(&path, &r.stdout).unwrap();
    let rep = run(&["report", "--format", "md", &path.display().to_string()]);
    assert_eq!(rep.code, 0, "{}", rep.stderr);
    assert!(rep.stdout.contains(" huge |"), "{}", rep.stdout);
    assert!(rep.stdout.contains(&thp), "{}", rep.stdout);
}

/// The texts of an SVG's `<text>` elements, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
