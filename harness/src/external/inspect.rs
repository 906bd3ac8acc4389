//! `allocbench inspect PID…`: which allocator serves `malloc` in a running
//! process and each of its descendants, read from `/proc` without stopping
//! them: the allocator library mapped (and its version where the file
//! says), the allocator variables in the environment its program started
//! with and whether that allocator reads them, glibc's arena count (from
//! its heaps' headers, read through `/proc/PID/mem`), and PSS and USS. The
//! processes of one server (master and workers, by the tree's structure as
//! `measure` assigns them) must agree; a preload that did not take fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use allocbench_allocators::is_allocator_env;
use allocbench_allocators::settings::{Family, reader};
use procfs::process::{MMapPath, Process};

use super::check::{Environ, mapped_files, preloaded};
use super::roles::{Node, roles};
use crate::results::ProcessRole;
pub use crate::results::inspect::{InspectedProcess, InspectedTree, Inspection, Variable};
use crate::sample::stat::{Stat, all_stats};

/// Inspects each PID's tree. A PID that does not run is a usage error.
pub fn inspect(pids: &[i32]) -> anyhow::Result<Inspection> {
    crate::plans::check_proc()?;
    let stats = all_stats();
    let mut versions = VersionCache::default();
    let mut trees = Vec::new();
    for &pid in pids {
        if pid == 2 || stats.iter().any(|s| s.pid == pid && s.ppid == 2) {
            return Err(crate::error::usage(format!(
                "process {pid} is a kernel thread: no allocator to inspect"
            )));
        }
        let Some(root) = stats.iter().find(|s| s.pid == pid && !s.zombie) else {
            return Err(crate::error::usage(format!(
                "no process {pid} runs here{}",
                if stats.iter().any(|s| s.pid == pid) {
                    " (it has exited, unreaped)"
                } else {
                    ""
                }
            )));
        };
        trees.push(inspect_tree(root, &stats, &mut versions));
    }
    Ok(Inspection {
        allocbench_version: env!("CARGO_PKG_VERSION"),
        format_version: crate::results::FORMAT_VERSION,
        trees,
    })
}

fn inspect_tree(root: &Stat, stats: &[Stat], versions: &mut VersionCache) -> InspectedTree {
    let mut order: Vec<(&Stat, Option<i32>)> = vec![(root, None)];
    let mut i = 0;
    while i < order.len() {
        let pid = order[i].0.pid;
        let mut kids: Vec<&Stat> = stats
            .iter()
            // Not allocbench itself (inspecting the shell it runs under).
            .filter(|s| {
                s.ppid == pid
                    && !s.zombie
                    && s.pid != root.pid
                    && s.pid != std::process::id() as i32
            })
            .collect();
        kids.sort_by_key(|s| s.pid);
        order.extend(kids.into_iter().map(|k| (k, Some(pid))));
        i += 1;
    }
    let nodes: Vec<Node> = order
        .iter()
        .map(|(s, parent)| Node {
            pid: s.pid,
            parent: *parent,
            image: s.image,
        })
        .collect();
    let processes: Vec<InspectedProcess> = order
        .iter()
        .zip(roles(&nodes))
        .map(|((s, parent), role)| inspect_process(s, *parent, role, versions))
        .collect();
    let problems = problems(&processes);
    InspectedTree {
        pid: root.pid,
        processes,
        problems,
    }
}

