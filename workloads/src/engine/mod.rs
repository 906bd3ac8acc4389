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
mod serve;

use std::sync::atomic::Ordering;
use std::time::Instant;

use allocbench_allocators as allocators;
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};

use thiserror::Error;

use crate::fault::{Fault, FaultError};
use crate::protocol::{Channel, Event, Phase, PhaseReport, RetireReason, Role};
use crate::spec::{Lifecycle, PreforkHook, WorkloadSpec};
// For the benchmark helpers (`crate::bench`).
#[cfg(feature = "testing")]
pub use heap::Global;
#[cfg(feature = "testing")]
pub(crate) use serve::ThreadState;

use heap::{Block, Mix};
pub(crate) use heap::{Rng, StaticHeap};
use lifecycle::{Board, Ended, Forker};
pub(crate) use serve::latency_histogram;
use serve::{Served, Start, with_pool};

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

/// How a serving process ended its serving.
enum Outcome {
    /// It went through the phases to the end of the cell, or retired.
    Done,
    /// It became the mold, with its threads' caches to hand down.
    Mold(Vec<Vec<Block>>),
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

/// Serves this process's requests and goes through the phases after them:
/// steady, drained, trimmed. Runs in each worker, or in the master when it
/// does not fork. A worker whose policy retires it before its slot's
/// requests run out reports what it served and returns instead; one that
/// claims a refork returns its caches to become the mold.
fn serve_phases(
    ch: &mut Channel,
    ctx: &Ctx,
    role: Role,
    index: u32,
    generation: u32,
    start: Start,
    worker: Option<&Worker>,
) -> Result<Outcome, EngineError> {
    let (spec, fault) = (ctx.spec, ctx.fault);
    // Distinct random streams for every thread of every process.
    let stream = 1
        + u64::from(index) * 1_000_003
        + u64::from(role == Role::Master) * 500_000
        + u64::from(generation) * 7_919;
    let slot = ctx.board.map(|b| b.slot(index));
    if let Some(s) = slot {
        let _ = s.started_ns.compare_exchange(
            0,
            lifecycle::monotonic_ns(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
    let left = spec.requests - start.before;
    with_pool(spec, ctx.heap, stream, start, |pool| {
        let start = Instant::now();
        let mut served = Served::empty();
        let retire = loop {
            let quota = lifecycle::next_quota(
                spec,
                left - served.requests,
                served.requests,
                worker.and_then(|w| w.quota),
                worker.and_then(|w| w.refork).map(|(_, n)| n),
            );
            // The pool counts the requests this process served, over its calls.
            let now = pool.serve(quota, &mut |requests, live_bytes| {
                ch.send(&Event::Progress {
                    requests,
                    live_bytes,
                })
                .map_err(io("progress"))
            })?;
            served.add(&now);
            if served.requests == left {
                break None;
            }
            if lifecycle::retiring() {
                break Some(RetireReason::Asked);
            }
            match worker.and_then(|w| w.refork) {
                Some((point, n)) if served.requests >= n => {
                    let board = ctx.board.expect("a worker has a board");
                    if board.claim_refork(point) {
                        // Die no more with the forker: an older mold exits
                        // once its workers are replaced.
                        nix::sys::prctl::set_pdeathsig(None)
                            .map_err(sys("prctl(PR_SET_PDEATHSIG)"))?;
                        board.publish_mold();
                        break Some(RetireReason::Mold);
                    }
                    // Another worker is the mold: serve on until replaced.
                }
                Some(_) => {}
                // `requests=N`: the quota is served.
                None if worker.and_then(|w| w.quota).is_some() => break Some(RetireReason::Quota),
                // Nothing ends this worker early: serve on.
                None => {}
            }
        };
        if let Some(reason) = retire {
            let slot = slot.expect("only a worker retires");
            fault.at_retire(index);
            let caches = if reason == RetireReason::Mold {
                Some(pool.surrender()?)
            } else {
                None
            };
            ch.send(&Event::Retired {
                requests: served.requests,
                latency_ns: pairs(&served.histogram),
                checksum: served.checksum,
                reason,
            })
            .map_err(io("retired"))?;
            slot.served.fetch_add(served.requests, Ordering::AcqRel);
            slot.retired_ns
                .store(lifecycle::monotonic_ns(), Ordering::Release);
            slot.state.store(lifecycle::RETIRED, Ordering::Release);
            if reason == RetireReason::Asked {
                lifecycle::tell_mold(ctx.board.expect("a worker has a board"));
            }
            return Ok(caches.map_or(Outcome::Done, Outcome::Mold));
        }
        if let Some(s) = slot {
            s.state.store(lifecycle::DONE, Ordering::Release);
        }
        // A replaced slot's serving time runs from its first generation's
        // start, restarts included.
        let serve_ns = match slot {
            Some(s) => {
                lifecycle::monotonic_ns().saturating_sub(s.started_ns.load(Ordering::Acquire))
            }
            None => start.elapsed().as_nanos() as u64,
        };
        let latency = pairs(&served.histogram);
        // The driver's own allocations are gone before the process is
        // measured at steady.
        drop(served.histogram);
        fault.at(role, index, Phase::Steady);
        ch.phase(
            Phase::Steady,
            PhaseReport {
                requests: Some(served.requests),
                serve_ns: Some(serve_ns),
                latency_ns: Some(latency),
                live_bytes: Some(served.live_bytes),
                arenas: allocators::arena_count(),
                background_thread: allocators::background_thread(),
                checksum: Some(served.checksum),
                ..Default::default()
            },
        )
        .map_err(io("steady"))?;

        pool.drain();
        fault.at(role, index, Phase::Drained);
        let drained = PhaseReport {
            live_bytes: Some(0),
            ..Default::default()
        };
        // Through the idle window: nothing, or a trickle of requests.
        let idle_requests = if spec.idle_trickle_rps > 0.0 {
            let period = std::time::Duration::from_secs_f64(1.0 / spec.idle_trickle_rps);
            let n = ch
                .phase_ticking(Phase::Drained, drained, period, &mut || pool.trickle())
                .map_err(io("drained"))?;
            Some(n)
        } else {
            ch.phase(Phase::Drained, drained).map_err(io("drained"))?;
            None
        };

        pool.trim_threads();
        let release_call = allocators::release()?;
        fault.at(role, index, Phase::Trimmed);
        ch.phase(
            Phase::Trimmed,
            PhaseReport {
                release_call: Some(release_call.to_string()),
                idle_requests,
                ..Default::default()
            },
        )
        .map_err(io("trimmed"))?;
        Ok(Outcome::Done)
    })
}

/// A latency histogram as (value, count) pairs.
fn pairs(h: &hdrhistogram::Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

fn run_worker(ctx: &Ctx, w: &Worker, start: Start) -> Result<(), EngineError> {
    // Die with the forker, as the master dies with the harness.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(sys("prctl(PR_SET_PDEATHSIG)"))?;
    if getppid() != w.parent {
        return Err(EngineError::ForkerExited);
    }
    let board = ctx.board.expect("a worker has a board");
    let slot = board.slot(w.slot);
    if !ctx.spec.lifecycle.is_none() {
        lifecycle::install_retire_handler()?;
    }
    // The pid first: nobody acts on a slot until it is SERVING.
    slot.pid.store(getpid().as_raw(), Ordering::Release);
    slot.generation.store(w.generation, Ordering::Release);
    slot.state.store(lifecycle::SERVING, Ordering::Release);
    let mut ch = Channel::connect_as(
        ctx.socket,
        Role::Worker,
        w.slot,
        w.generation,
        w.parent.as_raw(),
    )
    .map_err(io("connect"))?;
    if std::env::var_os(allocators::WORKER_BACKGROUND_THREAD_ENV).is_some() {
        allocators::set_background_thread(true)?;
    }
    if w.generation == 0 {
        // Only the first generation waits at `forked`: a replacement starts
        // serving at once.
        ctx.fault.at(Role::Worker, w.slot, Phase::Forked);
        ch.phase(Phase::Forked, PhaseReport::default())
            .map_err(io("forked"))?;
    }
    match serve_phases(
        &mut ch,
        ctx,
        Role::Worker,
        w.slot,
        w.generation,
        start,
        Some(w),
    )? {
        Outcome::Done => Ok(()),
        Outcome::Mold(caches) => become_mold(ctx, w, ch, caches),
    }
}

/// A worker that claimed a refork: with its serving threads ended and their
/// caches kept, it forks every slot's next generation from itself.
fn become_mold(
    ctx: &Ctx,
    w: &Worker,
    ch: Channel,
    caches: Vec<Vec<Block>>,
) -> Result<(), EngineError> {
    // It stopped dying with its forker when it claimed the refork (an older
    // mold exits once its workers are replaced and the master adopts it);
    // `mold_loop` ties it to the master again.
    // The serving threads were joined; give the kernel a moment to drop
    // their tasks before the fork check.
    let mut tries = 0;
    while let Err(e) = ensure_single_threaded() {
        tries += 1;
        if tries > 100 {
            return Err(EngineError::MoldCannotFork(Box::new(e)));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let board = ctx.board.expect("a mold has a board");
    let mut ch = Some(ch);
    let mut spawner = Spawner {
        ctx,
        ch: &mut ch,
        quotas: false,
        reforks: board.reforks(),
        caches,
    };
    lifecycle::mold_loop(ctx.spec, board, w.slot, &mut spawner)
}

/// How long a hanging fault sleeps: longer than any phase timeout.
#[cfg(feature = "testing")]
pub(crate) const HANG: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
