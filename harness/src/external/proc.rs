//! Small process helpers: an exit status read without reaping, and signals
//! to a group or to processes known by pid and start time.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::sample::stat::all_stats;

/// The exit status of our child `pid` once it has ended, without reaping
/// it: until `Child::wait`, its pid and so its process group id stay
/// reserved, and the group can be signalled without hitting a stranger.
pub fn peek_exit(pid: i32) -> Option<ExitStatus> {
    // SAFETY: siginfo_t is plain data; waitid fills it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid siginfo_t to fill; WNOWAIT leaves the child
    // unreaped, so its pid stays ours.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: reading the fields waitid set for a child event.
    if r != 0 || unsafe { info.si_pid() } == 0 {
        return None;
    }
    // SAFETY: as above: waitid reported a child event, which sets si_status.
    let status = unsafe { info.si_status() };
    // Back to the wait(2) status word ExitStatus is made from.
    match info.si_code {
        libc::CLD_EXITED => Some(ExitStatus::from_raw((status & 0xff) << 8)),
        libc::CLD_KILLED => Some(ExitStatus::from_raw(status & 0x7f)),
        libc::CLD_DUMPED => Some(ExitStatus::from_raw((status & 0x7f) | 0x80)),
        _ => None,
    }
}

pub fn signal_group(pgid: i32, signal: Signal) {
    // A process group we created (its leader is not reaped yet, see
    // `peek_exit`); a group already gone is fine.
    let _ = killpg(Pid::from_raw(pgid), signal);
}

/// Processes still running (not zombies) among `known` (pid, start time)
/// and the members of group `pgid`, other than `except`.
pub fn still_running(known: &[(i32, u64)], pgid: i32, except: i32) -> Vec<(i32, u64)> {
    all_stats()
        .into_iter()
        .filter(|s| !s.zombie && s.pid != except)
        .filter(|s| s.pgrp == pgid || known.contains(&(s.pid, s.starttime)))
        .map(|s| (s.pid, s.starttime))
        .collect()
}

/// SIGKILL to each of `procs` that is still the process we knew.
pub fn kill_each(procs: &[(i32, u64)]) {
    for (pid, starttime) in still_running(procs, -1, -1) {
        if procs.contains(&(pid, starttime)) {
            // A process of the measured tree, checked by start time just now.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}
