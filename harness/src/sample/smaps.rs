//! Reading a process's memory (procfs crate): all of it from
//! `/proc/PID/smaps_rollup`, which walks the process's page tables, or the
//! resident and anonymous totals alone from `/proc/PID/status`, which reads
//! counters the kernel keeps and costs about a hundredth of the walk on a
//! process of 100 MiB.

use procfs::process::Process;

use crate::results::Mem;

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

/// The kernel's running counters of `pid` from `/proc/PID/status`: `rss`
/// (VmRSS) and `anonymous` (RssAnon); every other figure is 0, unknown.
pub fn sample_counters(pid: i32) -> Result<Mem, SampleError> {
    let status = Process::new(pid)
        .and_then(|p| p.status())
        .map_err(|e| classify(pid, e))?;
    match (status.vmrss, status.rssanon) {
        (Some(rss), Some(anonymous)) => Ok(Mem {
            rss: rss * 1024,
            anonymous: anonymous * 1024,
            ..Mem::default()
        }),
        // A zombie has no memory lines.
        _ => Err(SampleError::Gone(pid)),
    }
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

    /// The counters are the walk's figures: on a process whose memory holds
    /// still, RssAnon is smaps_rollup's Anonymous and VmRSS its Rss (the
    /// kernel sums per-CPU counters, so allow a few pages of drift).
    #[test]
    fn counters_agree_with_the_rollup_on_a_quiet_process() {
        // A child that makes 24 MiB anonymous memory resident and sleeps.
        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                "import mmap,sys,time\nm=mmap.mmap(-1,24<<20,flags=mmap.MAP_PRIVATE)\nm.write(b'x'*(24<<20))\nprint('ok',flush=True)\ntime.sleep(60)",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ok");
        let pid = child.id() as i32;
        let walked = sample(pid).unwrap();
        let counted = sample_counters(pid).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        let close = |a: u64, b: u64| a.abs_diff(b) <= 256 << 10;
        assert!(walked.anonymous >= 24 << 20, "{walked:?}");
        assert!(
            close(counted.anonymous, walked.anonymous),
            "RssAnon {} vs Anonymous {}",
            counted.anonymous,
            walked.anonymous
        );
        assert!(
            close(counted.rss, walked.rss),
            "VmRSS {} vs Rss {}",
            counted.rss,
            walked.rss
        );
        assert_eq!(counted.pss, 0);
        assert_eq!(sample_counters(pid), Err(SampleError::Gone(pid)));
    }

    #[test]
    fn a_gone_process_is_a_missed_sample() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert_eq!(sample(pid), Err(SampleError::Gone(pid)));
    }
}
