//! Serving requests: a thread's state and request loop (the pool of
//! threads a serving process runs them on is `pool.rs`).

use std::alloc::GlobalAlloc;
use std::sync::Mutex;
use std::time::Instant;

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
    pub(super) fn trickle(&mut self) -> u64 {
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
}
