//! Container facts: a real run inside a real cgroup records the cgroup's
//! CPU and memory limits, and glibc sizes its arenas from the CPUs online,
//! not from the affinity nor from the cgroup's CPU limit.

use std::path::{Path, PathBuf};
use std::process::Command;

use allocbench::results::{CellResult, Document};
use allocbench::sample::cgroup::{self, Place, Version};

use crate::common::*;

const GIB: u64 = 1 << 30;

/// glibc's rule on 64-bit (malloc/arena.c, `arena_get2`): new arenas while
/// there are at most `arena_test` (8 by default), then up to 8 × the CPUs
/// it counts.
fn glibc_most_arenas(arena_test: u64, cpus: u64) -> u64 {
    (arena_test + 1).max(8 * cpus)
}

/// Cgroups made for one test, removed (deepest first) when dropped, once
/// the processes in them are gone.
struct Cgroups(Vec<PathBuf>);

impl Cgroups {
    /// A child `name` and its child `leaf` in this process's own v1
    /// cgroup of `controller`; `Err` says why not (no v1 hierarchy of it, or
    /// not writable).
    fn v1(controller: &str, name: &str) -> Result<Cgroups, String> {
        let own = match cgroup::own_place(controller) {
            Place::At {
                version: Version::V1,
                dirs,
            } => dirs[0].clone(),
            other => {
                return Err(format!(
                    "no cgroup v1 {controller} hierarchy here ({other:?})"
                ));
            }
        };
        let parent = own.join(name);
        let leaf = parent.join("leaf");
        let mut made = Cgroups(Vec::new());
        for dir in [&parent, &leaf] {
            std::fs::create_dir(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
            made.0.push(dir.clone());
        }
        Ok(made)
    }

    fn parent(&self) -> &Path {
        &self.0[0]
    }

    fn leaf(&self) -> &Path {
        &self.0[1]
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            // The last process may take a moment to leave once it exited.
            for _ in 0..100 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

fn write(dir: &Path, file: &str, value: &str) {
    std::fs::write(dir.join(file), value)
        .unwrap_or_else(|e| panic!("write {value} to {}: {e}", dir.join(file).display()));
}

/// Runs allocbench with `args` in the leaves of `groups`: a shell moves
/// itself into each, then becomes allocbench.
fn run_in(groups: &[&Cgroups], args: &[&str]) -> Run {
    let mut script = String::new();
    for g in groups {
        script.push_str(&format!(
            "echo $$ > '{}' && ",
            g.leaf().join("cgroup.procs").display()
        ));
    }
    script.push_str("exec \"$0\" \"$@\"");
    run_with(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_allocbench"))
            .args(args),
    )
}

/// 24 threads of one glibc process: more than glibc's arena limit on a
/// machine of up to 2 CPUs online (16).
fn threaded_24<'a>(head: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--workload",
        "threaded",
        "--processes",
        "0",
        "--threads",
        "24",
        "--requests",
        "2400",
    ];
    args.extend_from_slice(extra);
    with_small(head, &args)
}

fn arenas(c: &CellResult) -> u64 {
    u64::from(
        c.metrics
            .as_ref()
            .expect("finished")
            .arenas
            .expect("glibc counts"),
    )
}

/// Where 24 threads and the main thread reach glibc's limit, they have
/// exactly that many arenas; elsewhere at most.
fn assert_arenas_reach(c: &CellResult, limit: u64) {
    if limit <= 24 {
        assert_eq!(arenas(c), limit, "{}", c.variant);
    } else {
        assert!(arenas(c) <= limit, "{}: {}", c.variant, arenas(c));
    }
}

#[test]
fn a_run_in_a_cgroup_records_its_limits_the_least_over_its_ancestors() {
    let name = format!("allocbench-test-{}", std::process::id());
    let cpu = match Cgroups::v1(cgroup::CPU, &name) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("skipped: cannot make a cpu cgroup: {why}");
            return;
        }
    };
    // The limit is the parent's: the leaf has none of its own.
    write(cpu.parent(), "cpu.cfs_period_us", "100000");
    write(cpu.parent(), "cpu.cfs_quota_us", "150000");
    let memory = Cgroups::v1(cgroup::MEMORY, &name)
        .inspect_err(|why| eprintln!("memory limit not tested: {why}"))
        .ok();
    if let Some(m) = &memory {
        // The least over the ancestors: the leaf's 3 GiB under 4 GiB.
        write(m.parent(), "memory.limit_in_bytes", &(4 * GIB).to_string());
        write(m.leaf(), "memory.limit_in_bytes", &(3 * GIB).to_string());
    }
    let groups: Vec<&Cgroups> = std::iter::once(&cpu).chain(&memory).collect();
    let r = run_in(
        &groups,
        &threaded_24(&["run", "--format", "json", "--variant", "glibc"], &[]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let e = &doc.environment;
    assert_eq!(e.cgroup_cpu_limit, Some(Some(1.5)));
    if memory.is_some() {
        assert_eq!(e.cgroup_memory_limit, Some(Some(3 * GIB)));
    }
    // The JSON contract: numbers under `environment`.
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(json["environment"]["cgroup_cpu_limit"], 1.5);
    // glibc counts the CPUs online; the cgroup's 1.5 CPUs round up to 2.
    let c = &doc.cells[0];
    let online = glibc_most_arenas(8, e.cpus_online as u64);
    assert_eq!(c.glibc_arena_limit, Some(online));
    assert_eq!(c.glibc_arena_limit_cgroup, Some(16));
    assert_arenas_reach(c, online);

    // Outside: this process's own cgroups, whatever their limits are, not
    // the test's.
    let r = run(&with_small(
        &["run", "--format", "json", "--variant", "glibc"],
        &["--processes", "1", "--threads", "1"],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let outside = r.doc().environment;
    let own_cpu = cgroup::cpu_limit(&cgroup::own_place(cgroup::CPU));
    assert_eq!(outside.cgroup_cpu_limit, own_cpu);
    assert_ne!(outside.cgroup_cpu_limit, Some(Some(1.5)));
    let own_memory = cgroup::memory_limit(&cgroup::own_place(cgroup::MEMORY), 4096);
    assert_eq!(outside.cgroup_memory_limit, own_memory);
    eprintln!(
        "this machine's own cgroup: CPU {:?}, memory {:?}",
        own_cpu, own_memory
    );
}

#[test]
fn under_a_one_cpu_cgroup_glibc_keeps_its_arenas_and_the_report_says_so() {
    let name = format!("allocbench-test-one-{}", std::process::id());
    let cpu = match Cgroups::v1(cgroup::CPU, &name) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("skipped: cannot make a cpu cgroup: {why}");
            return;
        }
    };
    write(cpu.parent(), "cpu.cfs_period_us", "100000");
    write(cpu.parent(), "cpu.cfs_quota_us", "100000");
    let r = run_in(
        &[&cpu],
        &threaded_24(
            &["compare", "--format", "json"],
            &["--variants", "glibc,glibc-arena2"],
        ),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: Document = r.doc();
    assert_eq!(doc.environment.cpu_limit(), Some(1.0));
    let online = doc.environment.cpus_online as u64;
    let (glibc, arena2) = (&doc.cells[0], &doc.cells[1]);
    // glibc sizes its limit from the CPUs online, not the cgroup's one CPU.
    let limit = glibc_most_arenas(8, online);
    assert_eq!(glibc.glibc_arena_limit, Some(limit));
    assert_eq!(glibc.glibc_arena_limit_cgroup, Some(9));
    assert_arenas_reach(glibc, limit);
    assert_eq!(
        (arena2.glibc_arena_limit, arena2.glibc_arena_limit_cgroup),
        (Some(2), Some(2))
    );
    assert!(arenas(arena2) <= 2);

    let dir = temp_dir("containers-report");
    let file = dir.join("one-cpu.json");
    std::fs::write(&file, &r.stdout).unwrap();
    let report = run(&["report", file.to_str().unwrap()]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert!(
        report.stdout.contains("- cgroup CPU limit 1 CPU, "),
        "{}",
        report.stdout
    );
    let sentence = format!(
        "- glibc (glibc): up to {} arenas per process (8 × {online} CPUs online); the cgroup's \
         limit of 1 CPU would give 9 (its arena test, 8, plus one) — set MALLOC_ARENA_MAX\n",
        8 * online
    );
    if online >= 2 {
        assert!(report.stdout.contains(&sentence), "{}", report.stdout);
    }
    // A variant with an arena setting gets no sentence.
    assert!(
        !report.stdout.contains("glibc-arena2)"),
        "{}",
        report.stdout
    );
}

#[test]
fn glibc_sizes_its_arenas_from_the_cpus_online_not_the_affinity() {
    // Pinned to one CPU, 24 threads still get 8 × the CPUs online; with a
    // larger arena test glibc makes that many plus one before it sizes its
    // limit (so one CPU online would allow 9, not 8).
    let dir = temp_dir("containers-arenas");
    let file = variants_file(
        &dir,
        "[variants.test20]\nbase = \"glibc\"\nenv = { GLIBC_TUNABLES = \"glibc.malloc.arena_test=20\" }\n",
    );
    let r = run(&threaded_24(
        &["compare", "--format", "json"],
        &[
            "--variants",
            "glibc,test20",
            "--variants-file",
            &file,
            "--cpus",
            "1",
        ],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let online = doc.environment.cpus_online as u64;
    for (c, arena_test) in doc.cells.iter().zip([8, 20]) {
        assert_eq!(c.cpus_allowed, Some(1));
        let limit = glibc_most_arenas(arena_test, online);
        assert_eq!(c.glibc_arena_limit, Some(limit), "{}", c.variant);
        assert_arenas_reach(c, limit);
    }
    if online == 2 {
        assert_eq!(arenas(&doc.cells[0]), 16);
        assert_eq!(arenas(&doc.cells[1]), 21);
    }
}

#[test]
fn glibc_on_one_cpu_online_makes_nine_arenas() {
    // glibc reads the CPUs online from /sys/devices/system/cpu/online: in a
    // mount namespace of its own, a file saying "0" over it makes glibc
    // count one CPU. It then makes 9 arenas (its arena test, 8, plus one)
    // before it sizes its limit of 8 × 1.
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("skipped: a mount namespace of its own needs root");
        return;
    }
    let dir = temp_dir("containers-online");
    let online = dir.join("online");
    std::fs::write(&online, "0\n").unwrap();
    let script = format!(
        "mount --bind '{}' /sys/devices/system/cpu/online && exec \"$0\" \"$@\"",
        online.display()
    );
    let unshared = Command::new("unshare")
        .args(["-m", "mount", "--bind"])
        .args([&online, Path::new("/sys/devices/system/cpu/online")])
        .stderr(std::process::Stdio::null())
        .status();
    if !unshared.is_ok_and(|s| s.success()) {
        eprintln!("skipped: this machine does not let root bind-mount in a mount namespace");
        return;
    }
    let r = run_with(
        Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .arg(env!("CARGO_BIN_EXE_allocbench"))
            .args(threaded_24(
                &["run", "--format", "json", "--variant", "glibc"],
                &[],
            )),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(arenas(&r.doc().cells[0]), glibc_most_arenas(8, 1));
    assert_eq!(glibc_most_arenas(8, 1), 9);
}
