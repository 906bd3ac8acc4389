//! Criterion benchmarks of the allocators themselves: libc malloc
//! (`system`), the built-in jemalloc and the built-in mimalloc, side by side
//! in each group so the report compares them.
//!
//! - `malloc_free`: one malloc+free pair per size class, 16 B to 1 MiB.
//! - `batch_shuffled_free`: 1000 objects of mixed small sizes (16–512 B)
//!   allocated, then all freed in a fixed shuffled order, as a server frees
//!   a request's objects in no particular order (neither the LIFO order that
//!   suits free lists, nor FIFO).
//! - `cross_thread_free`: this thread allocates batches of 1000 objects of
//!   the same sizes, a long-lived second thread frees them. Two batches are in
//!   flight, so allocating one overlaps freeing the other: the time is the
//!   pipeline's, per object. Thread start is outside the measurement.
//! - `realloc_growth`: a block grown from 16 B to 1 MiB by doubling with
//!   realloc (16 reallocs), writing the last byte at each step.
//!
//! Every block is written (a volatile write) and its pointer passes through
//! `black_box`, so no malloc/free pair can be elided.
//!
//! ```sh
//! cargo bench -p allocbench-allocators --bench allocators
//! cargo bench -p allocbench-allocators --bench allocators -- malloc_free   # one group
//! ```
//!
//! Plots and the HTML report are off to keep the run short; add
//! `--plotting-backend plotters` after `--` for them.
//!
//! The binary keeps the default global allocator, libc malloc, so
//! criterion's own allocations go there; the jemalloc and mimalloc entries
//! call their `GlobalAlloc` impls directly. The `system` entries therefore
//! measure whatever libc `malloc` resolves to, and their name says what that
//! is (`system (glibc 2.36)`).
//!
//! # Under `LD_PRELOAD`
//!
//! Give cargo a runner that preloads the library into the benchmark
//! executable only (a plain `LD_PRELOAD=… cargo bench` works too, but also
//! runs cargo and rustc on that allocator):
//!
//! ```sh
//! CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2" \
//!     cargo bench -p allocbench-allocators --bench allocators -- system
//! ```
//!
//! The `system` entries are then named after the preloaded allocator
//! (`system (jemalloc 5.3.0)`). Or build first and run the executable cargo
//! names, passing `--bench` (without it criterion runs each benchmark once,
//! as a test):
//!
//! ```sh
//! cargo bench -p allocbench-allocators --bench allocators --no-run
//! LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 target/release/deps/allocators-<hash> --bench system
//! ```
//!
//! Before measuring, every entry is checked to be served by the allocator it
//! names ([`BenchAllocator::owner_check`]); a mismatch stops the run.

use std::hint::black_box;
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use allocbench_allocators::bench::BenchAllocator;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const SIZES: [usize; 9] = [
    16,
    64,
    256,
    KIB,
    4 * KIB,
    16 * KIB,
    64 * KIB,
    256 * KIB,
    MIB,
];
const BATCH: usize = 1000;
/// Batches between the two threads of `cross_thread_free`.
const IN_FLIGHT: usize = 2;
const GROWTH_START: usize = 16;
const GROWTH_END: usize = MIB;

/// The entries with their report names, each checked once to be served by
/// the allocator it names.
fn entries() -> &'static [(BenchAllocator, String)] {
    static ENTRIES: OnceLock<Vec<(BenchAllocator, String)>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        BenchAllocator::ALL
            .iter()
            .map(|&a| {
                if let Err(e) = a.owner_check() {
                    panic!("refusing to benchmark: {e}");
                }
                (a, a.label())
            })
            .collect()
    })
}

/// Writes one byte of a fresh block, so the allocation is really used.
#[inline]
fn touch(ptr: *mut u8, offset: usize) {
    // SAFETY: callers pass an offset inside the live block.
    unsafe { black_box(ptr).add(offset).write_volatile(offset as u8) };
}

fn size_name(size: usize) -> String {
    match size {
        s if s >= MIB && s % MIB == 0 => format!("{}MiB", s / MIB),
        s if s >= KIB && s % KIB == 0 => format!("{}KiB", s / KIB),
        s => format!("{s}B"),
    }
}

/// A fixed pseudo-random stream (xorshift64*), the same on every run.
struct Stream(u64);

impl Stream {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize % below
    }
}

/// `BATCH` sizes from 16 to 512 B, log-uniform: as many 16–32 B objects as
/// 256–512 B ones, as in a server's small objects.
fn mixed_small_sizes() -> Vec<usize> {
    let mut s = Stream(0x5eed_a110_cbe4_c400);
    (0..BATCH)
        .map(|_| {
            let low = 16usize << s.next(5);
            low + s.next(low + 1)
        })
        .collect()
}

/// A fixed permutation of `0..BATCH` (Fisher–Yates).
fn shuffled_order() -> Vec<usize> {
    let mut s = Stream(0x0de7_5eed_f4ee_0123);
    let mut order: Vec<usize> = (0..BATCH).collect();
    for i in (1..BATCH).rev() {
        order.swap(i, s.next(i + 1));
    }
    order
}

