//! Entry points for the benchmarks of the workload driver itself
//! (`workloads/benches/driver.rs`): how much of a request's time is the
//! driver's own work rather than the allocator's.
//!
//! [`Driver`] preloads a spec's static heap and hands out [`Server`]s: one
//! serving thread's state running the engine's own request loop (the code a
//! worker thread runs, with its RNG, cache, latency histogram and writes),
//! whose request objects come from a zero-sized allocator type `A` instead
//! of the global allocator. The types are resolved at compile time, as
//! [`Global`] is in a real run, so a benchmark measures the same machine
//! code with another allocator under it.
//!
//! The allocators: [`TrivialAlloc`], which does almost nothing, so that a
//! request served with it costs the driver's own work; and the allocators
//! of the allocator benchmarks ([`allocbench_allocators::bench`]) as
//! zero-sized types, [`LibcMalloc`], [`Jemalloc`] and [`Mimalloc`], each
//! calling the same [`BenchAllocator`] entry whose
//! [`owner_check`](BenchAllocator::owner_check) says which allocator serves
//! it.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};

use allocbench_allocators::bench::{ALIGN, BenchAllocator};

pub use crate::engine::Global;
use crate::engine::{Rng, StaticHeap, ThreadState};
use crate::spec::{SpecError, WorkloadSpec};

/// A spec's static heap, preloaded through the global allocator as the
/// master preloads it; serving threads borrow it.
pub struct Driver {
    spec: WorkloadSpec,
    heap: StaticHeap,
}

impl Driver {
    /// Checks `spec` and preloads its `static_mib` (from the seed's master
    /// stream, as the master does).
    pub fn new(spec: WorkloadSpec) -> Result<Driver, SpecError> {
        spec.validate()?;
        let heap = StaticHeap::preload(&spec, &mut Rng::new(spec.seed, 0));
        Ok(Driver { spec, heap })
    }

    /// The spec this driver runs.
    pub fn spec(&self) -> &WorkloadSpec {
        &self.spec
    }

    /// The state of one serving thread (the first worker's first thread's
    /// random stream), allocating its request objects through `A`. Its
    /// cache fills as it serves and lives until it is drained or dropped.
    /// No global lock and no I/O wait, whatever the spec says.
    pub fn server<A: GlobalAlloc + Copy + Default>(&self) -> Server<'_, A> {
        Server {
            state: ThreadState::new(&self.spec, &self.heap, None, Rng::new(self.spec.seed, 1)),
        }
    }
}

/// One serving thread of a [`Driver`].
pub struct Server<'a, A: GlobalAlloc + Copy + Default> {
    state: ThreadState<'a, A>,
}

impl<A: GlobalAlloc + Copy + Default> Server<'_, A> {
    /// Serves `requests` requests with the engine's request loop, reporting
    /// progress after each as a pool thread does (two relaxed stores);
    /// returns the checksum of the bytes read back.
    pub fn serve(&mut self, requests: u64) -> u64 {
        let (served, live) = (AtomicU64::new(0), AtomicU64::new(0));
        self.state
            .serve(requests, &mut |n, bytes| {
                served.store(n, Ordering::Relaxed);
                live.store(bytes, Ordering::Relaxed);
            })
            .checksum
    }

    /// Frees the cache.
    pub fn drain(&mut self) {
        self.state.drain();
    }
}

/// The allocator benchmarks' entries as zero-sized allocator types.
macro_rules! entry {
    ($(#[$doc:meta])* $name:ident, $entry:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl $name {
            /// The allocator benchmarks' entry this type calls.
            pub const ENTRY: BenchAllocator = $entry;
        }

        // SAFETY: forwards to the entry, whose blocks are aligned to ALIGN
        // (16, at least what the engine's layouts ask: debug-asserted), and
        // which takes the same size back on free.
        unsafe impl GlobalAlloc for $name {
            #[inline]
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                debug_assert!(layout.align() <= ALIGN);
                Self::ENTRY.alloc(layout.size())
            }

            #[inline]
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                // SAFETY: `ptr` came from `alloc` above, that is from
                // `ENTRY.alloc(layout.size())`, and is freed once (the
                // caller's contract).
                unsafe { Self::ENTRY.free(ptr, layout.size()) }
            }
        }
    };
}

entry!(
    /// libc `malloc`/`free` (glibc, or what `LD_PRELOAD` puts in front).
    LibcMalloc,
    BenchAllocator::System
);
entry!(
    /// The built-in jemalloc.
    Jemalloc,
    BenchAllocator::Jemalloc
);
entry!(
    /// The built-in mimalloc.
    Mimalloc,
    BenchAllocator::Mimalloc
);

