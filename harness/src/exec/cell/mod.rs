//! Running one cell: spawn the master under the variant's environment, drive
//! every process of the tree through the phase boundaries, sample `/proc` at
//! each and on a timer, and turn the outcome into a [`CellResult`]. A cell
//! that fails (a crash, a hang, an allocator not in effect) is a result with a
//! reason; its whole process tree is killed and the run goes on.

mod channel;
mod error;
mod events;
mod gate;
mod restarts;
mod stderr;
mod verify;

use crate::results::phase::PhaseName;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allocbench_allocators::Variant;
use allocbench_workloads::protocol::CONTINUE;
use allocbench_workloads::{Phase, PhaseReport, RetireReason, Role, WorkloadSpec};

use crate::analysis::metrics;
use crate::exec::contain::{self, Targets};
use crate::exec::interrupt;
use crate::results::{CellResult, PhaseSample, Status, TimelinePhase};
use crate::sample::cow::CowBaseline;
use crate::sample::timeline::{
    Sampling, SharedTree, TimelineSampler, TreeState, push_point, sample_tree,
};
use channel::{Acceptor, Incoming};
pub use error::CellError;
pub use gate::{BusyGate, Hold};
use restarts::Restarts;
pub(crate) use stderr::StderrTail;
pub(crate) use verify::NOT_IN_EFFECT;
pub use verify::{VerifyError, describe_exit, verify_allocator, verify_arenas, verify_thp};

/// Everything one cell needs to run.
#[derive(Debug, Clone)]
pub struct CellPlan {
    pub workload: String,
    pub variant: Variant,
    pub spec: WorkloadSpec,
    pub repetition: u32,
    /// Offsets after `drained` at which idle samples are taken, in seconds.
    pub idle: Vec<f64>,
    /// How long any one phase may take before the cell is failed as hung.
    pub phase_timeout: Duration,
    /// The timeline's rate (0 turns it off) and walk budget.
    pub sampling: Sampling,
    /// Pin the cell's processes to the first this many CPUs.
    pub cpus: Option<usize>,
}

struct Proc {
    pid: i32,
    role: Role,
    index: u32,
    generation: u32,
    writer: UnixStream,
    reached: Option<Phase>,
    closed_at: Option<Instant>,
    exit: Option<(String, bool)>,
    /// When the exit report came (a worker that exits while serving must
    /// have retired first; its `Retired` may arrive just after).
    exit_at: Option<Instant>,
    /// Why it stopped serving early (`--lifecycle`), if it did.
    retired: Option<RetireReason>,
}

struct CellRun<'a> {
    plan: &'a CellPlan,
    observe: &'a dyn Fn(&str),
    gate: &'a Hold<'a>,
    tree: SharedTree,
    timeline: Option<TimelineSampler>,
    t0: Instant,
    rx: Receiver<Incoming>,
    _acceptor: Acceptor,
    child: Child,
    master_pid: i32,
    procs: HashMap<usize, Proc>,
    pending: HashMap<usize, UnixStream>,
    reports: HashMap<(Role, u32, Phase), PhaseReport>,
    phases: Vec<PhaseSample>,
    /// What the cell is doing now, for messages ("steady", "idle", …).
    now: TimelinePhase,
    stderr: StderrTail,
    master_status: Option<ExitStatus>,
    /// Why there is no CoW baseline, when the master's pagemap was unreadable.
    cow_missed: Option<String>,
    /// What the workers that retired served, and when they did.
    restarts: Restarts,
}

