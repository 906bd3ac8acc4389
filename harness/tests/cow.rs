//! Copy-on-write accounting with known answers: a real master maps N pages
//! and forks; its child writes exactly K of them, reads them all, or does
//! nothing; the pagemap scan must count exactly that.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use allocbench::cow::{CowBaseline, MappingKind};

/// Compiles the test's C program once per test process.
fn cow_child() -> &'static std::path::Path {
    static EXE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    EXE.get_or_init(|| {
        let dir = common::temp_dir("cow-child");
        let exe = dir.join("cow_child");
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/cow_child.c");
        let status = Command::new("cc")
            .args(["-O1", "-o"])
            .arg(&exe)
            .arg(src)
            .status()
            .expect("a C compiler (cc) to build the test program");
        assert!(status.success());
        exe
    })
}

struct Forked {
    master: i32,
    child: i32,
    /// Start of the N-page mapping in both processes.
    addr: u64,
    proc_: std::process::Child,
}

fn fork_with(n: u64, k: u64, mode: &str) -> Forked {
    let mut proc_ = Command::new(cow_child())
        .args([n.to_string(), k.to_string(), mode.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(proc_.stdout.take().unwrap());
    let (mut master, mut child, mut addr, mut ready) = (0, 0, 0, false);
    // The master's line and the child's line, in either order.
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.first() {
            Some(&"master") => {
                master = w[1].parse().unwrap();
                child = w[2].parse().unwrap();
                addr = u64::from_str_radix(w[3], 16).unwrap();
            }
            Some(&"child") => ready = true,
            _ => panic!("unexpected line {line:?}"),
        }
    }
    assert!(ready && master > 0 && child > 0);
    Forked {
        master,
        child,
        addr,
        proc_,
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        let _ = self.proc_.kill();
        let _ = self.proc_.wait();
    }
}

const N: u64 = 512;

/// (copied, shared) pages of the N-page mapping, and copied pages of
/// everything the child inherited.
fn scan(f: &Forked) -> (u64, u64, u64) {
    let base = CowBaseline::capture(f.master).unwrap();
    let all = base.scan(f.child).unwrap();
    let mapping = base
        .restricted_to(f.addr, f.addr + N * 4096)
        .scan(f.child)
        .unwrap();
    let anon = mapping.cow_by_mapping[&MappingKind::Anonymous];
    (anon.copied_pages, anon.shared_pages, all.cow_copied_pages)
}

#[test]
fn a_child_that_writes_k_pages_copied_exactly_k() {
    let f = fork_with(N, 37, "write");
    let (anon_copied, anon_shared, all_copied) = scan(&f);
    assert_eq!(anon_copied, 37);
    assert_eq!(anon_shared, N - 37);
    // Beyond the K pages the child copies only what fork and its own code
    // write: a stack page or two, libc's data and the thread's TLS block.
    assert!(all_copied - anon_copied <= 8, "{all_copied}");
}

#[test]
fn a_child_that_writes_nothing_copied_nothing_of_the_mapping() {
    let f = fork_with(N, 0, "none");
    let (anon_copied, anon_shared, all_copied) = scan(&f);
    assert_eq!(anon_copied, 0);
    assert_eq!(anon_shared, N);
    assert!(all_copied <= 8, "{all_copied}");
}

#[test]
fn a_child_that_reads_every_page_copied_none() {
    let f = fork_with(N, 0, "read");
    let (anon_copied, anon_shared, _) = scan(&f);
    assert_eq!(anon_copied, 0);
    assert_eq!(anon_shared, N);
}

#[test]
fn a_gone_process_is_an_error_not_a_zero() {
    let f = fork_with(8, 0, "none");
    let base = CowBaseline::capture(f.master).unwrap();
    let child = f.child;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), nix::sys::signal::SIGKILL).unwrap();
    // Dead (a zombie until reaped, or gone): no memory to scan either way.
    while std::fs::read_to_string(format!("/proc/{child}/stat"))
        .map(|s| !s.rsplit(") ").next().unwrap_or("").starts_with('Z'))
        .unwrap_or(false)
    {
        std::thread::yield_now();
    }
    assert!(base.scan(child).is_err());
}
