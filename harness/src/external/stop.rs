//! Stopping a measured command at the end of its row.

use std::time::{Duration, Instant};

use super::STOP_GRACE;
use super::proc::{peek_exit, signal_group};
use super::{MeasureError, Row};
use crate::exec::cell::{NOT_IN_EFFECT, describe_exit};
use crate::exec::contain::{self, Targets};
use crate::exec::interrupt;
use crate::sample::stat::all_stats;

impl Row<'_> {
    /// Stops the command: gracefully (SIGTERM to its group and to the
    /// processes allocbench adopted, a daemon's; SIGKILL after the grace
    /// period) after a good run and after a failed row whose command still
    /// runs (a variant not in effect: the server shuts down as it would in
    /// production, its pid file removed), at once after an interrupt or
    /// when the command has ended. Whatever the outcome, nothing of the
    /// tree is left running (what it forked during the stop included) and
    /// the root is reaped.
    pub(super) fn stop(&mut self, outcome: Result<(), MeasureError>) -> Result<(), MeasureError> {
        let pgid = self.root;
        // The root is not reaped until the end, so its group id is ours.
        let tree = |known: Vec<(i32, u64)>| Targets {
            known,
            adopted: true,
            ..Targets::root(pgid)
        };
        let early = peek_exit(self.root);
        let graceful = match (&outcome, early) {
            (Ok(()), _) => true,
            (Err(_), None) => !interrupt::interrupted(),
            (Err(_), Some(_)) => false,
        };
        if graceful {
            signal_group(pgid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + STOP_GRACE;
            let mut termed = Vec::new();
            loop {
                // What left the group gets its SIGTERM too, once, as it is
                // adopted (a daemon, or a process whose parent just ended).
                for a in contain::adopted(&all_stats()) {
                    if !termed.contains(&a) {
                        // Adopted and not reaped: the pid is that process.
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(a.0),
                            nix::sys::signal::Signal::SIGTERM,
                        );
                        termed.push(a);
                    }
                }
                let root = peek_exit(self.root);
                if let Some(root) = root
                    && contain::members(&tree(Vec::new()), &all_stats()).is_empty()
                {
                    self.record.stop = Some(match early {
                        Some(_) => "SIGTERM: every process of the daemon ended".into(),
                        None => format!("SIGTERM: {}", describe_exit(root)),
                    });
                    break;
                }
                if Instant::now() >= deadline {
                    self.record.stop = Some(format!(
                        "killed by SIGKILL after the {} s grace",
                        STOP_GRACE.as_secs()
                    ));
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        } else if let Some(s) = early {
            self.record.stop = Some(describe_exit(s));
        }
        let known = self
            .tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .not_gone();
        contain::kill(&tree(known));
        // Everything is killed: the watchdog has nothing left to do.
        self.watchdog.end();
        // Before the reap, after which the group id may be reused.
        interrupt::unregister(pgid);
        let status = contain::wait(&mut self.child).ok();
        if self.record.stop.is_none() {
            self.record.stop = status.map(describe_exit);
        }
        self.output.wait_closed(Duration::from_secs(2));
        if outcome.is_ok()
            && let Some(line) = self
                .output
                .lines()
                .into_iter()
                .find(|l| NOT_IN_EFFECT.iter().any(|p| l.contains(p)))
        {
            return Err(MeasureError::Rejected(line));
        }
        outcome
    }
}
