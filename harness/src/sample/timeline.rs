//! A cell's process tree as the sampler sees it, and sampling it: at the
//! phase boundaries (driven by the cell) and on a timer (the timeline). The
//! timer and the per-process sampling serve `measure` too, which follows a
//! tree it discovers in `/proc` (see [`crate::external`]).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::results::{
    Mem, ProcessRole, ProcessSample, Timeline, TimelinePhase, ToggleWindow, TreeSample,
};
use crate::sample::cow::CowBaseline;
use crate::sample::smaps::sample;
use allocbench_workloads::Phase;

/// What is known of a cell's tree right now.
#[derive(Debug, Clone, Default)]
pub struct TreeState {
    pub master: i32,
    /// (pid, index) of every worker that said hello and has not ended.
    pub workers: Vec<(i32, u32)>,
    /// (pid, index) of the molds (`--lifecycle refork=…`) that have not
    /// ended.
    pub molds: Vec<(i32, u32)>,
    /// The master's inheritable memory at the fork, once forked.
    pub cow: Option<Arc<CowBaseline>>,
    /// The phase the cell is in (`steady` while serving, `idle`, …).
    pub phase: TimelinePhase,
    /// Requests each serving process reported having served.
    pub requests: Vec<u64>,
    /// Requests the serving processes serve in all (0: unknown).
    pub requests_total: u64,
    /// Bytes each serving process's caches held live at its last report.
    pub live_bytes: Vec<u64>,
}

pub type SharedTree = Arc<Mutex<TreeState>>;

fn lock(tree: &SharedTree) -> TreeState {
    tree.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn lock_timeline(t: &Mutex<Timeline>) -> std::sync::MutexGuard<'_, Timeline> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// How much of a process a sample reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The kernel's counters (`/proc/PID/status`): RSS and anonymous.
    Counters,
    /// smaps_rollup: every figure.
    Walk,
    /// smaps_rollup, and the workers' pagemap against the fork baseline.
    WalkCow,
}

fn sample_process(
    pid: i32,
    role: ProcessRole,
    index: Option<u32>,
    cow: Option<&CowBaseline>,
    depth: Depth,
) -> ProcessSample {
    let read = match depth {
        Depth::Counters => crate::sample::smaps::sample_counters(pid),
        Depth::Walk | Depth::WalkCow => sample(pid),
    };
    let (mem, missed) = match read {
        Ok(m) => (Some(m), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let (cow, cow_missed) = match (cow.filter(|_| depth == Depth::WalkCow), &mem) {
        (Some(b), Some(_)) => match b.scan(pid) {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(e.to_string())),
        },
        _ => (None, None),
    };
    ProcessSample {
        pid,
        role,
        index,
        mem,
        missed,
        cow,
        cow_missed,
    }
}

/// Samples every known process of the tree: smaps_rollup of each, and the
/// workers' pagemap against the fork baseline.
pub fn sample_tree(state: &TreeState, t_ms: f64) -> TreeSample {
    sample_tree_with(state, t_ms, Depth::WalkCow)
}

/// As [`sample_tree`], as deep as `depth`.
fn sample_tree_with(state: &TreeState, t_ms: f64, depth: Depth) -> TreeSample {
    let mut processes = vec![sample_process(
        state.master,
        ProcessRole::Master,
        None,
        None,
        depth,
    )];
    let mut workers = state.workers.clone();
    workers.sort_by_key(|&(_, i)| i);
    for (pid, index) in workers {
        processes.push(sample_process(
            pid,
            ProcessRole::Worker,
            Some(index),
            state.cow.as_deref(),
            depth,
        ));
    }
    for &(pid, index) in &state.molds {
        processes.push(sample_process(
            pid,
            ProcessRole::Mold,
            Some(index),
            None,
            depth,
        ));
    }
    let mut tree = Mem::default();
    for p in &processes {
        if let Some(m) = &p.mem {
            tree.add(m);
        }
    }
    TreeSample {
        requests: state.requests.iter().sum(),
        t_ms,
        tree,
        processes,
    }
}

/// The nice value the sampler asks for.
const SAMPLER_NICE: libc::c_int = -10;

/// The most of one CPU the timeline's sampling may use; a tree so large that
/// one sample takes longer than this share of the period is sampled less
/// often (the achieved rate is in the result).
const SAMPLE_DUTY: f64 = 0.10;
/// How often an idle cell is sampled on the timeline (at most).
const IDLE_PERIOD: Duration = Duration::from_secs(1);
/// Walks the timer takes in the second half of the serving phase whatever
/// the budget, evenly spread over the requests: the growth slope
/// ([`crate::analysis::metrics::growth`]) is fitted to them, and a short cell would
/// otherwise have too few. A cell long enough walks more often anyway.
const GROWTH_WALKS: u64 = 8;

/// How the timeline samples a cell's tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Points per second; 0: no timeline.
    pub hz: f64,
    /// The most of one CPU the timer's page-table walks may use, 0–1 (1:
    /// every point walks).
    pub budget: f64,
    /// Turn the timer off and on in windows this long while serving (on,
    /// off, off, on, …), to measure what it costs the workload.
    pub toggle: Option<Duration>,
}

