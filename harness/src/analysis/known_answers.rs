//! Known answers for the figures derived from memory samples, on real
//! processes: a Python master maps and touches memory, forks one worker, and
//! the worker does exactly what each test asks (allocate, copy on write,
//! drop, unmap); the test reads both with the sampler between steps. Each
//! test would fail on a basis that does not count RAM (the workers'
//! `Anonymous`, which counts a shared page whole and ignores copies).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use super::metrics::Returned;
use crate::results::Mem;
use crate::sample::smaps::sample;

const MIB: u64 = 1 << 20;

/// The master maps `INHERITED` MiB, touches every page and forks; the worker
/// then runs one command per line of stdin and answers `ok`.
const SCRIPT: &str = r#"
import mmap, os, sys
MIB = 1 << 20
PAGE = mmap.PAGESIZE
inherited_mib = int(sys.argv[1])
inherited = mmap.mmap(-1, inherited_mib * MIB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for off in range(0, inherited_mib * MIB, PAGE):
    inherited[off] = 1
pid = os.fork()
if pid:
    print("pids", os.getpid(), pid, flush=True)
    os.waitpid(pid, 0)
    sys.exit(0)
own = None
for line in sys.stdin:
    cmd, *args = line.split()
    n = int(args[0]) * MIB if args else 0
    if cmd == "alloc":
        own = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        for off in range(0, n, PAGE):
            own[off] = 2
    elif cmd == "free":
        own.close()
    elif cmd == "copy":
        for off in range(0, n, PAGE):
            inherited[off] = 3
    elif cmd == "dontneed":
        inherited.madvise(mmap.MADV_DONTNEED, 0, n)
    elif cmd == "unmap":
        inherited.close()
    elif cmd == "exit":
        break
    print("ok", flush=True)
"#;

/// A master and its one worker, driven step by step.
struct Pair {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pids: [i32; 2],
}

impl Pair {
    fn start(inherited_mib: u64) -> Pair {
        let mut child = Command::new("python3")
            .args(["-c", SCRIPT, &inherited_mib.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let pids: Vec<i32> = line
            .split_whitespace()
            .skip(1)
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 2, "{line:?}");
        let mut pair = Pair {
            child,
            stdin,
            stdout,
            pids: [pids[0], pids[1]],
        };
        // The interpreter's own copies of the master's pages (reference
        // counts, the loop's code) are made before the first sample.
        pair.worker("warm");
        pair.worker("warm");
        pair
    }

    /// The worker runs `cmd`.
    fn worker(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ok", "{cmd}");
    }

    /// (tree, worker) now.
    fn sample(&self) -> (Mem, Mem) {
        let master = sample(self.pids[0]).unwrap();
        let worker = sample(self.pids[1]).unwrap();
        let mut tree = master;
        tree.add(&worker);
        (tree, worker)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "exit");
        let _ = self.child.wait();
    }
}

fn close(got: f64, want: f64, tolerance: f64) -> bool {
    (got - want).abs() <= tolerance
}

/// The worker allocates and touches 32 MiB, then unmaps them: all of its
/// growth is given back.
#[test]
fn what_a_worker_allocates_and_frees_is_all_returned() {
    let mut p = Pair::start(16);
    let (forked, _) = p.sample();
    p.worker("alloc 32");
    let (steady, _) = p.sample();
    p.worker("free");
    let (now, _) = p.sample();
    let r = Returned::of(&forked, &steady, &now).unwrap();
    assert!(close(r.returned, 1.0, 0.01), "{r:?}");
    assert_eq!(r.lazyfree, 0.0);
}

/// The worker allocates 8 MiB, keeps them, and drops the 32 MiB it shares
/// with the master (`MADV_DONTNEED`): no RAM is freed, so nothing is
/// returned. On the workers' `Anonymous` it would read 400%.
#[test]
fn dropping_pages_the_master_still_maps_returns_nothing() {
    let mut p = Pair::start(32);
    let (forked, w_forked) = p.sample();
    p.worker("alloc 8");
    let (steady, w_steady) = p.sample();
    p.worker("dontneed 32");
    let (now, w_now) = p.sample();
    let r = Returned::of(&forked, &steady, &now).unwrap();
    assert!(close(r.returned, 0.0, 0.02), "{r:?}");
    let old = (w_steady.anonymous as f64 - w_now.anonymous as f64)
        / (w_steady.anonymous as f64 - w_forked.anonymous as f64);
    assert!(close(old, 4.0, 0.1), "the old basis: {old}");
}

/// The worker writes 24 MiB of the master's pages (copies on write) and then
/// unmaps the inherited range: the copies are growth, and their going is
/// given back. The workers' `Anonymous` sees no growth at all.
#[test]
fn copies_on_write_are_growth_and_are_returned_when_unmapped() {
    let mut p = Pair::start(24);
    let (forked, w_forked) = p.sample();
    p.worker("copy 24");
    let (steady, w_steady) = p.sample();
    let grown = steady.pss_anon_net() - forked.pss_anon_net();
    assert!(
        close(grown as f64, (24 * MIB) as f64, (MIB / 2) as f64),
        "tree PSS grew by {grown}"
    );
    assert!(w_steady.anonymous.abs_diff(w_forked.anonymous) < MIB / 2);
    p.worker("unmap");
    let (now, _) = p.sample();
    let r = Returned::of(&forked, &steady, &now).unwrap();
    assert!(close(r.returned, 1.0, 0.02), "{r:?}");
}

/// Fragmentation's numerator is the worker's USS growth: its own pages and
/// its copies alike (16 + 8 MiB here).
#[test]
fn private_growth_counts_new_pages_and_copies() {
    let mut p = Pair::start(16);
    let (_, forked) = p.sample();
    p.worker("alloc 16");
    p.worker("copy 8");
    let (_, steady) = p.sample();
    let grown = steady.uss_net() - forked.uss_net();
    assert!(
        close(grown as f64, (24 * MIB) as f64, (MIB / 2) as f64),
        "USS grew by {grown}"
    );
}

/// A process that asks for huge pages on an aligned 64 MiB region and
/// touches it: the sample's `anon_huge` is the kernel's `AnonHugePages`,
/// whole 2 MiB pages, most of the region when THP is available.
#[test]
fn huge_pages_are_counted_as_the_kernel_counts_them() {
    let mode =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if mode.is_empty() || mode.contains("[never]") {
        eprintln!("skipped: transparent huge pages are off here ({mode:?})");
        return;
    }
    let script = r#"
import mmap, sys
MIB = 1 << 20
m = mmap.mmap(-1, 66 * MIB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
m.madvise(mmap.MADV_HUGEPAGE)
for off in range(0, 66 * MIB, mmap.PAGESIZE):
    m[off] = 1
print("ok", flush=True)
sys.stdin.readline()
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ok");
    let pid = child.id() as i32;
    let m = sample(pid).unwrap();
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    drop(child.stdin.take());
    let _ = child.wait();
    let kernel: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("AnonHugePages:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .map(|kb: u64| kb * 1024)
        .unwrap();
    assert_eq!(m.anon_huge, kernel);
    assert_eq!(m.anon_huge % (2 * MIB), 0);
    // 32 aligned 2 MiB pages fit in the region; the kernel may fall back to
    // small pages for some when it cannot find free huge ones.
    assert!(
        m.anon_huge >= 16 * MIB,
        "{} bytes on huge pages",
        m.anon_huge
    );
}