/// Runs one cell to its end. Never panics on a fault of the cell's
/// processes; every outcome is a result. The cell comes with a hold on the
/// busy gate and lets go of it when it goes idle, so that the next cell can
/// run its busy phases meanwhile.
pub fn run_cell(plan: &CellPlan, gate: &Hold, observe: &dyn Fn(&str)) -> CellResult {
    let t0 = Instant::now();
    let launch = plan.variant.launch();
    let launch_env: BTreeMap<String, String> = launch
        .as_ref()
        .map(|l| l.set.iter().cloned().collect())
        .unwrap_or_default();
    let mut result = CellResult {
        workload: plan.workload.clone(),
        variant: plan.variant.name.clone(),
        variant_def: plan.variant.clone(),
        launch_env,
        prefork: plan.spec.prefork,
        prefork_call: None,
        lifecycle: plan.spec.lifecycle.clone(),
        repetition: plan.repetition,
        cpus_pinned: plan.cpus,
        cpus_allowed: None,
        glibc_arena_limit: None,
        glibc_arena_limit_cgroup: None,
        status: Status::Failed,
        error: None,
        allocator: None,
        spec: Some(plan.spec.clone()),
        measure: None,
        load_summary: None,
        phases: Vec::new(),
        timeline: Default::default(),
        metrics: None,
        wall_ms: 0.0,
        stderr_tail: Vec::new(),
        machine: None,
    };
    let outcome = match launch {
        Err(e) => Err(CellError::from(e)),
        Ok(launch) => match CellRun::start(plan, gate, observe, &launch) {
            Err(e) => Err(e),
            Ok(mut run) => {
                let outcome = run.drive();
                let outcome = run.finish(outcome);
                let started = run.reports.get(&(Role::Master, 0, Phase::Started));
                result.allocator = started.and_then(|r| r.allocator.clone());
                result.cpus_allowed = started.and_then(|r| r.cpus_allowed);
                result.prefork_call = run
                    .reports
                    .get(&(Role::Master, 0, Phase::Forked))
                    .and_then(|r| r.release_call.clone());
                result.stderr_tail = run.stderr.lines();
                result.phases = std::mem::take(&mut run.phases);
                if let Some(t) = run.timeline.take() {
                    result.timeline = t.finish();
                }
                result.timeline.restarts = run.restarts.fold(&mut run.reports);
                match outcome {
                    Ok(()) => {
                        metrics::compute(&result.phases, &result.timeline, &run.reports, &plan.spec)
                            .map_err(CellError::from)
                            .and_then(|m| {
                                verify_arenas(&plan.variant, m.arenas)?;
                                // The master counts its arenas before any
                                // thread ran; what the serving processes
                                // reported after serving is the figure.
                                if let Some(a) = &mut result.allocator
                                    && m.arenas.is_some()
                                {
                                    a.arenas = m.arenas;
                                }
                                result.metrics = Some(m);
                                Ok(())
                            })
                    }
                    Err(e) => Err(e),
                }
            }
        },
    };
    gate.release();
    match outcome {
        Ok(()) => result.status = Status::Ok,
        // The reason is stored in the document as text.
        Err(e) => result.error = Some(e.to_string()),
    }
    result.wall_ms = t0.elapsed().as_secs_f64() * 1e3;
    result
}

