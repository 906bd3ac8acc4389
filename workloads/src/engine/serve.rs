//! Serving requests: a thread's state and request loop, and the pool of
//! threads a serving process runs them on. A single-threaded process serves
//! on its main thread, as a Unicorn or gunicorn sync worker does; with more
//! threads the main thread only coordinates, as a Puma worker does.

use std::alloc::GlobalAlloc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use allocbench_allocators as allocators;
use hdrhistogram::Histogram;

use super::EngineError;
use super::heap::{Block, Global, Mix, Rng, StaticHeap};
use crate::spec::WorkloadSpec;

pub(crate) fn latency_histogram() -> Histogram<u64> {
    // 1 ns to 1 hour at 2 significant digits (1% resolution): a serving
    // thread's histogram is part of the memory it is measured for, and three
    // digits would make it 16 times larger (about 700 KiB) for no useful gain.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 2).expect("valid histogram bounds")
}

/// What a thread (or a whole process) reports after serving.
pub(crate) struct Served {
    pub requests: u64,
    pub histogram: Histogram<u64>,
    pub live_bytes: u64,
    pub checksum: u64,
}

impl Served {
    pub(crate) fn empty() -> Served {
        Served {
            requests: 0,
            histogram: latency_histogram(),
            live_bytes: 0,
            checksum: 0,
        }
    }

    pub(crate) fn add(&mut self, o: &Served) {
        self.requests += o.requests;
        self.live_bytes += o.live_bytes;
        self.checksum = self.checksum.wrapping_add(o.checksum);
        self.histogram.add(&o.histogram).expect("same bounds");
    }
}

/// The size mixes a thread's requests go through, in order.
struct Schedule {
    /// (end of the phase as a share of the requests, mix).
    phases: Vec<(f64, Mix)>,
}

impl Schedule {
    fn new(spec: &WorkloadSpec) -> Schedule {
        if spec.mix_phases.is_empty() {
            return Schedule {
                phases: vec![(1.0, Mix::new(&spec.sizes))],
            };
        }
        let total: f64 = spec.mix_phases.iter().map(|p| p.share).sum();
        let mut end = 0.0;
        Schedule {
            phases: spec
                .mix_phases
                .iter()
                .map(|p| {
                    end += p.share / total;
                    (end, Mix::new(&p.sizes))
                })
                .collect(),
        }
    }

    /// The mix for request `r` of `n`.
    fn mix(&self, r: u64, n: u64) -> &Mix {
        let at = r as f64 / n.max(1) as f64;
        let phase = self.phases.iter().find(|(end, _)| at < *end);
        &phase
            .unwrap_or_else(|| self.phases.last().expect("a schedule has a phase"))
            .1
    }
}

/// One serving thread's state: its cache of kept objects lives between
/// requests, as an application's caches do. Request objects come from `A`:
/// the global allocator in a real run, another zero-sized allocator type in
/// the driver's benchmarks.
pub(crate) struct ThreadState<'a, A: GlobalAlloc + Copy + Default = Global> {
    spec: &'a WorkloadSpec,
    heap: &'a StaticHeap,
    gvl: Option<&'a Mutex<()>>,
    schedule: Schedule,
    rng: Rng,
    cache: Vec<Block<A>>,
    cache_bytes: u64,
    in_flight: Vec<Block<A>>,
    /// Requests this thread's slot served before this process (earlier
    /// generations), so the size schedule goes on where they left it.
    before: u64,
    /// The thread's share of the slot's requests (the schedule's length).
    of: u64,
    /// When the first request arrived, if it waited for this process to
    /// start (a replaced worker's): its latency counts from then.
    queued_since: Option<Instant>,
}

