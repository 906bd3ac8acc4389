//! Copy-on-write accounting with known answers: a real master maps N pages
//! (anonymous, brk heap, stack or a private file mapping) and forks; its
//! child writes exactly K of them, reads them all, does nothing or maps K
//! new pages; the pagemap scan must count exactly that. The same blocked
//! processes cross-check the harness's smaps_rollup readings and tree sums
//! against a plain reading of /proc.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use allocbench::results::cow::{CowCount, CowSample, MappingKind};
use allocbench::results::{ProcessRole, Status};
use allocbench::sample::cow::CowBaseline;
use allocbench::sample::timeline::{TreeState, sample_tree};

use crate::common;

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
    fork_kind(n, k, mode, "anon")
}

/// As [`fork_with`], the N pages being of `kind` (anon, heap, stack, file).
fn fork_kind(n: u64, k: u64, mode: &str, kind: &str) -> Forked {
    let mut proc_ = Command::new(cow_child())
        .args([
            n.to_string(),
            k.to_string(),
            mode.to_string(),
            kind.to_string(),
        ])
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

/// The counts of `kind` in the child, over the N-page mapping alone and
/// over everything it inherited.
fn scan_kind(f: &Forked, kind: MappingKind) -> (CowCount, CowSample) {
    let base = CowBaseline::capture(f.master).unwrap();
    let all = base.scan(f.child).unwrap();
    let mapping = base
        .restricted_to(f.addr, f.addr + N * 4096)
        .scan(f.child)
        .unwrap();
    assert_eq!(
        mapping.cow_by_mapping.keys().collect::<Vec<_>>(),
        [&kind],
        "the N pages are one {kind:?} mapping: {mapping:?}"
    );
    (mapping.cow_by_mapping[&kind], all)
}

#[test]
fn heap_pages_a_child_writes_are_counted_as_heap() {
    // The master grows its brk heap by N pages with sbrk and writes them.
    let f = fork_kind(N, 41, "write", "heap");
    let (heap, all) = scan_kind(&f, MappingKind::Heap);
    assert_eq!(heap.copied_pages, 41);
    assert_eq!(heap.shared_pages, N - 41);
    // The heap holds nothing else the child writes; nothing else copies
    // more than fork's few pages.
    assert_eq!(all.cow_by_mapping[&MappingKind::Heap], heap);
    assert!(all.cow_copied_pages - heap.copied_pages <= 8, "{all:?}");
}

#[test]
fn stack_pages_a_child_writes_are_counted_as_stack() {
    // N pages of an array in main's frame. The child's own calls after the
    // fork (write, snprintf, read) run below it, on stack pages the master's
    // fork() used: those few are the child's copies too.
    let f = fork_kind(N, 43, "write", "stack");
    let (stack, _) = scan_kind(&f, MappingKind::Stack);
    assert!(
        (43..=43 + 4).contains(&stack.copied_pages),
        "{} stack pages copied",
        stack.copied_pages
    );
    assert!(stack.shared_pages >= N - 43, "{stack:?}");

    let quiet = fork_kind(N, 0, "none", "stack");
    let (stack, _) = scan_kind(&quiet, MappingKind::Stack);
    assert!(stack.copied_pages <= 4, "{stack:?}");
    assert!(stack.shared_pages >= N, "{stack:?}");
}

#[test]
fn file_pages_a_child_writes_are_counted_as_file() {
    // A MAP_PRIVATE mapping of a file: the master's writes made every page
    // its private copy, shared with the child after the fork.
    let f = fork_kind(N, 47, "write", "file");
    let (file, all) = scan_kind(&f, MappingKind::File);
    assert_eq!(file.copied_pages, 47);
    assert_eq!(file.shared_pages, N - 47);
    assert!(all.cow_copied_pages - file.copied_pages <= 8, "{all:?}");
}

#[test]
fn new_pages_a_child_maps_are_new_not_copied() {
    // The child maps and writes M pages of its own after the fork.
    const M: u64 = 300;
    let f = fork_with(N, M, "new");
    let (anon_copied, anon_shared, all_copied) = scan(&f);
    assert_eq!((anon_copied, anon_shared), (0, N));
    assert!(all_copied <= 8, "{all_copied}");
    let new = CowBaseline::capture(f.master)
        .unwrap()
        .scan(f.child)
        .unwrap()
        .cow_new
        / 4096;
    // Beyond the M pages, stack pages below the deepest the master used.
    assert!((M..=M + 4).contains(&new), "{new} pages new");
}

/// `Pss`, `Pss_Anon`, `Pss_File`, `Rss` (bytes) of a plain reading of
/// `/proc/PID/smaps_rollup`.
fn rollup_by_hand(pid: i32) -> [u64; 4] {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    ["Pss", "Pss_Anon", "Pss_File", "Rss"].map(|name| kb_field(&text, name))
}

fn kb_field(text: &str, name: &str) -> u64 {
    let rest = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name}: line in\n{text}"));
    let kb = rest.trim().strip_suffix("kB").unwrap().trim();
    kb.parse::<u64>().unwrap() * 1024
}

