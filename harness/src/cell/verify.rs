//! Is the variant's allocator really the one in effect?

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

use allocbench_allocators::{AllocatorIdentity, Variant};

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

/// Checks the allocator a cell's master reported against its variant.
pub fn verify_allocator(
    variant: &Variant,
    id: &AllocatorIdentity,
    preload: Option<&Path>,
) -> Result<(), String> {
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
            return Err(format!(
                "variant {} is not in effect: LD_PRELOAD={} but the process runs on {found}",
                variant.name,
                path.display()
            ));
        }
    }
    if let Some(expected) = variant.expected_allocator()
        && expected != id.name
    {
        return Err(format!(
            "variant {} is not in effect: expected {expected}, the process runs on {found}",
            variant.name
        ));
    }
    if id.owns_allocations == Some(false) {
        return Err(format!(
            "variant {}: {found} does not own the workload's allocations",
            variant.name
        ));
    }
    Ok(())
}
