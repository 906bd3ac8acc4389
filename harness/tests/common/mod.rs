//! Helpers for the integration tests: run the real allocbench binary with
//! small sizes and read its JSON back.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use allocbench::results::Document;

/// Sizes that keep a cell well under a second.
pub const SMALL: &[&str] = &[
    "--processes",
    "2",
    "--threads",
    "2",
    "--requests",
    "400",
    "--static-mib",
    "4",
    "--idle",
    "0",
];

pub fn allocbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_allocbench"))
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub pid: u32,
}

impl Run {
    pub fn doc(&self) -> Document {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not a result document: {e}\n{}", self.stdout))
    }
}

pub fn run(args: &[&str]) -> Run {
    run_with(allocbench().args(args))
}

pub fn run_with(cmd: &mut Command) -> Run {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("allocbench starts");
    let pid = child.id();
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("allocbench runs");
    let r = Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        pid,
    };
    assert_no_workers_left(pid);
    r
}

/// The small sizes, less the flags `extra` sets itself, then `extra`.
pub fn with_small<'a>(head: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    with_sizes(SMALL, head, extra)
}

/// `head`, the flag-value pairs of `sizes` whose flag `extra` does not set,
/// then `extra`.
pub fn with_sizes<'a>(sizes: &[&'a str], head: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = head.to_vec();
    for pair in sizes.chunks(2) {
        if !extra.contains(&pair[0]) {
            args.extend_from_slice(pair);
        }
    }
    args.extend_from_slice(extra);
    args
}

/// `compare --format json` with the small sizes and the given extra args.
pub fn compare(extra: &[&str]) -> Run {
    run(&with_small(&["compare", "--format", "json"], extra))
}

/// The state letter of `pid` (`R`, `S`, `Z`, …), if it exists.
pub fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(") ").next()?.chars().next()
}

/// Whether `pid` runs: it exists and is no zombie (dead already, not reaped).
pub fn running(pid: i32) -> bool {
    state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

/// Running processes for which `pick(pid, /proc/PID)` holds.
pub fn running_where(pick: impl Fn(i32, &std::path::Path) -> bool) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
            (pick(pid, &e.path()) && running(pid)).then_some(pid)
        })
        .collect()
}

/// The command line of the process at `/proc/PID`, lossily as text.
pub fn cmdline(proc_dir: &std::path::Path) -> String {
    std::fs::read(proc_dir.join("cmdline"))
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .unwrap_or_default()
}

/// Pids of live processes whose command line names a socket of harness `pid`.
pub fn workers_of(harness_pid: u32) -> Vec<i32> {
    let tag = format!("allocbench-{harness_pid}-");
    running_where(|_, dir| {
        let c = cmdline(dir);
        c.contains("__worker") && c.contains(&tag)
    })
}

/// Every process of every cell is gone once the harness has exited
/// (killed processes may take a moment to be torn down).
pub fn assert_no_workers_left(harness_pid: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let left = workers_of(harness_pid);
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "processes left behind by allocbench {harness_pid}: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A fresh temporary directory for one test, of its own even where two
/// tests of this process pass the same `name` (`plots` in phases.rs and
/// plots.rs): a number counted per process tells them apart.
pub fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let parent = std::env::temp_dir().join("allocbench-tests");
    sweep_dead(&parent);
    let d = parent.join(format!("{name}-{n}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Removes the directories earlier test processes left (test binaries have
/// no teardown): those whose owning process is gone.
fn sweep_dead(parent: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Writes a variants file and returns its path.
pub fn variants_file(dir: &std::path::Path, text: &str) -> String {
    let p = dir.join("variants.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Debian's jemalloc (`libjemalloc.so.2`) where the dynamic linker finds
/// it; `None`, saying so, where it is not installed.
pub fn debian_jemalloc() -> Option<PathBuf> {
    let found = allocbench_allocators::library_dirs()
        .into_iter()
        .map(|d| d.join("libjemalloc.so.2"))
        .find(|p| p.exists());
    if found.is_none() {
        println!("skipped: no libjemalloc.so.2 here (scripts/install-allocators installs it)");
    }
    found
}

/// A port nothing listens on now, below the ephemeral range (from 32768)
/// so that no client connection takes it meanwhile. Every test of this
/// process takes its ports here, each a different one: two tests that ran
/// side by side could otherwise both find the same port free and both
/// start a server on it.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const FIRST: u32 = 10_000;
    const COUNT: u32 = 22_000;
    let base = std::process::id() * 97 % COUNT;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (base + n) % COUNT) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Held by each test whose processes run the interpreters of the real
/// servers of servers.rs (python3, ruby), one such test at a time: their
/// processes share the pages of the program and its libraries, so one
/// starting or stopping between servers.rs's own reading of a server's PSS
/// and allocbench's moves the server's PSS by more than the 1% compared.
/// A test that failed while holding it does not stop the others.
pub fn interpreter_pages() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}
