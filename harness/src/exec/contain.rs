//! Containment: nothing a cell, a measured command or a load command starts
//! outlives its run, even a process that leaves its process group and
//! session (`setsid`, a daemon's double fork) or whose parent ends.
//!
//! allocbench makes itself a child subreaper (`PR_SET_CHILD_SUBREAPER`)
//! before it starts the first of them: a process whose parent ends is
//! re-parented to allocbench instead of init, so every descendant stays
//! reachable through the parent links of `/proc/*/stat`, and a daemon is
//! still part of the tree it came from. A cgroup would hold the tree as
//! well, but only where `/sys/fs/cgroup` is writable (root, or a delegated
//! subtree); allocbench needs no privilege, and the subreaper works for
//! every user.
//!
//! Children allocbench starts itself are *owned* ([`spawn`]): their
//! `Child` handles reap them. Every other child of allocbench is *adopted*:
//! an orphan of a tree, reaped here ([`reap_adopted`]) and never by a
//! `waitpid(-1)` that could take an owned child's status from its handle.
//! The list of owned children is updated under the same lock as a spawn,
//! so a child being spawned is never mistaken for an adopted one.
//!
//! [`kill`] does what the watchdog does when allocbench dies, from inside:
//! SIGSTOP to every process of the tree (a stopped process forks no more)
//! until no new one turns up, then SIGKILL to all, then reaps the adopted.

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill as signal, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

use crate::sample::stat::{Stat, all_stats};

/// Children allocbench started and has not reaped yet. Its lock is held
/// through a spawn and through a reap of adopted processes.
static OWNED: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn owned() -> MutexGuard<'static, Vec<i32>> {
    OWNED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes allocbench the subreaper of everything it starts (once).
fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Without it (a kernel before 3.4) orphans go to init: the process
        // groups and parent links still reach everything that stays.
        let _ = nix::sys::prctl::set_child_subreaper(true);
    });
}

/// Starts `cmd` as a child allocbench owns: its handle reaps it, then says
/// so with [`reaped`].
pub fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    become_subreaper();
    let mut owned = owned();
    let child = cmd.spawn()?;
    owned.push(child.id() as i32);
    Ok(child)
}

/// The owned child `pid` has been reaped by its handle.
pub fn reaped(pid: i32) {
    owned().retain(|&p| p != pid);
}

/// Waits for an owned child, and forgets it.
pub fn wait(child: &mut Child) -> std::io::Result<std::process::ExitStatus> {
    let status = child.wait();
    reaped(child.id() as i32);
    status
}

fn me() -> i32 {
    std::process::id() as i32
}

/// The live processes among `stats` that allocbench adopted: its children
/// that it did not start. `stats` must have been read before the call (a
/// child being spawned then is owned by the time the lock is taken).
pub fn adopted(stats: &[Stat]) -> Vec<(i32, u64)> {
    let owned = owned();
    stats
        .iter()
        .filter(|s| s.ppid == me() && !s.zombie && !owned.contains(&s.pid))
        .map(|s| (s.pid, s.starttime))
        .collect()
}

/// Reaps the adopted processes among `stats` that have ended.
pub fn reap_adopted(stats: &[Stat]) {
    let owned = owned();
    for s in stats
        .iter()
        .filter(|s| s.ppid == me() && s.zombie && !owned.contains(&s.pid))
    {
        // Our child, not started by us, so no handle waits for it; gone
        // already is fine.
        let _ = waitpid(Pid::from_raw(s.pid), Some(WaitPidFlag::WNOHANG));
    }
}

/// What a tree is made of.
#[derive(Debug, Default, Clone)]
pub struct Targets {
    /// Process groups (each leader's pid, not reaped yet, so the id is
    /// still the tree's).
    pub groups: Vec<i32>,
    /// Roots, each with every descendant (owned children, not reaped yet).
    pub roots: Vec<i32>,
    /// Processes known by pid and start time, with their descendants.
    pub known: Vec<(i32, u64)>,
    /// Every adopted process, with its descendants.
    pub adopted: bool,
}

impl Targets {
    /// A tree from its root, which leads its own process group.
    pub fn root(pid: i32) -> Targets {
        Targets {
            groups: vec![pid],
            roots: vec![pid],
            ..Targets::default()
        }
    }
}

/// The processes of `targets` among `stats` that have not ended (pid,
/// start time), parents before children.
pub fn members(targets: &Targets, stats: &[Stat]) -> Vec<(i32, u64)> {
    let adopted = if targets.adopted {
        adopted(stats)
    } else {
        Vec::new()
    };
    let mut children: HashMap<i32, Vec<&Stat>> = HashMap::new();
    for s in stats.iter().filter(|s| !s.zombie) {
        children.entry(s.ppid).or_default().push(s);
    }
    let mut out: Vec<(i32, u64)> = Vec::new();
    let mut queue: Vec<&Stat> = stats
        .iter()
        .filter(|s| {
            !s.zombie
                && (targets.groups.contains(&s.pgrp)
                    || targets.roots.contains(&s.pid)
                    || targets.known.contains(&(s.pid, s.starttime))
                    || adopted.contains(&(s.pid, s.starttime)))
        })
        .collect();
    while let Some(s) = queue.pop() {
        if out.iter().any(|&(p, _)| p == s.pid) {
            continue;
        }
        out.push((s.pid, s.starttime));
        if let Some(kids) = children.get(&s.pid) {
            queue.extend(kids.iter().copied());
        }
    }
    out
}

/// Kills every process of `targets` and waits (5 s at most) until each is
/// gone or is an owned child left for its handle to reap; the adopted are
/// reaped here. Safe to call again, and from any thread.
pub fn kill(targets: &Targets) {
    let me = me();
    for &g in &targets.groups {
        // A group of the tree's, its leader not reaped yet.
        let _ = killpg(Pid::from_raw(g), Signal::SIGSTOP);
    }
    // A stopped process forks no more: look until no new one turns up.
    let mut doomed: Vec<(i32, u64)> = Vec::new();
    for _ in 0..100 {
        let fresh: Vec<(i32, u64)> = members(targets, &all_stats())
            .into_iter()
            .filter(|m| m.0 != me && !doomed.contains(m))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for &(pid, _) in &fresh {
            // A process of the tree, by group, parent or start time, just
            // read; the start time is checked again before the SIGKILL.
            let _ = signal(Pid::from_raw(pid), Signal::SIGSTOP);
        }
        doomed.extend(fresh);
    }
    for &g in &targets.groups {
        let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut first = true;
    loop {
        let stats = all_stats();
        let left: Vec<&Stat> = stats
            .iter()
            .filter(|s| doomed.contains(&(s.pid, s.starttime)))
            .collect();
        if first {
            for s in left.iter().filter(|s| !s.zombie) {
                // Stopped above and still the same process.
                let _ = signal(Pid::from_raw(s.pid), Signal::SIGKILL);
            }
            first = false;
        }
        reap_adopted(&stats);
        let owned = owned().clone();
        // Done when all that is left is owned children (their handles reap
        // them) or zombies of other processes (reaped with their parent).
        let waiting = left
            .iter()
            .any(|s| !owned.contains(&s.pid) && (!s.zombie || s.ppid == me));
        if !waiting || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
