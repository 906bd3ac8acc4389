//! Is the variant in effect in the measured command? Checked in every
//! process of the tree as it is first seen, and again after it runs
//! another program (exec): the preloaded library is mapped
//! (`/proc/PID/maps`), each variable the variant sets is in its
//! environment with its value (`/proc/PID/environ` as it was when the
//! program started), no other allocator variable is, and a variant that
//! disables THP has it disabled (`/proc/PID/status`). The tracker decides
//! which processes must pass (the server's: master and workers).

use std::path::{Path, PathBuf};

use allocbench_allocators::{Launch, is_allocator_env};
use procfs::process::{MMapPath, Process};

/// Libraries whose presence in a process means an allocator other than
/// glibc's may serve it.
const ALLOCATOR_LIBRARIES: &[&str] = &[
    "libjemalloc",
    "libtcmalloc",
    "libmimalloc",
    "libsnmalloc",
    "liballocbench_",
];

/// What the variant must show in each process of the server.
#[derive(Debug, Clone)]
pub struct Expect {
    pub variant: String,
    pub launch: Launch,
    pub thp_disable: bool,
    /// The preloaded library, resolved as the dynamic linker maps it.
    library: Option<PathBuf>,
}

impl Expect {
    pub fn new(variant: &str, launch: &Launch, thp_disable: bool) -> Expect {
        let library = launch
            .set
            .iter()
            .find(|(k, _)| k == "LD_PRELOAD")
            .and_then(|(_, v)| preloaded(v).into_iter().next());
        Expect {
            variant: variant.to_string(),
            launch: launch.clone(),
            thp_disable,
            library,
        }
    }
}

/// The libraries an `LD_PRELOAD` value names (separated by spaces or
/// colons, as the dynamic linker reads it), each resolved as it maps them.
pub fn preloaded(value: &str) -> Vec<PathBuf> {
    value
        .split([' ', ':'])
        .filter(|p| !p.is_empty())
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.into()))
        .collect()
}

/// The environment a process's program started with, as far as known.
#[derive(Debug, Clone, PartialEq)]
pub enum Environ {
    /// Read from `/proc/PID/environ` when the program started (first seen,
    /// or just after an exec).
    Read(Vec<(String, String)>),
    /// Its parent's, inherited by a fork without exec (the process's own
    /// block was overwritten by a process title).
    Inherited(Vec<(String, String)>),
    /// Unknown: the block was overwritten (a process title) or unreadable.
    Unknown(String),
}

impl Environ {
    /// Reads process `pid`'s block now.
    pub fn read(pid: i32) -> Environ {
        match std::fs::read(format!("/proc/{pid}/environ")) {
            Ok(block) => Environ::of(&block),
            Err(e) => Environ::Unknown(format!("/proc/{pid}/environ: {e}")),
        }
    }

    pub fn of(block: &[u8]) -> Environ {
        match parse_environ(block) {
            Some(e) => Environ::Read(e),
            None => Environ::Unknown(
                "its environment block was overwritten (a process title, e.g. setproctitle)".into(),
            ),
        }
    }

    /// What a forked child inherits (its variables are its parent's).
    pub fn inherited(&self) -> Option<Environ> {
        match self {
            Environ::Read(e) | Environ::Inherited(e) => Some(Environ::Inherited(e.clone())),
            Environ::Unknown(_) => None,
        }
    }
}

/// How a process fared.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// In effect: what was checked.
    InEffect(Vec<String>),
    /// Not in effect: what is missing or wrong.
    NotInEffect(String),
    /// The process could not be read (gone, or not allowed).
    Unknown(String),
}

impl Verdict {
    /// The outcome in a line: `in effect: …`, `not in effect: …` or `not
    /// checked: …`.
    pub fn describe(&self) -> String {
        match self {
            Verdict::InEffect(c) => format!("in effect: {}", c.join(", ")),
            Verdict::NotInEffect(why) => format!("not in effect: {why}"),
            Verdict::Unknown(why) => format!("not checked: {why}"),
        }
    }
}

/// Why a process could not be checked (a [`Verdict::Unknown`]'s reason).
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("cannot read process {pid}: {source}")]
    Process {
        pid: i32,
        #[source]
        source: procfs::ProcError,
    },
    #[error("cannot read /proc/{pid}/{file}: {source}")]
    File {
        pid: i32,
        file: &'static str,
        #[source]
        source: procfs::ProcError,
    },
}

/// Checks process `pid`, whose program started with `environ`.
pub fn check(expect: &Expect, pid: i32, environ: &Environ) -> Verdict {
    let file = |file| move |source| ReadError::File { pid, file, source };
    let read = || -> Result<(Vec<PathBuf>, Option<bool>), ReadError> {
        let process = Process::new(pid).map_err(|source| ReadError::Process { pid, source })?;
        let maps = process.maps().map_err(file("maps"))?;
        let mapped = mapped_files(maps);
        let thp = if expect.thp_disable {
            process.status().map_err(file("status"))?.thp_enabled
        } else {
            None
        };
        Ok((mapped, thp))
    };
    match read() {
        Ok((mapped, thp)) => {
            let mapped: Vec<&Path> = mapped.iter().map(PathBuf::as_path).collect();
            judge(expect, &mapped, environ, thp)
        }
        Err(e) => Verdict::Unknown(e.to_string()),
    }
}

