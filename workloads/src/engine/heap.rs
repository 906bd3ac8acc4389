//! The workload's memory: seeded random sizes, blocks that are written on
//! allocation and freed on drop, and the master's static heap.

use std::alloc::{GlobalAlloc, Layout, handle_alloc_error};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use rand_core::Rng as _;
use rand_pcg::Pcg64Mcg;

use crate::spec::{PreforkHook, SizeBand, WorkloadSpec};

/// A seeded generator with the few draws the workload needs.
pub(crate) struct Rng(Pcg64Mcg);

impl Rng {
    pub(crate) fn new(seed: u64, stream: u64) -> Rng {
        // Distinct, reproducible streams for master, workers and threads.
        let state =
            (u128::from(seed) << 64) | u128::from(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        Rng(Pcg64Mcg::new(state))
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.0.next_u64()) * n as u128) >> 64) as usize
    }

    /// A size from a band, log-uniform, rounded up to 8 bytes.
    pub(crate) fn size_in(&mut self, band: &SizeBand) -> usize {
        let (lo, hi) = (band.min as f64, band.max as f64);
        let s = (lo * (hi / lo).powf(self.unit())) as u64;
        (s.clamp(band.min, band.max).div_ceil(8) * 8) as usize
    }
}

/// Picks a band of a mix by weight.
pub(crate) struct Mix {
    bands: Vec<SizeBand>,
    cumulative: Vec<f64>,
}

impl Mix {
    pub(crate) fn new(bands: &[SizeBand]) -> Mix {
        let total: f64 = bands.iter().map(|b| b.weight).sum();
        let mut acc = 0.0;
        let cumulative = bands
            .iter()
            .map(|b| {
                acc += b.weight / total;
                acc
            })
            .collect();
        Mix {
            bands: bands.to_vec(),
            cumulative,
        }
    }

    pub(crate) fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        let i = self
            .cumulative
            .iter()
            .position(|&c| u < c)
            .unwrap_or(self.bands.len() - 1);
        rng.size_in(&self.bands[i])
    }
}

const ALIGN: usize = 8;

/// The process's global allocator (`std::alloc::alloc`), as a zero-sized
/// [`GlobalAlloc`]: the allocator every `Block` of a real run uses. Other
/// allocator types are for the driver's benchmarks ([`crate::bench`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Global;

