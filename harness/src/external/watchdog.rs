//! The watchdog: nothing of a measured command outlives allocbench, even
//! when allocbench is killed with SIGKILL. `PR_SET_PDEATHSIG` kills only the
//! command's root; its descendants would be re-parented and keep running.
//!
//! For each row, allocbench starts this same executable as `__watchdog` in
//! its own process group (out of reach of a signal to allocbench's group),
//! with the read end of a pipe as its stdin; one line per write:
//!
//! - `group PGID STARTTIME`: a process group to kill (the command's, the
//!   load command's), written by its leader itself between fork and exec,
//!   so that it is known before the program can fork;
//! - `ungroup PGID`: the load command's group is killed already (before its
//!   leader is reaped, after which the id may be reused);
//! - `pid PID STARTTIME`: every process the tracker finds;
//! - `end`: the row is stopped, everything is killed.
//!
//! When the pipe closes without `end` (allocbench died, or gave up on the
//! row without stopping it), the watchdog stops every process of those
//! groups, every known process still the one seen, and every child of one
//! it stopped (found by parent pid while they cannot fork any more),
//! SIGKILLs them all and exits. After `end`, allocbench reaps it.
//!
//! The write end is close-on-exec, so no program allocbench starts holds it
//! open; the watchdog has no child and is reaped by allocbench, or by
//! whoever adopts it when allocbench is gone.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, PipeWriter, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::proc::kill_each;
use crate::exec::contain;
use crate::sample::stat::all_stats;

/// allocbench's end of a row's watchdog.
pub struct Watchdog {
    pipe: Mutex<Option<PipeWriter>>,
    child: Mutex<Option<Child>>,
}

/// The watchdog process could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the watchdog: {0}")]
pub struct WatchdogError(#[source] pub std::io::Error);

impl Watchdog {
    pub fn start() -> Result<Watchdog, WatchdogError> {
        let fail = WatchdogError;
        let exe = std::env::current_exe().map_err(fail)?;
        let (reader, writer) = std::io::pipe().map_err(fail)?;
        let child = contain::spawn(
            Command::new(exe)
                .arg("__watchdog")
                .stdin(reader)
                // Holds no terminal or pipe of the user's open after allocbench.
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0),
        )
        .map_err(fail)?;
        Ok(Watchdog {
            pipe: Mutex::new(Some(writer)),
            child: Mutex::new(Some(child)),
        })
    }

    fn send(&self, line: &str) {
        let mut pipe = self.pipe.lock().unwrap_or_else(|p| p.into_inner());
        // One short write (under PIPE_BUF) per line: never interleaved. An
        // error means the watchdog is gone (someone killed it): nothing to
        // tell. The pipe stays open until `close`, for `fd`.
        if let Some(p) = pipe.as_mut() {
            let _ = p.write_all(line.as_bytes());
        }
    }

    /// The pipe, for [`tell_own_group`] in a child about to exec: it stays
    /// open until [`Watchdog::end`] (or the drop).
    pub fn fd(&self) -> Option<RawFd> {
        let pipe = self.pipe.lock().unwrap_or_else(|p| p.into_inner());
        pipe.as_ref().map(|p| p.as_raw_fd())
    }

    /// The group's processes are killed already (before its leader is
    /// reaped and the id may be reused).
    pub fn ungroup(&self, pgid: i32) {
        self.send(&format!("ungroup {pgid}\n"));
    }

    /// A process of the tree, to kill if allocbench dies and it is still the
    /// same process.
    pub fn process(&self, pid: i32, starttime: u64) {
        self.send(&format!("pid {pid} {starttime}\n"));
    }

    /// Everything is killed already: the watchdog exits without a sweep,
    /// and is reaped.
    pub fn end(&self) {
        self.send("end\n");
        self.close();
    }

    fn close(&self) {
        drop(self.pipe.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(mut child) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = contain::wait(&mut child);
        }
    }
}

impl Drop for Watchdog {
    /// Without `end`: the watchdog sweeps what it knows, then exits.
    fn drop(&mut self) {
        self.close();
    }
}

