//! The engine that runs inside a cell's processes: the master preloads
//! static memory, applies the pre-fork hook and forks the workers; each
//! worker runs its threads through the requests and the phases after them.
//!
//! All allocations go through the process's global allocator, which the
//! variant selected (the driver's benchmarks put other allocator types
//! under the same code: [`crate::bench`]). Every byte allocated is written, and read back into a
//! checksum, so the compiler cannot drop the writes and pages are touched.

mod heap;
mod lifecycle;
mod pool;
mod serve;
mod worker;

use std::sync::atomic::Ordering;

use allocbench_allocators as allocators;
use nix::unistd::{ForkResult, Pid, fork, getpid};

use thiserror::Error;

use crate::fault::{Fault, FaultError};
use crate::protocol::{Channel, Event, Phase, PhaseReport, Role};
use crate::spec::{Lifecycle, PreforkHook, WorkloadSpec};
// For the benchmark helpers (`crate::bench`).
#[cfg(feature = "testing")]
pub use heap::Global;
#[cfg(feature = "testing")]
pub(crate) use serve::ThreadState;

use heap::{Block, Mix};
pub(crate) use heap::{Rng, StaticHeap};
use lifecycle::{Board, Ended, Forker};
use pool::Start;
pub(crate) use serve::latency_histogram;
use worker::{Outcome, run_worker, serve_phases};