/// The files a process maps, each once per run of mappings.
pub fn mapped_files(maps: procfs::process::MemoryMaps) -> Vec<PathBuf> {
    let mut mapped: Vec<PathBuf> = maps
        .into_iter()
        .filter_map(|m| match m.pathname {
            MMapPath::Path(p) => Some(p),
            _ => None,
        })
        .collect();
    mapped.dedup();
    mapped
}

/// [`check`] on what was read of the process: its mapped files, the
/// environment its program started with, and (for a variant that disables
/// THP) its `THP_enabled`.
fn judge(expect: &Expect, mapped: &[&Path], environ: &Environ, thp: Option<bool>) -> Verdict {
    let mut checks = Vec::new();
    let mut wrong = Vec::new();
    match &expect.library {
        Some(want) if mapped.contains(&want.as_path()) => {
            checks.push(format!("{} mapped", want.display()))
        }
        Some(want) => wrong.push(format!(
            "{} is not mapped (the dynamic linker ignored LD_PRELOAD: a static or setuid \
             program, or a wrapper that changed the environment)",
            want.display()
        )),
        None => {
            let mut others: Vec<String> = mapped
                .iter()
                .filter_map(|p| p.file_name()?.to_str())
                .filter(|f| ALLOCATOR_LIBRARIES.iter().any(|a| f.starts_with(a)))
                .map(String::from)
                .collect();
            others.dedup();
            if !others.is_empty() {
                checks.push(format!(
                    "maps {} (linked by the program itself, or preloaded through \
                     /etc/ld.so.preload): glibc malloc may not serve it",
                    others.join(", ")
                ));
            }
        }
    }
    if expect.thp_disable {
        match thp {
            Some(false) => checks.push("THP disabled (THP_enabled: 0)".into()),
            Some(true) => wrong.push("THP is enabled (THP_enabled: 1 in its status)".into()),
            // An ending process's status has no THP_enabled; this
            // kernel's has it for a live one.
            None if thp_said() => {
                return Verdict::Unknown("no THP_enabled in its status (it was ending)".into());
            }
            None => wrong.push(
                "this kernel does not say whether THP is disabled (no THP_enabled in its status)"
                    .into(),
            ),
        }
    }
    let (entries, when) = match environ {
        Environ::Read(e) => (Some(e), ""),
        Environ::Inherited(e) => (Some(e), " (its parent's, inherited by the fork)"),
        Environ::Unknown(why) => {
            checks.push(format!("variables not checked: {why}"));
            (None, "")
        }
    };
    if let Some(entries) = entries {
        for (k, v) in &expect.launch.set {
            match entries.iter().find(|(ek, _)| ek == k) {
                Some((_, ev)) if ev == v => checks.push(format!("{k}={v}{when}")),
                Some((_, ev)) => wrong.push(format!(
                    "{k}={ev} in its environment, not {v} (the command changed it)"
                )),
                None => wrong.push(format!(
                    "{k} is not in its environment (the command cleared it)"
                )),
            }
        }
        for (k, v) in entries.iter().filter(|(k, _)| {
            is_allocator_env(k) && !expect.launch.set.iter().any(|(lk, _)| lk == k)
        }) {
            wrong.push(format!(
                "{k}={v} in its environment, which the variant does not set (the command sets \
                 it itself; define a variant with it)"
            ));
        }
        if wrong.is_empty() {
            checks.push(format!("no other allocator variable{when}"));
        }
    }
    if wrong.is_empty() {
        Verdict::InEffect(checks)
    } else {
        Verdict::NotInEffect(wrong.join("; "))
    }
}

/// Whether this kernel gives `THP_enabled` in a process's status.
fn thp_said() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| s.contains("\nTHP_enabled:"))
}

