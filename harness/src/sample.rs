//! Reading a process's memory from `/proc/PID/smaps_rollup` (procfs crate).

use procfs::process::Process;

use crate::result::Mem;

/// Why a process could not be sampled. A process that exits between being
/// listed and being read is a missed sample, not a failure of the run.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum SampleError {
    #[error("process {0} is gone")]
    Gone(i32),
    #[error("/proc/{pid}/smaps_rollup: permission denied")]
    Denied { pid: i32 },
    #[error("/proc/{pid}/smaps_rollup: {message}")]
    Other { pid: i32, message: String },
}

fn classify(pid: i32, e: procfs::ProcError) -> SampleError {
    match e {
        procfs::ProcError::NotFound(_) => SampleError::Gone(pid),
        procfs::ProcError::PermissionDenied(_) => SampleError::Denied { pid },
        procfs::ProcError::Io(ref io, _) if io.raw_os_error() == Some(libc::ESRCH) => {
            SampleError::Gone(pid)
        }
        other => SampleError::Other {
            pid,
            message: other.to_string(),
        },
    }
}

/// One `smaps_rollup` reading of `pid`.
pub fn sample(pid: i32) -> Result<Mem, SampleError> {
    let rollup = Process::new(pid)
        .and_then(|p| p.smaps_rollup())
        .map_err(|e| classify(pid, e))?;
    let Some(map) = rollup.memory_map_rollup.0.first() else {
        // A zombie (exited, not yet reaped) has an empty smaps_rollup.
        return Err(SampleError::Gone(pid));
    };
    let get = |k: &str| map.extension.map.get(k).copied().unwrap_or(0);
    let private_clean = get("Private_Clean");
    let private_dirty = get("Private_Dirty");
    Ok(Mem {
        pss: get("Pss"),
        pss_anon: get("Pss_Anon"),
        pss_file: get("Pss_File"),
        rss: get("Rss"),
        uss: private_clean + private_dirty,
        shared_clean: get("Shared_Clean"),
        shared_dirty: get("Shared_Dirty"),
        private_clean,
        private_dirty,
        anonymous: get("Anonymous"),
        lazyfree: get("LazyFree"),
        anon_huge: get("AnonHugePages"),
        swap: get("Swap"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cross-check against an independent parse of the same file.
    #[test]
    fn own_sample_matches_a_plain_reading() {
        // Make some anonymous memory resident so the numbers are not tiny.
        let v = std::hint::black_box(vec![1u8; 8 << 20]);
        let m = sample(std::process::id() as i32).unwrap();
        let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
        let field = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .map(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .unwrap()
                        * 1024
                })
                .unwrap()
        };
        // Anonymous memory of an idle test thread moves little between two reads.
        let close = |a: u64, b: u64| a.abs_diff(b) <= 1 << 20;
        assert!(close(m.rss, field("Rss")), "{} vs {}", m.rss, field("Rss"));
        assert!(close(m.anonymous, field("Anonymous")));
        assert!(m.anonymous >= 8 << 20);
        assert!(m.uss <= m.rss && m.pss <= m.rss);
        drop(v);
    }

    #[test]
    fn a_gone_process_is_a_missed_sample() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert_eq!(sample(pid), Err(SampleError::Gone(pid)));
    }
}
