//! Faults lose nothing: a crashed or hung worker fails its own cell with the
//! reason, the other cells run, and no process is left behind.

use allocbench::results::Status;

use crate::common::*;

/// A variants file with one glibc variant that injects `fault`.
fn faulty(name: &str, fault: &str) -> String {
    let dir = temp_dir(name);
    variants_file(
        &dir,
        &format!(
            "[variants.faulty]\nbase = \"glibc\"\nenv = {{ ALLOCBENCH_FAULT = \"{fault}\" }}\n"
        ),
    )
}

#[test]
fn a_crashed_worker_fails_its_cell_and_the_next_cell_runs() {
    let file = faulty("segv", "segv@steady#1");
    let r = compare(&["--variants-file", &file, "--variants", "faulty,glibc"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc = r.doc();
    let bad = &doc.cells[0];
    assert_eq!(bad.status, Status::Failed);
    let err = bad.error.as_ref().unwrap();
    assert!(
        err.contains("killed by SIGSEGV in phase steady") && err.starts_with("worker "),
        "{err}"
    );
    assert!(bad.metrics.is_none());
    assert_eq!(doc.cells[1].status, Status::Ok);
}

/// Runs the faulty variant alone (with `extra` options) and returns the
/// reason its cell failed, checking the run's exit code.
fn failure(name: &str, fault: &str, extra: &[&str]) -> String {
    let file = faulty(name, fault);
    let mut args = vec!["--variants-file", file.as_str(), "--variants", "faulty"];
    args.extend_from_slice(extra);
    let r = compare(&args);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let cell = &r.doc().cells[0];
    assert_eq!(cell.status, Status::Failed);
    cell.error.clone().unwrap()
}

#[test]
fn a_fault_in_the_users_shell_does_not_reach_the_cells() {
    // It leaked: every cell of the run failed with the shell's fault.
    let args = with_small(&["compare", "--format", "json", "--variants", "glibc"], &[]);
    let r = run_with(
        allocbench()
            .args(&args)
            .env("ALLOCBENCH_FAULT", "exit@forked"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    assert_eq!(doc.cells[0].status, Status::Ok, "{:?}", doc.cells[0].error);
}

/// Starts allocbench with `args`, its output discarded.
fn spawn(args: &[impl AsRef<std::ffi::OsStr>]) -> std::process::Child {
    allocbench()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The result document at `path`, once it is one.
fn read_doc(path: &std::path::Path) -> Option<allocbench::results::Document> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

#[test]
fn an_aborting_master_fails_its_cell() {
    let err = failure("abort", "abort@preloaded", &[]);
    assert!(
        err.contains("master") && err.contains("SIGABRT") && err.contains("preloaded"),
        "{err}"
    );
}

#[test]
fn a_hung_worker_times_out_naming_the_phase() {
    let err = failure("hang", "hang@drained", &["--timeout", "1"]);
    assert!(err.contains("timed out in phase drained"), "{err}");
}

#[test]
fn a_worker_that_exits_early_fails_its_cell() {
    let err = failure("exit", "exit@forked", &[]);
    assert!(
        err.contains("exited with status 7 in phase forked"),
        "{err}"
    );
}

#[test]
fn ctrl_c_stops_every_process_and_keeps_finished_cells() {
    let dir = temp_dir("sigint");
    let file = faulty("sigint-variants", "hang@steady");
    let out = dir.join("out.json");
    let mut args: Vec<String> = ["compare", "--format", "json", "--output"]
        .into_iter()
        .map(String::from)
        .collect();
    args.push(out.display().to_string());
    args.extend(SMALL.iter().map(|s| s.to_string()));
    args.extend([
        "--variants-file".into(),
        file,
        "--variants".into(),
        "glibc,faulty".into(),
    ]);
    let mut child = spawn(&args);
    let pid = child.id();
    // Wait until the first cell's result is on disk and the second cell's
    // processes exist (its master has socket number 1), then interrupt.
    let second = format!("allocbench-{pid}-1");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let running = workers_of(pid).into_iter().any(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&second))
                .unwrap_or(false)
        });
        let first_done = read_doc(&out).is_some_and(|d| d.cells.len() == 1);
        if running && first_done {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "second cell never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    signal(pid, nix::sys::signal::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_no_workers_left(pid);
    let doc = read_doc(&out).unwrap();
    assert_eq!(doc.cells.len(), 1);
    assert_eq!(doc.cells[0].variant, "glibc");
    assert_eq!(doc.cells[0].status, Status::Ok);
}

#[test]
fn resume_keeps_finished_cells_and_runs_the_rest() {
    let dir = temp_dir("resume");
    let out = dir.join("out.json");
    let out_s = out.display().to_string();
    let first = compare(&["--variants", "glibc", "--output", &out_s]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before: allocbench::results::Document =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let second = compare(&[
        "--variants",
        "glibc,jemalloc",
        "--output",
        &out_s,
        "--resume",
    ]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("kept from the earlier run"),
        "{}",
        second.stderr
    );
    let after: allocbench::results::Document =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(after.cells.len(), 2);
    // The glibc cell is the earlier one, not a new run.
    assert_eq!(after.cells[0].phases, before.cells[0].phases);
    assert_eq!(after.cells[1].variant, "jemalloc");
}

#[test]
fn resume_refuses_what_it_cannot_continue() {
    let dir = temp_dir("resume-bad");
    let out = dir.join("out.json");
    std::fs::write(&out, "{\"not\": \"allocbench\"}").unwrap();
    let out_s = out.display().to_string();
    let r = run(&[
        "compare", "--format", "json", "--output", &out_s, "--resume",
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("not an allocbench result document"),
        "{}",
        r.stderr
    );
    let r = run(&["compare", "--output", &out_s, "--resume"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--format json"), "{}", r.stderr);
}

#[test]
fn a_worker_killed_like_by_the_oom_killer_fails_its_cell() {
    let err = failure("sigkill", "kill@drained#1", &[]);
    assert!(err.contains("killed by SIGKILL in phase drained"), "{err}");
}

#[test]
fn killing_the_harness_leaves_no_worker_behind() {
    let file = faulty("harness-kill", "hang@steady");
    let args = with_small(
        &["compare", "--format", "json"],
        &["--variants-file", &file, "--variants", "faulty"],
    );
    let mut child = spawn(&args);
    let pid = child.id();
    // Wait for the master and both workers, then kill the harness outright.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while workers_of(pid).len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the cell never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // PR_SET_PDEATHSIG takes the master with the harness, and the workers
    // with the master.
    assert_no_workers_left(pid);
}

#[test]
fn sigterm_keeps_a_cell_that_finished_while_an_earlier_one_idles() {
    let dir = temp_dir("sigterm");
    let file = faulty("sigterm-variants", "segv@steady#0");
    let out = dir.join("out.json");
    let out_s = out.display().to_string();
    // glibc idles for a minute; the faulty cell after it fails meanwhile.
    let args = with_small(
        &["compare", "--format", "json", "--output", &out_s],
        &[
            "--variants-file",
            &file,
            "--variants",
            "glibc,faulty",
            "--idle",
            "0,60",
        ],
    );
    let mut child = spawn(&args);
    let pid = child.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while read_doc(&out).is_none_or(|d| d.cells.is_empty()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the second cell's result never reached the output"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    signal(pid, nix::sys::signal::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_no_workers_left(pid);
    let doc = read_doc(&out).unwrap();
    assert_eq!(doc.cells.len(), 1, "the idling glibc cell is dropped");
    assert_eq!(doc.cells[0].variant, "faulty");
    assert_eq!(doc.cells[0].status, Status::Failed);
}

#[test]
fn a_worker_aborted_by_mallocs_corruption_check_fails_its_cell() {
    let err = failure("double-free", "double-free@steady#1", &[]);
    assert!(
        err.starts_with("worker ") && err.contains("killed by SIGABRT in phase steady"),
        "{err}"
    );
    // glibc's own message reaches the reason through the cell's stderr.
    assert!(err.contains("double free"), "{err}");
}

#[test]
fn an_output_that_cannot_be_written_is_refused_before_any_work() {
    let dir = temp_dir("output-bad");
    for (path, why) in [
        // The parent is a file.
        (
            "/proc/version/out.json".to_string(),
            "/proc/version is not a directory",
        ),
        (dir.display().to_string(), "is a directory"),
    ] {
        let r = run(&with_small(
            &["compare", "--variants", "glibc", "--output", &path],
            &[],
        ));
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr.contains(&format!("--output: cannot write {path}")) && r.stderr.contains(why),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("cell 1/1"), "a cell ran: {}", r.stderr);
    }
}

#[test]
fn a_reader_that_goes_away_is_not_a_crash() {
    let mut child = allocbench()
        .args(with_small(&["compare", "--variants", "glibc"], &[]))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Like `allocbench compare | true`: the reader is gone before the table.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_fault_aimed_at_a_worker_the_cells_do_not_fork_is_refused() {
    // "segv@steady#7" with 2 workers never fired, without a word.
    let file = faulty("worker-7", "segv@steady#7");
    let r = compare(&["--variants-file", &file, "--variants", "faulty"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("worker 7") && r.stderr.contains("at most 2"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("cell 1/"), "a cell ran: {}", r.stderr);
}
