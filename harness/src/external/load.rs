//! The load command: split into words by shell rules (the `shlex` crate; no
//! shell runs it), started in its own process group once the measured
//! command is ready, its output captured (the last 64 KiB of each stream)
//! for a one-line summary and the figures [`load_output`] reads. At its end, everything it started is killed:
//! its group, its descendants, and those the tracker saw that left it.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use super::load_output::{self, LoadFigures};
use super::proc::peek_exit;
use super::watchdog::{Watchdog, tell_own_group};
use crate::exec::cell::{StderrTail, describe_exit};
use crate::exec::contain::{self, Targets};
use crate::exec::interrupt;

/// Why a load command cannot be split into words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SplitError {
    /// An unclosed quote or a trailing backslash.
    #[error("--load: cannot split {0:?} into words (an unclosed quote or a trailing backslash)")]
    Unsplittable(String),
    /// No words.
    #[error("--load: the command is empty")]
    Empty,
}

/// The load command could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the load command {program}: {source}")]
pub struct LoadStartError {
    /// The program.
    pub program: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Splits a load command into its words, as a POSIX shell would (quotes and
/// backslashes), without running a shell.
pub fn split(cmd: &str) -> Result<Vec<String>, SplitError> {
    let words = shlex::split(cmd).ok_or_else(|| SplitError::Unsplittable(cmd.into()))?;
    if words.is_empty() {
        return Err(SplitError::Empty);
    }
    Ok(words)
}

/// Whether `program` can be started: an executable file at a path, or a
/// name found in `PATH`.
pub fn findable(program: &str) -> bool {
    let executable = |p: &Path| {
        p.is_file()
            && std::fs::metadata(p).is_ok_and(|m| {
                std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
    };
    if program.contains('/') {
        return executable(Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(program))))
}

/// How a load command ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOutcome {
    pub status: Option<String>,
    pub error: Option<String>,
    pub summary: Option<String>,
    /// Requests per second and latency, read from its output.
    pub figures: LoadFigures,
    pub tail: Vec<String>,
}

/// A running load command.
pub struct Load {
    child: Child,
    pgid: i32,
    stdout: StderrTail,
    stderr: StderrTail,
    watchdog: Arc<Watchdog>,
    metric: Option<Regex>,
}

const TAIL: usize = 10;

impl Load {
    /// Starts the load command; `watchdog` kills its group if allocbench
    /// dies meanwhile. `metric` (`--load-metric`) reads its output.
    pub fn start(
        words: &[String],
        metric: Option<Regex>,
        watchdog: Arc<Watchdog>,
    ) -> Result<Load, LoadStartError> {
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let harness = std::process::id() as i32;
        let watchdog_fd = watchdog.fd();
        // SAFETY: between fork and exec the closure makes only system calls
        // (setpgid, prctl, getppid, and the write of `tell_own_group` from a
        // stack buffer), which are async-signal-safe; it allocates nothing and
        // takes no lock.
        unsafe {
            cmd.pre_exec(move || {
                // Own group: stopped as one, and out of the terminal's Ctrl-C.
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Known to the watchdog before the program can fork.
                if let Some(fd) = watchdog_fd {
                    tell_own_group(fd);
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                    || libc::getppid() != harness
                {
                    return Err(std::io::Error::other("allocbench ended"));
                }
                Ok(())
            });
        }
        let mut child = contain::spawn(&mut cmd).map_err(|source| LoadStartError {
            program: words[0].clone(),
            source,
        })?;
        let pgid = child.id() as i32;
        interrupt::register(pgid);
        let stdout = StderrTail::collect(child.stdout.take().expect("stdout is piped"));
        let stderr = StderrTail::collect(child.stderr.take().expect("stderr is piped"));
        Ok(Load {
            child,
            pgid,
            stdout,
            stderr,
            watchdog,
            metric,
        })
    }

    /// The pid of the load command (the leader of its group).
    pub fn pid(&self) -> i32 {
        self.pgid
    }

    /// The outcome once the load command has ended; `None` while it runs.
    /// `left` are processes it started that left its tree (seen by the
    /// tracker), killed with it.
    pub fn try_finish(&mut self, left: &[(i32, u64)]) -> Option<LoadOutcome> {
        let status = peek_exit(self.pgid)?;
        Some(self.finish(Ok(status), left))
    }

    /// Kills the load command (timeout, or the measured command failed).
    pub fn kill(mut self, why: String, left: &[(i32, u64)]) -> LoadOutcome {
        self.finish(Err(why), left)
    }

    fn finish(
        &mut self,
        ended: Result<std::process::ExitStatus, String>,
        left: &[(i32, u64)],
    ) -> LoadOutcome {
        // Whatever the command left running goes too: its group, its
        // descendants, and what left it; its pid is not reaped yet, so the
        // group id is still ours.
        contain::kill(&Targets {
            known: left.to_vec(),
            ..Targets::root(self.pgid)
        });
        self.watchdog.ungroup(self.pgid);
        interrupt::unregister(self.pgid);
        let status = contain::wait(&mut self.child).ok();
        self.stdout.wait_closed(Duration::from_secs(2));
        self.stderr.wait_closed(Duration::from_secs(2));
        let stdout = self.stdout.lines();
        let stderr = self.stderr.lines();
        let (summary, figures) = summary(&stdout, &stderr, self.metric.as_ref());
        let mut tail: Vec<String> = stdout[stdout.len().saturating_sub(TAIL)..].to_vec();
        tail.extend_from_slice(&stderr[stderr.len().saturating_sub(TAIL)..]);
        let (status, error) = match ended {
            Ok(s) => {
                let d = describe_exit(s);
                let error = (!s.success()).then(|| {
                    let last = stderr.iter().rev().find(|l| !l.trim().is_empty());
                    match last {
                        Some(l) => format!("the load command {d} ({})", l.trim()),
                        None => format!("the load command {d}"),
                    }
                });
                (Some(d), error)
            }
            Err(why) => (status.map(describe_exit), Some(why)),
        };
        LoadOutcome {
            status,
            error,
            summary,
            figures,
            tail,
        }
    }
}

/// The summary of a load command's output (the line its requests per
/// second were read from, else the last non-empty line of its stdout) and
/// its figures: from its stdout, or from its stderr when only that is
/// recognised.
pub fn summary(
    stdout: &[String],
    stderr: &[String],
    metric: Option<&Regex>,
) -> (Option<String>, LoadFigures) {
    let mut figures = load_output::read(stdout, metric);
    if figures.rps.is_none() {
        let other = load_output::read(stderr, metric);
        if other.rps.is_some() {
            figures = other;
        }
    }
    let last = || {
        stdout
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    (figures.line.clone().or_else(last), figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(String::from).collect()
    }

    #[test]
    fn wrk_output_gives_its_requests_per_second() {
        let out = lines(
            "Running 10s test @ http://127.0.0.1:8000/\n  2 threads and 8 connections\n  \
             Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     3.10ms    1.02ms  20.00ms   90.00%\n  \
             51234 requests in 10.00s, 8.11MB read\nRequests/sec:   5123.40\nTransfer/sec:    830.12KB\n",
        );
        let (text, figures) = summary(&out, &[], None);
        assert_eq!(text.as_deref(), Some("Requests/sec: 5123.40"));
        assert_eq!((figures.tool, figures.rps), (Some("wrk"), Some(5123.4)));
        let mut with_errors = out.clone();
        with_errors.insert(5, "  Non-2xx or 3xx responses: 12".into());
        assert_eq!(
            summary(&with_errors, &[], None).0.unwrap(),
            "Requests/sec: 5123.40 (Non-2xx or 3xx responses: 12)"
        );
    }

    #[test]
    fn other_output_gives_its_last_line() {
        let (text, figures) = summary(&lines("start\n  done: 40 requests  \n\n"), &[], None);
        assert_eq!(text.as_deref(), Some("done: 40 requests"));
        assert_eq!((figures.tool, figures.rps), (None, None));
        assert!(figures.note.is_some());
        assert_eq!(summary(&[], &[], None).0, None);
        // Read from stderr when only it holds a summary.
        let (text, figures) = summary(&lines("x"), &lines("Requests/sec: 12.5"), None);
        assert_eq!(
            (text.as_deref(), figures.rps),
            (Some("Requests/sec: 12.5"), Some(12.5))
        );
    }

    #[test]
    fn words_follow_shell_rules() {
        assert_eq!(
            split("wrk -t2 -H 'Host: a b' \"http://x/\"").unwrap(),
            vec!["wrk", "-t2", "-H", "Host: a b", "http://x/"]
        );
        assert!(split("wrk 'unclosed").is_err());
        assert!(split("   ").is_err());
    }
}