/// Size classes of [`TrivialAlloc`]: powers of two, 16 B to 2^63.
const CLASSES: usize = 64;
/// Address space [`TrivialAlloc`] reserves at a time (pages are touched
/// only when used).
const REGION: usize = 1 << 30;

/// One thread's free lists and bump region.
struct FreeLists {
    heads: [*mut u8; CLASSES],
    bump: usize,
    end: usize,
    allocs: u64,
    frees: u64,
}

thread_local! {
    static LISTS: UnsafeCell<FreeLists> = const {
        UnsafeCell::new(FreeLists {
            heads: [std::ptr::null_mut(); CLASSES],
            bump: 0,
            end: 0,
            allocs: 0,
            frees: 0,
        })
    };
}

/// An allocator that does almost nothing: one free list per power-of-two
/// size class, refilled from a bump region, per thread; a freed block goes
/// back on its class's list, so memory is reused and a steady stream of
/// requests touches no new pages. It counts its calls ([`TrivialAlloc::calls`]).
///
/// For benchmarks: a block freed on another thread joins that thread's
/// lists, nothing is ever returned to the OS, alignments above 16 bytes are
/// refused (null), and a thread's memory stays mapped after it exits.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrivialAlloc;

impl TrivialAlloc {
    /// (allocations, frees) this thread has made through `TrivialAlloc`.
    pub fn calls() -> (u64, u64) {
        // SAFETY: read on the owning thread, outside any alloc call.
        LISTS.with(|l| unsafe {
            let l = &*l.get();
            (l.allocs, l.frees)
        })
    }
}

#[inline]
fn class_of(layout: Layout) -> usize {
    layout.size().max(16).next_power_of_two().trailing_zeros() as usize
}

// SAFETY: every block is 2^class bytes, 16-aligned, and handed out once
// until it is freed.
unsafe impl GlobalAlloc for TrivialAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > 16 {
            return std::ptr::null_mut();
        }
        let class = class_of(layout);
        // SAFETY: only this thread uses its lists, and nothing below calls
        // back into this allocator.
        LISTS.with(|l| unsafe {
            let l = &mut *l.get();
            l.allocs += 1;
            let head = l.heads[class];
            if !head.is_null() {
                l.heads[class] = head.cast::<*mut u8>().read();
                return head;
            }
            let bytes = 1usize << class;
            if l.end - l.bump < bytes {
                let len = bytes.max(REGION);
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                );
                if p == libc::MAP_FAILED {
                    return std::ptr::null_mut();
                }
                (l.bump, l.end) = (p as usize, p as usize + len);
            }
            let block = l.bump as *mut u8;
            l.bump += bytes;
            block
        })
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let class = class_of(layout);
        // SAFETY: as in alloc; ptr is a block of this class, no longer used.
        LISTS.with(|l| unsafe {
            let l = &mut *l.get();
            l.frees += 1;
            ptr.cast::<*mut u8>().write(l.heads[class]);
            l.heads[class] = ptr;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivial_alloc_reuses_a_freed_block_of_the_same_class() {
        let a = TrivialAlloc;
        let (l100, l128) = (
            Layout::from_size_align(100, 8).unwrap(),
            Layout::from_size_align(128, 8).unwrap(),
        );
        let before = TrivialAlloc::calls();
        // SAFETY: every block is written within its layout's size and freed
        // once with the layout of its class (100 and 128 share one).
        unsafe {
            let p = a.alloc(l100);
            let q = a.alloc(l128);
            assert!(!p.is_null() && !q.is_null() && p != q);
            assert_eq!(p as usize % 16, 0);
            p.write_bytes(1, 100);
            q.write_bytes(2, 128);
            a.dealloc(p, l100);
            // 100 and 128 bytes share the 128-byte class: the last freed
            // block comes back.
            assert_eq!(a.alloc(l128), p);
            a.dealloc(p, l128);
            a.dealloc(q, l128);
            // Larger than a region: a region of its own.
            let big = Layout::from_size_align(REGION + 1, 8).unwrap();
            let r = a.alloc(big);
            assert!(!r.is_null());
            a.dealloc(r, big);
            assert!(a.alloc(Layout::from_size_align(64, 64).unwrap()).is_null());
        }
        let after = TrivialAlloc::calls();
        assert_eq!(after.0 - before.0, 4);
        assert_eq!(after.1 - before.1, 4);
    }
}