fn inspect_process(
    s: &Stat,
    parent: Option<i32>,
    role: ProcessRole,
    versions: &mut VersionCache,
) -> InspectedProcess {
    let mut errors = Vec::new();
    let maps = Process::new(s.pid).and_then(|p| p.maps());
    let (mapped, heaps, readable) = match maps {
        Ok(maps) => {
            let heaps = heap_candidates(&maps);
            (mapped_files(maps), heaps, true)
        }
        Err(e) => {
            errors.push(format!("/proc/{}/maps: {e}", s.pid));
            (Vec::new(), Vec::new(), false)
        }
    };
    let (entries, variables_unread) = match Environ::read(s.pid) {
        Environ::Read(e) | Environ::Inherited(e) => (e, None),
        Environ::Unknown(why) => (Vec::new(), Some(why)),
    };
    let preload: Vec<PathBuf> = entries
        .iter()
        .find(|(k, _)| k == "LD_PRELOAD")
        .map(|(_, v)| preloaded(v))
        .unwrap_or_default();
    let (family, library) = serving(&mapped, &preload);
    if !readable {
        // Nothing read: no allocator, version or arena count to tell.
        return InspectedProcess {
            pid: s.pid,
            parent,
            role,
            command: s.comm.clone(),
            allocator: "unknown".into(),
            library: None,
            version: None,
            variables: Vec::new(),
            variables_unread: Some("its memory maps could not be read".into()),
            arenas: None,
            pss: None,
            uss: None,
            errors,
        };
    }
    let version = match (&library, family) {
        (Some(lib), Family::Jemalloc) => versions.jemalloc(lib),
        (None, Family::Glibc) => mapped
            .iter()
            .find(|p| {
                p.file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| f.starts_with("libc.so") || f.starts_with("libc-"))
            })
            .and_then(|libc| versions.glibc(libc)),
        _ => None,
    };
    let variables = entries
        .iter()
        .filter(|(k, _)| is_allocator_env(k))
        .map(|(k, v)| {
            let by = reader(k, v);
            Variable {
                name: k.clone(),
                value: v.clone(),
                read_by: by.map(|f| f.name().to_string()),
                read_here: by.is_none_or(|f| f == family),
            }
        })
        .collect();
    let arenas = match family {
        Family::Glibc if library.is_none() => match glibc_arenas(s.pid, &heaps) {
            Ok(n) => Some(n),
            Err(e) => {
                errors.push(e.to_string());
                None
            }
        },
        _ => None,
    };
    let (pss, uss) = match crate::sample::smaps::sample(s.pid) {
        Ok(m) => (Some(m.pss), Some(m.uss)),
        Err(e) => {
            errors.push(e.to_string());
            (None, None)
        }
    };
    InspectedProcess {
        pid: s.pid,
        parent,
        role,
        command: s.comm.clone(),
        allocator: family.name().to_string(),
        library,
        version,
        variables,
        variables_unread,
        arenas,
        pss,
        uss,
        errors,
    }
}

/// The allocator serving `malloc`: a preloaded allocator library that is
/// mapped (the first named), else any allocator library mapped (linked by
/// the program), else glibc's.
fn serving(mapped: &[PathBuf], preload: &[PathBuf]) -> (Family, Option<PathBuf>) {
    let family = |p: &Path| Family::of_library(&p.to_string_lossy());
    preload
        .iter()
        .filter(|p| mapped.contains(p))
        .cloned()
        .chain(mapped.iter().cloned())
        .find_map(|p| family(&p).map(|f| (f, Some(p))))
        .unwrap_or((Family::Glibc, None))
}