/// Samples the tree on a timer until finished. The timeline is shared with
/// the cell, which adds its phase-boundary samples to it ([`Self::add`]), so
/// it holds an exact point at every boundary however the timer falls.
pub struct TimelineSampler {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<()>,
    timeline: Arc<Mutex<Timeline>>,
}

/// Appends a sample of the tree in `state` to the timeline.
pub fn push_point(timeline: &mut Timeline, state: &TreeState, s: &TreeSample, walked: bool) {
    timeline.push(
        s.t_ms,
        state.phase,
        s.requests,
        &s.tree,
        &s.processes,
        walked,
    );
    timeline.live_bytes.push(state.live_bytes.iter().sum());
}

/// CPU time the calling thread has used, in milliseconds.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// The windows of `--sample-toggle`: from the first point while serving,
/// windows of a fixed length in which the timer samples (window 0, 3, 4, 7,
/// 8, …) or not (1, 2, 5, 6, …), so that a steady drift of the workload's
/// speed favours neither. A window still open when serving ends is dropped:
/// the workers finish at different times.
struct Toggle {
    window: Duration,
    first: Option<Instant>,
    open: Option<OpenWindow>,
}

struct OpenWindow {
    k: u32,
    start_ms: f64,
    requests: u64,
    cpu_ms: f64,
}

impl Toggle {
    /// Whether the timer samples at this tick, closing and opening windows
    /// as the tick crosses their ends.
    fn tick(&mut self, timeline: &mut Timeline, state: &TreeState, t_ms: f64) -> bool {
        if state.phase != Phase::Steady {
            self.open = None;
            return true;
        }
        let now = Instant::now();
        let first = *self.first.get_or_insert(now);
        let k = ((now - first).as_secs_f64() / self.window.as_secs_f64()) as u32;
        let requests: u64 = state.requests.iter().sum();
        let cpu_ms = thread_cpu_ms();
        match &self.open {
            Some(w) if w.k == k => {}
            _ => {
                if let Some(w) = self.open.take() {
                    timeline.toggle.push(ToggleWindow {
                        start_ms: w.start_ms,
                        end_ms: t_ms,
                        sampling: matches!(w.k % 4, 0 | 3),
                        requests: requests.saturating_sub(w.requests),
                        sampler_cpu_ms: cpu_ms - w.cpu_ms,
                    });
                }
                self.open = Some(OpenWindow {
                    k,
                    start_ms: t_ms,
                    requests,
                    cpu_ms,
                });
            }
        }
        matches!(k % 4, 0 | 3)
    }
}

