//! Worker lifecycle: how workers are replaced while they serve.
//!
//! Every serving process has a slot (its worker index); a slot's
//! generations serve its requests in turn. The master, the workers and the
//! molds share a [`Board`] (one shared anonymous mapping, made before the
//! first fork) that holds each slot's state, so that whoever forks a
//! replacement knows where the slot's requests stand.
//!
//! - `requests=N±J`: a worker serves its quota (drawn by the master before
//!   the fork), then retires; the master forks the next generation.
//! - `memory=SIZE`: the master reads each serving worker's USS every check
//!   interval and sends SIGQUIT to one over the limit; the worker finishes the
//!   request in flight and retires; the master forks the next generation.
//! - `refork=N…`: a worker that has served N requests claims the refork,
//!   stops serving and becomes the mold; the mold asks each other worker to
//!   retire (at most U at a time) and forks every slot's next generation
//!   from itself, handing down its warmed caches. The mold reaps its own
//!   children; the master is the subreaper of the rest.

use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::heap::Rng;
use super::{EngineError, sys};
use crate::spec::{Lifecycle, WorkloadSpec};

static RETIRING: AtomicBool = AtomicBool::new(false);

/// Whether this process was asked to retire (SIGQUIT): serving threads stop
/// after the request in flight.
pub(crate) fn retiring() -> bool {
    RETIRING.load(Ordering::Relaxed)
}

/// Stops the serving threads after the request in flight, as a retirement
/// does: the process cannot go on (its connection to the harness failed).
pub(crate) fn stop_serving() {
    RETIRING.store(true, Ordering::Relaxed);
}

extern "C" fn on_quit(_: libc::c_int) {
    RETIRING.store(true, Ordering::Relaxed);
}