/// What is wrong with a tree: a server process (master or worker) whose
/// `LD_PRELOAD` names a library that is not mapped, or server processes
/// that disagree on the allocator or its variables.
fn problems(processes: &[InspectedProcess]) -> Vec<String> {
    let mut problems = Vec::new();
    let server: Vec<&InspectedProcess> = processes
        .iter()
        .filter(|p| matches!(p.role, ProcessRole::Master | ProcessRole::Worker))
        .collect();
    for p in server.iter().filter(|p| p.allocator == "unknown") {
        problems.push(format!(
            "{} {} ({}): could not be read ({}): which allocator serves it is unknown",
            p.role.name(),
            p.pid,
            p.command,
            p.errors.join("; ")
        ));
    }
    let server: Vec<&InspectedProcess> = server
        .into_iter()
        .filter(|p| p.allocator != "unknown")
        .collect();
    for p in &server {
        if let Some(v) = p.variables.iter().find(|v| v.name == "LD_PRELOAD") {
            let taken = preloaded(&v.value).iter().all(|l| {
                p.library.as_ref() == Some(l) || Family::of_library(&l.to_string_lossy()).is_none()
            });
            if !taken {
                problems.push(format!(
                    "{} {} ({}): LD_PRELOAD={} did not take: {} serves malloc (a wrong path or \
                     architecture, a static or setuid program)",
                    p.role.name(),
                    p.pid,
                    p.command,
                    v.value,
                    p.allocator
                ));
            }
        }
    }
    let key = |p: &InspectedProcess| {
        let vars: Vec<String> = p
            .variables
            .iter()
            .map(|v| format!("{}={}", v.name, v.value))
            .collect();
        (
            p.allocator.clone(),
            p.library.clone(),
            p.variables_unread.is_none().then_some(vars),
        )
    };
    if let Some(first) = server.first() {
        for p in &server[1..] {
            let (a, b) = (key(first), key(p));
            // Unread variables (a process title) agree with anything.
            if a.0 != b.0 || a.1 != b.1 || (a.2.is_some() && b.2.is_some() && a.2 != b.2) {
                problems.push(format!(
                    "{} {} ({}) and {} {} ({}) disagree: {} against {}",
                    first.role.name(),
                    first.pid,
                    first.command,
                    p.role.name(),
                    p.pid,
                    p.command,
                    first.describe(),
                    p.describe()
                ));
            }
        }
    }
    problems
}

/// glibc's heap size (`HEAP_MAX_SIZE` on 64-bit: twice the largest mmap
/// threshold): each arena but the main one lives in heaps of this size,
/// aligned to it.
const HEAP_MAX: u64 = 64 << 20;

/// Starts of the mappings that may be glibc heaps: anonymous, private,
/// aligned to [`HEAP_MAX`], and with what follows them (`---p`, the heap's
/// unused part) spanning exactly [`HEAP_MAX`].
fn heap_candidates(maps: &procfs::process::MemoryMaps) -> Vec<u64> {
    let maps: Vec<_> = maps.iter().collect();
    let anon = |m: &procfs::process::MemoryMap| matches!(m.pathname, MMapPath::Anonymous);
    let mut out = Vec::new();
    for (i, m) in maps.iter().enumerate() {
        let (start, end) = m.address;
        if !anon(m)
            || start % HEAP_MAX != 0
            || !m.perms.contains(procfs::process::MMPermissions::READ)
        {
            continue;
        }
        let mut last = end;
        for n in &maps[i + 1..] {
            if n.address.0 != last || !anon(n) || last - start >= HEAP_MAX {
                break;
            }
            last = n.address.1;
        }
        if last - start == HEAP_MAX {
            out.push(start);
        }
    }
    out
}

/// Why glibc's arenas of a process could not be counted.
#[derive(Debug, thiserror::Error)]
enum ArenaError {
    /// `/proc/PID/mem` cannot be opened.
    #[error("/proc/{pid}/mem: {source} (the arenas need it)")]
    Open {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    /// A heap's first word cannot be read.
    #[error("/proc/{pid}/mem at {heap:#x}: {source}")]
    Read {
        pid: i32,
        heap: u64,
        #[source]
        source: std::io::Error,
    },
}

/// glibc's arenas in process `pid`: the main arena, and one per distinct
/// arena pointer (`heap_info.ar_ptr`, a heap's first word) among its heaps
/// whose arena lies in one of them.
fn glibc_arenas(pid: i32, heaps: &[u64]) -> Result<u32, ArenaError> {
    if heaps.is_empty() {
        return Ok(1);
    }
    use std::os::unix::fs::FileExt;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem"))
        .map_err(|source| ArenaError::Open { pid, source })?;
    let mut arenas: Vec<u64> = Vec::new();
    for &h in heaps {
        let mut word = [0u8; 8];
        mem.read_exact_at(&mut word, h)
            .map_err(|source| ArenaError::Read {
                pid,
                heap: h,
                source,
            })?;
        let ar = u64::from_ne_bytes(word);
        let in_a_heap = heaps.iter().any(|&s| (s..s + HEAP_MAX).contains(&ar));
        if in_a_heap && !arenas.contains(&ar) {
            arenas.push(ar);
        }
    }
    Ok(1 + arenas.len() as u32)
}

/// Versions read from library files, once each.
#[derive(Default)]
struct VersionCache {
    seen: HashMap<(PathBuf, &'static str), Option<String>>,
}

/// The most of a library file searched for its version string.
const VERSION_SCAN: u64 = 64 << 20;

impl VersionCache {
    fn find(&mut self, path: &Path, what: &'static str, re: &str) -> Option<String> {
        self.seen
            .entry((path.to_path_buf(), what))
            .or_insert_with(|| {
                let file = std::fs::File::open(path).ok()?;
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(file, VERSION_SCAN),
                    &mut bytes,
                )
                .ok()?;
                let re = regex::bytes::Regex::new(re).ok()?;
                let m = re.captures(&bytes)?.get(1)?;
                Some(String::from_utf8_lossy(m.as_bytes()).into_owned())
            })
            .clone()
    }