fn malloc_free(c: &mut Criterion) {
    let mut group = c.benchmark_group("malloc_free");
    group.throughput(Throughput::Elements(1));
    for size in SIZES {
        for &(a, ref label) in entries() {
            group.bench_function(BenchmarkId::new(label, size_name(size)), |b| {
                b.iter(|| {
                    let ptr = a.alloc(size);
                    touch(ptr, 0);
                    // SAFETY: ptr came from a.alloc(size).
                    unsafe { a.free(black_box(ptr), size) };
                })
            });
        }
    }
    group.finish();
}

fn batch_shuffled_free(c: &mut Criterion) {
    let sizes = mixed_small_sizes();
    let order = shuffled_order();
    let mut group = c.benchmark_group("batch_shuffled_free");
    group.throughput(Throughput::Elements(BATCH as u64));
    for &(a, ref label) in entries() {
        // Reused across iterations: its own allocation is not measured.
        let mut ptrs = Vec::with_capacity(BATCH);
        group.bench_function(BenchmarkId::new(label, BATCH), |b| {
            b.iter(|| {
                for &size in &sizes {
                    let ptr = a.alloc(size);
                    touch(ptr, 0);
                    ptrs.push(ptr);
                }
                for &i in &order {
                    // SAFETY: each block is freed once, with its size.
                    unsafe { a.free(ptrs[i], sizes[i]) };
                }
                ptrs.clear();
            })
        });
    }
    group.finish();
}

/// A batch of blocks on its way to the freeing thread, or back empty.
struct Batch(Vec<*mut u8>);

// SAFETY: the blocks are plain memory; whichever thread holds the batch is
// the only one using them.
unsafe impl Send for Batch {}

fn cross_thread_free(c: &mut Criterion) {
    let sizes = mixed_small_sizes();
    let mut group = c.benchmark_group("cross_thread_free");
    group.throughput(Throughput::Elements(BATCH as u64));
    for &(a, ref label) in entries() {
        let (full_tx, full_rx) = sync_channel::<Batch>(IN_FLIGHT);
        let (empty_tx, empty_rx) = sync_channel::<Batch>(IN_FLIGHT);
        // The batch vectors are made once and circulate, so the measured
        // part allocates nothing but the benchmarked blocks.
        for _ in 0..IN_FLIGHT {
            empty_tx.send(Batch(Vec::with_capacity(BATCH))).unwrap();
        }
        std::thread::scope(|s| {
            let freer_tx = empty_tx.clone();
            let sizes = &sizes;
            s.spawn(move || free_batches(a, sizes, full_rx, freer_tx));
            group.bench_function(BenchmarkId::new(label, BATCH), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let mut batch = empty_rx.recv().unwrap();
                        for &size in sizes {
                            let ptr = a.alloc(size);
                            touch(ptr, 0);
                            batch.0.push(ptr);
                        }
                        full_tx.send(batch).unwrap();
                    }
                    // Done when every batch is back, freed.
                    let back: Vec<Batch> =
                        (0..IN_FLIGHT).map(|_| empty_rx.recv().unwrap()).collect();
                    let elapsed = start.elapsed();
                    for batch in back {
                        empty_tx.send(batch).unwrap();
                    }
                    elapsed
                })
            });
            // Ends the freeing thread's loop; the scope joins it.
            drop(full_tx);
        });
    }
    group.finish();
}

/// The second thread of `cross_thread_free`: frees every block of every
/// batch it receives, then hands the empty vector back.
fn free_batches(
    a: BenchAllocator,
    sizes: &[usize],
    full: Receiver<Batch>,
    empty: SyncSender<Batch>,
) {
    for mut batch in full {
        for (ptr, &size) in batch.0.drain(..).zip(sizes) {
            // SAFETY: the allocating thread made ptr with this size and
            // gave it up when it sent the batch.
            unsafe { a.free(ptr, size) };
        }
        if empty.send(batch).is_err() {
            return;
        }
    }
}

fn realloc_growth(c: &mut Criterion) {
    let steps = (GROWTH_END / GROWTH_START).trailing_zeros();
    let mut group = c.benchmark_group("realloc_growth");
    // Throughput per realloc; the time shown is for the whole growth.
    group.throughput(Throughput::Elements(u64::from(steps)));
    for &(a, ref label) in entries() {
        let id = BenchmarkId::new(
            label,
            format!("{}-{}", size_name(GROWTH_START), size_name(GROWTH_END)),
        );
        group.bench_function(id, |b| {
            b.iter(|| {
                let mut size = GROWTH_START;
                let mut ptr = a.alloc(size);
                touch(ptr, size - 1);
                while size < GROWTH_END {
                    // SAFETY: ptr is the live block of `size` bytes.
                    ptr = unsafe { a.realloc(ptr, size, size * 2) };
                    size *= 2;
                    touch(ptr, size - 1);
                }
                // SAFETY: ptr is the live block of `size` bytes.
                unsafe { a.free(black_box(ptr), size) };
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    // Short enough for the whole run to take under three minutes on two
    // cores. Plots would double that, so they are off unless asked for
    // (`--plotting-backend plotters`); the command line overrides all three.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = malloc_free, batch_shuffled_free, cross_thread_free, realloc_growth
}
criterion_main!(benches);
