//! Is the variant in effect in the measured command? Checked in the root
//! process once it is ready: the preloaded library is mapped
//! (`/proc/PID/maps`), and each variable the variant sets is in its
//! environment with its value (`/proc/PID/environ`), and no other allocator
//! variable is.

use std::path::Path;

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

/// Checks `launch` against process `pid`. `early` is its environment block
/// read right after it started, for when the process has written its title
/// over the block since. Returns what was checked (and what could not be),
/// or why the variant is not in effect.
pub fn verify(
    variant: &str,
    launch: &Launch,
    pid: i32,
    early: Option<&[u8]>,
) -> Result<Vec<String>, String> {
    let process = Process::new(pid).map_err(|e| format!("cannot read process {pid}: {e}"))?;
    let maps = process
        .maps()
        .map_err(|e| format!("cannot read /proc/{pid}/maps: {e}"))?;
    let mapped: Vec<&Path> = maps
        .iter()
        .filter_map(|m| match &m.pathname {
            MMapPath::Path(p) => Some(p.as_path()),
            _ => None,
        })
        .collect();
    let environ = std::fs::read(format!("/proc/{pid}/environ"))
        .map_err(|e| format!("cannot read /proc/{pid}/environ: {e}"))?;
    judge(variant, launch, pid, &mapped, &environ, early)
}

