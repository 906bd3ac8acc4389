//! `allocbench measure` on real servers: the Unicorn and gunicorn examples
//! (examples/unicorn, examples/gunicorn) under glibc and Debian's jemalloc,
//! loaded by wrk. Their processes and roles, the variant's library in each,
//! the figures present, and the tree's PSS at `loaded` against our own sum of
//! `/proc/PID/smaps_rollup` taken at the same moment.
//!
//! They need Debian's ruby, unicorn, gunicorn and wrk (scripts/install-servers)
//! and libjemalloc2 (scripts/install-allocators); without them each test says
//! so and passes, unless `ALLOCBENCH_REQUIRE_SERVERS=1` (as in CI).
//!
//! They run the allocbench that cargo builds for the tests: glibc and
//! jemalloc-so need no preload library of the workspace.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use allocbench::results::{CellResult, Document, ProcessRole, Status};

use crate::common::{allocbench, free_port, interpreter_pages, run_with, running_where, temp_dir};

const WORKERS: usize = 2;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

/// Whether the programs these tests run are installed; if not, says what to
/// run, and fails when `ALLOCBENCH_REQUIRE_SERVERS=1`.
fn servers_installed(programs: &[&str]) -> bool {
    let mut missing: Vec<String> = programs
        .iter()
        .filter(|p| !on_path(p))
        .map(|p| p.to_string())
        .collect();
    let mut scripts = vec!["scripts/install-servers"];
    if missing.is_empty()
        && let Err(e) = jemalloc_so().availability()
    {
        missing.push(format!("jemalloc-so ({e})"));
        scripts = vec!["scripts/install-allocators"];
    }
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{} not installed; run {}",
        missing.join(", "),
        scripts.join(" and ")
    );
    assert!(
        std::env::var("ALLOCBENCH_REQUIRE_SERVERS").as_deref() != Ok("1"),
        "{message} (required here: ALLOCBENCH_REQUIRE_SERVERS=1)"
    );
    println!("skipped: {message}");
    false
}

fn jemalloc_so() -> allocbench_allocators::Variant {
    allocbench_allocators::presets()
        .into_iter()
        .find(|v| v.name == "jemalloc-so")
        .expect("the jemalloc-so preset")
}

/// No process of the server on `port` runs once allocbench has exited (its
/// processes have `PORT` in their environment). Killed processes may take a
/// moment to be torn down.
fn assert_none_left(port: u16) {
    let var = format!("PORT={port}");
    let of_server = |dir: &Path| {
        std::fs::read(dir.join("environ"))
            .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == var.as_bytes()))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = running_where(|_, dir| of_server(dir));
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes of the server left: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the load script read right after wrk: one line per variant.
#[derive(serde::Deserialize)]
struct OwnReading {
    pids: Vec<i32>,
    pss_kib: u64,
}

