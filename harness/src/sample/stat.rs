//! `/proc/*/stat` of every process: the parent links, process groups and
//! start times that the process tree is followed and contained by.

use procfs::process::all_processes;

/// Where a process's code, stack and brk heap start: fork keeps them, exec
/// (with address-space randomisation) replaces them. A child whose image
/// differs from its parent's runs another program, and none of its memory is
/// inherited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Image {
    pub startcode: u64,
    pub startstack: u64,
    pub start_brk: Option<u64>,
}

/// One line of `/proc/PID/stat`, the fields the tree needs.
#[derive(Debug, Clone)]
pub struct Stat {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    /// Clock ticks after boot: tells a reused pid from the process we knew.
    pub starttime: u64,
    pub zombie: bool,
    pub comm: String,
    pub image: Image,
}

/// Every process on the machine now (those that vanish while listed are
/// simply absent).
pub fn all_stats() -> Vec<Stat> {
    let Ok(all) = all_processes() else {
        return Vec::new();
    };
    all.filter_map(Result::ok)
        .filter_map(|p| p.stat().ok())
        .map(|s| Stat {
            pid: s.pid,
            ppid: s.ppid,
            pgrp: s.pgrp,
            starttime: s.starttime,
            zombie: s.state == 'Z' || s.state == 'X',
            comm: s.comm,
            image: Image {
                startcode: s.startcode,
                startstack: s.startstack,
                start_brk: s.start_brk,
            },
        })
        .collect()
}
