//! Is the variant's allocator really the one in effect?

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use allocbench_allocators::settings::glibc_arena_limit;
use allocbench_allocators::{AllocatorIdentity, Base, Variant};

/// Describes how a process ended: `exited with status N`, `killed by SIGxxx`.
pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exited with status {code}")
    } else if let Some(sig) = status.signal() {
        match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("killed by {s}"),
            Err(_) => format!("killed by signal {sig}"),
        }
    } else {
        format!("ended ({status})")
    }
}

/// Stderr lines that mean the variant's allocator or configuration is not
/// what was asked for, though the process ran on.
pub(crate) const NOT_IN_EFFECT: &[&str] = &[
    "from LD_PRELOAD cannot be preloaded",
    "<jemalloc>: Invalid conf",
    "<jemalloc>: Malformed conf",
    "mimalloc: warning: unknown option",
];

/// Why a cell's variant is not in effect as defined (or cannot be shown to
/// be).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The process runs on another library than the one preloaded.
    #[error(
        "variant {variant} is not in effect: LD_PRELOAD={} but the process runs on {found}",
        preload.display()
    )]
    WrongLibrary {
        /// The variant's name.
        variant: String,
        /// The library preloaded.
        preload: PathBuf,
        /// The allocator found, as the probe describes it.
        found: String,
    },
    /// The process runs on another allocator than the variant's.
    #[error("variant {variant} is not in effect: expected {expected}, the process runs on {found}")]
    WrongAllocator {
        /// The variant's name.
        variant: String,
        /// The allocator it should run on.
        expected: String,
        /// The allocator found.
        found: String,
    },
    /// The allocator found does not own the workload's blocks.
    #[error("variant {variant}: {found} does not own the workload's allocations")]
    NotOwner {
        /// The variant's name.
        variant: String,
        /// The allocator found.
        found: String,
    },
    /// More arenas than the variant's glibc setting allows.
    #[error(
        "variant {variant} is not in effect: {setting} allows at most {limit} arena{}, but a worker has {found}: glibc did not apply the setting",
        if *limit == 1 { "" } else { "s" }
    )]
    TooManyArenas {
        /// The variant's name.
        variant: String,
        /// The setting as written.
        setting: String,
        /// The arenas it allows.
        limit: u64,
        /// The most arenas a worker has.
        found: u32,
    },
    /// A process whose THP state cannot be read.
    #[error("variant {variant}: cannot check THP of process {pid}: {source}")]
    ThpUnreadable {
        /// The variant's name.
        variant: String,
        /// The process.
        pid: i32,
        /// Why.
        #[source]
        source: procfs::ProcError,
    },
    /// A process with THP enabled under `thp_disable`.
    #[error(
        "variant {variant} is not in effect: THP is enabled in process {pid} (/proc/{pid}/status THP_enabled: 1)"
    )]
    ThpEnabled {
        /// The variant's name.
        variant: String,
        /// The process.
        pid: i32,
    },
    /// A kernel that does not say.
    #[error(
        "variant {variant}: this kernel does not say whether THP is disabled (no THP_enabled in /proc/{pid}/status)"
    )]
    ThpUnknown {
        /// The variant's name.
        variant: String,
        /// The process.
        pid: i32,
    },
}

/// Checks the allocator a cell's master reported against its variant.
pub fn verify_allocator(
    variant: &Variant,
    id: &AllocatorIdentity,
    preload: Option<&Path>,
) -> Result<(), VerifyError> {
    let found = format!(
        "{}{} (malloc from {})",
        id.name,
        id.version
            .as_deref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default(),
        if id.builtin {
            "the built-in allocator".to_string()
        } else {
            id.library
                .clone()
                .unwrap_or_else(|| "an unknown object".into())
        }
    );
    if let Some(path) = preload {
        let want = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let got = id
            .library
            .as_deref()
            .map(|l| std::fs::canonicalize(l).unwrap_or_else(|_| l.into()));
        if got.as_deref() != Some(want.as_path()) {
            return Err(VerifyError::WrongLibrary {
                variant: variant.name.clone(),
                preload: path.to_path_buf(),
                found,
            });
        }
    }
    if let Some(expected) = variant.expected_allocator()
        && expected != id.name
    {
        return Err(VerifyError::WrongAllocator {
            variant: variant.name.clone(),
            expected: expected.to_string(),
            found,
        });
    }
    if id.owns_allocations == Some(false) {
        return Err(VerifyError::NotOwner {
            variant: variant.name.clone(),
            found,
        });
    }
    Ok(())
}