// SAFETY: forwards to the global allocator.
unsafe impl GlobalAlloc for Global {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract (a non-zero size) is the global
        // allocator's.
        unsafe { std::alloc::alloc(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `Global::alloc` with `layout` (the caller's
        // contract), that is from the global allocator.
        unsafe { std::alloc::dealloc(ptr, layout) }
    }
}

/// One allocation of the workload, freed when dropped. `A` is a zero-sized
/// allocator type, so a block is a pointer and a size whatever `A` is, and
/// the calls are resolved at compile time.
pub(crate) struct Block<A: GlobalAlloc + Copy + Default = Global> {
    ptr: NonNull<u8>,
    size: usize,
    alloc: PhantomData<A>,
}

// SAFETY: a Block is a unique owner of its allocation, like a Box<[u8]>.
unsafe impl<A: GlobalAlloc + Copy + Default + Send> Send for Block<A> {}

impl<A: GlobalAlloc + Copy + Default> Block<A> {
    /// Allocates `size` bytes and writes every one of them with `fill`.
    pub(crate) fn new(size: usize, fill: u8) -> Block<A> {
        let layout = Layout::from_size_align(size, ALIGN).expect("sizes are validated");
        // SAFETY: size is at least 16 (validated), so the layout is non-zero.
        let p = unsafe { A::default().alloc(layout) };
        let Some(ptr) = NonNull::new(p) else {
            handle_alloc_error(layout)
        };
        // SAFETY: ptr is valid for `size` bytes. black_box makes the pointer
        // escape, so the writes cannot be proven dead and removed.
        unsafe { std::ptr::write_bytes(ptr.as_ptr(), fill, size) };
        Block {
            ptr: std::hint::black_box(ptr),
            size,
            alloc: PhantomData,
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Reads the first and last byte back (volatile: the read happens).
    pub(crate) fn read_back(&self) -> u64 {
        // SAFETY: both offsets are inside the allocation.
        unsafe {
            u64::from(std::ptr::read_volatile(self.ptr.as_ptr()))
                + u64::from(std::ptr::read_volatile(
                    self.ptr.as_ptr().add(self.size - 1),
                ))
        }
    }

    /// Increments the 8-byte counter at the start of the object, as an
    /// interpreter updates a shared object's header; atomic, so threads may
    /// share objects.
    pub(crate) fn touch(&self) {
        // SAFETY: the allocation is at least 16 bytes and 8-aligned, and is
        // only ever accessed through this atomic view while shared.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().cast()) }.fetch_add(1, Ordering::Relaxed);
    }
}

/// The marker of a lazily initialized object once it is: the preload fills
/// small objects with 0xa5, so the marker reads 0xa5a5… until then.
const INITIALIZED: u64 = 1;

impl<A: GlobalAlloc + Copy + Default> Block<A> {
    /// The marker word after the touch counter (objects are at least 16
    /// bytes and 8-aligned).
    fn marker(&self) -> &AtomicU64 {
        // SAFETY: bytes 8..16 are inside the allocation, 8-aligned, and only
        // ever accessed through this atomic view while shared.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(8).cast()) }
    }

    #[cfg(test)]
    fn initialized(&self) -> bool {
        self.marker().load(Ordering::Acquire) == INITIALIZED
    }

    /// Writes the object whole the first time (one thread wins), then only
    /// reads the marker. Returns whether this call initialized it.
    pub(crate) fn init_once(&self) -> bool {
        let marker = self.marker();
        let fresh = marker.load(Ordering::Acquire);
        if fresh == INITIALIZED || fresh == 0 {
            return false;
        }
        if marker
            .compare_exchange(fresh, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        // SAFETY: this thread won the marker (0 = being written); nobody
        // else reads or writes the body meanwhile (they only read the
        // marker). The write skips the two header words.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(16), 0x3d, self.size - 16) };
        marker.store(INITIALIZED, Ordering::Release);
        true
    }
}

impl<A: GlobalAlloc + Copy + Default> Drop for Block<A> {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.size, ALIGN).expect("valid when allocated");
        // SAFETY: allocated in Block::new by the same allocator type, with
        // this layout.
        unsafe { A::default().dealloc(self.ptr.as_ptr(), layout) };
    }
}

/// The master's static memory, inherited by every worker.
pub(crate) struct StaticHeap {
    blocks: Vec<Block>,
    /// Indices of the objects requests write to.
    hot: Vec<u32>,
    /// Indices of the objects initialized on first use.
    lazy: Vec<u32>,
    pub(crate) live_bytes: u64,
    pub(crate) allocated_objects: u64,
    pub(crate) freed_objects: u64,
}

// SAFETY: shared between a worker's threads only through Block::touch, which
// is atomic; the blocks are neither freed nor moved while shared.
unsafe impl Sync for StaticHeap {}

impl StaticHeap {
    /// Allocates `static_mib` MiB: large buffers for `static_large_share` of
    /// it, small objects for the rest; then frees `static_free_share` of the
    /// small objects (unless the hook is `freeze`), leaving holes.
    pub(crate) fn preload(spec: &WorkloadSpec, rng: &mut Rng) -> StaticHeap {
        let target = spec.static_mib << 20;
        let large_target = (target as f64 * spec.static_large_share) as u64;
        let mut blocks = Vec::new();
        let mut large_bytes = 0u64;
        while large_bytes < large_target {
            let size = rng
                .size_in(&spec.static_large)
                .min((large_target - large_bytes).max(spec.static_large.min) as usize);
            large_bytes += size as u64;
            blocks.push(Block::new(size, 0x5a));
        }
        let large_count = blocks.len();
        let mut small_bytes = 0u64;
        while large_bytes + small_bytes < target {
            let size = rng.size_in(&spec.static_small);
            small_bytes += size as u64;
            blocks.push(Block::new(size, 0xa5));
        }
        let allocated_objects = blocks.len() as u64;
        let free_share = if spec.prefork == PreforkHook::Freeze {
            0.0
        } else {
            spec.static_free_share
        };
        let mut index = 0usize;
        blocks.retain(|_| {
            let keep = index < large_count || rng.unit() >= free_share;
            index += 1;
            keep
        });
        let freed_objects = allocated_objects - blocks.len() as u64;
        let mut hot = Vec::new();
        let mut lazy = Vec::new();
        for i in large_count..blocks.len() {
            if rng.unit() < spec.static_hot_share {
                hot.push(i as u32);
            } else if spec.static_lazy_share > 0.0 && rng.unit() < spec.static_lazy_share {
                lazy.push(i as u32);
            }
        }
        let live_bytes = blocks.iter().map(|b| b.size as u64).sum();
        StaticHeap {
            blocks,
            hot,
            lazy,
            live_bytes,
            allocated_objects,
            freed_objects,
        }
    }

    /// Writes into one hot object, if there are any.
    pub(crate) fn touch_random(&self, rng: &mut Rng) {
        if !self.hot.is_empty() {
            self.blocks[self.hot[rng.below(self.hot.len())] as usize].touch();
        }
    }

    /// Uses one lazily initialized object, if there are any: writes it whole
    /// the first time in this process (or in the process it was forked
    /// from after that one initialized it), reads its marker after that.
    /// Returns whether this use initialized it.
    pub(crate) fn use_lazy(&self, rng: &mut Rng) -> bool {
        if self.lazy.is_empty() {
            return false;
        }
        // Skewed: a few objects are used all the time and many rarely (the
        // density of x = u³ falls as x^(-2/3)), so a worker keeps meeting
        // objects it has not initialized yet long after it started.
        let u = rng.unit();
        let i = ((u * u * u) * self.lazy.len() as f64) as usize;
        self.blocks[self.lazy[i.min(self.lazy.len() - 1)] as usize].init_once()
    }

    /// Objects initialized on first use, and how many of them are.
    #[cfg(test)]
    fn lazy_initialized(&self) -> (usize, usize) {
        let done = self
            .lazy
            .iter()
            .filter(|&&i| self.blocks[i as usize].initialized())
            .count();
        (self.lazy.len(), done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_stay_in_band_and_are_multiples_of_8() {
        let mut rng = Rng::new(7, 0);
        let band = SizeBand::new(16, 512, 1.0);
        for _ in 0..10_000 {
            let s = rng.size_in(&band);
            assert!((16..=512).contains(&s) && s.is_multiple_of(8), "{s}");
        }
    }

    #[test]
    fn mix_follows_weights() {
        let mut rng = Rng::new(3, 1);
        let mix = Mix::new(&[SizeBand::new(16, 16, 0.9), SizeBand::new(4096, 4096, 0.1)]);
        let big = (0..100_000)
            .filter(|_| mix.sample(&mut rng) == 4096)
            .count();
        assert!((9_000..11_000).contains(&big), "{big}");
    }

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (Rng::new(42, 5), Rng::new(42, 5));
        let mut c = Rng::new(42, 6);
        let xs: Vec<usize> = (0..100).map(|_| a.below(1000)).collect();
        let ys: Vec<usize> = (0..100).map(|_| b.below(1000)).collect();
        let zs: Vec<usize> = (0..100).map(|_| c.below(1000)).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn preload_reaches_target_and_leaves_holes() {
        let spec = WorkloadSpec {
            static_mib: 4,
            ..WorkloadSpec::server()
        };
        let heap = StaticHeap::preload(&spec, &mut Rng::new(1, 0));
        assert!(heap.freed_objects > 0);
        let allocated_bytes = 4u64 << 20;
        // About a quarter of the small 70% is freed.
        assert!(heap.live_bytes < allocated_bytes, "{}", heap.live_bytes);
        assert!(
            heap.live_bytes > allocated_bytes * 3 / 4,
            "{}",
            heap.live_bytes
        );
        assert!(!heap.hot.is_empty());

        let frozen = StaticHeap::preload(
            &WorkloadSpec {
                prefork: PreforkHook::Freeze,
                ..spec
            },
            &mut Rng::new(1, 0),
        );
        assert_eq!(frozen.freed_objects, 0);
    }

    #[test]
    fn lazy_objects_are_written_once_then_only_read() {
        let spec = WorkloadSpec {
            static_mib: 1,
            static_lazy_share: 0.5,
            ..WorkloadSpec::server()
        };
        let heap = StaticHeap::preload(&spec, &mut Rng::new(1, 0));
        let (n, done) = heap.lazy_initialized();
        assert!(n > 100, "{n}");
        assert_eq!(done, 0);
        let mut rng = Rng::new(2, 0);
        let firsts = (0..n * 2).filter(|_| heap.use_lazy(&mut rng)).count();
        // Each object is initialized exactly once, by its first use; the
        // uses are skewed, so two per object leave some of them untouched.
        let (_, done) = heap.lazy_initialized();
        assert_eq!(firsts, done);
        assert!(done > n / 2 && done < n * 95 / 100, "{done} of {n}");
        let firsts = (0..n * 2000).filter(|_| heap.use_lazy(&mut rng)).count();
        assert_eq!(heap.lazy_initialized().1, done + firsts);
        assert_eq!(heap.lazy_initialized().1, n, "enough uses reach every one");
        assert!(!heap.use_lazy(&mut rng));
        let none = StaticHeap::preload(&WorkloadSpec::server(), &mut Rng::new(1, 0));
        assert_eq!(none.lazy_initialized().0, 0);
    }

    #[test]
    fn blocks_are_written_and_touched() {
        let b = Block::<Global>::new(64, 7);
        assert_eq!(b.read_back(), 14);
        b.touch();
        // The first 8 bytes were 0x0707..07 and are now one more.
        assert_eq!(
            // SAFETY: the block is 64 bytes, 16-aligned, and not shared.
            unsafe { std::ptr::read(b.ptr.as_ptr().cast::<u64>()) },
            0x0707_0707_0707_0708
        );
    }
}