/// Runs `read` between two plain readings of the processes until the two
/// agree: file-backed PSS divides a library's pages among every process on
/// the machine that maps them, and other processes come and go. The
/// anonymous figures of the blocked tree do not move.
fn between_equal_readings<R>(pids: &[i32], mut read: impl FnMut() -> R) -> (Vec<[u64; 4]>, R) {
    for _ in 0..50 {
        let before: Vec<_> = pids.iter().map(|&p| rollup_by_hand(p)).collect();
        let r = read();
        let after: Vec<_> = pids.iter().map(|&p| rollup_by_hand(p)).collect();
        if before == after {
            return (before, r);
        }
    }
    panic!("smaps_rollup of {pids:?} never read the same twice");
}

#[test]
fn pss_of_master_and_child_match_a_plain_reading_and_sum_to_the_tree() {
    const K: u64 = 101;
    let f = fork_with(N, K, "write");
    let pids = [f.master, f.child];

    let (hand, lib) = between_equal_readings(&pids, || {
        pids.map(|p| allocbench::sample::smaps::sample(p).unwrap())
    });
    for (h, m) in hand.iter().zip(&lib) {
        assert_eq!([m.pss, m.pss_anon, m.pss_file, m.rss], *h);
    }

    let state = TreeState {
        master: f.master,
        workers: vec![(f.child, 0)],
        ..TreeState::default()
    };
    let (hand, tree) = between_equal_readings(&pids, || sample_tree(&state, 0.0));
    let sum = |i: usize| hand.iter().map(|h| h[i]).sum::<u64>();
    assert_eq!(tree.tree.pss, sum(0));
    assert_eq!(tree.tree.pss_anon, sum(1));
    assert_eq!(tree.tree.pss_file, sum(2));
    assert_eq!(tree.tree.rss, sum(3));
    assert_eq!(tree.processes.len(), 2);

    // The known answer, from each process's smaps entry of the N pages:
    // the K pages the child wrote are a page of each process's own, the
    // N - K others half a page in each: N + K pages between them.
    let pss_of_mapping = |pid: i32| {
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
        let head = format!("{:x}-", f.addr);
        // The first Pss line after the mapping's header is its own.
        let entry: String = smaps
            .lines()
            .skip_while(|l| !l.starts_with(&head))
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect();
        kb_field(&entry, "Pss")
    };
    assert_eq!(
        pss_of_mapping(f.master) + pss_of_mapping(f.child),
        (N + K) * 4096
    );
}

/// (copied, inherited) pages of `kind`, summed over the workers at `steady`.
fn workers_at_steady(cell: &allocbench::results::CellResult, kind: MappingKind) -> (u64, u64) {
    let steady = cell.phases.iter().find(|p| p.name == "steady").unwrap();
    let mut workers = 0;
    let (mut copied, mut inherited) = (0, 0);
    for p in &steady.processes {
        if p.role != ProcessRole::Worker {
            continue;
        }
        workers += 1;
        let c = p
            .cow
            .as_ref()
            .unwrap_or_else(|| panic!("{:?}", p.cow_missed));
        let k = c.cow_by_mapping.get(&kind).copied().unwrap_or_default();
        copied += k.copied_pages;
        inherited += k.copied_pages + k.shared_pages;
    }
    assert_eq!(workers, 2, "{} {}", cell.variant, cell.prefork);
    (copied, inherited)
}

