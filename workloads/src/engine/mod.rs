//! The engine that runs inside a cell's processes: the master preloads
//! static memory, applies the pre-fork hook and forks the workers; each
//! worker runs its threads through the requests and the phases after them.
//!
//! All allocations go through the process's global allocator, which the
//! variant selected (the driver's benchmarks put other allocator types
//! under the same code: [`crate::bench`]). Every byte allocated is written, and read back into a
//! checksum, so the compiler cannot drop the writes and pages are touched.

mod heap;
mod serve;

use std::time::Instant;

use allocbench_allocators as allocators;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};

use crate::fault::Fault;
use crate::protocol::{Channel, Event, Phase, PhaseReport, Role};
use crate::spec::{PreforkHook, WorkloadSpec};
// For the benchmark helpers (`crate::bench`).
#[cfg(feature = "testing")]
pub use heap::Global;
#[cfg(feature = "testing")]
pub(crate) use serve::ThreadState;

use heap::{Block, Mix};
pub(crate) use heap::{Rng, StaticHeap};
pub(crate) use serve::latency_histogram;
use serve::with_pool;

/// Runs a whole cell's process tree from the master's side. Called in the
/// process the harness spawned; returns only in the master.
pub fn run_master(spec: &WorkloadSpec, socket: &str) -> Result<(), String> {
    let fault = Fault::from_env()?;
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    let mut ch = Some(Channel::connect(socket, Role::Master, 0).map_err(|e| io("connect", e))?);

    if std::env::var_os(allocators::THP_DISABLE_ENV).is_some() {
        // Inherited by every worker across fork.
        nix::sys::prctl::set_thp_disable(true)
            .map_err(|e| format!("prctl(PR_SET_THP_DISABLE): {e}"))?;
    }
    let identity = allocators::probe();
    if let Err(e) = allocators::selection() {
        let _ = chan(&mut ch).send(&Event::Error { message: e.clone() });
        return Err(e);
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
        .map_err(|e| io("started", e))?;

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
        .map_err(|e| io("preloaded", e))?;

    let release_call = apply_hook(spec, &mut rng)?;
    if spec.processes == 0 {
        // One process, no fork: the master serves with its own threads.
        return serve_phases(chan(&mut ch), spec, &heap, Role::Master, 0, &fault);
    }
    ensure_single_threaded()?;
    let master = getpid();
    let mut workers = Vec::new();
    for index in 0..spec.processes {
        // SAFETY: the master is single-threaded (checked above), so the
        // child may allocate and run freely after fork.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                // Close the child's copy of the master's connection (the
                // master's own stays open).
                drop(ch.take());
                let code = match run_worker(spec, socket, &heap, index, master, &fault) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("allocbench worker {index}: {e}");
                        3
                    }
                };
                // SAFETY: _exit skips the master's atexit handlers and stdio
                // buffers, which belong to the master.
                unsafe { libc::_exit(code) };
            }
            Ok(ForkResult::Parent { child }) => workers.push(child.as_raw()),
            Err(e) => return Err(format!("fork: {e}")),
        }
    }
    // The master does not wait at `forked`: from here on it only reaps its
    // workers, so that it can report a worker that dies at any point.
    chan(&mut ch)
        .send(&Event::Phase {
            phase: Phase::Forked,
            report: Box::new(PhaseReport {
                workers: Some(workers.clone()),
                release_call,
                ..Default::default()
            }),
        })
        .map_err(|e| io("forked", e))?;

    // Like a preforking server's master: wait for the workers, report each.
    let mut remaining = workers.len();
    while remaining > 0 {
        let (pid, status, success) = match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) => {
                (pid, format!("exited with status {code}"), code == 0)
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, format!("killed by {sig}"), false),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("waitpid: {e}")),
        };
        remaining -= 1;
        let index = workers.iter().position(|&w| w == pid.as_raw()).unwrap_or(0) as u32;
        let _ = chan(&mut ch).send(&Event::ChildExit {
            pid: pid.as_raw(),
            index,
            status,
            success,
        });
    }
    drop(heap);
    Ok(())
}

fn chan(ch: &mut Option<Channel>) -> &mut Channel {
    ch.as_mut().expect("the master keeps its channel")
}

fn apply_hook(spec: &WorkloadSpec, rng: &mut Rng) -> Result<Option<String>, String> {
    match spec.prefork {
        PreforkHook::None | PreforkHook::Freeze => Ok(None),
        PreforkHook::Trim => allocators::release().map(|c| Some(c.to_string())),
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
fn ensure_single_threaded() -> Result<(), String> {
    let mut others = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").map_err(|e| format!("/proc/self/task: {e}"))? {
        let task = task.map_err(|e| format!("/proc/self/task: {e}"))?;
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        if task.file_name().to_string_lossy() != std::process::id().to_string()
            && comm != "jemalloc_bg_thd"
        {
            others.push(comm.to_string());
        }
    }
    if !others.is_empty() {
        return Err(format!(
            "the master runs other threads ({}); forking it would copy held locks into the workers",
            others.join(", ")
        ));
    }
    Ok(())
}

/// Serves this process's requests and goes through the phases after them:
/// steady, drained, trimmed. Runs in each worker, or in the master when it
/// does not fork.
fn serve_phases(
    ch: &mut Channel,
    spec: &WorkloadSpec,
    heap: &StaticHeap,
    role: Role,
    index: u32,
    fault: &Fault,
) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    // Distinct random streams for every thread of every process.
    let stream = 1 + u64::from(index) * 1_000_003 + u64::from(role == Role::Master) * 500_000;
    with_pool(spec, heap, stream, |pool| {
        let start = Instant::now();
        let served = pool.serve(&mut |requests, live_bytes| {
            ch.send(&Event::Progress {
                requests,
                live_bytes,
            })
            .map_err(|e| io("progress", e))
        })?;
        let serve_ns = start.elapsed().as_nanos() as u64;
        let latency = served
            .histogram
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
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
        .map_err(|e| io("steady", e))?;

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
                .map_err(|e| io("drained", e))?;
            Some(n)
        } else {
            ch.phase(Phase::Drained, drained)
                .map_err(|e| io("drained", e))?;
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
        .map_err(|e| io("trimmed", e))
    })
}

fn run_worker(
    spec: &WorkloadSpec,
    socket: &str,
    heap: &StaticHeap,
    index: u32,
    master: Pid,
    fault: &Fault,
) -> Result<(), String> {
    // Die with the master, as the master dies with the harness.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    if getppid() != master {
        return Err("the master exited before this worker started".into());
    }
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    let mut ch = Channel::connect(socket, Role::Worker, index).map_err(|e| io("connect", e))?;
    if std::env::var_os(allocators::WORKER_BACKGROUND_THREAD_ENV).is_some() {
        allocators::set_background_thread(true)?;
    }
    fault.at(Role::Worker, index, Phase::Forked);
    ch.phase(Phase::Forked, PhaseReport::default())
        .map_err(|e| io("forked", e))?;
    serve_phases(&mut ch, spec, heap, Role::Worker, index, fault)
}

/// How long a hanging fault sleeps: longer than any phase timeout.
#[cfg(feature = "testing")]
pub(crate) const HANG: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