/// [`verify`] on what was read of the process: its mapped files, its
/// environment block now and at its start.
fn judge(
    variant: &str,
    launch: &Launch,
    pid: i32,
    mapped: &[&Path],
    environ: &[u8],
    early: Option<&[u8]>,
) -> Result<Vec<String>, String> {
    let mut checks = Vec::new();
    let preload = launch
        .set
        .iter()
        .find(|(k, _)| k == "LD_PRELOAD")
        .map(|(_, v)| v);
    match preload {
        Some(library) => {
            let want = std::fs::canonicalize(library).unwrap_or_else(|_| library.into());
            if !mapped.contains(&want.as_path()) {
                return Err(format!(
                    "variant {variant} is not in effect: {} is not mapped in process {pid} \
                     (the dynamic linker ignored LD_PRELOAD: a static or setuid program, or a \
                     wrapper that changed the environment)",
                    want.display()
                ));
            }
            checks.push(format!("{} is mapped in process {pid}", want.display()));
        }
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
                    "process {pid} maps {} (linked by the program itself, or preloaded \
                     through /etc/ld.so.preload): glibc malloc may not serve it",
                    others.join(", ")
                ));
            }
        }
    }

    let (entries, when) = match (parse_environ(environ), early.and_then(parse_environ)) {
        (Some(e), _) => (e, ""),
        (None, Some(e)) => (
            e,
            " at its start (it wrote its process title over them since)",
        ),
        (None, None) => {
            checks.push(format!(
                "the environment block of process {pid} was overwritten (a process title, \
                 e.g. setproctitle): its variables could not be checked"
            ));
            return Ok(checks);
        }
    };
    for (k, v) in &launch.set {
        match entries.iter().find(|(ek, _)| ek == k) {
            Some((_, ev)) if ev == v => checks.push(format!("{k}={v} in process {pid}{when}")),
            Some((_, ev)) => {
                return Err(format!(
                    "variant {variant} is not in effect: {k}={ev} in process {pid}, not {v} \
                     (the command changed it)"
                ));
            }
            None => {
                return Err(format!(
                    "variant {variant} is not in effect: {k}={v} did not reach process {pid} \
                     (the command cleared it from its environment)"
                ));
            }
        }
    }
    if let Some((k, v)) = entries
        .iter()
        .find(|(k, _)| is_allocator_env(k) && !launch.set.iter().any(|(lk, _)| lk == k))
    {
        return Err(format!(
            "variant {variant} is not in effect as defined: process {pid} has {k}={v}, which \
             the variant does not set (the command sets it itself; define a variant with it)"
        ));
    }
    checks.push(format!(
        "no allocator variable in process {pid} that the variant does not set{when}"
    ));
    Ok(checks)
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

    fn launch(set: &[(&str, &str)]) -> Launch {
        Launch {
            set: set
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn judged_on_the_environment_and_the_mappings() {
        let arena2 = launch(&[("MALLOC_ARENA_MAX", "2")]);
        let ok = judge(
            "a2",
            &arena2,
            7,
            &[],
            b"PATH=/bin\0MALLOC_ARENA_MAX=2\0",
            None,
        );
        assert_eq!(
            ok.unwrap(),
            vec![
                "MALLOC_ARENA_MAX=2 in process 7",
                "no allocator variable in process 7 that the variant does not set"
            ]
        );
        let wrong = judge("a2", &arena2, 7, &[], b"MALLOC_ARENA_MAX=8\0", None);
        assert!(
            wrong
                .unwrap_err()
                .contains("MALLOC_ARENA_MAX=8 in process 7, not 2")
        );
        let gone = judge("a2", &arena2, 7, &[], b"PATH=/bin\0", None);
        assert!(
            gone.unwrap_err()
                .contains("MALLOC_ARENA_MAX=2 did not reach process 7")
        );
        let extra = judge("glibc", &launch(&[]), 7, &[], b"MALLOC_ARENA_MAX=1\0", None);
        assert!(
            extra
                .unwrap_err()
                .contains("which the variant does not set")
        );

        // A process title over the block: the block at the start decides.
        let title = b"gunicorn: master [app:app]\0\0\0\0";
        let early_ok = judge("a2", &arena2, 7, &[], title, Some(b"MALLOC_ARENA_MAX=2\0"));
        assert!(
            early_ok.unwrap()[0]
                .ends_with("at its start (it wrote its process title over them since)")
        );
        let early_gone = judge("a2", &arena2, 7, &[], title, Some(b"PATH=/bin\0"));
        assert!(early_gone.unwrap_err().contains("did not reach"));
        let unknown = judge("a2", &arena2, 7, &[], title, Some(title));
        assert!(unknown.unwrap()[0].contains("could not be checked"));

        let lib = Path::new("/opt/lib/libjemalloc.so.2");
        let preload = launch(&[("LD_PRELOAD", "/opt/lib/libjemalloc.so.2")]);
        let env = b"LD_PRELOAD=/opt/lib/libjemalloc.so.2\0";
        let mapped = judge("je", &preload, 7, &[lib], env, None).unwrap();
        assert_eq!(
            mapped[0],
            "/opt/lib/libjemalloc.so.2 is mapped in process 7"
        );
        let ignored = judge("je", &preload, 7, &[], env, None).unwrap_err();
        assert!(ignored.contains("is not mapped in process 7"), "{ignored}");
        // glibc with an allocator library mapped anyway: noted, not failed.
        let noted = judge("glibc", &launch(&[]), 7, &[lib], b"", None).unwrap();
        assert!(noted[0].contains("libjemalloc.so.2"), "{noted:?}");
    }

    #[test]
    fn this_process_environment_is_checked() {
        let me = std::process::id() as i32;
        let path = std::env::var("PATH").unwrap_or_default();
        let ok = Launch {
            set: vec![("PATH".into(), path.clone())],
        };
        // The test itself may run under allocator variables of the caller's.
        let got = verify("v", &ok, me, None);
        if std::env::vars().all(|(k, _)| !is_allocator_env(&k)) {
            assert!(got.unwrap().iter().any(|c| c.starts_with("PATH=")));
        }
        let wrong = Launch {
            set: vec![("PATH".into(), format!("{path}:/elsewhere"))],
        };
        assert!(
            verify("v", &wrong, me, None)
                .unwrap_err()
                .contains("not in effect")
        );
        let preload = Launch {
            set: vec![("LD_PRELOAD".into(), "/nonexistent/libx.so".into())],
        };
        assert!(
            verify("v", &preload, me, None)
                .unwrap_err()
                .contains("is not mapped")
        );
    }
}