/// `measure --variants glibc,jemalloc-so` on `command` (argv, with the
/// example's directory as cwd and `PORT` set), loaded by wrk through the
/// load script; returns the document and what the script read.
fn measure_server(name: &str, port: u16, command: &[String]) -> (Document, Vec<OwnReading>) {
    let dir = temp_dir(&format!("servers-{name}"));
    let json = dir.join("measure.json");
    let readings = dir.join("pss.jsonl");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/load_then_read_pss.py");
    let load = format!(
        "python3 '{}' '{}' -t1 -c4 -d2s http://127.0.0.1:{port}/",
        script.display(),
        readings.display()
    );
    let mut cmd = allocbench();
    cmd.current_dir(examples().join(name))
        .env("PORT", port.to_string())
        // gunicorn imports app.py: no __pycache__ in the repository.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args(["measure", "--variants", "glibc,jemalloc-so", "--ready"])
        .arg(port.to_string())
        .args([
            "--load", &load, "--idle", "1", "--format", "json", "--output",
        ])
        .arg(&json)
        .arg("--")
        .args(command);
    let r = run_with(&mut cmd);
    assert_none_left(port);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc: Document = serde_json::from_str(&std::fs::read_to_string(&json).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", json.display()));
    let own = std::fs::read_to_string(&readings)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (doc, own)
}

/// Every row ran; the master and its workers, each in its role; the
/// variant's library mapped; the figures present; the tree's PSS at
/// `loaded` is our own sum of smaps_rollup within 1%, over the same
/// processes.
fn assert_measured(doc: &Document, own: &[OwnReading]) {
    let variants: Vec<&str> = doc.cells.iter().map(|c| c.variant.as_str()).collect();
    assert_eq!(variants, ["glibc", "jemalloc-so"]);
    assert_eq!(own.len(), doc.cells.len(), "one reading per row");
    for (cell, own) in doc.cells.iter().zip(own) {
        let v = &cell.variant;
        assert_eq!(cell.status, Status::Ok, "{v}: {:?}", cell.error);
        let m = cell.measure.as_ref().unwrap();
        let of = |role| m.processes.iter().filter(move |p| p.role == role);
        assert_eq!(of(ProcessRole::Master).count(), 1, "{v}: {:?}", m.processes);
        assert_eq!(
            of(ProcessRole::Worker).count(),
            WORKERS,
            "{v}: {:?}",
            m.processes
        );
        assert_eq!(m.processes.len(), WORKERS + 1, "{v}: {:?}", m.processes);
        let master = of(ProcessRole::Master).next().unwrap();
        assert_eq!(master.depth, 0, "{v}: the command is the master");
        for w in of(ProcessRole::Worker) {
            assert_eq!(w.parent, Some(master.pid), "{v}: {w:?}");
        }
        if v == "jemalloc-so" {
            assert!(
                m.checks
                    .iter()
                    .any(|c| c.contains("libjemalloc.so.2 mapped")),
                "{v}: {:?}",
                m.checks
            );
        }

        let x = m.metrics.as_ref().unwrap();
        let present = [
            ("tree_pss_loaded", x.tree_pss_loaded),
            ("tree_uss_loaded", x.tree_uss_loaded),
            ("worker_uss_loaded_mean", x.worker_uss_loaded_mean),
            ("cow_copied_loaded", x.cow_copied_loaded),
        ];
        for (key, value) in present {
            assert!(value.is_some_and(|b| b > 0), "{v}: {key} {value:?}");
        }
        assert!(x.load_rps.is_some_and(|r| r > 0.0), "{v}: {:?}", x.load_rps);

        let loaded = loaded(cell);
        let mut pids: Vec<i32> = loaded.processes.iter().map(|p| p.pid).collect();
        pids.sort_unstable();
        assert_eq!(pids, own.pids, "{v}: the processes read at loaded");
        let ours = own.pss_kib as f64 * 1024.0;
        let theirs = x.tree_pss_loaded.unwrap() as f64;
        assert_eq!(theirs, loaded.tree.pss as f64);
        let off = (theirs - ours).abs() / ours;
        println!(
            "{v}: tree PSS at loaded {theirs} bytes, smaps_rollup {ours} bytes ({:+.3}%)",
            (theirs - ours) / ours * 100.0
        );
        assert!(
            off <= 0.01,
            "{v}: tree PSS at loaded {theirs} bytes, smaps_rollup read right before {ours}: {:.2}% apart",
            off * 100.0
        );
    }
}

fn loaded(cell: &CellResult) -> &allocbench::results::PhaseSample {
    cell.phases
        .iter()
        .find(|p| p.name == "loaded")
        .expect("a loaded sample")
}

#[test]
fn unicorn_under_glibc_and_jemalloc() {
    if !servers_installed(&["ruby", "unicorn", "wrk", "python3"]) {
        return;
    }
    // One server at a time, and no other python3 or ruby meanwhile.
    let _one = interpreter_pages();
    let dir = examples().join("unicorn");
    let command = [
        "unicorn".to_string(),
        "-c".into(),
        dir.join("unicorn.conf.rb").display().to_string(),
        dir.join("config.ru").display().to_string(),
    ];
    let (doc, own) = measure_server("unicorn", free_port(), &command);
    assert_measured(&doc, &own);
}

#[test]
fn gunicorn_under_glibc_and_jemalloc() {
    if !servers_installed(&["gunicorn", "wrk", "python3"]) {
        return;
    }
    // One server at a time, and no other python3 or ruby meanwhile.
    let _one = interpreter_pages();
    let port = free_port();
    let command = [
        "gunicorn".to_string(),
        "--chdir".into(),
        examples().join("gunicorn").display().to_string(),
        "--preload".into(),
        "-w".into(),
        WORKERS.to_string(),
        "-b".into(),
        format!("127.0.0.1:{port}"),
        "app:app".into(),
    ];
    let (doc, own) = measure_server("gunicorn", port, &command);
    assert_measured(&doc, &own);
}

/// A wrapper that drops `LD_PRELOAD` before it starts the server: the root
/// (`sh`) has jemalloc, the unicorn master and its workers do not, and the
/// row must say so.
#[test]
fn a_wrapper_that_drops_the_preload_fails_the_row() {
    if !servers_installed(&["ruby", "unicorn", "python3"]) {
        return;
    }
    // One server at a time, and no other python3 or ruby meanwhile.
    let _one = interpreter_pages();
    let port = free_port();
    let json = temp_dir("servers-wrapper").join("measure.json");
    let mut cmd = allocbench();
    cmd.current_dir(examples().join("unicorn"))
        .env("PORT", port.to_string())
        .args(["measure", "--variants", "jemalloc-so", "--ready"])
        .arg(port.to_string())
        .args(["--duration", "0", "--idle", "0", "--format", "json"])
        .arg("--output")
        .arg(&json)
        .args([
            "--",
            "sh",
            "-c",
            "env -u LD_PRELOAD unicorn -c unicorn.conf.rb config.ru; exit $?",
        ]);
    let r = run_with(&mut cmd);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let doc: Document = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let cell = &doc.cells[0];
    assert_eq!(cell.status, Status::Failed);
    let e = cell.error.as_deref().unwrap();
    assert!(e.contains("not in effect"), "{e}");
    assert!(e.contains("libjemalloc.so.2"), "what was missing: {e}");
    // The process named is one of unicorn's (master or worker), by pid and
    // command, not the `sh` that has the preload.
    let named: Vec<i32> = e
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let m = cell.measure.as_ref().unwrap();
    let culprit = m
        .processes
        .iter()
        .find(|p| p.command != "sh" && named.contains(&p.pid))
        .unwrap_or_else(|| panic!("no unicorn process named in: {e}\n{:?}", m.processes));
    assert!(e.contains(&culprit.command), "{e}");
    assert_none_left(port);
}
