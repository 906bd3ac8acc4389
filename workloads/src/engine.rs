//! The engine that runs inside a cell's processes: the master preloads
//! static memory, applies the pre-fork hook and forks the workers; each
//! worker runs its threads through the requests and the phases after them.
//!
//! All allocations go through the process's global allocator, which the
//! variant selected. Every byte allocated is written, and read back into a
//! checksum, so the compiler cannot drop the writes and pages are touched.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use allocbench_allocators as allocators;
use hdrhistogram::Histogram;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};
use rand_core::Rng as _;
use rand_pcg::Pcg64Mcg;

use crate::fault::Fault;
use crate::protocol::{Channel, Event, Phase, PhaseReport, Role};
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

/// One allocation of the workload, freed when dropped.
pub(crate) struct Block {
    ptr: NonNull<u8>,
    size: usize,
}

// SAFETY: a Block is a unique owner of its allocation, like a Box<[u8]>.
unsafe impl Send for Block {}

impl Block {
    /// Allocates `size` bytes and writes every one of them with `fill`.
    pub(crate) fn new(size: usize, fill: u8) -> Block {
        let layout = Layout::from_size_align(size, ALIGN).expect("sizes are validated");
        // SAFETY: size is at least 16 (validated), so the layout is non-zero.
        let p = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(p) else {
            handle_alloc_error(layout)
        };
        // SAFETY: ptr is valid for `size` bytes. black_box makes the pointer
        // escape, so the writes cannot be proven dead and removed.
        unsafe { std::ptr::write_bytes(ptr.as_ptr(), fill, size) };
        Block {
            ptr: std::hint::black_box(ptr),
            size,
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

impl Drop for Block {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.size, ALIGN).expect("valid when allocated");
        // SAFETY: allocated in Block::new with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), layout) };
    }
}

/// The master's static memory, inherited by every worker.
pub(crate) struct StaticHeap {
    blocks: Vec<Block>,
    /// Indices of the objects requests write to.
    hot: Vec<u32>,
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
        let hot = (large_count..blocks.len())
            .filter(|_| rng.unit() < spec.static_hot_share)
            .map(|i| i as u32)
            .collect();
        let live_bytes = blocks.iter().map(|b| b.size as u64).sum();
        StaticHeap {
            blocks,
            hot,
            live_bytes,
            allocated_objects,
            freed_objects,
        }
    }

    /// Writes into one hot object, if there are any.
    fn touch_random(&self, rng: &mut Rng) {
        if !self.hot.is_empty() {
            self.blocks[self.hot[rng.below(self.hot.len())] as usize].touch();
        }
    }
}

/// Runs a whole cell's process tree from the master's side. Called in the
/// process the harness spawned; returns only in the master.
pub fn run_master(spec: &WorkloadSpec, socket: &str) -> Result<(), String> {
    let fault = Fault::from_env()?;
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    let mut ch = Some(Channel::connect(socket, Role::Master, 0).map_err(|e| io("connect", e))?);

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

fn ensure_single_threaded() -> Result<(), String> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map_err(|e| format!("/proc/self/task: {e}"))?
        .count();
    if threads != 1 {
        return Err(format!(
            "the master has {threads} threads; forking it would copy held locks into the workers"
        ));
    }
    Ok(())
}

enum Command {
    Drain,
    Trim,
}

struct Served {
    requests: u64,
    histogram: Histogram<u64>,
    live_bytes: u64,
    checksum: u64,
}

enum Reply {
    Served(Box<Served>),
    Done,
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
    fault.at(Role::Worker, index, Phase::Forked);
    ch.phase(Phase::Forked, PhaseReport::default())
        .map_err(|e| io("forked", e))?;

