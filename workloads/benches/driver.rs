//! Criterion benchmark of the workload driver's own cost per request,
//! against the allocators' (group `request`, one iteration = one request).
//!
//! The engine's request loop ([`allocbench_workloads::bench::Server`]: the
//! code a worker thread runs, with its RNG, cache, latency histogram,
//! progress report, shared-object writes and the writes of every allocated
//! byte) serves the same requests with each allocator under it:
//!
//! - `trivial`: [`TrivialAlloc`], a per-thread power-of-two free list over a
//!   bump region (a few instructions per call), so the time is the driver's
//!   own: the driver overhead.
//! - the real allocators, named as in the allocator benchmarks:
//!   `system (glibc …)` (libc `malloc`), `jemalloc (built-in …)`,
//!   `mimalloc (built-in …)`.
//! - `write_bytes only`: the deliberate writes alone, `write_bytes` of the
//!   same object sizes (recorded from the driver's own requests) into one
//!   reused buffer, to tell them from the rest of the driver's work.
//!
//! Two request mixes: `server`, the `server` preset's (40 objects, 85%
//! 16–512 B, 13% 512 B–64 KiB, 2% 128 KiB–1 MiB), where writing the large
//! objects' bytes dominates; and `small`, the same requests with only the
//! 16–512 B band, where allocation dominates. Both preload the preset's
//! 64 MiB static heap (its 2% hot objects take the 8 writes per request)
//! and keep its 3% cache. Each entry keeps one serving thread's state across
//! iterations, as a worker thread does, so its cache is at its steady size.
//!
//! ```sh
//! cargo bench -p allocbench-workloads --bench driver
//! cargo bench -p allocbench-workloads --bench driver -- small   # one mix
//! ```
//!
//! Before measuring, each real allocator's entry is checked to be served by
//! the allocator it names ([`BenchAllocator::owner_check`]) and the trivial
//! allocator to receive the driver's calls; a mismatch stops the run.
//!
//! [`TrivialAlloc`]: allocbench_workloads::bench::TrivialAlloc
//! [`BenchAllocator::owner_check`]: allocbench_allocators::bench::BenchAllocator::owner_check

use std::alloc::{GlobalAlloc, Layout};
use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use allocbench_workloads::bench::{Driver, Jemalloc, LibcMalloc, Mimalloc, TrivialAlloc};
use allocbench_workloads::{SizeBand, WorkloadSpec};
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};

/// The two request mixes, named.
fn mixes() -> Vec<(&'static str, WorkloadSpec)> {
    let server = WorkloadSpec::server();
    let small = WorkloadSpec {
        sizes: vec![SizeBand::new(16, 512, 1.0)],
        ..server.clone()
    };
    vec![("server", server), ("small", small)]
}

/// Serves requests with `A` under the driver, one request per iteration.
fn serve_with<A: GlobalAlloc + Copy + Default>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    driver: &Driver,
    label: &str,
    mix: &str,
) {
    let mut server = driver.server::<A>();
    group.bench_function(BenchmarkId::new(label, mix), |b| {
        // One serve call per sample: its latency histogram is made once,
        // as in a worker, and its cost is not per request.
        b.iter_custom(|iters| {
            let start = Instant::now();
            black_box(server.serve(iters));
            start.elapsed()
        })
    });
    server.drain();
}

thread_local! {
    static SIZES: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// [`TrivialAlloc`] that also records the size of every allocation.
#[derive(Clone, Copy, Default)]
struct Recorder;

// SAFETY: forwards to TrivialAlloc.
unsafe impl GlobalAlloc for Recorder {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        SIZES.with(|s| s.borrow_mut().push(layout.size()));
        // SAFETY: the caller's contract is passed on to TrivialAlloc.
        unsafe { TrivialAlloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `Recorder::alloc`, that is from
        // TrivialAlloc, with `layout` (the caller's contract).
        unsafe { TrivialAlloc.dealloc(ptr, layout) }
    }
}

/// The object sizes of `requests` of the driver's requests, in order.
fn request_sizes(driver: &Driver, requests: u64) -> Vec<usize> {
    SIZES.with(|s| s.borrow_mut().clear());
    let mut server = driver.server::<Recorder>();
    server.serve(requests);
    server.drain();
    SIZES.with(|s| s.take())
}

/// The deliberate writes alone: each request's objects written one after
/// the other into a reused buffer, as the driver writes every byte of each.
fn writes_only(group: &mut BenchmarkGroup<'_, WallTime>, driver: &Driver, mix: &str) {
    let per_request = driver.spec().objects_per_request as usize;
    let sizes = request_sizes(driver, 2000);
    let requests: Vec<&[usize]> = sizes.chunks_exact(per_request).collect();
    let longest = requests
        .iter()
        .map(|r| r.iter().sum::<usize>())
        .max()
        .unwrap_or(0);
    let mut buffer = vec![0u8; longest];
    let mut next = 0;
    group.bench_function(BenchmarkId::new("write_bytes only", mix), |b| {
        b.iter(|| {
            let request = requests[next % requests.len()];
            next += 1;
            let base = black_box(buffer.as_mut_ptr());
            let mut offset = 0;
            for &size in request {
                // SAFETY: the buffer holds the longest request's objects.
                unsafe { base.add(offset).write_bytes(next as u8, size) };
                offset += size;
            }
            black_box(base);
        })
    });
}

/// Stops the run unless every entry measures what it names.
fn check_entries(driver: &Driver) {
    for entry in [LibcMalloc::ENTRY, Jemalloc::ENTRY, Mimalloc::ENTRY] {
        if let Err(e) = entry.owner_check() {
            panic!("refusing to benchmark: {e}");
        }
    }
    let requests = 100;
    let before = TrivialAlloc::calls();
    let mut server = driver.server::<TrivialAlloc>();
    server.serve(requests);
    server.drain();
    let (allocs, frees) = TrivialAlloc::calls();
    let expected = requests * u64::from(driver.spec().objects_per_request);
    assert!(
        allocs - before.0 == expected && frees - before.1 == expected,
        "refusing to benchmark: the trivial allocator served {} allocations and {} frees, \
         not {expected} of each",
        allocs - before.0,
        frees - before.1
    );
}

fn request(c: &mut Criterion) {
    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Elements(1));
    for (mix, spec) in mixes() {
        let driver = Driver::new(spec).expect("a valid spec");
        check_entries(&driver);
        serve_with::<TrivialAlloc>(&mut group, &driver, "trivial", mix);
        serve_with::<LibcMalloc>(&mut group, &driver, &LibcMalloc::ENTRY.label(), mix);
        serve_with::<Jemalloc>(&mut group, &driver, &Jemalloc::ENTRY.label(), mix);
        serve_with::<Mimalloc>(&mut group, &driver, &Mimalloc::ENTRY.label(), mix);
        writes_only(&mut group, &driver, mix);
    }
    group.finish();
}

fn config() -> Criterion {
    // Ten entries at 3 s each: about half a minute. Plots are off unless
    // asked for (`--plotting-backend plotters`).
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = request
}
criterion_main!(benches);