/// `NAME=VALUE` entries of an environment block; `None` when the block is
/// not one any more (a process title written over it leaves entries
/// without `=` or runs of NULs).
fn parse_environ(block: &[u8]) -> Option<Vec<(String, String)>> {
    let block = block.strip_suffix(b"\0").unwrap_or(block);
    if block.is_empty() {
        return Some(Vec::new());
    }
    block
        .split(|&b| b == 0)
        .map(|e| {
            let e = String::from_utf8_lossy(e);
            let (k, v) = e.split_once('=')?;
            (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_blocks_parse_or_are_seen_as_overwritten() {
        assert_eq!(
            parse_environ(b"A=1\0B=x=y\0").unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
        assert_eq!(parse_environ(b"").unwrap(), vec![]);
        // A process title over the block, padded with NULs.
        assert!(parse_environ(b"gunicorn: master [app:app]\0\0\0\0").is_none());
        assert!(parse_environ(b"A=1\0\0\0").is_none());
    }

    fn expect(set: &[(&str, &str)]) -> Expect {
        let launch = Launch {
            set: set
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        Expect::new("v", &launch, false)
    }

    fn in_effect(v: Verdict) -> Vec<String> {
        match v {
            Verdict::InEffect(c) => c,
            other => panic!("expected in effect, got {other:?}"),
        }
    }

    fn not_in_effect(v: Verdict) -> String {
        match v {
            Verdict::NotInEffect(why) => why,
            other => panic!("expected not in effect, got {other:?}"),
        }
    }

    #[test]
    fn judged_on_the_environment_and_the_mappings() {
        let arena2 = expect(&[("MALLOC_ARENA_MAX", "2")]);
        let env = |b: &[u8]| Environ::of(b);
        let ok = judge(&arena2, &[], &env(b"PATH=/bin\0MALLOC_ARENA_MAX=2\0"), None);
        assert_eq!(
            in_effect(ok),
            vec!["MALLOC_ARENA_MAX=2", "no other allocator variable"]
        );
        let wrong = judge(&arena2, &[], &env(b"MALLOC_ARENA_MAX=8\0"), None);
        assert!(not_in_effect(wrong).contains("MALLOC_ARENA_MAX=8 in its environment, not 2"));
        let gone = judge(&arena2, &[], &env(b"PATH=/bin\0"), None);
        assert!(not_in_effect(gone).contains("MALLOC_ARENA_MAX is not in its environment"));
        let extra = judge(&expect(&[]), &[], &env(b"MALLOC_ARENA_MAX=1\0"), None);
        assert!(not_in_effect(extra).contains("which the variant does not set"));

        // A process title over the block: not checked, not failed; a forked
        // child's variables are its parent's.
        let title = env(b"gunicorn: master [app:app]\0\0\0\0");
        assert!(in_effect(judge(&arena2, &[], &title, None))[0].contains("not checked"));
        let parent = env(b"MALLOC_ARENA_MAX=2\0");
        let inherited = parent.inherited().unwrap();
        assert!(
            in_effect(judge(&arena2, &[], &inherited, None))[0]
                .ends_with("(its parent's, inherited by the fork)")
        );
        assert_eq!(title.inherited(), None);

        let lib = Path::new("/opt/lib/libjemalloc.so.2");
        let preload = expect(&[("LD_PRELOAD", "/opt/lib/libjemalloc.so.2")]);
        let penv = env(b"LD_PRELOAD=/opt/lib/libjemalloc.so.2\0");
        assert_eq!(
            in_effect(judge(&preload, &[lib], &penv, None))[0],
            "/opt/lib/libjemalloc.so.2 mapped"
        );
        let ignored = not_in_effect(judge(&preload, &[], &penv, None));
        assert!(ignored.contains("is not mapped"), "{ignored}");
        // `env -u LD_PRELOAD`: both are said.
        let dropped = not_in_effect(judge(&preload, &[], &env(b"PATH=/bin\0"), None));
        assert!(
            dropped.contains("is not mapped") && dropped.contains("LD_PRELOAD is not in its"),
            "{dropped}"
        );
        // glibc with an allocator library mapped anyway: noted, not failed.
        let noted = in_effect(judge(&expect(&[]), &[lib], &env(b""), None));
        assert!(noted[0].contains("libjemalloc.so.2"), "{noted:?}");

        let mut nothp = expect(&[]);
        nothp.thp_disable = true;
        assert!(
            not_in_effect(judge(&nothp, &[], &env(b""), Some(true))).contains("THP is enabled")
        );
        assert!(in_effect(judge(&nothp, &[], &env(b""), Some(false)))[0].contains("THP disabled"));
    }

    #[test]
    fn this_process_is_checked() {
        let me = std::process::id() as i32;
        let path = std::env::var("PATH").unwrap_or_default();
        let environ = Environ::read(me);
        let ok = expect(&[("PATH", &path)]);
        // The test itself may run under allocator variables of the caller's.
        if std::env::vars().all(|(k, _)| !is_allocator_env(&k)) {
            assert!(
                in_effect(check(&ok, me, &environ))
                    .iter()
                    .any(|c| c.starts_with("PATH="))
            );
        }
        let wrong = expect(&[("PATH", &format!("{path}:/elsewhere"))]);
        assert!(not_in_effect(check(&wrong, me, &environ)).contains("not /"));
        let preload = expect(&[("LD_PRELOAD", "/nonexistent/libx.so")]);
        assert!(not_in_effect(check(&preload, me, &environ)).contains("is not mapped"));
        assert!(matches!(check(&ok, -5, &environ), Verdict::Unknown(_)));
    }
}
