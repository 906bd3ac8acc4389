//! `allocbench inspect PID…` on real process trees: glibc's arena count
//! against a known answer, a preload that took and one that did not, and
//! a server whose processes disagree.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::common::{self, run, temp_dir};

fn program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = temp_dir("inspect").join("threads_then_fork");
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/threads_then_fork.c");
        let ok = Command::new("cc")
            .args(["-O1", "-pthread", "-o"])
            .arg(&exe)
            .arg(src)
            .status()
            .expect("a C compiler (cc)");
        assert!(ok.success());
        exe
    })
}

/// A running tree, killed (with its children) when dropped.
struct Tree(Child);

impl Drop for Tree {
    fn drop(&mut self) {
        // The children are in the root's process group.
        // SAFETY: kill(2) on a process group id; no memory is involved.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// Starts `cmd` in its own process group and waits for its "ready" line.
fn start(cmd: &mut Command) -> Tree {
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    Tree(child)
}

fn threads_then_fork(threads: u32, forks: u32, env: &[(&str, &str)]) -> Tree {
    let mut cmd = Command::new(program());
    cmd.args([threads.to_string(), forks.to_string()]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    start(&mut cmd)
}

fn inspect(pid: u32) -> (i32, Value) {
    let r = run(&["inspect", "--format", "json", &pid.to_string()]);
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    (r.code, v["trees"][0].clone())
}

fn column<'a>(tree: &'a Value, key: &str) -> Vec<&'a Value> {
    tree["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p[key])
        .collect()
}

#[test]
fn glibc_arenas_are_counted_from_the_heaps() {
    // Four threads that malloc get four arenas besides the main one; the
    // forked children inherit them.
    let tree = threads_then_fork(4, 2, &[]);
    let (code, t) = inspect(tree.0.id());
    assert_eq!(code, 0, "{t}");
    assert_eq!(column(&t, "role"), ["master", "worker", "worker"]);
    assert_eq!(column(&t, "arenas"), [5, 5, 5], "{t}");
    assert_eq!(column(&t, "allocator")[0], "glibc malloc");
    assert!(column(&t, "pss").iter().all(|p| p.as_u64().unwrap() > 0));
    drop(tree);
    for (max, want) in [("1", 1), ("2", 2)] {
        let tree = threads_then_fork(4, 0, &[("MALLOC_ARENA_MAX", max)]);
        let (code, t) = inspect(tree.0.id());
        assert_eq!(code, 0);
        assert_eq!(column(&t, "arenas"), [want], "MALLOC_ARENA_MAX={max}: {t}");
        let var = &t["processes"][0]["variables"][0];
        assert_eq!(
            (&var["name"], &var["read_here"]),
            (&Value::from("MALLOC_ARENA_MAX"), &Value::from(true))
        );
    }
}

#[test]
fn a_preload_that_took_and_one_that_did_not() {
    let Some(je) = common::debian_jemalloc() else {
        return;
    };
    let je = je.display().to_string();
    let tree = threads_then_fork(2, 2, &[("LD_PRELOAD", &je), ("MALLOC_ARENA_MAX", "2")]);
    let (code, t) = inspect(tree.0.id());
    assert_eq!(code, 0, "{t}");
    assert_eq!(
        column(&t, "allocator"),
        ["jemalloc", "jemalloc", "jemalloc"]
    );
    let version = t["processes"][0]["version"].as_str().unwrap();
    assert!(version.split('.').count() == 3, "{version}");
    // glibc's variable under jemalloc is shown as not read; no arenas.
    let var = t["processes"][0]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "MALLOC_ARENA_MAX")
        .unwrap()
        .clone();
    assert_eq!(var["read_here"], false);
    assert_eq!(column(&t, "arenas"), [&Value::Null; 3]);
    drop(tree);

    // A path that does not exist (a multi-arch image's hard-coded one): the
    // dynamic linker says so on stderr and goes on with glibc.
    let tree = threads_then_fork(1, 1, &[("LD_PRELOAD", "/nonexistent/libjemalloc.so.2")]);
    let (code, t) = inspect(tree.0.id());
    assert_eq!(code, 1, "{t}");
    let problems = t["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{t}");
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .contains("did not take: glibc malloc serves malloc")
    );
    let r = run(&["inspect", &tree.0.id().to_string()]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("PROBLEM: master"), "{}", r.stdout);
}

#[test]
fn processes_of_one_server_that_disagree_exit_1() {
    // A shell whose two programs run with different settings.
    let script = format!(
        "MALLOC_ARENA_MAX=1 {exe} 1 0 >/dev/null & {exe} 1 0 >/dev/null & echo ready; wait",
        exe = program().display()
    );
    let tree = start(Command::new("sh").args(["-c", &script]));
    // Both programs have started their threads.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (code, t) = inspect(tree.0.id());
    assert_eq!(code, 1, "{t}");
    assert!(
        t["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("disagree")),
        "{t}"
    );
}

#[test]
fn a_pid_that_does_not_run_is_refused() {
    let r = run(&["inspect", "999999999"]);
    assert_eq!(r.code, 2);
    let r = run(&["inspect", "0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = run(&["inspect"]);
    assert_eq!(r.code, 2);
}
