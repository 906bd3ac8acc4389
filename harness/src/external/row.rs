//! One variant's run of the command (a row): start it in its own process
//! group, wait until it is ready, run the load command (or wait), sample
//! through the idle window, and watch meanwhile that it runs the variant and
//! has not ended.

use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::load::{Load, LoadOutcome};
use super::proc::peek_exit;
use super::track::{Checking, Tracker};
use super::watchdog::{self, Watchdog};
use super::{
    LoadFigures, MeasureError, MeasurePlan, MeasureVariant, Ready, Row, check, compute, new_cell,
    new_record,
};
use crate::exec::cell::StderrTail;
use crate::exec::{contain, interrupt};
use crate::results::phase::PhaseName;
use crate::results::{CellResult, Status, TimelinePhase};
use crate::sample::timeline::{Depth, TimelineSampler};

pub(super) fn run_row(
    plan: &MeasurePlan,
    v: &MeasureVariant,
    repetition: u32,
    log: &dyn Fn(&str),
) -> CellResult {
    let t0 = Instant::now();
    let mut cell = new_cell(v, repetition);
    let mut record = new_record(plan);
    let mut load = LoadFigures::default();
    let outcome = match Row::start(plan, v, log, t0) {
        Err(e) => Err(e),
        Ok(mut row) => {
            row.timeline = (plan.sample_hz > 0.0).then(|| row.start_timeline());
            let outcome = row.drive();
            if let Some(t) = row.timeline.take() {
                let mut t = t.finish();
                // Requests and live bytes are the synthetic workload's; a
                // measured command has neither (empty, not zeros).
                t.requests.clear();
                t.live_bytes.clear();
                cell.timeline = t;
            }
            let outcome = row.stop(outcome);
            cell.stderr_tail = row.output.lines();
            cell.phases = std::mem::take(&mut row.phases);
            record = std::mem::take(&mut row.record);
            record.processes = row.tracker().record();
            if record.load_began() {
                // Processes forked after ready were checked too.
                record.checks = row.tracker().check_summary();
            }
            cell.load_summary = row.load_summary.take();
            load = std::mem::take(&mut row.load);
            outcome
        }
    };
    match outcome {
        Ok(()) => {
            record.metrics = Some(compute(
                &cell.phases,
                PhaseName::Idle(plan.idle_s()),
                &record.processes,
                &load,
            ));
            cell.status = Status::Ok;
        }
        // The reason is stored in the document as text.
        Err(e) => cell.error = Some(e.to_string()),
    }
    cell.measure = Some(record);
    cell.wall_ms = t0.elapsed().as_secs_f64() * 1e3;
    cell
}