/// Makes SIGQUIT a graceful stop in this worker, as Unicorn's and
/// gunicorn's workers take it.
pub(crate) fn install_retire_handler() -> Result<(), EngineError> {
    let action = SigAction::new(
        SigHandler::Handler(on_quit),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe.
    unsafe { signal::sigaction(Signal::SIGQUIT, &action) }
        .map(|_| ())
        .map_err(sys("sigaction(SIGQUIT)"))
}

/// A slot's worker is serving.
pub(crate) const SERVING: u32 = 0;
/// A slot's worker was asked to retire and has not yet.
pub(crate) const ASKED: u32 = 1;
/// A slot's worker retired; its next generation is due.
pub(crate) const RETIRED: u32 = 2;
/// A slot's worker served the slot's last request: nothing to replace.
pub(crate) const DONE: u32 = 3;

/// One slot's state on the board.
#[repr(C)]
pub(crate) struct Slot {
    /// The slot's current worker.
    pub pid: AtomicI32,
    /// The current worker's generation (0: forked by the master at start).
    pub generation: AtomicU32,
    /// [`SERVING`], [`ASKED`], [`RETIRED`] or [`DONE`].
    pub state: AtomicU32,
    /// Requests the slot's retired generations served.
    pub served: AtomicU64,
    /// When the slot began serving (CLOCK_MONOTONIC, ns; 0: not yet).
    pub started_ns: AtomicU64,
    /// When the slot's last generation retired (CLOCK_MONOTONIC, ns).
    pub retired_ns: AtomicU64,
}

#[repr(C)]
struct Header {
    /// The master, whom a mold's death signal is tied to once it is adopted.
    master: AtomicI32,
    /// The current mold (0: none yet).
    mold: AtomicI32,
    /// Refork points claimed so far.
    reforks: AtomicU32,
}

/// Where the slots start in the board: after the header, aligned.
const SLOTS_AT: usize = size_of::<Header>().next_multiple_of(align_of::<Slot>());

/// The slots' states, in memory shared by every process of the cell.
pub(crate) struct Board {
    base: NonNull<u8>,
    len: usize,
    slots: usize,
}

impl Board {
    /// Maps a board for `slots` slots (before the first fork).
    pub(crate) fn new(slots: usize) -> Result<Board, EngineError> {
        let len = SLOTS_AT + slots * size_of::<Slot>();
        // SAFETY: a fresh anonymous mapping, no address hint; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(EngineError::Io {
                what: "mmap of the lifecycle board",
                source: std::io::Error::last_os_error(),
            });
        }
        // Zeroed pages are valid atomics: every slot SERVING, nothing served.
        let board = Board {
            base: NonNull::new(p.cast()).expect("mmap returned a mapping"),
            len,
            slots,
        };
        board
            .header()
            .master
            .store(std::process::id() as i32, Ordering::Release);
        Ok(board)
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a Header, page-aligned, zeroed or
        // written only through atomics, and lives as long as `self`.
        unsafe { &*self.base.as_ptr().cast::<Header>() }
    }

    /// Slot `i`'s state.
    pub(crate) fn slot(&self, i: u32) -> &Slot {
        assert!((i as usize) < self.slots, "slot {i} of {}", self.slots);
        // SAFETY: in bounds (checked above); the slots start at SLOTS_AT,
        // aligned for Slot; accessed only through atomics.
        unsafe {
            &*self
                .base
                .as_ptr()
                .add(SLOTS_AT)
                .cast::<Slot>()
                .add(i as usize)
        }
    }

    /// The slot whose current worker is `pid`.
    fn slot_of(&self, pid: i32) -> Option<u32> {
        (0..self.slots as u32).find(|&i| self.slot(i).pid.load(Ordering::Acquire) == pid)
    }

    /// Claims refork point `point` for this process: true for the first
    /// worker to claim it, false when another did. The claimer becomes the
    /// mold in the others' eyes only at [`Board::publish_mold`].
    pub(crate) fn claim_refork(&self, point: u32) -> bool {
        self.header()
            .reforks
            .compare_exchange(point, point + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Makes this process the mold the others see: the older mold stops
    /// replacing workers and may exit once only this one is left of its
    /// children, so this comes after the new mold stopped dying with it.
    pub(crate) fn publish_mold(&self) {
        self.header()
            .mold
            .store(std::process::id() as i32, Ordering::Release);
    }

    /// The master's pid (set before the first fork).
    fn master(&self) -> i32 {
        self.header().master.load(Ordering::Acquire)
    }

    /// Refork points claimed so far.
    pub(crate) fn reforks(&self) -> u32 {
        self.header().reforks.load(Ordering::Acquire)
    }

    fn mold(&self) -> i32 {
        self.header().mold.load(Ordering::Acquire)
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// CLOCK_MONOTONIC in ns: the clock `Instant` reads, comparable across the
/// cell's processes.
pub(crate) fn monotonic_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always there");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// The `Instant` of a CLOCK_MONOTONIC time in ns.
pub(crate) fn instant_of(ns: u64) -> Instant {
    let now = monotonic_ns();
    Instant::now()
        .checked_sub(Duration::from_nanos(now.saturating_sub(ns)))
        .unwrap_or_else(Instant::now)
}

/// What a worker serves before it retires, from the policy and the requests
/// its slot has left; `quota` is the master's draw for `requests=N±J`, and
/// `refork_point` the refork this worker may claim.
pub(crate) fn next_quota(
    spec: &WorkloadSpec,
    left: u64,
    served_here: u64,
    quota: Option<u64>,
    refork_point: Option<u64>,
) -> u64 {
    match (&spec.lifecycle, quota, refork_point) {
        (Lifecycle::Requests { .. }, Some(q), _) => q.saturating_sub(served_here).min(left),
        (Lifecycle::Refork { .. }, _, Some(n)) if served_here < n => (n - served_here).min(left),
        _ => left,
    }
}

/// The requests generation `generation` of `slot` serves under
/// `requests=N±J`: drawn from the seed, the slot and the generation, so that
/// a run and every variant of a comparison get the same quotas whatever
/// order the workers retire in.
pub(crate) fn draw_quota(spec: &WorkloadSpec, slot: u32, generation: u32) -> Option<u64> {
    match spec.lifecycle {
        Lifecycle::Requests { every, jitter } => {
            let stream = QUOTA_STREAM + (u64::from(slot) << 32) + u64::from(generation);
            let mut rng = Rng::new(spec.seed, stream);
            Some(every - jitter + rng.below(2 * jitter as usize + 1) as u64)
        }
        _ => None,
    }
}

/// The random streams the `requests=N±J` quotas are drawn from.
const QUOTA_STREAM: u64 = 900_000_001;

/// The refork point a worker forked by the `forker_reforks`-th mold (0: by
/// the master) may claim, as an index and a request count.
pub(crate) fn refork_point(spec: &WorkloadSpec, forker_reforks: u32) -> Option<(u32, u64)> {
    match &spec.lifecycle {
        Lifecycle::Refork { after, .. } => after
            .get(forker_reforks as usize)
            .map(|&n| (forker_reforks, n)),
        _ => None,
    }
}

/// A worker's USS: `Private_Clean + Private_Dirty` of its smaps_rollup.
fn uss(pid: i32) -> Option<u64> {
    let rollup = procfs::process::Process::new(pid)
        .and_then(|p| p.smaps_rollup())
        .ok()?;
    let map = &rollup.memory_map_rollup.0.first()?.extension.map;
    Some(map.get("Private_Clean")? + map.get("Private_Dirty")?)
}

/// A child that ended, as the harness hears of it.
pub(crate) struct Ended {
    pub pid: i32,
    pub status: String,
    pub success: bool,
}

/// Reaps one ended child, waiting for one if `block`; `Err(())` when there
/// is no child left at all.
pub(crate) fn reap(block: bool) -> Result<Option<Ended>, ()> {
    let flags = (!block).then_some(WaitPidFlag::WNOHANG);
    loop {
        return match waitpid(None::<Pid>, flags) {
            Ok(WaitStatus::Exited(pid, code)) => Ok(Some(Ended {
                pid: pid.as_raw(),
                status: format!("exited with status {code}"),
                success: code == 0,
            })),
            Ok(WaitStatus::Signaled(pid, sig, _)) => Ok(Some(Ended {
                pid: pid.as_raw(),
                status: format!("killed by {sig}"),
                success: false,
            })),
            Ok(WaitStatus::StillAlive) => Ok(None),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => Err(()),
        };
    }
}

/// Blocks SIGCHLD in this (single-threaded) process, so that it stays
/// pending until [`wait_child`] takes it; the workers forked after inherit
/// the mask, which a mold relies on. A master that polled instead would wake
/// hundreds of times a second and steal time slices from its workers.
pub(crate) fn block_sigchld() -> Result<(), EngineError> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set.thread_block().map_err(sys("blocking SIGCHLD"))
}

/// Sleeps until a SIGCHLD is pending (a child ended, or a worker asked to
/// retire by a mold did) or `timeout` passed; takes the signal.
fn wait_child(timeout: Duration) {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: a valid signal set and timespec; no siginfo is asked for.
    unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
}

/// Tells the current mold, if any, that a worker it asked has retired (the
/// worker is not the mold's child: no SIGCHLD would reach it).
pub(crate) fn tell_mold(board: &Board) {
    let mold = board.mold();
    if mold > 0 {
        let _ = signal::kill(Pid::from_raw(mold), Signal::SIGCHLD);
    }
}

/// The longest a master or mold sleeps between looks at the board, in case
/// a wake-up went to another process.
const TICK: Duration = Duration::from_millis(100);

/// What a forker (the master or a mold) needs to fork a slot's next
/// generation: the fork itself is the caller's, as it holds what the child
/// must drop.
pub(crate) trait Forker {
    /// Forks generation `generation` of `slot`; returns the child's pid.
    fn fork_worker(&mut self, slot: u32, generation: u32) -> Result<i32, EngineError>;
    /// Tells the harness a child ended.
    fn report(&mut self, ended: &Ended, slot: u32);
}

/// The master's loop under a policy: reaps every child (its own, and molds
/// and workers that lost their parent, as the subreaper), reports each,
/// forks the next generation of a slot whose worker retired (`requests`,
/// `memory`), and asks workers over the memory limit to retire. Returns
/// when no child is left.
pub(crate) fn master_loop(
    spec: &WorkloadSpec,
    board: &Board,
    forker: &mut dyn Forker,
) -> Result<(), EngineError> {
    let replaces = matches!(
        spec.lifecycle,
        Lifecycle::Requests { .. } | Lifecycle::Memory { .. }
    );
    // Without a policy the master only waits, as before there were any.
    let block = spec.lifecycle.is_none();
    let mut next_check = Instant::now();
    loop {
        match reap(block) {
            Ok(Some(ended)) => {
                let slot = board.slot_of(ended.pid);
                forker.report(&ended, slot.unwrap_or(0));
                if let Some(slot) = slot
                    && replaces
                    && ended.success
                    && board.slot(slot).state.load(Ordering::Acquire) == RETIRED
                {
                    let generation = board.slot(slot).generation.load(Ordering::Acquire) + 1;
                    forker.fork_worker(slot, generation)?;
                }
                continue;
            }
            Ok(None) => {}
            Err(()) => return Ok(()),
        }
        let mut wait = TICK;
        if let Lifecycle::Memory { limit, check } = spec.lifecycle {
            if Instant::now() >= next_check {
                next_check = Instant::now() + check;
                ask_over(board, limit);
            }
            wait = next_check
                .saturating_duration_since(Instant::now())
                .min(TICK);
        }
        wait_child(wait);
    }
}

/// Asks the serving worker with the largest USS over `limit`, if any, to
/// retire: one per check, as puma_worker_killer does.
fn ask_over(board: &Board, limit: u64) {
    let largest = (0..board.slots as u32)
        .filter(|&i| board.slot(i).state.load(Ordering::Acquire) == SERVING)
        .filter_map(|i| {
            let pid = board.slot(i).pid.load(Ordering::Acquire);
            Some((uss(pid)?, i))
        })
        .filter(|&(u, _)| u > limit)
        .max();
    if let Some((_, i)) = largest {
        ask(board.slot(i));
    }
}

/// Asks a serving slot's worker to retire: marks it, then signals the pid
/// the slot holds (published before SERVING), so that a worker that has
/// just replaced another is never confused with it.
fn ask(slot: &Slot) -> bool {
    if slot
        .state
        .compare_exchange(SERVING, ASKED, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return false;
    }
    let pid = slot.pid.load(Ordering::Acquire);
    let _ = signal::kill(Pid::from_raw(pid), Signal::SIGQUIT);
    true
}

/// A mold's loop: forks its own slot's next generation, then replaces every
/// other slot's worker (asking at most `max_unavailable` to retire at once,
/// forking each replacement as soon as the old worker retired), reaping and
/// reporting its own children. Returns when its children are gone, or only
/// the next mold is left of them.
pub(crate) fn mold_loop(
    spec: &WorkloadSpec,
    board: &Board,
    own_slot: u32,
    forker: &mut dyn Forker,
) -> Result<(), EngineError> {
    let Lifecycle::Refork {
        max_unavailable, ..
    } = spec.lifecycle
    else {
        return Err(EngineError::NoReforkPolicy);
    };
    let me = std::process::id() as i32;
    let forked_by = nix::unistd::getppid().as_raw();
    let mut adopted = false;
    let mut children: HashMap<i32, u32> = HashMap::new();
    let fork = |forker: &mut dyn Forker, slot: u32, children: &mut HashMap<i32, u32>| {
        let generation = board.slot(slot).generation.load(Ordering::Acquire) + 1;
        forker
            .fork_worker(slot, generation)
            .map(|pid| children.insert(pid, slot))
    };
    fork(forker, own_slot, &mut children)?;
    let mut queue: Vec<u32> = (0..board.slots as u32).filter(|&s| s != own_slot).collect();
    queue.reverse();
    let mut replacing: Vec<u32> = Vec::new();
    loop {
        while let Ok(Some(ended)) = reap(false) {
            let slot = children.remove(&ended.pid).unwrap_or(0);
            forker.report(&ended, slot);
        }
        let mut i = 0;
        while i < replacing.len() {
            let slot = replacing[i];
            match board.slot(slot).state.load(Ordering::Acquire) {
                RETIRED => {
                    replacing.swap_remove(i);
                    fork(forker, slot, &mut children)?;
                }
                DONE => {
                    replacing.swap_remove(i);
                }
                _ => i += 1,
            }
        }
        let parent = nix::unistd::getppid().as_raw();
        if parent != forked_by && parent != board.master() {
            // Orphaned with the master gone (allocbench was killed): end
            // with it, and the workers with this mold.
            return Err(EngineError::MasterExited);
        }
        if !adopted && parent == board.master() {
            // Forked by the master, or adopted by it when the older mold
            // exited: die with the master again, as a worker does.
            adopted = true;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .map_err(sys("prctl(PR_SET_PDEATHSIG)"))?;
            if nix::unistd::getppid().as_raw() != board.master() {
                return Err(EngineError::MasterExited);
            }
        }
        let next_mold = board.mold();
        if next_mold != me {
            // A worker of this mold's became the next mold: it replaces
            // the workers from here.
            queue.clear();
        }
        while replacing.len() < max_unavailable as usize
            && let Some(slot) = queue.pop()
        {
            let s = board.slot(slot);
            if ask(s) {
                replacing.push(slot);
                continue;
            }
            if s.state.load(Ordering::Acquire) != DONE {
                // Being replaced by the mold before: ask its successor later.
                queue.insert(0, slot);
                break;
            }
        }
        let others = children.keys().filter(|&&pid| pid != next_mold).count();
        if queue.is_empty()
            && replacing.is_empty()
            && others == 0
            && (next_mold != me || children.is_empty())
        {
            return Ok(());
        }
        wait_child(TICK);
    }
}
