//! Containment under `measure`: a daemonising server (double fork, setsid)
//! is measured and gone after; an interrupt leaves nothing of a tree whose
//! processes left its group and session; a command that floods its output
//! keeps allocbench's memory bounded and its document written.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use allocbench::results::{ProcessRole, Status};

use crate::common::{allocbench, cmdline, free_port, run_with, running_where, temp_dir};

fn server() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = temp_dir("contain-server").join("prefork_server");
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/prefork_server.c");
        let status = Command::new("cc")
            .args(["-O1", "-o"])
            .arg(&exe)
            .arg(src)
            .status()
            .expect("a C compiler (cc) to build the test server");
        assert!(status.success(), "cc failed");
        exe
    })
}

/// Polls `cond` until it holds (10 s at most).
fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn running_of(exe: &Path) -> Vec<i32> {
    running_where(|_, dir| std::fs::read_link(dir.join("exe")).is_ok_and(|p| p == exe))
}

/// Running `sleep` processes whose argument is `nap`.
fn sleeps(nap: &str) -> Vec<i32> {
    let want = format!("sleep\0{nap}\0");
    running_where(|_, dir| cmdline(dir) == want)
}

#[test]
fn a_daemonising_server_is_measured_and_gone_after() {
    let port = free_port();
    let r = run_with(allocbench().args([
        "measure",
        "--variants",
        "glibc",
        "--ready",
        &port.to_string(),
        "--duration",
        "0.3",
        "--idle",
        "0",
        "--format",
        "json",
        "--",
        "env",
        "PREFORK_DAEMON=1",
        &server().display().to_string(),
        &port.to_string(),
        "2",
        "64",
        "4",
    ]));
    until("nothing of the daemon left", || {
        running_of(server()).is_empty()
    });
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let cell = &doc.cells[0];
    assert_eq!(cell.status, Status::Ok, "{:?}", cell.error);
    let m = cell.measure.as_ref().unwrap();
    // The root exited at once; the daemon was adopted and measured, with
    // the workers it forked as its children.
    let daemon = m
        .processes
        .iter()
        .find(|p| p.adopted)
        .unwrap_or_else(|| panic!("no adopted process: {:#?}", m.processes));
    assert_eq!(daemon.parent, Some(r.pid as i32));
    let workers: Vec<_> = m
        .processes
        .iter()
        .filter(|p| p.parent == Some(daemon.pid))
        .collect();
    assert_eq!(workers.len(), 2, "{:#?}", m.processes);
    let loaded = cell.phases.iter().find(|p| p.name == "loaded").unwrap();
    assert!(loaded.processes.iter().any(|p| p.pid == daemon.pid));
    for w in &workers {
        let s = loaded.processes.iter().find(|p| p.pid == w.pid).unwrap();
        assert_eq!(s.role, ProcessRole::Worker);
        let cow = s.cow.as_ref().expect("a worker's CoW against the daemon");
        assert!(cow.cow_copied_pages >= 4, "{cow:?}");
    }
    assert_eq!(
        m.stop.as_deref(),
        Some("SIGTERM: every process of the daemon ended")
    );
}

#[test]
fn an_interrupt_leaves_nothing_that_left_the_group_or_session() {
    for signal in [nix::sys::signal::SIGINT, nix::sys::signal::SIGTERM] {
        // Job control puts each background job in a group of its own; the
        // subshell's setsid sleep is re-parented when the subshell exits.
        let nap = format!("{}.{}", 3000 + signal as i32, std::process::id());
        let script = format!(
            "set -m; for i in 1 2 3 4 5 6 7 8; do sleep {nap} & done; (setsid sleep {nap} &); wait"
        );
        let mut child = allocbench()
            .args([
                "measure",
                "--variants",
                "glibc",
                "--ready-after",
                "0.2",
                "--duration",
                "600",
                "--format",
                "json",
                "--",
                "bash",
                "-c",
                &script,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        until("the nine sleeps", || sleeps(&nap).len() == 9);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{signal}");
        until(&format!("no sleep left after {signal}"), || {
            sleeps(&nap).is_empty()
        });
    }
}

#[test]
fn a_flood_of_output_keeps_memory_bounded_and_the_document_written() {
    let dir = temp_dir("contain-flood");
    let out = dir.join("out.json");
    let mut cmd = allocbench();
    cmd.args([
        "measure",
        "--variants",
        "glibc",
        "--ready-after",
        "0.2",
        "--duration",
        "1.5",
        "--idle",
        "0",
        "--format",
        "json",
        "--output",
    ])
    .arg(&out)
    .args(["--", "sh", "-c"])
    // Output without a line end on both streams: zeros on stdout, a
    // progress bar redrawn with \r on stderr.
    .arg("cat /dev/zero & yes \"$(printf '42%%\\r')\" | tr -d '\\n' >&2");
    // 512 MiB of address space: a whole line buffered would exceed it
    // within the second (the pipe carries about 1 GB/s).
    // SAFETY: setrlimit is async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let limit = 512 << 20;
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_AS, limit, limit)
                .map_err(std::io::Error::from)
        });
    }
    let r = run_with(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: allocbench::results::Document =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let cell = &doc.cells[0];
    assert_eq!(cell.status, Status::Ok, "{:?}", cell.error);
    let kept: usize = cell.stderr_tail.iter().map(String::len).sum();
    assert!(kept > 0 && kept <= 64 * 1024, "{kept} bytes of output kept");
}

/// What escapes with `setsid` from the load command, and what a preload's
/// constructor-like daemon leaves (a double fork from the measured command's
/// own child), is gone when the row ends normally.
#[test]
fn setsid_escapes_of_the_load_and_of_the_command_are_gone_after() {
    let nap = format!("{}.{}", 4000, std::process::id());
    let load = format!("sh -c '(setsid sleep {nap} &); sleep 0.3'");
    let command = format!("(sh -c '(setsid sleep {nap}1 &)' &); exec sleep 600");
    let r = run_with(allocbench().args([
        "measure",
        "--variants",
        "glibc",
        "--ready-after",
        "0.2",
        "--load",
        &load,
        "--idle",
        "0",
        "--format",
        "json",
        "--",
        "sh",
        "-c",
        &command,
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The command's escape was adopted and measured as part of its tree.
    let doc = r.doc();
    let record = doc.cells[0].measure.as_ref().unwrap();
    assert!(
        record
            .processes
            .iter()
            .any(|p| p.adopted && p.command == "sleep"),
        "{:?}",
        record.processes
    );
    until("no escaped sleep left", || {
        sleeps(&nap).is_empty() && sleeps(&format!("{nap}1")).is_empty()
    });
}
