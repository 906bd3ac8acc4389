//! A cell's process tree as the sampler sees it, and sampling it: at the
//! phase boundaries (driven by the cell) and on a timer (the timeline). The
//! timer and the per-process sampling serve `measure` too, which follows a
//! tree it discovers in `/proc` (see [`crate::measure`]).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cow::CowBaseline;
use crate::result::{Mem, PhaseSample, ProcessRole, ProcessSample, Timeline};
use crate::sample::sample;

/// What is known of a cell's tree right now.
#[derive(Debug, Clone, Default)]
pub struct TreeState {
    pub master: i32,
    /// (pid, index) of every worker that said hello.
    pub workers: Vec<(i32, u32)>,
    /// The master's inheritable memory at the fork, once forked.
    pub cow: Option<Arc<CowBaseline>>,
    /// The phase the cell is in (`steady` while serving, `idle`, …).
    pub phase: &'static str,
    /// Requests each serving process reported having served.
    pub requests: Vec<u64>,
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

fn sample_process(
    pid: i32,
    role: ProcessRole,
    index: Option<u32>,
    cow: Option<&CowBaseline>,
) -> ProcessSample {
    let (mem, missed) = match sample(pid) {
        Ok(m) => (Some(m), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let (cow, cow_missed) = match (cow, &mem) {
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
pub fn sample_tree(state: &TreeState, name: &str, t_ms: f64) -> PhaseSample {
    sample_tree_with(state, name, t_ms, true)
}

/// As [`sample_tree`], with the pagemap scans only when `cow` is true.
fn sample_tree_with(state: &TreeState, name: &str, t_ms: f64, cow: bool) -> PhaseSample {
    let mut processes = vec![sample_process(
        state.master,
        ProcessRole::Master,
        None,
        None,
    )];
    let mut workers = state.workers.clone();
    workers.sort_by_key(|&(_, i)| i);
    for (pid, index) in workers {
        processes.push(sample_process(
            pid,
            ProcessRole::Worker,
            Some(index),
            state.cow.as_deref().filter(|_| cow),
        ));
    }
    let mut tree = Mem::default();
    for p in &processes {
        if let Some(m) = &p.mem {
            tree.add(m);
        }
    }
    PhaseSample {
        requests: state.requests.iter().sum(),
        name: name.to_string(),
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

/// The most of one CPU the timeline's pagemap scans may use.
const COW_DUTY: f64 = 0.05;

/// Samples the tree on a timer until finished. The timeline is shared with
/// the cell, which adds its phase-boundary samples to it ([`Self::add`]), so
/// it holds an exact point at every boundary however the timer falls.
pub struct TimelineSampler {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<()>,
    timeline: Arc<Mutex<Timeline>>,
}

/// Appends a sample of the tree in `state` to the timeline.
pub fn push_point(timeline: &mut Timeline, state: &TreeState, s: &PhaseSample) {
    timeline.push(s.t_ms, state.phase, s.requests, &s.tree, &s.processes);
    timeline.live_bytes.push(state.live_bytes.iter().sum());
}

impl TimelineSampler {
    /// Starts sampling `tree` at `hz` per second, timestamps relative to `t0`.
    pub fn start(tree: SharedTree, t0: Instant, hz: f64) -> TimelineSampler {
        // Pagemap scans of large workers cost far more than a smaps_rollup
        // read: they run only while they keep the sampler's share of a CPU
        // under COW_DUTY.
        let mut cow_due = Instant::now();
        // An idle tree is blocked: its memory changes only by the allocator's
        // own decay, which a sample a second follows, while overlapping idle
        // cells would otherwise each sample as often as the busy one.
        let mut idle_due = Instant::now();
        TimelineSampler::start_with(t0, hz, move |timeline, t_ms| {
            let state = lock(&tree);
            if state.phase == "idle" {
                let now = Instant::now();
                if now < idle_due {
                    return;
                }
                idle_due = now + IDLE_PERIOD;
            }
            if state.master != 0 {
                let began = Instant::now();
                let cow = began >= cow_due;
                let s = sample_tree_with(&state, state.phase, t_ms, cow);
                if cow && state.cow.is_some() {
                    cow_due = began + began.elapsed().div_f64(COW_DUTY);
                }
                push_point(timeline, &state, &s);
            }
        })
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
