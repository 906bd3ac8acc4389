//! The driver benchmark (`benches/driver.rs`) must measure what it names:
//! the trivial allocator really receives every allocation and free of the
//! driver's requests, and each real allocator's entry gets its request
//! objects from the allocator it is named after.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::RefCell;
use std::collections::HashMap;
use std::marker::PhantomData;

use allocbench_workloads::WorkloadSpec;
use allocbench_workloads::bench::{Driver, Jemalloc, LibcMalloc, Mimalloc, TrivialAlloc};

use crate::common::alone;

/// The server preset's requests over a small static heap, every cacheable
/// object kept (so many blocks are live after serving).
fn driver(retain_share: f64) -> Driver {
    Driver::new(WorkloadSpec {
        static_mib: 2,
        retain_share,
        ..WorkloadSpec::server()
    })
    .unwrap()
}

// One test function, alone in a test process, so no other test thread
// frees glibc memory while the `system` entry's owner check compares
// glibc's counters.
#[test]
fn driver_bench_entries_measure_what_they_name() {
    alone(
        "driver_bench::driver_bench_entries_measure_what_they_name",
        || {
            the_trivial_allocator_gets_every_allocation_and_free();
            each_real_allocator_entry_allocates_through_the_allocator_it_names();
        },
    );
}

fn the_trivial_allocator_gets_every_allocation_and_free() {
    let driver = driver(0.03);
    let per_request = u64::from(driver.spec().objects_per_request);
    let before = TrivialAlloc::calls();
    let mut server = driver.server::<TrivialAlloc>();
    server.serve(300);
    let (allocs, frees) = TrivialAlloc::calls();
    assert_eq!(allocs - before.0, 300 * per_request);
    // The cache still holds a few objects; draining frees them.
    assert!(frees - before.1 < allocs - before.0);
    server.drain();
    let (allocs, frees) = TrivialAlloc::calls();
    assert_eq!(allocs - before.0, 300 * per_request);
    assert_eq!(frees - before.1, 300 * per_request);
}

thread_local! {
    /// Blocks a `Spy` handed out and not yet freed (address → size), and
    /// its count of allocations.
    static LIVE: RefCell<(HashMap<usize, usize>, u64)> = RefCell::new((HashMap::new(), 0));
}

/// An allocator that forwards to `A` and remembers its live blocks.
#[derive(Clone, Copy, Default)]
struct Spy<A>(PhantomData<A>);

// SAFETY: forwards to A.
unsafe impl<A: GlobalAlloc + Copy + Default> GlobalAlloc for Spy<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract (a non-zero size) is passed on to A.
        let p = unsafe { A::default().alloc(layout) };
        LIVE.with(|l| {
            let mut l = l.borrow_mut();
            l.0.insert(p as usize, layout.size());
            l.1 += 1;
        });
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.with(|l| l.borrow_mut().0.remove(&(ptr as usize)));
        // SAFETY: `ptr` came from `Spy::alloc`, that is from A, with `layout`
        // (the caller's contract).
        unsafe { A::default().dealloc(ptr, layout) }
    }
}

/// Bytes glibc has handed out (its heaps and its mmaps).
fn glibc_in_use() -> usize {
    // SAFETY: only reads glibc's counters.
    let m = unsafe { libc::mallinfo2() };
    m.uordblks + m.hblkhd
}

/// Serves requests with `A` under the driver and asks who owns each block
/// still live in the serving thread's cache.
fn live_blocks_owned<A: GlobalAlloc + Copy + Default>(
    entry: allocbench_allocators::bench::BenchAllocator,
) {
    let driver = driver(1.0);
    LIVE.with(|l| *l.borrow_mut() = (HashMap::with_capacity(8192), 0));
    let mut server = driver.server::<Spy<A>>();
    let glibc_before = glibc_in_use();
    server.serve(100);
    let glibc_growth = glibc_in_use().saturating_sub(glibc_before);
    let (live, calls) = LIVE.with(|l| l.borrow().clone());
    assert_eq!(calls, 100 * u64::from(driver.spec().objects_per_request));
    assert!(live.len() > 100, "{} live blocks", live.len());
    for &p in live.keys() {
        assert!(
            entry.owns(p as *mut u8),
            "a block of the {} entry is not from {}",
            entry.name(),
            entry.label()
        );
    }
    // glibc cannot be asked about a pointer: its in-use bytes grew by at
    // least the live blocks' (by almost nothing for the built-ins).
    let live_bytes: usize = live.values().sum();
    assert!(live_bytes > 1 << 20, "{live_bytes}");
    let glibc = entry == LibcMalloc::ENTRY;
    assert_eq!(
        glibc_growth >= live_bytes,
        glibc,
        "glibc's in-use bytes grew by {glibc_growth} while the {} entry held {live_bytes}",
        entry.name()
    );
    server.drain();
    assert!(LIVE.with(|l| l.borrow().0.is_empty()));
}

fn each_real_allocator_entry_allocates_through_the_allocator_it_names() {
    for entry in [LibcMalloc::ENTRY, Jemalloc::ENTRY, Mimalloc::ENTRY] {
        entry.owner_check().unwrap();
    }
    live_blocks_owned::<Jemalloc>(Jemalloc::ENTRY);
    live_blocks_owned::<Mimalloc>(Mimalloc::ENTRY);
    live_blocks_owned::<LibcMalloc>(LibcMalloc::ENTRY);
    // And a jemalloc block is not mimalloc's, nor the other way round.
    let p = Jemalloc::ENTRY.alloc(64);
    assert!(!Mimalloc::ENTRY.owns(p) && !LibcMalloc::ENTRY.owns(p));
    // SAFETY: `p` came from Jemalloc::ENTRY.alloc(64) above, freed once.
    unsafe { Jemalloc::ENTRY.free(p, 64) };
    let p = Mimalloc::ENTRY.alloc(64);
    assert!(!Jemalloc::ENTRY.owns(p) && !LibcMalloc::ENTRY.owns(p));
    // SAFETY: `p` came from Mimalloc::ENTRY.alloc(64) above, freed once.
    unsafe { Mimalloc::ENTRY.free(p, 64) };
}