impl<'a, A: GlobalAlloc + Copy + Default> ThreadState<'a, A> {
    pub(crate) fn new(
        spec: &'a WorkloadSpec,
        heap: &'a StaticHeap,
        gvl: Option<&'a Mutex<()>>,
        rng: Rng,
    ) -> ThreadState<'a, A> {
        ThreadState {
            spec,
            heap,
            gvl,
            schedule: Schedule::new(spec),
            rng,
            cache: Vec::with_capacity((spec.cache_objects as usize).min(1 << 16)),
            cache_bytes: 0,
            in_flight: Vec::with_capacity(spec.objects_per_request as usize),
            before: 0,
            of: 0,
            queued_since: None,
        }
    }

    /// Takes over `cache` (a mold's, inherited across fork) and goes on
    /// after `before` of `of` requests, the first of them queued since
    /// `queued_since`.
    pub(crate) fn resume(
        &mut self,
        cache: Vec<Block<A>>,
        before: u64,
        of: u64,
        queued_since: Option<Instant>,
    ) {
        self.cache_bytes = cache.iter().map(|b| b.size() as u64).sum();
        self.cache = cache;
        self.before = before;
        self.of = of;
        self.queued_since = queued_since;
    }

    /// Gives up the cache (for a mold to hand down).
    pub(crate) fn take_cache(&mut self) -> Vec<Block<A>> {
        self.cache_bytes = 0;
        std::mem::take(&mut self.cache)
    }

    /// Serves `requests` requests, calling `progress` with the count served
    /// and the cache's live bytes after each; stops early, after the request
    /// in flight, when the process is asked to retire
    /// ([`super::lifecycle::retiring`]).
    pub(crate) fn serve(&mut self, requests: u64, progress: &mut dyn FnMut(u64, u64)) -> Served {
        let mut histogram = latency_histogram();
        let mut checksum = 0u64;
        let of = self.of.max(self.before + requests);
        let mut served = 0;
        for r in 0..requests {
            if super::lifecycle::retiring() {
                break;
            }
            let t0 = self.queued_since.take().unwrap_or_else(Instant::now);
            let work = {
                let _gvl = self
                    .gvl
                    .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()));
                let started = Instant::now();
                checksum = checksum.wrapping_add(self.request(self.before + r, of));
                started.elapsed()
            };
            let wait = self.spec.io_wait_share;
            if wait > 0.0 {
                // Waiting on I/O, outside the GVL as a blocking read is, for
                // the given share of the request's own time.
                std::thread::sleep(work.mul_f64(wait / (1.0 - wait)));
            }
            histogram.saturating_record(t0.elapsed().as_nanos().max(1) as u64);
            served = r + 1;
            progress(served, self.cache_bytes);
        }
        self.before += served;
        Served {
            requests: served,
            histogram,
            live_bytes: self.cache_bytes,
            checksum,
        }
    }

    /// One request: allocate and write its objects, touch shared static
    /// objects, read back, keep a few in the cache and free the rest.
    fn request(&mut self, r: u64, of: u64) -> u64 {
        let spec = self.spec;
        let fill = (r as u8) | 1;
        let mix = self.schedule.mix(r, of);
        for _ in 0..spec.objects_per_request {
            self.in_flight
                .push(Block::new(mix.sample(&mut self.rng), fill));
        }
        for _ in 0..spec.static_writes_per_request {
            self.heap.touch_random(&mut self.rng);
        }
        for _ in 0..spec.lazy_uses_per_request {
            self.heap.use_lazy(&mut self.rng);
        }
        let mut checksum = 0u64;
        let cap = spec.cache_objects as usize;
        let mut in_flight = std::mem::take(&mut self.in_flight);
        for b in in_flight.drain(..) {
            checksum = checksum.wrapping_add(b.read_back());
            if cap > 0
                && b.size() as u64 <= spec.retain_max_size
                && self.rng.unit() < spec.retain_share
            {
                self.keep(b, cap);
            }
        }
        self.in_flight = in_flight;
        checksum
    }

    /// Puts a block in the cache, evicting random entries while the cache is
    /// over its object or byte limit.
    fn keep(&mut self, b: Block<A>, cap: usize) {
        self.cache_bytes += b.size() as u64;
        self.cache.push(b);
        let byte_cap = self.spec.cache_bytes;
        while self.cache.len() > cap || (byte_cap > 0 && self.cache_bytes > byte_cap) {
            let i = self.rng.below(self.cache.len());
            let old = self.cache.swap_remove(i);
            self.cache_bytes -= old.size() as u64;
        }
    }

    /// One request of the idle trickle: the objects of a request of the
    /// last size mix, written, read back and all freed (none kept: the cache
    /// was drained and stays empty).
    fn trickle(&mut self) -> u64 {
        let mix = self.schedule.mix(1, 1);
        let blocks: Vec<Block<A>> = (0..self.spec.objects_per_request)
            .map(|_| Block::new(mix.sample(&mut self.rng), 0x5a))
            .collect();
        blocks
            .iter()
            .fold(0u64, |c, b| c.wrapping_add(b.read_back()))
    }

    /// Frees the cache (and the request buffer's own allocation).
    pub(crate) fn drain(&mut self) {
        self.cache = Vec::new();
        self.cache_bytes = 0;
        self.in_flight = Vec::new();
    }
}

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
    use crate::spec::{MixPhase, SizeBand};

    fn small_spec() -> WorkloadSpec {
        WorkloadSpec {
            static_mib: 1,
            requests: 200,
            ..WorkloadSpec::server()
        }
    }

    #[test]
    fn schedule_follows_phase_shares() {
        let spec = WorkloadSpec {
            mix_phases: vec![
                MixPhase {
                    share: 1.0,
                    sizes: vec![SizeBand::new(16, 16, 1.0)],
                },
                MixPhase {
                    share: 3.0,
                    sizes: vec![SizeBand::new(4096, 4096, 1.0)],
                },
            ],
            ..small_spec()
        };
        let s = Schedule::new(&spec);
        let mut rng = Rng::new(1, 1);
        assert_eq!(s.mix(0, 100).sample(&mut rng), 16);
        assert_eq!(s.mix(24, 100).sample(&mut rng), 16);
        assert_eq!(s.mix(25, 100).sample(&mut rng), 4096);
        assert_eq!(s.mix(99, 100).sample(&mut rng), 4096);
    }

    #[test]
    fn cache_respects_its_byte_limit() {
        let spec = WorkloadSpec {
            retain_share: 1.0,
            cache_objects: 1_000_000,
            cache_bytes: 64 << 10,
            ..small_spec()
        };
        let mut rng = Rng::new(1, 0);
        let heap = StaticHeap::preload(&spec, &mut rng);
        let mut t: ThreadState<'_> = ThreadState::new(&spec, &heap, None, Rng::new(1, 1));
        let served = t.serve(50, &mut |_, _| {});
        assert!(served.live_bytes <= 64 << 10 && served.live_bytes > 32 << 10);
        assert_eq!(served.requests, 50);
        assert_eq!(served.histogram.len(), 50);
        t.drain();
        assert_eq!(t.cache_bytes, 0);
    }

    #[test]
    fn pools_serve_every_request_with_one_or_more_threads() {
        for threads in [1, 3] {
            let spec = WorkloadSpec {
                threads,
                requests: 100,
                gvl: threads > 1,
                ..small_spec()
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
