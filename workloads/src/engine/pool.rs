//! The pool of threads a serving process runs its requests on, and the
//! commands it sends them. A single-threaded process serves on its main
//! thread, as a Unicorn or gunicorn sync worker does; with more threads the
//! main thread only coordinates, as a Puma worker does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use allocbench_allocators as allocators;

use super::EngineError;
use super::heap::{Block, Rng, StaticHeap};
use super::serve::{Served, ThreadState};
use crate::spec::WorkloadSpec;

/// A thread's count of requests served, on a cache line of its own so the
/// counting threads do not slow each other down.
#[derive(Default)]
#[repr(align(128))]
struct Count {
    requests: AtomicU64,
    live_bytes: AtomicU64,
}

enum Command {
    Serve(u64),
    Drain,
    Trim,
    Trickle,
    /// Hand the cache over and end the thread (a mold forks without threads).
    Surrender,
}

enum Reply {
    Served(Box<Served>),
    Cache(Vec<Block>),
    Done,
}

/// How often a serving process reports its progress.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_millis(20);

/// Where a serving process starts: fresh (the first generation of a worker),
/// or where an earlier generation of its slot left off.
#[derive(Default)]
pub(crate) struct Start {
    /// Each thread's cache, inherited from a mold (empty: start empty).
    pub caches: Vec<Vec<Block>>,
    /// Requests the slot served before this process.
    pub before: u64,
    /// When the slot's next request began to wait (a replaced worker's).
    pub queued_since: Option<Instant>,
}

/// The share of `n` requests thread `t` of `threads` serves.
fn share(n: u64, threads: u64, t: u64) -> u64 {
    n / threads + u64::from(t < n % threads)
}

/// Runs `body` with a pool of the spec's threads serving this process's
/// requests. `body` gets the pool to drive: serve, drain, trim.
pub(crate) fn with_pool<R>(
    spec: &WorkloadSpec,
    heap: &StaticHeap,
    stream: u64,
    mut start: Start,
    body: impl FnOnce(&mut Pool<'_>) -> R,
) -> R {
    let gvl = spec.gvl.then(|| Mutex::new(()));
    let threads = u64::from(spec.threads);
    let state = |t: u64, cache: Option<Vec<Block>>| {
        let mut s: ThreadState<'_> =
            ThreadState::new(spec, heap, gvl.as_ref(), Rng::new(spec.seed, stream + t));
        s.resume(
            cache.unwrap_or_default(),
            share(start.before, threads, t),
            share(spec.requests, threads, t),
            start.queued_since,
        );
        s
    };
    let mut caches = std::mem::take(&mut start.caches).into_iter();
    if threads == 1 {
        let mut pool = Pool(PoolKind::Inline {
            state: Box::new(state(0, caches.next())),
            served: 0,
        });
        return body(&mut pool);
    }
    let counts: Vec<Count> = (0..threads).map(|_| Count::default()).collect();
    let (reply_tx, replies) = mpsc::channel::<Reply>();
    std::thread::scope(|scope| {
        let commands = (0..threads)
            .map(|t| {
                let (tx, rx) = mpsc::channel::<Command>();
                let reply = reply_tx.clone();
                let count = &counts[t as usize];
                let mut state = state(t, caches.next());
                std::thread::Builder::new()
                    .name(format!("serve-{t}"))
                    .spawn_scoped(scope, move || {
                        let mut total = 0;
                        while let Ok(cmd) = rx.recv() {
                            let answer = match cmd {
                                Command::Serve(n) => {
                                    let served = state.serve(n, &mut |n, live| {
                                        count.requests.store(total + n, Ordering::Relaxed);
                                        count.live_bytes.store(live, Ordering::Relaxed);
                                    });
                                    total += served.requests;
                                    Reply::Served(Box::new(served))
                                }
                                Command::Drain => {
                                    state.drain();
                                    Reply::Done
                                }
                                Command::Trim => {
                                    allocators::release_thread();
                                    Reply::Done
                                }
                                Command::Trickle => {
                                    std::hint::black_box(state.trickle());
                                    Reply::Done
                                }
                                Command::Surrender => {
                                    let _ = reply.send(Reply::Cache(state.take_cache()));
                                    return;
                                }
                            };
                            let _ = reply.send(answer);
                        }
                    })
                    .expect("spawn a serving thread");
                tx
            })
            .collect();
        let mut pool = Pool(PoolKind::Threads {
            commands,
            replies,
            counts: &counts,
            next: 0,
        });
        // Dropping the pool's command senders ends the threads.
        body(&mut pool)
    })
}

/// The threads serving a process's requests.
pub(crate) struct Pool<'a>(PoolKind<'a>);

enum PoolKind<'a> {
    /// One thread: the calling thread serves.
    Inline {
        state: Box<ThreadState<'a>>,
        /// Requests served by this process so far.
        served: u64,
    },
    Threads {
        commands: Vec<mpsc::Sender<Command>>,
        replies: mpsc::Receiver<Reply>,
        counts: &'a [Count],
        /// The thread the next trickle request goes to.
        next: usize,
    },
}

