//! Criterion benchmarks of the harness's own measuring costs, on real
//! processes of known size.
//!
//! - `smaps_rollup`: one [`sample::sample`] (a `/proc/PID/smaps_rollup`
//!   reading, as at every phase boundary and timeline tick) of a process with
//!   64 MiB and with 1 GiB resident.
//! - `counters`: one [`sample::sample_counters`] (`/proc/PID/status`: RSS
//!   and anonymous from the kernel's counters, as at the timeline's points
//!   between walks) of the same processes.
//! - `cow_capture`: [`CowBaseline::capture`] of a master that has 64 MiB or
//!   1 GiB inheritable, as at the `forked` boundary.
//! - `cow_scan`: [`CowBaseline::scan`] of its forked child, which inherited
//!   all of it, as at every later sample of a worker.
//! - `worker_sample`: what one sample of such a worker costs the sampler in
//!   all: its `smaps_rollup` plus the pagemap scan.
//!
//! The throughput criterion prints is bytes of memory per second: resident
//! bytes for `smaps_rollup`, bytes of mapped address range for the pagemap
//! groups (every inherited page is present, so the two are the same here).
//!
//! The processes are a small C program (`tests/c/cow_child.c`, compiled with
//! `cc` when the benchmark starts, as the CoW tests do): it maps N pages,
//! writes every one, forks a child that writes none, and both block on stdin
//! until the benchmark ends. The pages are 4 KiB (`MADV_NOHUGEPAGE`), the
//! kernel's most expensive case to walk and what allocators give a server
//! with THP set to `madvise` or `never`.
//!
//! ```sh
//! cargo bench -p allocbench --bench costs
//! cargo bench -p allocbench --bench costs -- cow_scan   # one group
//! ```

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use allocbench::sample::cow::CowBaseline;
use allocbench::sample::smaps::{sample, sample_counters};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const MIB: u64 = 1 << 20;
const SIZES: [(u64, &str); 2] = [(64 * MIB, "64MiB"), (1024 * MIB, "1GiB")];

/// The C program, compiled once into cargo's scratch directory for benches.
fn cow_child() -> &'static PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("costs_cow_child");
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/cow_child.c");
        let status = Command::new("cc")
            .args(["-O1", "-o"])
            .arg(&exe)
            .arg(src)
            .status()
            .expect("a C compiler (cc) to build the benchmark's helper program");
        assert!(status.success(), "cc failed on {src}");
        exe
    })
}

/// A master with `bytes` written and a forked child that inherited them,
/// both blocked on the master's stdin. When the benchmark exits, its end of
/// the pipe closes: the master kills its child and exits.
struct Forked {
    master: i32,
    child: i32,
    _proc: Child,
}

impl Forked {
    fn start(bytes: u64) -> Forked {
        let pages = bytes / procfs::page_size();
        let mut proc_ = Command::new(cow_child())
            .args([pages.to_string(), "0".into(), "none".into()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the helper program");
        let mut out = BufReader::new(proc_.stdout.take().expect("piped"));
        let (mut master, mut child, mut ready) = (0, 0, false);
        // The master's line and the child's, in either order; the master
        // wrote every page before it forked.
        for _ in 0..2 {
            let mut line = String::new();
            out.read_line(&mut line).expect("read the helper's output");
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.first() {
                Some(&"master") => {
                    master = w[1].parse().expect("a pid");
                    child = w[2].parse().expect("a pid");
                }
                Some(&"child") => ready = true,
                _ => panic!("unexpected line from the helper: {line:?}"),
            }
        }
        assert!(ready && master > 0 && child > 0);
        let rss = sample(master).expect("sample the helper").rss;
        assert!(
            rss >= bytes,
            "the helper has {rss} bytes resident, wanted {bytes}"
        );
        Forked {
            master,
            child,
            _proc: proc_,
        }
    }
}

/// One helper per size, started once and shared by every group.
fn helpers() -> &'static [(u64, &'static str, Forked)] {
    static HELPERS: OnceLock<Vec<(u64, &'static str, Forked)>> = OnceLock::new();
    HELPERS.get_or_init(|| {
        SIZES
            .iter()
            .map(|&(bytes, name)| (bytes, name, Forked::start(bytes)))
            .collect()
    })
}

/// One reading of each helper master by `read`, as group `group`.
fn read_master<T>(
    c: &mut Criterion,
    group: &str,
    id: &str,
    read: fn(i32) -> Result<T, allocbench::sample::smaps::SampleError>,
) {
    let mut g = c.benchmark_group(group);
    for (bytes, name, f) in helpers() {
        g.throughput(Throughput::Bytes(*bytes));
        g.bench_function(BenchmarkId::new(id, name), |b| {
            b.iter(|| read(f.master).expect("sample"))
        });
    }
    g.finish();
}

fn smaps_rollup(c: &mut Criterion) {
    read_master(c, "smaps_rollup", "sample", sample);
}

fn counters(c: &mut Criterion) {
    read_master(c, "counters", "status", sample_counters);
}

fn cow_capture(c: &mut Criterion) {
    let mut group = c.benchmark_group("cow_capture");
    for (_, name, f) in helpers() {
        let range = CowBaseline::capture(f.master)
            .expect("capture")
            .range_bytes();
        group.throughput(Throughput::Bytes(range));
        group.bench_function(BenchmarkId::new("master", name), |b| {
            b.iter(|| CowBaseline::capture(f.master).expect("capture"))
        });
    }
    group.finish();
}

fn cow_scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("cow_scan");
    for (bytes, name, f) in helpers() {
        let base = CowBaseline::capture(f.master).expect("capture");
        // The known answer: the child shares every page it inherited.
        let s = base.scan(f.child).expect("scan");
        assert!(s.cow_shared >= *bytes, "{s:?}");
        group.throughput(Throughput::Bytes(base.range_bytes()));
        group.bench_function(BenchmarkId::new("worker", name), |b| {
            b.iter(|| base.scan(f.child).expect("scan"))
        });
    }
    group.finish();
}

fn worker_sample(c: &mut Criterion) {
    let mut group = c.benchmark_group("worker_sample");
    for (bytes, name, f) in helpers() {
        let base = CowBaseline::capture(f.master).expect("capture");
        group.throughput(Throughput::Bytes(*bytes));
        group.bench_function(BenchmarkId::new("smaps_rollup+pagemap", name), |b| {
            b.iter(|| {
                let mem = sample(f.child).expect("sample");
                let cow = base.scan(f.child).expect("scan");
                (mem, cow)
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    // A 1 GiB scan can take tens of milliseconds: fewer samples keep the
    // run to about a minute; the command line overrides all of it.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = smaps_rollup, counters, cow_capture, cow_scan, worker_sample
}
criterion_main!(benches);