/// Why a process of the cell stopped: what the master, a worker or a mold
/// prints on stderr before it exits with an error.
#[derive(Debug, Error)]
pub enum EngineError {
    /// A fault asked for in the environment that cannot be injected.
    #[error(transparent)]
    Fault(#[from] FaultError),
    /// A bad allocator selection in the environment.
    #[error(transparent)]
    Selection(#[from] allocators::SelectionError),
    /// The allocator's release call failed.
    #[error(transparent)]
    Release(#[from] allocators::ReleaseError),
    /// An I/O error: on the connection to the harness (`what` is
    /// `connect` or the phase reported), or of a system call.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A system call that failed (`fork`, `prctl(...)`, ...).
    #[error("{call}: {source}")]
    Sys {
        /// The call.
        call: &'static str,
        /// Its error.
        #[source]
        source: nix::Error,
    },
    /// A master without workers that claimed a refork.
    #[error("the master cannot become a mold")]
    MasterMold,
    /// Threads in the master (or a mold) before a fork.
    #[error(
        "the master runs other threads ({}); forking it would copy held locks into the workers",
        threads.join(", ")
    )]
    OtherThreads {
        /// The other threads' names.
        threads: Vec<String>,
    },
    /// A worker whose parent had exited by the time it started.
    #[error("the process that forked this worker exited before it started")]
    ForkerExited,
    /// A mold whose serving threads did not end.
    #[error("the mold cannot fork: {0}")]
    MoldCannotFork(#[source] Box<EngineError>),
    /// A serving thread that ended before the pool asked it to.
    #[error("a serving thread ended early")]
    ThreadEnded,
    /// A mold under a policy that does not refork.
    #[error("a mold without a refork policy")]
    NoReforkPolicy,
    /// A mold or worker whose master is gone.
    #[error("the master exited")]
    MasterExited,
}

/// An [`EngineError::Io`] of `what`.
fn io(what: &'static str) -> impl Fn(std::io::Error) -> EngineError {
    move |source| EngineError::Io { what, source }
}

/// An [`EngineError::Sys`] of `call`.
fn sys(call: &'static str) -> impl Fn(nix::Error) -> EngineError {
    move |source| EngineError::Sys { call, source }
}

/// Runs a whole cell's process tree from the master's side. Called in the
/// process the harness spawned; returns only in the master.
pub fn run_master(spec: &WorkloadSpec, socket: &str) -> Result<(), EngineError> {
    let fault = Fault::from_env()?;
    let mut ch = Some(Channel::connect(socket, Role::Master, 0).map_err(io("connect"))?);

    if std::env::var_os(allocators::THP_DISABLE_ENV).is_some() {
        // Inherited by every worker across fork.
        nix::sys::prctl::set_thp_disable(true).map_err(sys("prctl(PR_SET_THP_DISABLE)"))?;
    }
    let identity = allocators::probe();
    if let Err(e) = allocators::selection() {
        let _ = chan(&mut ch).send(&Event::Error {
            message: e.to_string(),
        });
        return Err(e.into());
    }
    fault.at(Role::Master, 0, Phase::Started);
    chan(&mut ch)
        .phase(
            Phase::Started,
            PhaseReport {
                allocator: Some(identity),
                thp_disabled: nix::sys::prctl::get_thp_disable().ok(),
                cpus_allowed: std::thread::available_parallelism()
                    .ok()
                    .map(|n| n.get() as u32),
                background_thread: allocators::background_thread(),
                ..Default::default()
            },
        )
        .map_err(io("started"))?;

    let mut rng = Rng::new(spec.seed, 0);
    let heap = StaticHeap::preload(spec, &mut rng);
    fault.at(Role::Master, 0, Phase::Preloaded);
    chan(&mut ch)
        .phase(
            Phase::Preloaded,
            PhaseReport {
                static_live_bytes: Some(heap.live_bytes),
                static_objects: Some(heap.allocated_objects),
                static_freed_objects: Some(heap.freed_objects),
                ..Default::default()
            },
        )
        .map_err(io("preloaded"))?;

    let release_call = apply_hook(spec, &mut rng)?;
    if spec.processes == 0 {
        // One process, no fork: the master serves with its own threads.
        let ctx = Ctx {
            spec,
            socket,
            heap: &heap,
            fault: &fault,
            board: None,
        };
        return match serve_phases(
            chan(&mut ch),
            &ctx,
            Role::Master,
            0,
            0,
            Start::default(),
            None,
        )? {
            Outcome::Mold(_) => Err(EngineError::MasterMold),
            Outcome::Done => Ok(()),
        };
    }
    ensure_single_threaded()?;
    let board = Board::new(spec.processes as usize)?;
    if !spec.lifecycle.is_none() {
        lifecycle::block_sigchld()?;
    }
    if matches!(spec.lifecycle, Lifecycle::Refork { .. }) {
        // Workers and molds whose mold exits are the master's to reap.
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(EngineError::Io {
                what: "prctl(PR_SET_CHILD_SUBREAPER)",
                source: std::io::Error::last_os_error(),
            });
        }
    }
    let ctx = Ctx {
        spec,
        socket,
        heap: &heap,
        fault: &fault,
        board: Some(&board),
    };
    let mut spawner = Spawner {
        ctx: &ctx,
        ch: &mut ch,
        quotas: true,
        reforks: 0,
        caches: Vec::new(),
    };
    let mut workers = Vec::new();
    for index in 0..spec.processes {
        workers.push(spawner.fork_worker(index, 0)?);
    }
    // The master does not wait at `forked`: from here on it only reaps its
    // workers (and replaces them, under a lifecycle policy), so that it can
    // report a worker that dies at any point.
    chan(spawner.ch)
        .send(&Event::Phase {
            phase: Phase::Forked,
            report: Box::new(PhaseReport {
                workers: Some(workers),
                release_call,
                ..Default::default()
            }),
        })
        .map_err(io("forked"))?;

    // Like a preforking server's master: wait for the workers, report each.
    lifecycle::master_loop(spec, &board, &mut spawner)?;
    drop(heap);
    Ok(())
}

/// What every process of the cell shares: the spec, the harness's socket,
/// the master's static heap and the lifecycle board (none without workers).
struct Ctx<'a> {
    spec: &'a WorkloadSpec,
    socket: &'a str,
    heap: &'a StaticHeap,
    fault: &'a Fault,
    board: Option<&'a Board>,
}

/// Forks workers: the master's, or a mold's (which hands its caches down).
struct Spawner<'a, 'c> {
    ctx: &'c Ctx<'a>,
    /// The forker's own connection, closed in each child.
    ch: &'c mut Option<Channel>,
    /// Whether the workers get `requests=N±J` quotas (the master's do).
    quotas: bool,
    /// Refork points claimed when this forker began forking: its workers may
    /// claim the next.
    reforks: u32,
    /// Each serving thread's cache, handed to the workers (a mold's).
    caches: Vec<Vec<Block>>,
}

