//! The tracker's checks that the variant is in effect in each process of
//! the tree (its environment, its maps), and what they found.

use super::{RECHECK_MS, Tracker};
use crate::external::check::{self, Verdict};
use crate::results::Millis;

impl Tracker {
    /// Checks the live processes not checked yet, and again those found
    /// without the variant (at most every [`RECHECK_MS`]).
    pub(super) fn check(&mut self, live: &[usize], t_ms: Millis) {
        let Some(checking) = &self.checking else {
            return;
        };
        for &at in live {
            let p = &mut self.procs[at];
            let due = match &p.verdict {
                None => true,
                Some(Verdict::NotInEffect(_)) => t_ms - p.checked_ms >= RECHECK_MS,
                Some(_) => false,
            };
            if !due {
                continue;
            }
            let v = check::check(&checking.expect, p.pid, &p.environ);
            p.failures = match v {
                Verdict::NotInEffect(_) => p.failures + 1,
                _ => 0,
            };
            p.checked_ms = t_ms;
            p.verdict = Some(v);
        }
    }

    /// Checks every live process again (a program may undo its variant
    /// after it started, as a `prctl` turning THP back on does).
    pub fn recheck(&mut self, t_ms: Millis) {
        for p in self.procs.iter_mut().filter(|p| !p.gone) {
            if matches!(p.verdict, Some(Verdict::InEffect(_))) {
                p.verdict = None;
            }
            if matches!(p.verdict, Some(Verdict::NotInEffect(_))) {
                p.checked_ms = f64::NEG_INFINITY;
            }
        }
        let live: Vec<usize> = (0..self.procs.len())
            .filter(|&i| !self.procs[i].gone)
            .collect();
        self.check(&live, t_ms);
    }

    /// Finds the tree now and checks what is due (new processes, those
    /// that ran another program, those found without the variant), without
    /// reading anyone's memory.
    pub fn refresh(&mut self, t_ms: Millis) {
        self.discover(t_ms);
    }

    /// Whether a process of the server was found without the variant
    /// only once: it is checked again before the row fails.
    pub fn unsettled(&self) -> bool {
        self.procs
            .iter()
            .any(|p| !p.gone && p.is_server() && p.failures == 1)
    }

    /// Why the variant is not in effect, when a process of the server (the
    /// master or a worker) was found without it twice in a row.
    pub fn not_in_effect(&self) -> Option<String> {
        let variant = &self.checking.as_ref()?.expect.variant;
        self.procs
            .iter()
            .filter(|p| !p.gone && p.is_server() && p.failures >= 2)
            .find_map(|p| match &p.verdict {
                Some(Verdict::NotInEffect(why)) => Some(format!(
                    "variant {variant} is not in effect in {} {} ({}): {why}",
                    p.role.name(),
                    p.pid,
                    p.command
                )),
                _ => None,
            })
    }

    /// Whether a process of the server (master or worker) has been
    /// checked: with none, nothing shows the variant ran.
    pub fn server_checked(&self) -> bool {
        self.procs
            .iter()
            .any(|p| p.is_server() && p.verdict.is_some())
    }

    /// What was checked: a line per outcome, naming the processes that
    /// had it (the server's first).
    pub fn check_summary(&self) -> Vec<String> {
        let mut lines: Vec<(bool, String, Vec<String>)> = Vec::new();
        for p in &self.procs {
            let server = p.is_server();
            let part = if server {
                ""
            } else {
                " (not part of the server: not required)"
            };
            let outcome = match &p.verdict {
                Some(Verdict::NotInEffect(why)) => format!("NOT in effect{part}: {why}"),
                Some(v) => v.describe(),
                None => continue,
            };
            let who = format!("{} {} ({})", p.role.name(), p.pid, p.command);
            match lines
                .iter_mut()
                .find(|(s, o, _)| *s == server && *o == outcome)
            {
                Some((_, _, whom)) => whom.push(who),
                None => lines.push((server, outcome, vec![who])),
            }
        }
        lines.sort_by_key(|(server, _, _)| !server);
        lines
            .into_iter()
            .map(|(_, outcome, whom)| format!("{}: {outcome}", whom.join(", ")))
            .collect()
    }
}