impl<'a> CellRun<'a> {
    fn start(
        plan: &'a CellPlan,
        gate: &'a Hold<'a>,
        observe: &'a dyn Fn(&str),
        launch: &allocbench_allocators::Launch,
    ) -> Result<CellRun<'a>, CellError> {
        let (tx, rx) = mpsc::channel();
        let (acceptor, socket) = Acceptor::start(tx).map_err(CellError::Socket)?;
        let exe = std::env::current_exe().map_err(CellError::Exe)?;
        let spec = serde_json::to_string(&plan.spec)?;
        let mut cmd = Command::new(exe);
        cmd.args(["__worker", "--socket", &socket, "--spec-json", &spec])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        launch.apply(&mut cmd);
        // The CPU set to pin to, built before fork (no allocation after).
        let pin = plan.cpus.map(|n| {
            let mut set = nix::sched::CpuSet::new();
            let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok();
            let usable = (0..nix::sched::CpuSet::count()).filter(|&c| {
                allowed
                    .as_ref()
                    .is_none_or(|a| a.is_set(c).unwrap_or(false))
            });
            for c in usable.take(n) {
                let _ = set.set(c);
            }
            set
        });
        // SAFETY: between fork and exec the closure makes only system calls
        // (sched_setaffinity, setpgid, prctl), which are async-signal-safe; it
        // allocates nothing (the CPU set is built above, before the fork) and
        // takes no lock.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(set) = &pin {
                    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), set)?;
                }
                // Own process group: the tree is killed as one, and a
                // terminal's Ctrl-C reaches only the harness.
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Die with the harness (the spawning thread lives as long as
                // the cell).
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = contain::spawn(&mut cmd).map_err(CellError::Spawn)?;
        interrupt::register(child.id() as i32);
        let stderr = StderrTail::collect(child.stderr.take().expect("stderr is piped"));
        let master_pid = child.id() as i32;
        let t0 = Instant::now();
        let tree: SharedTree = Arc::new(Mutex::new(TreeState {
            master: master_pid,
            phase: Phase::Started.into(),
            requests: vec![0; plan.spec.serving_processes() as usize],
            requests_total: plan.spec.requests * plan.spec.serving_processes() as u64,
            live_bytes: vec![0; plan.spec.serving_processes() as usize],
            ..TreeState::default()
        }));
        let timeline = (plan.sampling.hz > 0.0)
            .then(|| TimelineSampler::start(tree.clone(), t0, plan.sampling));
        Ok(CellRun {
            plan,
            observe,
            gate,
            tree,
            timeline,
            t0,
            rx,
            _acceptor: acceptor,
            child,
            master_pid,
            procs: HashMap::new(),
            pending: HashMap::new(),
            reports: HashMap::new(),
            phases: Vec::new(),
            now: Phase::Started.into(),
            stderr,
            master_status: None,
            cow_missed: None,
            restarts: Restarts::default(),
        })
    }

    fn drive(&mut self) -> Result<(), CellError> {
        let workers = self.plan.spec.processes;
        self.barrier(Phase::Started, true, 0)?;
        let identity = self
            .reports
            .get(&(Role::Master, 0, Phase::Started))
            .and_then(|r| r.allocator.clone())
            .ok_or(CellError::NoAllocator)?;
        let preload = self.plan.variant.preload_path()?;
        verify_allocator(&self.plan.variant, &identity, preload.as_deref())?;
        self.record(Phase::Started.into());
        self.continue_all(Phase::Started);

        // Who stops at the serving phases: the workers, or the master alone
        // when it does not fork.
        let forks = workers > 0;
        let serving = |phase| (phase, !forks, workers);
        let mut boundaries = vec![(Phase::Preloaded, true, 0)];
        if forks {
            boundaries.push((Phase::Forked, true, workers));
        }
        boundaries.push(serving(Phase::Steady));
        for (phase, master, workers) in boundaries {
            self.barrier(phase, master, workers)?;
            if phase == Phase::Forked {
                // The master only reaps from now on, and the workers wait:
                // the master's memory is the workers' inheritance.
                match CowBaseline::capture(self.master_pid) {
                    Ok(b) => self.lock_tree().cow = Some(Arc::new(b)),
                    Err(e) => self.cow_missed = Some(e.to_string()),
                }
            }
            self.record(phase.into());
            if phase == Phase::Steady {
                // Every process of the tree, while all of them are alive.
                let state = self.lock_tree().clone();
                let pids: Vec<i32> = std::iter::once(state.master)
                    .chain(state.workers.iter().map(|&(pid, _)| pid))
                    .collect();
                verify_thp(&self.plan.variant, &pids)?;
            }
            self.continue_all(phase);
        }

        let (phase, master, workers) = serving(Phase::Drained);
        self.barrier(phase, master, workers)?;
        self.record(Phase::Drained.into());
        // Idle: the workers wait at `drained` while the harness samples; the
        // next cell may keep the CPUs busy meanwhile. The trim and exit that
        // follow are brief and need no exclusive CPUs, so the gate is not
        // taken again (a hung next cell must not hold this one's result).
        self.set_now(TimelinePhase::Idle);
        self.gate.release();
        let drained_at = Instant::now();
        for &offset in &self.plan.idle {
            self.pump_until(drained_at + Duration::from_secs_f64(offset))?;
            self.record(PhaseName::Idle(offset));
        }
        self.continue_all(Phase::Drained);

        let (phase, master, workers) = serving(Phase::Trimmed);
        self.barrier(phase, master, workers)?;
        self.record(Phase::Trimmed.into());
        self.continue_all(Phase::Trimmed);

        // Exit: every worker (and mold) ends with status 0, then the master.
        self.set_now(TimelinePhase::Exit);
        let deadline = Instant::now() + self.plan.phase_timeout;
        loop {
            self.pump(deadline)?;
            let running = self
                .procs
                .values()
                .any(|p| p.role == Role::Worker && p.exit.is_none());
            if !running && self.master_status.is_some() {
                break;
            }
        }
        let status = self.master_status.expect("checked above");
        if !status.success() {
            return Err(CellError::MasterAtExit {
                pid: self.master_pid,
                status,
            });
        }
        Ok(())
    }

    /// Waits until the master (if `master`) and `workers` workers have all
    /// reached `phase`.
    fn barrier(&mut self, phase: Phase, master: bool, workers: u32) -> Result<(), CellError> {
        self.set_now(phase.into());
        (self.observe)(&format!("{}: {}", self.plan.variant.name, phase.name()));
        let deadline = Instant::now() + self.plan.phase_timeout;
        loop {
            let master_done = !master
                || self
                    .procs
                    .values()
                    .any(|p| p.role == Role::Master && p.reached == Some(phase));
            let workers_done = self
                .procs
                .values()
                .filter(|p| p.role == Role::Worker && p.reached == Some(phase))
                .count();
            if master_done
                && workers_done == workers as usize
                && self.served_whole(phase, workers)?
            {
                return Ok(());
            }
            self.pump(deadline)?;
        }
    }

    /// Whether, at `steady` under a lifecycle policy, every slot's requests
    /// are accounted for: its last worker's report and those of the workers
    /// it replaced. Each worker speaks on its own connection, read by its
    /// own thread, so a retired worker's report can be handled after its
    /// successor's `steady`; the slot's figures wait for it. A slot that
    /// counts more than its requests fails the cell at once.
    fn served_whole(&mut self, phase: Phase, workers: u32) -> Result<bool, CellError> {
        if phase != Phase::Steady || self.plan.spec.lifecycle.is_none() {
            return Ok(true);
        }
        let each = self.plan.spec.requests;
        let served = |i: u32| {
            let last = self.reports.get(&(Role::Worker, i, Phase::Steady));
            self.restarts.base(i) + last.and_then(|r| r.requests).unwrap_or(0)
        };
        if let Some(slot) = (0..workers).find(|&i| served(i) > each) {
            return Err(CellError::CountedTwice {
                slot,
                counted: served(slot),
                requests: each,
            });
        }
        if !(0..workers).all(|i| served(i) == each) {
            return Ok(false);
        }
        let mut tree = self.lock_tree();
        for r in tree.requests.iter_mut().take(workers as usize) {
            *r = each;
        }
        Ok(true)
    }

    fn lock_tree(&self) -> std::sync::MutexGuard<'_, TreeState> {
        self.tree.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Says what the cell is doing now, for messages and the timeline.
    fn set_now(&mut self, now: TimelinePhase) {
        self.now = now;
        self.lock_tree().phase = now;
    }

    /// Samples the tree and keeps the sample under `name`, and as a point of
    /// the timeline (so the timeline has one at every boundary).
    fn record(&mut self, name: PhaseName) {
        let state = self.lock_tree().clone();
        let take = || {
            let mut s = sample_tree(&state, self.t0.elapsed().as_secs_f64() * 1e3);
            if let Some(why) = &self.cow_missed {
                for p in s.processes.iter_mut().filter(|p| p.index.is_some()) {
                    p.cow_missed = Some(why.clone());
                }
            }
            s
        };
        let mut s = match &self.timeline {
            Some(t) => t.add(|timeline| {
                let s = take();
                push_point(timeline, &state, &s, true);
                s
            }),
            None => take(),
        };
        self.drop_leaving(&mut s);
        self.phases.push(s.named(name));
    }

    /// Lets every process waiting at `phase` go on.
    fn continue_all(&mut self, phase: Phase) {
        for p in self.procs.values_mut() {
            if p.reached == Some(phase) {
                // A failed write means the process is gone; that is noticed
                // through its closed connection or exit report.
                let _ = p.writer.write_all(format!("{CONTINUE}\n").as_bytes());
            }
        }
    }

    /// Ends the cell: on failure, kills the whole tree; always reaps the
    /// master, and kills whatever the tree left behind (a process that
    /// left it, adopted by allocbench), so nothing is left running.
    fn finish(&mut self, outcome: Result<(), CellError>) -> Result<(), CellError> {
        let pgid = self.master_pid;
        let mut targets = Targets {
            adopted: true,
            ..Targets::default()
        };
        if self.master_status.is_none() {
            // The cell's own process group and the master's descendants
            // (the master is not reaped yet, so the ids are still ours).
            targets = Targets {
                adopted: true,
                ..Targets::root(pgid)
            };
        }
        contain::kill(&targets);
        // Before the reap, after which the group id may be reused.
        interrupt::unregister(pgid);
        if self.master_status.is_none() {
            self.master_status = contain::wait(&mut self.child).ok();
        }
        self.stderr.wait_closed(Duration::from_secs(2));
        // Stderr lines that say the configuration was not taken.
        let tail = self.stderr.lines();
        let rejected = tail
            .iter()
            .find(|l| NOT_IN_EFFECT.iter().any(|p| l.contains(p)));
        match (outcome, rejected) {
            (Ok(()), Some(line)) => Err(CellError::NotInEffect {
                variant: self.plan.variant.name.clone(),
                line: line.clone(),
            }),
            (Err(e), _) if tail.is_empty() => Err(e),
            (Err(e), _) => Err(CellError::WithStderr {
                error: Box::new(e),
                line: tail.last().expect("non-empty").clone(),
            }),
            (ok, None) => ok,
        }
    }
}