    /// jemalloc's `JEMALLOC_VERSION`: `5.3.0-0-g<commit>`.
    fn jemalloc(&mut self, lib: &Path) -> Option<String> {
        self.find(
            lib,
            "jemalloc",
            r"\x00(\d+\.\d+\.\d+)-\d+-g[0-9a-f]{40}\x00",
        )
    }

    /// glibc's banner: `… release version 2.36.`.
    fn glibc(&mut self, libc: &Path) -> Option<String> {
        self.find(
            libc,
            "glibc",
            r"GNU C Library [^\x00]* release version (\d+\.\d+(?:\.\d+)?)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(
        pid: i32,
        role: ProcessRole,
        lib: Option<&str>,
        vars: &[(&str, &str)],
    ) -> InspectedProcess {
        let library = lib.map(PathBuf::from);
        let family = library
            .as_ref()
            .and_then(|l| Family::of_library(&l.to_string_lossy()))
            .unwrap_or(Family::Glibc);
        InspectedProcess {
            pid,
            parent: None,
            role,
            command: "srv".into(),
            allocator: family.name().into(),
            library,
            version: None,
            variables: vars
                .iter()
                .map(|(k, v)| Variable {
                    name: k.to_string(),
                    value: v.to_string(),
                    read_by: reader(k, v).map(|f| f.name().to_string()),
                    read_here: reader(k, v).is_none_or(|f| f == family),
                })
                .collect(),
            variables_unread: None,
            arenas: None,
            pss: None,
            uss: None,
            errors: Vec::new(),
        }
    }

    #[test]
    fn a_preload_that_did_not_take_and_a_disagreement_are_problems() {
        use ProcessRole::{Launcher, Master, Worker};
        let je = "/nonexistent/libjemalloc.so.2";
        let pre = [("LD_PRELOAD", je)];
        let good = [
            process(1, Launcher, None, &[]),
            process(2, Master, Some(je), &pre),
            process(3, Worker, Some(je), &pre),
        ];
        assert!(problems(&good).is_empty(), "{:?}", problems(&good));
        // A wrong path in every process: all agree, none took it.
        let missed = [
            process(2, Master, None, &pre),
            process(3, Worker, None, &pre),
        ];
        let p = problems(&missed);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains("did not take: glibc malloc serves malloc"),
            "{p:?}"
        );
        // One worker without the preload.
        let split = [
            process(2, Master, Some(je), &pre),
            process(3, Worker, None, &[]),
        ];
        let p = problems(&split);
        assert!(p.iter().any(|p| p.contains("disagree")), "{p:?}");
        // A launcher that differs is not the server.
        let launcher = [
            process(1, Launcher, None, &[("MALLOC_ARENA_MAX", "4")]),
            process(2, Master, None, &[]),
        ];
        assert!(problems(&launcher).is_empty());
    }

    #[test]
    fn a_variable_another_allocator_reads_is_marked_ignored() {
        let p = process(
            2,
            ProcessRole::Master,
            Some("/x/libjemalloc.so.2"),
            &[("MALLOC_ARENA_MAX", "2"), ("MALLOC_CONF", "narenas:2")],
        );
        assert!(!p.variables[0].read_here);
        assert!(p.variables[1].read_here);
    }
}
