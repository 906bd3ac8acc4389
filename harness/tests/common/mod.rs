//! Helpers for the integration tests: run the real allocbench binary with
//! small sizes and read its JSON back.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use allocbench::result::Document;

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
    let mut args = head.to_vec();
    for pair in SMALL.chunks(2) {
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

/// Pids of live processes whose command line names a socket of harness `pid`.
pub fn workers_of(harness_pid: u32) -> Vec<i32> {
    let tag = format!("allocbench-{harness_pid}-");
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Zombies are dead already; only running processes count.
        let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
        if cmdline.contains("__worker") && cmdline.contains(&tag) && state != Some('Z') {
            out.push(pid);
        }
    }
    out
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

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let parent = std::env::temp_dir().join("allocbench-tests");
    sweep_dead(&parent);
    let d = parent.join(format!("{name}-{}", std::process::id()));
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