impl<'a> Row<'a> {
    fn start(
        plan: &'a MeasurePlan,
        v: &MeasureVariant,
        log: &'a dyn Fn(&str),
        t0: Instant,
    ) -> Result<Row<'a>, MeasureError> {
        if let Ready::Port(port) = plan.ready
            && port_open(port)
        {
            return Err(MeasureError::PortInUse(port));
        }
        let mut cmd = Command::new(&plan.command[0]);
        cmd.args(&plan.command[1..]).stdin(Stdio::null());
        // stdout and stderr into one pipe: servers log to either, and the
        // last lines explain a failure.
        let (reader, writer) = std::io::pipe().map_err(MeasureError::Pipe)?;
        let writer2 = writer.try_clone().map_err(MeasureError::Pipe)?;
        cmd.stdout(writer).stderr(writer2);
        v.launch.apply(&mut cmd);
        let thp_disable = v.variant.thp_disable;
        let harness = std::process::id() as i32;
        let watchdog = Arc::new(Watchdog::start()?);
        let watchdog_fd = watchdog.fd();
        // SAFETY: between fork and exec the closure makes only system calls
        // (setpgid, prctl, getppid, and the write of `tell_own_group` from a
        // stack buffer), which are async-signal-safe; it allocates nothing and
        // takes no lock.
        unsafe {
            cmd.pre_exec(move || {
                // Own process group: the tree is stopped as one, and a
                // terminal's Ctrl-C reaches only allocbench.
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Known to the watchdog before the program can fork.
                if let Some(fd) = watchdog_fd {
                    watchdog::tell_own_group(fd);
                }
                // Die with allocbench (this thread lives as long as the row).
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                    || libc::getppid() != harness
                {
                    return Err(std::io::Error::other("allocbench ended"));
                }
                // Inherited across fork and kept across exec.
                if thp_disable && libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = contain::spawn(&mut cmd).map_err(|source| MeasureError::Start {
            program: plan.command[0].clone(),
            source,
        })?;
        // The pipe's write ends live in the Command: drop them, or the
        // output never reaches its end.
        drop(cmd);
        let root = child.id() as i32;
        interrupt::register(root);
        // Before the program can write a process title over it (spawn
        // returns after the exec).
        let early_environ = std::fs::read(format!("/proc/{root}/environ")).ok();
        log(&format!(
            "started {} (pid {root})",
            crate::units::shell_words(&plan.command)
        ));
        Ok(Row {
            plan,
            log,
            child,
            root,
            t0,
            output: StderrTail::collect(reader),
            tracker: Arc::new(Mutex::new(
                Tracker::new(root, Some(watchdog.clone())).checking(Checking {
                    expect: check::Expect::new(&v.variant.name, &v.launch, v.variant.thp_disable),
                    root_environ: early_environ,
                    ignore: plan.ignore.clone(),
                }),
            )),
            watchdog,
            now: Arc::new(Mutex::new(TimelinePhase::Starting)),
            timeline: None,
            phases: Vec::new(),
            record: new_record(plan),
            load_summary: None,
            load: LoadFigures::default(),
            daemon_seen: Cell::new(None),
        })
    }

    /// The tree on a timer: each point reads every process's counters (RSS,
    /// anonymous: cheap); a point walks the page tables too (smaps_rollup)
    /// while the walks so far keep under `--sample-budget` of one CPU, and
    /// scans the workers' pagemaps while those keep under half of it, as a
    /// cell's timeline does. New processes are found, and checked, at every
    /// point.
    fn start_timeline(&self) -> TimelineSampler {
        let (tracker, now) = (self.tracker.clone(), self.now.clone());
        let budget = self.plan.sample_budget.clamp(1e-6, 1.0);
        let (mut walk_due, mut cow_due) = (Instant::now(), Instant::now());
        let sampler =
            TimelineSampler::start_with(self.t0, self.plan.sample_hz, move |timeline, t_ms| {
                let phase = *now.lock().unwrap_or_else(|p| p.into_inner());
                let began = Instant::now();
                let depth = match (began >= walk_due, began >= cow_due) {
                    (true, true) => Depth::WalkCow,
                    (true, false) => Depth::Walk,
                    (false, _) => Depth::Counters,
                };
                let s = tracker
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .sample_with(t_ms, depth);
                let spent = began.elapsed();
                if depth != Depth::Counters {
                    walk_due = began + spent.div_f64(budget);
                }
                if depth == Depth::WalkCow {
                    cow_due = began + spent.div_f64(budget / 2.0);
                }
                timeline.push(
                    s.t_ms,
                    phase,
                    0,
                    &s.tree,
                    &s.processes,
                    depth != Depth::Counters,
                );
            });
        sampler.add(|t| t.walk_budget = Some(budget));
        sampler
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ms(&self) -> f64 {
        self.t0.elapsed().as_secs_f64() * 1e3
    }

    fn set_now(&self, now: TimelinePhase) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = now;
    }

    /// Samples the tree and keeps the sample under `name`, and as a point of
    /// the timeline (so the timeline has one at every boundary, whatever the
    /// timer's luck).
    fn sample(&mut self, name: PhaseName) {
        let take = || {
            let t = self.ms();
            self.tracker
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .sample(t)
        };
        let s = match &self.timeline {
            // Under the timeline's lock: its points stay in time order.
            Some(timeline) => timeline.add(|timeline| {
                let s = take();
                let phase = *self.now.lock().unwrap_or_else(|p| p.into_inner());
                timeline.push(s.t_ms, phase, 0, &s.tree, &s.processes, true);
                s
            }),
            None => take(),
        };
        self.phases.push(s.named(name));
        let t = self.ms();
        self.tracker().recheck(t);
    }

    /// Every process was checked as a sample found it (and again at each
    /// phase sample); one found without the variant once is checked again
    /// before the row fails (an exec caught before the dynamic linker
    /// mapped the library).
    fn settle_checks(&self) -> Result<(), MeasureError> {
        for _ in 0..5 {
            if !self.tracker().unsettled() {
                break;
            }
            std::thread::sleep(Duration::from_millis(60));
            let t = self.ms();
            self.tracker().refresh(t);
        }
        match self.tracker().not_in_effect() {
            Some(why) => Err(MeasureError::NotInEffect(why)),
            None => Ok(()),
        }
    }

    /// Fails when the command has ended, a process of the server runs
    /// without the variant, or the run was interrupted.
    fn watch(&self, stage: &'static str) -> Result<(), MeasureError> {
        if interrupt::interrupted() {
            return Err(MeasureError::Interrupted);
        }
        if let Some(why) = self.tracker().not_in_effect() {
            return Err(MeasureError::NotInEffect(why));
        }
        if let Some(status) = peek_exit(self.root) {
            if status.success() && self.daemonized() {
                return Ok(());
            }
            // Let the output reader catch the last lines.
            self.output.wait_closed(Duration::from_millis(500));
            // The first lines too: an interpreter prints the error first
            // and its backtrace after.
            return Err(MeasureError::Ended {
                status,
                stage,
                lines: self.output.lines(),
            });
        }
        Ok(())
    }

    /// Whether the root exited (with status 0) leaving processes of its
    /// tree running, as a daemon does: it is then measured on. Looked at
    /// again every 200 ms.
    fn daemonized(&self) -> bool {
        let first = self.daemon_seen.get().is_none();
        if self
            .daemon_seen
            .get()
            .is_some_and(|t| t.elapsed() < Duration::from_millis(200))
        {
            return true;
        }
        let alive = self
            .tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .alive();
        self.daemon_seen.set(alive.then(Instant::now));
        if alive && first {
            (self.log)(
                "the command exited with status 0 and left its processes running (a daemon): measuring them",
            );
        }
        alive
    }

    /// Waits until `until`, watching the command.
    fn wait_until(&self, until: Instant, stage: &'static str) -> Result<(), MeasureError> {
        loop {
            self.watch(stage)?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }

    fn drive(&mut self) -> Result<(), MeasureError> {
        let plan = self.plan;
        match plan.ready {
            Ready::Port(port) => {
                let deadline = Instant::now() + plan.timeout;
                loop {
                    self.watch("before it was ready")?;
                    if port_open(port) {
                        break;
                    }
                    if Instant::now() >= deadline {
                        return Err(MeasureError::PortNeverOpened {
                            port,
                            timeout: plan.timeout,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Ready::After(s) => self.wait_until(
                Instant::now() + Duration::from_secs_f64(s),
                "before it was ready",
            )?,
        }
        self.record.ready_ms = Some(self.ms());
        self.sample(allocbench_workloads::Phase::Started.into());
        let n = self.phases.last().map_or(0, |p| p.processes.len());
        (self.log)(&format!(
            "ready after {:.1} s; {n} process{}",
            self.ms() / 1e3,
            if n == 1 { "" } else { "es" }
        ));
        self.settle_checks()?;
        if !self.tracker().server_checked() {
            // Ended meanwhile: how.
            self.output.wait_closed(Duration::from_millis(200));
            self.watch("before it was ready")?;
            return Err(match &self.plan.ignore {
                Some(re) => MeasureError::IgnoredAll(re.to_string()),
                None => MeasureError::NoProcess,
            });
        }
        let checks = self.tracker().check_summary();
        self.record.checks = checks;

        self.set_now(TimelinePhase::Loading);
        match &plan.load {
            Some(words) => {
                (self.log)(&format!("load: {}", words.join(" ")));
                let outcome = self.run_load(words)?;
                self.record.load_status = outcome.status;
                self.record.load_error = outcome.error;
                self.record.load_output_tail = outcome.tail;
                self.load_summary = outcome.summary;
                // A failed load command's output is not a tool's summary.
                self.record.load_note = outcome
                    .figures
                    .note
                    .clone()
                    .filter(|_| self.record.load_error.is_none());
                self.load = outcome.figures;
            }
            None => self.wait_until(
                Instant::now() + Duration::from_secs_f64(plan.duration_s),
                "during the measurement",
            )?,
        }
        self.watch("during the load")?;
        self.sample(PhaseName::Loaded);
        self.settle_checks()?;

        self.set_now(TimelinePhase::Idle);
        let loaded_at = Instant::now();
        for &offset in &plan.idle {
            self.wait_until(loaded_at + Duration::from_secs_f64(offset), "while idle")?;
            self.sample(PhaseName::Idle(offset));
        }
        self.settle_checks()
    }

    /// Runs the load command to its end (or its timeout). The row fails
    /// only if the measured command does meanwhile.
    fn run_load(&self, words: &[String]) -> Result<LoadOutcome, MeasureError> {
        let mut load =
            match Load::start(words, self.plan.load_metric.clone(), self.watchdog.clone()) {
                Ok(l) => l,
                Err(e) => {
                    // Kept in the record as text.
                    return Ok(LoadOutcome {
                        error: Some(e.to_string()),
                        ..LoadOutcome::default()
                    });
                }
            };
        let tracker = || self.tracker.lock().unwrap_or_else(|p| p.into_inner());
        tracker().set_load(Some(load.pid()));
        let deadline = Instant::now() + self.plan.timeout;
        let outcome = loop {
            let left = tracker().load_tree();
            if let Err(e) = self.watch("during the load") {
                load.kill(e.to_string(), &left);
                tracker().set_load(None);
                return Err(e);
            }
            if let Some(outcome) = load.try_finish(&left) {
                break outcome;
            }
            if Instant::now() >= deadline {
                break load.kill(
                    format!(
                        "the load command did not finish within {} s (--timeout); killed",
                        self.plan.timeout.as_secs_f64()
                    ),
                    &left,
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        tracker().set_load(None);
        Ok(outcome)
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}