#[test]
fn the_cow_workload_copies_the_glibc_heap_unless_frozen() {
    let r = common::run(&[
        "compare",
        "--format",
        "json",
        "--workload",
        "cow",
        "--static-mib",
        "4",
        "--requests",
        "2000",
        "--idle",
        "0",
        "--prefork",
        "none,trim,freeze",
        "--variants",
        "glibc,jemalloc",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();

    // One cell per variant × hook, each carrying its hook.
    let mut cells: Vec<(&str, &str)> = json["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["variant"].as_str().unwrap(),
                c["prefork"].as_str().unwrap(),
            )
        })
        .collect();
    cells.sort();
    let mut expect = vec![];
    for v in ["glibc", "jemalloc"] {
        for h in ["freeze", "none", "trim"] {
            expect.push((v, h));
        }
    }
    assert_eq!(cells, expect);
    for c in &doc.cells {
        assert_eq!(
            c.status,
            Status::Ok,
            "{} {}: {:?}",
            c.variant,
            c.prefork,
            c.error
        );
    }

    // A cell's metrics.cow_copied is the sum of its workers' cow_copied at
    // steady, read from the JSON itself (as are cow_shared and cow_new).
    for c in json["cells"].as_array().unwrap() {
        let steady = c["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "steady")
            .unwrap();
        for key in ["cow_copied", "cow_shared", "cow_new"] {
            let sum: u64 = steady["processes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["role"] == "worker")
                .map(|p| p[key].as_u64().unwrap())
                .sum();
            assert_eq!(
                c["metrics"][key].as_u64(),
                Some(sum),
                "{key} of {}",
                c["variant"]
            );
        }
        assert!(c["metrics"]["cow_copied"].as_u64().unwrap() > 0);
    }

    let cell = |v: &str, h: &str| {
        doc.cells
            .iter()
            .find(|c| c.variant == v && c.prefork.name() == h)
            .unwrap()
    };
    let copied = |v: &str, h: &str| cell(v, h).metrics.as_ref().unwrap().cow_copied.unwrap();
    let heap = |v: &str, h: &str| workers_at_steady(cell(v, h), MappingKind::Heap);

    // glibc, master's frees before the fork: the workers' first mallocs
    // consolidate and sort the free chunks spread over the inherited heap,
    // and copy most of its pages.
    let (none_copied, none_heap) = heap("glibc", "none");
    assert!(
        none_copied * 10 >= none_heap * 6,
        "glibc none: {none_copied} of {none_heap} heap pages copied"
    );
    // The master freed nothing: no free chunk to sort, almost no copy.
    let (frozen, frozen_heap) = heap("glibc", "freeze");
    assert!(
        frozen * 20 <= none_copied && frozen * 50 <= frozen_heap,
        "glibc freeze: {frozen} of {frozen_heap} heap pages copied (none: {none_copied})"
    );
    // malloc_trim(0) consolidates, but the free chunks it leaves in the
    // unsorted bin are sorted by the worker's mallocs all the same (glibc
    // 2.36 here); recorded, not pinned, as it depends on glibc's version.
    let (trimmed, trimmed_heap) = heap("glibc", "trim");
    eprintln!("glibc trim: {trimmed} of {trimmed_heap} heap pages copied (none: {none_copied})");

    // jemalloc keeps its metadata apart from the objects: little copied
    // under either hook, nothing of the brk heap it does not use.
    for h in ["none", "freeze"] {
        let (je_heap, _) = heap("jemalloc", h);
        assert!(je_heap <= 2, "jemalloc {h}: {je_heap} heap pages copied");
        assert!(
            copied("jemalloc", h) * 4 <= copied("glibc", "none"),
            "jemalloc {h}: {} bytes copied, glibc none {}",
            copied("jemalloc", h),
            copied("glibc", "none")
        );
        let (je_anon, je_inherited) =
            workers_at_steady(cell("jemalloc", h), MappingKind::Anonymous);
        assert!(
            je_anon * 100 <= je_inherited * 15,
            "jemalloc {h}: {je_anon} of {je_inherited} anonymous pages copied"
        );
    }
}