impl TimelineSampler {
    /// Starts sampling `tree` as `sampling` says, timestamps relative to
    /// `t0`. Every point reads the kernel's counters of every process
    /// (RSS, anonymous: cheap); a point walks the page tables too (PSS, USS,
    /// LazyFree, …: a few milliseconds for a process of 100 MiB, which the
    /// workload loses to the sampler) when the walks so far keep under the
    /// budget, and scans the workers' pagemaps for copied pages (costlier
    /// still) when those keep under half of it.
    pub fn start(tree: SharedTree, t0: Instant, sampling: Sampling) -> TimelineSampler {
        let budget = sampling.budget.clamp(1e-6, 1.0);
        let (mut walk_due, mut cow_due) = (Instant::now(), Instant::now());
        let mut walked_at_requests = 0u64;
        // An idle tree is blocked: its memory changes only by the allocator's
        // own decay, which a sample a second follows, while overlapping idle
        // cells would otherwise each sample as often as the busy one.
        let mut idle_due = Instant::now();
        let mut toggle = sampling.toggle.map(|window| Toggle {
            window,
            first: None,
            open: None,
        });
        let sampler = TimelineSampler::start_with(t0, sampling.hz, move |timeline, t_ms| {
            let state = lock(&tree);
            if state.phase == TimelinePhase::Idle {
                let now = Instant::now();
                if now < idle_due {
                    return;
                }
                idle_due = now + IDLE_PERIOD;
            }
            if state.master == 0 {
                return;
            }
            if let Some(toggle) = &mut toggle
                && !toggle.tick(timeline, &state, t_ms)
            {
                return;
            }
            let began = Instant::now();
            let served: u64 = state.requests.iter().sum();
            let total = state.requests_total;
            let for_growth = state.phase == Phase::Steady
                && total > 0
                && served * 2 >= total
                && served >= walked_at_requests + total / (2 * GROWTH_WALKS);
            let walk = began >= walk_due || for_growth;
            let depth = match (walk, began >= cow_due && state.cow.is_some()) {
                (true, true) => Depth::WalkCow,
                (true, false) => Depth::Walk,
                (false, _) => Depth::Counters,
            };
            let s = sample_tree_with(&state, t_ms, depth);
            let spent = began.elapsed();
            if depth != Depth::Counters {
                walk_due = began + spent.div_f64(budget);
                walked_at_requests = served;
            }
            if depth == Depth::WalkCow {
                cow_due = began + spent.div_f64(budget / 2.0);
            }
            push_point(timeline, &state, &s, depth != Depth::Counters);
        });
        sampler.add(|t| t.walk_budget = Some(budget));
        sampler
    }

    /// Calls `point` at `hz` per second with the timeline and the time since
    /// `t0` in milliseconds; `point` samples whatever tree it follows and
    /// appends to the timeline. A slow `point` (a large tree) stretches the
    /// period so that sampling keeps under SAMPLE_DUTY of a CPU. The time is
    /// read with the timeline locked, so points added meanwhile by
    /// [`Self::add`] keep the timeline in time order.
    pub fn start_with(
        t0: Instant,
        hz: f64,
        mut point: impl FnMut(&mut Timeline, f64) + Send + 'static,
    ) -> TimelineSampler {
        let (stop, stopped) = mpsc::channel::<()>();
        let period = Duration::from_secs_f64(1.0 / hz);
        let timeline = Arc::new(Mutex::new(Timeline {
            sample_hz: hz,
            ..Timeline::default()
        }));
        let shared = timeline.clone();
        let handle = std::thread::Builder::new()
            .name("timeline".into())
            .spawn(move || {
                // Many busy worker threads on few CPUs starve a thread of
                // ordinary priority; where allowed (root or CAP_SYS_NICE) the
                // sampler runs at a higher one. Best effort.
                // SAFETY: setpriority on this thread's own id.
                unsafe {
                    libc::setpriority(
                        libc::PRIO_PROCESS,
                        libc::gettid() as libc::id_t,
                        SAMPLER_NICE,
                    );
                }
                let mut next = Instant::now();
                loop {
                    let began = {
                        let mut timeline = lock_timeline(&shared);
                        let began = Instant::now();
                        point(&mut timeline, t0.elapsed().as_secs_f64() * 1e3);
                        began
                    };
                    next = next.max(began + began.elapsed().div_f64(SAMPLE_DUTY) - period);
                    // Keep to the grid; skip ticks a slow sample overran.
                    next += period;
                    let now = Instant::now();
                    while next < now {
                        next += period;
                    }
                    match stopped.recv_timeout(next - now) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => break,
                    }
                }
                lock_timeline(&shared).sampler_cpu_ms = Some(thread_cpu_ms());
            })
            .expect("spawn the timeline sampler");
        TimelineSampler {
            stop,
            handle,
            timeline,
        }
    }

    /// Runs `point` with the timeline locked: a sample taken and appended
    /// there stays in time order with the timer's.
    pub fn add<R>(&self, point: impl FnOnce(&mut Timeline) -> R) -> R {
        point(&mut lock_timeline(&self.timeline))
    }

    pub fn finish(self) -> Timeline {
        let _ = self.stop.send(());
        let _ = self.handle.join();
        std::mem::take(&mut *lock_timeline(&self.timeline))
    }
}