    let threads = spec.threads as u64;
    let (reply_tx, reply_rx) = mpsc::channel::<Reply>();
    let progress: Vec<Progress> = (0..threads).map(|_| Progress::default()).collect();
    std::thread::scope(|scope| -> Result<(), String> {
        let start = Instant::now();
        let commands: Vec<mpsc::Sender<Command>> = (0..threads)
            .map(|t| {
                let (tx, rx) = mpsc::channel();
                let reply = reply_tx.clone();
                let requests = spec.requests / threads + u64::from(t < spec.requests % threads);
                let mut rng = Rng::new(spec.seed, 1 + u64::from(index) * 1_000_003 + t);
                let served = &progress[t as usize];
                std::thread::Builder::new()
                    .name(format!("worker{index}-t{t}"))
                    .spawn_scoped(scope, move || {
                        serve_thread(spec, heap, requests, &mut rng, served, &rx, &reply)
                    })
                    .expect("spawn worker thread");
                tx
            })
            .collect();
        let mut requests = 0;
        let mut live_bytes = 0;
        let mut checksum = 0u64;
        let mut histogram = latency_histogram();
        let mut done = 0;
        while done < threads {
            match reply_rx.recv_timeout(PROGRESS_EVERY) {
                Ok(Reply::Served(s)) => {
                    done += 1;
                    requests += s.requests;
                    live_bytes += s.live_bytes;
                    checksum = checksum.wrapping_add(s.checksum);
                    histogram.add(&s.histogram).expect("same bounds");
                }
                Ok(Reply::Done) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let served = progress.iter().map(|p| p.0.load(Ordering::Relaxed)).sum();
                    ch.send(&Event::Progress { requests: served })
                        .map_err(|e| io("progress", e))?;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let serve_ns = start.elapsed().as_nanos() as u64;
        let latency = histogram
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        fault.at(Role::Worker, index, Phase::Steady);
        ch.phase(
            Phase::Steady,
            PhaseReport {
                requests: Some(requests),
                serve_ns: Some(serve_ns),
                latency_ns: Some(latency),
                live_bytes: Some(live_bytes),
                arenas: allocators::arena_count(),
                checksum: Some(checksum),
                ..Default::default()
            },
        )
        .map_err(|e| io("steady", e))?;

        let broadcast = |cmd: fn() -> Command| {
            for c in &commands {
                let _ = c.send(cmd());
            }
            for _ in 0..threads {
                let _ = reply_rx.recv();
            }
        };
        broadcast(|| Command::Drain);
        fault.at(Role::Worker, index, Phase::Drained);
        ch.phase(
            Phase::Drained,
            PhaseReport {
                live_bytes: Some(0),
                ..Default::default()
            },
        )
        .map_err(|e| io("drained", e))?;

        broadcast(|| Command::Trim);
        let release_call = allocators::release()?;
        fault.at(Role::Worker, index, Phase::Trimmed);
        ch.phase(
            Phase::Trimmed,
            PhaseReport {
                release_call: Some(release_call.to_string()),
                ..Default::default()
            },
        )
        .map_err(|e| io("trimmed", e))?;
        // Dropping the command senders ends the threads.
        drop(commands);
        Ok(())
    })
}

pub(crate) fn latency_histogram() -> Histogram<u64> {
    // 1 ns to 1 hour at 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// A thread's count of requests served, on a cache line of its own so the
/// counting threads do not slow each other down.
#[derive(Default)]
#[repr(align(128))]
struct Progress(AtomicU64);

/// How often a serving worker reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

fn serve_thread(
    spec: &WorkloadSpec,
    heap: &StaticHeap,
    requests: u64,
    rng: &mut Rng,
    served: &Progress,
    commands: &mpsc::Receiver<Command>,
    reply: &mpsc::Sender<Reply>,
) {
    let mix = Mix::new(&spec.sizes);
    let mut histogram = latency_histogram();
    let mut cache: Vec<Block> = Vec::with_capacity(spec.cache_objects as usize);
    let mut in_flight: Vec<Block> = Vec::with_capacity(spec.objects_per_request as usize);
    let mut checksum = 0u64;
    let cap = spec.cache_objects as usize;
    for r in 0..requests {
        let t0 = Instant::now();
        let fill = (r as u8) | 1;
        for _ in 0..spec.objects_per_request {
            in_flight.push(Block::new(mix.sample(rng), fill));
        }
        for _ in 0..spec.static_writes_per_request {
            heap.touch_random(rng);
        }
        for b in in_flight.drain(..) {
            checksum = checksum.wrapping_add(b.read_back());
            if cap > 0 && b.size() as u64 <= spec.retain_max_size && rng.unit() < spec.retain_share
            {
                if cache.len() < cap {
                    cache.push(b);
                } else {
                    let i = rng.below(cap);
                    cache[i] = b;
                }
            }
        }
        histogram.saturating_record(t0.elapsed().as_nanos().max(1) as u64);
        served.0.store(r + 1, Ordering::Relaxed);
    }
    let live_bytes = cache.iter().map(|b| b.size() as u64).sum();
    let _ = reply.send(Reply::Served(Box::new(Served {
        requests,
        histogram,
        live_bytes,
        checksum,
    })));
    while let Ok(cmd) = commands.recv() {
        match cmd {
            Command::Drain => {
                cache = Vec::new();
                drop(in_flight);
                in_flight = Vec::new();
            }
            Command::Trim => allocators::release_thread(),
        }
        let _ = reply.send(Reply::Done);
    }
    drop(cache);
}

/// How long a hanging fault sleeps: longer than any phase timeout.
pub(crate) const HANG: Duration = Duration::from_secs(24 * 3600);

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
    fn blocks_are_written_and_touched() {
        let b = Block::new(64, 7);
        assert_eq!(b.read_back(), 14);
        b.touch();
        // The first 8 bytes were 0x0707..07 and are now one more.
        assert_eq!(
            unsafe { std::ptr::read(b.ptr.as_ptr().cast::<u64>()) },
            0x0707_0707_0707_0708
        );
    }
}