/// Between fork and exec, in a child that has just made its own process
/// group: tells the watchdog on `fd` that group, as `group PID STARTTIME`,
/// before the program can fork anything (the start time tells the group's
/// leader from a later process given the same pid). Async-signal-safe: no
/// allocation, plain system calls.
pub fn tell_own_group(fd: RawFd) {
    let mut line = [0u8; 64];
    line[..6].copy_from_slice(b"group ");
    // SAFETY: getpid cannot fail.
    let mut at = 6 + put_number(&mut line[6..], unsafe { libc::getpid() } as u64);
    line[at] = b' ';
    at += 1;
    at += put_number(&mut line[at..], own_starttime().unwrap_or(0));
    line[at] = b'\n';
    // SAFETY: `line` is a stack buffer with `at + 1` (at most 64) bytes
    // written; the pipe's write end `fd` stays open until exec, which closes
    // it. A failed write only leaves the watchdog without this group.
    unsafe { libc::write(fd, line.as_ptr().cast(), at + 1) };
}

/// Writes `n` in decimal at the start of `out`; returns its length.
fn put_number(out: &mut [u8], mut n: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (o, d) in out.iter_mut().zip(digits[..len].iter().rev()) {
        *o = *d;
    }
    len
}

/// This process's start time (field 22 of `/proc/self/stat`), read without
/// allocating.
fn own_starttime() -> Option<u64> {
    let mut buf = [0u8; 1024];
    // SAFETY: a path literal, a stack buffer, and the descriptor closed.
    let n = unsafe {
        let fd = libc::open(
            c"/proc/self/stat".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return None;
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        usize::try_from(n).ok()?
    };
    let stat = &buf[..n];
    // The name (field 2) is in parentheses and may hold spaces; field 3
    // follows the last ')'.
    let after = stat.iter().rposition(|&b| b == b')')? + 2;
    let field = stat.get(after..)?.split(|&b| b == b' ').nth(22 - 3)?;
    let mut v: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// The `__watchdog` process: reads its instructions until `end` or the end
/// of its stdin, and kills what it knows at the latter.
pub fn main() -> i32 {
    // Process groups by their leader's (pid, start time).
    let mut groups: Vec<(i32, u64)> = Vec::new();
    let mut known: HashSet<(i32, u64)> = HashSet::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        // Never a group or pid of 0 or 1 (ours, everyone's, init).
        let id = |w: &str| w.parse::<i32>().ok().filter(|&n| n > 1);
        match words.as_slice() {
            ["end"] => return 0,
            ["group", g, t] => {
                if let (Some(g), Ok(t)) = (id(g), t.parse()) {
                    groups.push((g, t));
                }
            }
            ["ungroup", g] => groups.retain(|&(x, _)| Some(x) != id(g)),
            ["pid", p, t] => {
                if let (Some(p), Ok(t)) = (id(p), t.parse()) {
                    known.insert((p, t));
                }
            }
            _ => {}
        }
    }
    sweep(&groups, &known);
    0
}

/// Stops, then kills, every process of `groups`, every one of `known` that
/// still runs, and every descendant of those found while they are stopped.
fn sweep(groups: &[(i32, u64)], known: &HashSet<(i32, u64)>) {
    let me = std::process::id() as i32;
    // A group whose id is now another process's pid (its leader was reaped
    // and the pid reused) is not ours any more. One whose leader is gone
    // while members remain keeps its id reserved: killed.
    let stats = all_stats();
    let groups: Vec<i32> = groups
        .iter()
        .filter(|&&(g, t)| {
            // (A start time of 0: not known.)
            t == 0 || !stats.iter().any(|s| s.pid == g && s.starttime != t)
        })
        .map(|&(g, _)| g)
        .collect();
    for &g in &groups {
        // A group of the measured command's or the load command's, checked
        // just now.
        let _ = killpg(Pid::from_raw(g), Signal::SIGSTOP);
    }
    // A stopped process forks no more: walk until no new one turns up.
    let mut doomed: HashMap<i32, u64> = HashMap::new();
    for _ in 0..100 {
        let mut grew = false;
        for s in all_stats() {
            if s.zombie || s.pid == me || doomed.get(&s.pid) == Some(&s.starttime) {
                continue;
            }
            if groups.contains(&s.pgrp)
                || known.contains(&(s.pid, s.starttime))
                || doomed.contains_key(&s.ppid)
            {
                // A process of the tree, by start time or parent, just read.
                let _ = kill(Pid::from_raw(s.pid), Signal::SIGSTOP);
                doomed.insert(s.pid, s.starttime);
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    for &g in &groups {
        let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
    }
    kill_each(&doomed.into_iter().collect::<Vec<_>>());
}
