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
    fn empty() -> Served {
        Served {
            requests: 0,
            histogram: latency_histogram(),
            live_bytes: 0,
            checksum: 0,
        }
    }

    fn add(&mut self, o: &Served) {
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
        }
    }

    /// Serves `requests` requests, calling `progress` with the count served
    /// and the cache's live bytes after each.
    pub(crate) fn serve(&mut self, requests: u64, progress: &mut dyn FnMut(u64, u64)) -> Served {
        let mut histogram = latency_histogram();
        let mut checksum = 0u64;
        for r in 0..requests {
            let t0 = Instant::now();
            let work = {
                let _gvl = self
                    .gvl
                    .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()));
                let started = Instant::now();
                checksum = checksum.wrapping_add(self.request(r, requests));
                started.elapsed()
            };
            let wait = self.spec.io_wait_share;
            if wait > 0.0 {
                // Waiting on I/O, outside the GVL as a blocking read is, for
                // the given share of the request's own time.
                std::thread::sleep(work.mul_f64(wait / (1.0 - wait)));
            }
            histogram.saturating_record(t0.elapsed().as_nanos().max(1) as u64);
            progress(r + 1, self.cache_bytes);
        }
        Served {
            requests,
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
    Drain,
    Trim,
    Trickle,
}

enum Reply {
    Served(Box<Served>),
    Done,
}

/// How often a serving process reports its progress.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_millis(20);

/// Runs `body` with a pool of the spec's threads serving this process's
/// requests. `body` gets the pool to drive: serve, drain, trim.
pub(crate) fn with_pool<R>(
    spec: &WorkloadSpec,
    heap: &StaticHeap,
    stream: u64,
    body: impl FnOnce(&mut Pool<'_>) -> R,
) -> R {
    let gvl = spec.gvl.then(|| Mutex::new(()));
    let threads = u64::from(spec.threads);
    let share = |t: u64| spec.requests / threads + u64::from(t < spec.requests % threads);
    let rng = |t: u64| Rng::new(spec.seed, stream + t);
    if threads == 1 {
        let mut pool = Pool(PoolKind::Inline {
            state: Box::new(ThreadState::new(spec, heap, gvl.as_ref(), rng(0))),
            requests: spec.requests,
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
                let mut state: ThreadState<'_> = ThreadState::new(spec, heap, gvl.as_ref(), rng(t));
                let requests = share(t);
                std::thread::Builder::new()
                    .name(format!("serve-{t}"))
                    .spawn_scoped(scope, move || {
                        let served = state.serve(requests, &mut |n, live| {
                            count.requests.store(n, Ordering::Relaxed);
                            count.live_bytes.store(live, Ordering::Relaxed);
                        });
                        let _ = reply.send(Reply::Served(Box::new(served)));
                        while let Ok(cmd) = rx.recv() {
                            match cmd {
                                Command::Drain => state.drain(),
                                Command::Trim => allocators::release_thread(),
                                Command::Trickle => {
                                    std::hint::black_box(state.trickle());
                                }
                            }
                            let _ = reply.send(Reply::Done);
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
        requests: u64,
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
    /// Serves every request, calling `progress` with the requests served so
    /// far and the caches' live bytes about every [`PROGRESS_EVERY`];
    /// returns the totals.
    pub(crate) fn serve(
        &mut self,
        progress: &mut dyn FnMut(u64, u64) -> Result<(), String>,
    ) -> Result<Served, String> {
        match &mut self.0 {
            PoolKind::Inline { state, requests } => {
                let mut last = Instant::now();
                let mut failed = None;
                let served = state.serve(*requests, &mut |n, live| {
                    if failed.is_none() && last.elapsed() >= PROGRESS_EVERY {
                        last = Instant::now();
                        failed = progress(n, live).err();
                    }
                });
                failed.map_or(Ok(served), Err)
            }
            PoolKind::Threads {
                commands,
                replies,
                counts,
                ..
            } => {
                let mut total = Served::empty();
                let mut done = 0;
                while done < commands.len() {
                    match replies.recv_timeout(PROGRESS_EVERY) {
                        Ok(Reply::Served(s)) => {
                            done += 1;
                            total.add(&s);
                        }
                        Ok(Reply::Done) => {}
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            let sum = |f: fn(&Count) -> &AtomicU64| {
                                counts.iter().map(|c| f(c).load(Ordering::Relaxed)).sum()
                            };
                            progress(sum(|c| &c.requests), sum(|c| &c.live_bytes))?;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            return Err("a serving thread ended early".into());
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
    pub(crate) fn trickle(&mut self) -> Result<(), String> {
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
                    .map_err(|_| "a serving thread ended early".to_string())?;
                match replies.recv() {
                    Ok(_) => Ok(()),
                    Err(_) => Err("a serving thread ended early".into()),
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
            let served = with_pool(&spec, &heap, 1, |pool| {
                let s = pool.serve(&mut |_, _| Ok(())).unwrap();
                pool.drain();
                pool.trim_threads();
                s
            });
            assert_eq!(served.requests, 100, "{threads} threads");
            assert_eq!(served.histogram.len(), 100);
        }
    }
}