impl Pool<'_> {
    /// Serves `requests` requests (fewer when the process is asked to
    /// retire), calling `progress` with the requests this pool has served
    /// and the caches' live bytes about every [`PROGRESS_EVERY`]; returns the
    /// totals of this call.
    pub(crate) fn serve(
        &mut self,
        requests: u64,
        progress: &mut dyn FnMut(u64, u64) -> Result<(), EngineError>,
    ) -> Result<Served, EngineError> {
        match &mut self.0 {
            PoolKind::Inline { state, served } => {
                let mut last = Instant::now();
                let mut failed = None;
                let base = *served;
                let now = state.serve(requests, &mut |n, live| {
                    if failed.is_none() && last.elapsed() >= PROGRESS_EVERY {
                        last = Instant::now();
                        failed = progress(base + n, live).err();
                        if failed.is_some() {
                            // The harness is gone: serve no more.
                            super::lifecycle::stop_serving();
                        }
                    }
                });
                *served += now.requests;
                failed.map_or(Ok(now), Err)
            }
            PoolKind::Threads {
                commands,
                replies,
                counts,
                ..
            } => {
                let threads = commands.len() as u64;
                for (t, c) in commands.iter().enumerate() {
                    c.send(Command::Serve(share(requests, threads, t as u64)))
                        .map_err(|_| EngineError::ThreadEnded)?;
                }
                let mut total = Served::empty();
                let mut done = 0;
                while done < commands.len() {
                    match replies.recv_timeout(PROGRESS_EVERY) {
                        Ok(Reply::Served(s)) => {
                            done += 1;
                            total.add(&s);
                        }
                        Ok(_) => {}
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            let sum = |f: fn(&Count) -> &AtomicU64| {
                                counts.iter().map(|c| f(c).load(Ordering::Relaxed)).sum()
                            };
                            if let Err(e) = progress(sum(|c| &c.requests), sum(|c| &c.live_bytes)) {
                                // The harness is gone: the threads serve no
                                // more, and the pool ends with them.
                                super::lifecycle::stop_serving();
                                return Err(e);
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            return Err(EngineError::ThreadEnded);
                        }
                    }
                }
                Ok(total)
            }
        }
    }

    fn broadcast(&mut self, make: fn() -> Command) {
        match &mut self.0 {
            PoolKind::Inline { state, .. } => match make() {
                Command::Drain => state.drain(),
                Command::Trim => allocators::release_thread(),
                Command::Trickle => {
                    std::hint::black_box(state.trickle());
                }
                Command::Serve(_) | Command::Surrender => {}
            },
            PoolKind::Threads {
                commands, replies, ..
            } => {
                for c in commands.iter() {
                    let _ = c.send(make());
                }
                for _ in 0..commands.len() {
                    let _ = replies.recv();
                }
            }
        }
    }

    /// Serves one request of the idle trickle, on the serving threads in
    /// turn (their heaps hold what the drain freed).
    pub(crate) fn trickle(&mut self) -> Result<(), EngineError> {
        match &mut self.0 {
            PoolKind::Inline { state, .. } => {
                std::hint::black_box(state.trickle());
                Ok(())
            }
            PoolKind::Threads {
                commands,
                replies,
                next,
                ..
            } => {
                let to = *next % commands.len();
                *next = to + 1;
                commands[to]
                    .send(Command::Trickle)
                    .map_err(|_| EngineError::ThreadEnded)?;
                match replies.recv() {
                    Ok(_) => Ok(()),
                    Err(_) => Err(EngineError::ThreadEnded),
                }
            }
        }
    }

    /// Every thread frees its cache, on its own thread.
    pub(crate) fn drain(&mut self) {
        self.broadcast(|| Command::Drain);
    }

    /// Every thread hands its cached free memory back to the shared heap.
    pub(crate) fn trim_threads(&mut self) {
        self.broadcast(|| Command::Trim);
    }

    /// Ends the serving threads and returns their caches, in thread order,
    /// for a mold to hand to the workers it forks.
    pub(crate) fn surrender(&mut self) -> Result<Vec<Vec<Block>>, EngineError> {
        match &mut self.0 {
            PoolKind::Inline { state, .. } => Ok(vec![state.take_cache()]),
            PoolKind::Threads {
                commands, replies, ..
            } => {
                for c in commands.iter() {
                    c.send(Command::Surrender)
                        .map_err(|_| EngineError::ThreadEnded)?;
                }
                // Replies come in any order; a cache is a cache, but keep
                // them in thread order for reproducibility: collect and let
                // each thread's cache go to the same thread in the child.
                let mut caches = Vec::with_capacity(commands.len());
                while caches.len() < commands.len() {
                    match replies.recv() {
                        Ok(Reply::Cache(c)) => caches.push(c),
                        Ok(_) => {}
                        Err(_) => return Err(EngineError::ThreadEnded),
                    }
                }
                commands.clear();
                Ok(caches)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_serve_every_request_with_one_or_more_threads() {
        for threads in [1, 3] {
            let spec = WorkloadSpec {
                threads,
                requests: 100,
                gvl: threads > 1,
                static_mib: 1,
                ..WorkloadSpec::server()
            };
            let heap = StaticHeap::preload(&spec, &mut Rng::new(1, 0));
            let served = with_pool(&spec, &heap, 1, Start::default(), |pool| {
                let s = pool.serve(100, &mut |_, _| Ok(())).unwrap();
                pool.drain();
                pool.trim_threads();
                s
            });
            assert_eq!(served.requests, 100, "{threads} threads");
            assert_eq!(served.histogram.len(), 100);
        }
    }
}