/// After the run, belt and braces for settings glibc ignored (it ignores an
/// out-of-range value without a word, e.g. `MALLOC_ARENA_MAX=0`): a glibc
/// cell whose workers hold more arenas (`arenas`, the largest count) than
/// its `MALLOC_ARENA_MAX` or `glibc.malloc.arena_max` allow is not in effect.
pub fn verify_arenas(variant: &Variant, arenas: Option<u32>) -> Result<(), VerifyError> {
    if variant.base != Base::Glibc {
        return Ok(());
    }
    let env = variant.env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let (Some(found), Some((limit, setting))) = (arenas, glibc_arena_limit(env)) else {
        return Ok(());
    };
    if u64::from(found) > limit {
        return Err(VerifyError::TooManyArenas {
            variant: variant.name.clone(),
            setting,
            limit,
            found,
        });
    }
    Ok(())
}

/// For a variant with `thp_disable`: every process of the tree (`pids`)
/// must have THP disabled, as `/proc/PID/status` says (`THP_enabled: 0`);
/// a process that cannot be read is not verified, and fails the cell too.
pub fn verify_thp(variant: &Variant, pids: &[i32]) -> Result<(), VerifyError> {
    if !variant.thp_disable {
        return Ok(());
    }
    for &pid in pids {
        let enabled = procfs::process::Process::new(pid)
            .and_then(|p| p.status())
            .map_err(|source| VerifyError::ThpUnreadable {
                variant: variant.name.clone(),
                pid,
                source,
            })?
            .thp_enabled;
        match enabled {
            Some(false) => {}
            Some(true) => {
                return Err(VerifyError::ThpEnabled {
                    variant: variant.name.clone(),
                    pid,
                });
            }
            None => {
                return Err(VerifyError::ThpUnknown {
                    variant: variant.name.clone(),
                    pid,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thp_disabled_is_checked_in_every_process() {
        use std::os::unix::process::CommandExt;
        let mut nothp = glibc(&[]);
        nothp.thp_disable = true;
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        // SAFETY: prctl is async-signal-safe; nothing else runs between
        // fork and exec.
        unsafe {
            cmd.pre_exec(|| nix::sys::prctl::set_thp_disable(true).map_err(std::io::Error::from));
        }
        let mut child = cmd.spawn().unwrap();
        let off = child.id() as i32;
        let me = std::process::id() as i32;
        let checked = verify_thp(&nothp, &[off]);
        let with_me = verify_thp(&nothp, &[off, me]);
        let _ = child.kill();
        let _ = child.wait();
        checked.unwrap();
        let e = with_me.unwrap_err().to_string();
        assert!(
            e.contains(&format!("THP is enabled in process {me}")),
            "{e}"
        );
        // A variant that asks nothing of THP checks nothing.
        verify_thp(&glibc(&[]), &[me]).unwrap();
    }

    fn glibc(env: &[(&str, &str)]) -> Variant {
        let mut v = allocbench_allocators::presets().remove(0);
        v.name = "g".into();
        v.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v
    }

    #[test]
    fn more_arenas_than_the_limit_fail_a_glibc_cell() {
        let a2 = glibc(&[("MALLOC_ARENA_MAX", "2")]);
        verify_arenas(&a2, Some(2)).unwrap();
        verify_arenas(&a2, None).unwrap();
        let e = verify_arenas(&a2, Some(3)).unwrap_err().to_string();
        assert!(
            e.contains("MALLOC_ARENA_MAX=2 allows at most 2 arenas, but a worker has 3"),
            "{e}"
        );
        // The tunable takes precedence over the alias, as in glibc.
        let t1 = glibc(&[
            ("GLIBC_TUNABLES", "glibc.malloc.arena_max=1"),
            ("MALLOC_ARENA_MAX", "8"),
        ]);
        let e = verify_arenas(&t1, Some(2)).unwrap_err().to_string();
        assert!(
            e.contains("glibc.malloc.arena_max=1 allows at most 1 arena,"),
            "{e}"
        );
        // No limit set, or not glibc: nothing to check.
        verify_arenas(&glibc(&[]), Some(16)).unwrap();
        let je = allocbench_allocators::Catalog::default()
            .get("jemalloc")
            .cloned()
            .unwrap();
        verify_arenas(&je, Some(16)).unwrap();
    }
}