impl Forker for Spawner<'_, '_> {
    fn fork_worker(&mut self, slot: u32, generation: u32) -> Result<i32, EngineError> {
        let quota = self
            .quotas
            .then(|| lifecycle::draw_quota(self.ctx.spec, slot, generation))
            .flatten();
        let parent = getpid();
        // SAFETY: the forker is single-threaded (the master checks before
        // its first fork, a mold after its threads ended), so the child may
        // allocate and run freely after fork.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                // Close the child's copy of the forker's connection (the
                // forker's own stays open).
                drop(self.ch.take());
                let board = self.ctx.board.expect("a forker has a board");
                let s = board.slot(slot);
                let start = Start {
                    caches: std::mem::take(&mut self.caches),
                    before: s.served.load(Ordering::Acquire),
                    queued_since: (generation > 0)
                        .then(|| lifecycle::instant_of(s.retired_ns.load(Ordering::Acquire))),
                };
                let worker = Worker {
                    slot,
                    generation,
                    parent,
                    quota,
                    refork: lifecycle::refork_point(self.ctx.spec, self.reforks),
                };
                let code = match run_worker(self.ctx, &worker, start) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("allocbench worker {slot}: {e}");
                        3
                    }
                };
                // SAFETY: _exit skips the forker's atexit handlers and stdio
                // buffers, which belong to the forker.
                unsafe { libc::_exit(code) };
            }
            Ok(ForkResult::Parent { child }) => Ok(child.as_raw()),
            Err(e) => Err(sys("fork")(e)),
        }
    }

    fn report(&mut self, ended: &Ended, slot: u32) {
        if let Some(ch) = self.ch.as_mut() {
            let _ = ch.send(&Event::ChildExit {
                pid: ended.pid,
                index: slot,
                status: ended.status.clone(),
                success: ended.success,
            });
        }
    }
}

fn chan(ch: &mut Option<Channel>) -> &mut Channel {
    ch.as_mut().expect("the master keeps its channel")
}

fn apply_hook(spec: &WorkloadSpec, rng: &mut Rng) -> Result<Option<String>, EngineError> {
    match spec.prefork {
        PreforkHook::None | PreforkHook::Freeze => Ok(None),
        PreforkHook::Trim => Ok(Some(allocators::release()?.to_string())),
        PreforkHook::Warmup => {
            // A burst of 100 requests' worth of objects, all live at once,
            // then freed.
            let mix = Mix::new(&spec.sizes);
            let n = spec.objects_per_request as usize * 100;
            let burst: Vec<Block> = (0..n).map(|_| Block::new(mix.sample(rng), 0x3c)).collect();
            drop(std::hint::black_box(burst));
            Ok(None)
        }
    }
}

/// The master may fork only when its own code runs one thread: a lock held
/// by another thread would be copied locked into the workers. jemalloc's
/// background threads are the exception: jemalloc stops them around fork.
fn ensure_single_threaded() -> Result<(), EngineError> {
    let mut others = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").map_err(io("/proc/self/task"))? {
        let task = task.map_err(io("/proc/self/task"))?;
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        if task.file_name().to_string_lossy() != std::process::id().to_string()
            && comm != "jemalloc_bg_thd"
        {
            others.push(comm.to_string());
        }
    }
    if !others.is_empty() {
        return Err(EngineError::OtherThreads { threads: others });
    }
    Ok(())
}

/// A worker generation: its slot, who forked it, and what its policy lets it
/// serve.
struct Worker {
    slot: u32,
    generation: u32,
    parent: Pid,
    /// Requests it serves before retiring (`requests=N±J`).
    quota: Option<u64>,
    /// The refork point it may claim (index, requests).
    refork: Option<(u32, u64)>,
}

/// How long a hanging fault sleeps: longer than any phase timeout.
#[cfg(feature = "testing")]
pub(crate) const HANG: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
