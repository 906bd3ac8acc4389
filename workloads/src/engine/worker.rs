//! A serving process from its start to its exit: it serves its requests and
//! goes through the phases after them (steady, drained, trimmed), or
//! retires early under its lifecycle policy, or becomes the mold the next
//! generation is forked from. Runs in each worker, or in the master when it
//! does not fork.

use std::sync::atomic::Ordering;
use std::time::Instant;

use allocbench_allocators as allocators;
use nix::unistd::{getpid, getppid};

use super::heap::Block;
use super::pool::{Start, with_pool};
use super::serve::Served;
use super::{Ctx, EngineError, Spawner, Worker, ensure_single_threaded, io, lifecycle, sys};
use crate::protocol::{Channel, Event, Phase, PhaseReport, RetireReason, Role};

/// How a serving process ended its serving.
pub(super) enum Outcome {
    /// It went through the phases to the end of the cell, or retired.
    Done,
    /// It became the mold, with its threads' caches to hand down.
    Mold(Vec<Vec<Block>>),
}

/// Serves this process's requests and goes through the phases after them:
/// steady, drained, trimmed. Runs in each worker, or in the master when it
/// does not fork. A worker whose policy retires it before its slot's
/// requests run out reports what it served and returns instead; one that
/// claims a refork returns its caches to become the mold.
pub(super) fn serve_phases(
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

pub(super) fn run_worker(ctx: &Ctx, w: &Worker, start: Start) -> Result<(), EngineError> {
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
