//! What a cell's processes tell the harness, as it arrives: their hellos,
//! phases, progress, retirements, exits and errors, and the processes that
//! ended without a word, each turned into the cell's state or its failure.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use allocbench_workloads::{Event, Role};

use super::channel::Incoming;
use super::{CellError, CellRun, Proc};
use crate::exec::{contain, interrupt};
use crate::results::TimelinePhase;

impl CellRun<'_> {
    /// Handles what arrives until `until`, failing on any fault.
    pub(super) fn pump_until(&mut self, until: Instant) -> Result<(), CellError> {
        while Instant::now() < until {
            self.pump_once(until)?;
        }
        Ok(())
    }

    /// Handles one message or one tick; fails the cell on a timeout after
    /// `deadline`.
    pub(super) fn pump(&mut self, deadline: Instant) -> Result<(), CellError> {
        if Instant::now() >= deadline {
            return Err(CellError::Timeout {
                phase: self.now,
                timeout: self.plan.phase_timeout,
            });
        }
        self.pump_once(deadline)
    }

    fn pump_once(&mut self, until: Instant) -> Result<(), CellError> {
        const TICK: Duration = Duration::from_millis(20);
        if interrupt::interrupted() {
            return Err(CellError::Interrupted);
        }
        let wait = until.saturating_duration_since(Instant::now()).min(TICK);
        match self.rx.recv_timeout(wait) {
            Ok(msg) => self.handle(msg)?,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err(CellError::SocketLost),
        }
        self.check_processes()
    }

    fn handle(&mut self, msg: Incoming) -> Result<(), CellError> {
        match msg {
            Incoming::Connected { conn, writer } => {
                self.pending.insert(conn, writer);
            }
            Incoming::Event { conn, event } => return self.handle_event(conn, event),
            Incoming::Garbage { conn, line } => {
                return Err(CellError::Garbage {
                    who: self.who(conn),
                    line,
                });
            }
            Incoming::Closed { conn } => {
                if let Some(p) = self.procs.get_mut(&conn) {
                    p.closed_at = Some(Instant::now());
                }
                self.pending.remove(&conn);
            }
        }
        Ok(())
    }

    pub(super) fn who(&self, conn: usize) -> String {
        match self.procs.get(&conn) {
            Some(p) if p.role == Role::Master => format!("master {}", p.pid),
            Some(p) => format!("worker {}", p.pid),
            None => "a process".into(),
        }
    }

    fn handle_event(&mut self, conn: usize, event: Event) -> Result<(), CellError> {
        match event {
            Event::Hello {
                pid,
                role,
                index,
                generation,
                parent: _,
            } => {
                let writer = self
                    .pending
                    .remove(&conn)
                    .ok_or(CellError::UnknownConnection)?;
                if role == Role::Worker {
                    self.on_worker_hello(pid, index, generation);
                }
                let early = self.restarts.early_exit(pid);
                self.procs.insert(
                    conn,
                    Proc {
                        pid,
                        role,
                        index,
                        generation,
                        writer,
                        reached: None,
                        closed_at: None,
                        exit_at: early.as_ref().map(|_| Instant::now()),
                        exit: early,
                        retired: None,
                    },
                );
            }
            Event::Retired {
                requests,
                latency_ns,
                checksum,
                reason,
            } => self.on_retired(conn, requests, latency_ns, checksum, reason)?,
            Event::Phase { phase, report } => {
                let p = self
                    .procs
                    .get_mut(&conn)
                    .ok_or(CellError::BeforeHello("phase"))?;
                p.reached = Some(phase);
                let (role, index) = (p.role, p.index);
                let base = self.restarts.base(index);
                if let Some(n) = report.requests
                    && let Some(r) = self.lock_tree().requests.get_mut(index as usize)
                {
                    *r = base + n;
                }
                self.reports.insert((role, index, phase), *report);
            }
            Event::ChildExit {
                pid,
                index: _,
                status,
                success,
            } => self.on_child_exit(pid, status, success)?,
            Event::Progress {
                requests,
                live_bytes,
            } => {
                if let Some(p) = self.procs.get(&conn) {
                    let base = self.restarts.base(p.index);
                    let index = p.index as usize;
                    let mut tree = self.lock_tree();
                    if index < tree.requests.len() {
                        tree.requests[index] = base + requests;
                        tree.live_bytes[index] = live_bytes;
                    }
                }
            }
            Event::Error { message } => {
                return Err(CellError::Reported {
                    who: self.who(conn),
                    message,
                });
            }
        }
        Ok(())
    }

    /// Notices processes that ended without telling: the master's own exit
    /// status, and connections closed with no exit report.
    fn check_processes(&mut self) -> Result<(), CellError> {
        if self.master_status.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            contain::reaped(self.master_pid);
            self.master_status = Some(status);
            if self.now != TimelinePhase::Exit {
                return Err(CellError::MasterEnded {
                    pid: self.master_pid,
                    status,
                    phase: self.now,
                });
            }
        }
        // Give the master a moment to report why a worker's connection closed.
        const GRACE: Duration = Duration::from_millis(500);
        for p in self.procs.values() {
            if p.role == Role::Worker
                && p.exit.is_none()
                && p.closed_at.is_some_and(|t| t.elapsed() > GRACE)
            {
                return Err(CellError::Closed {
                    pid: p.pid,
                    phase: self.now,
                });
            }
            if p.role == Role::Worker
                && p.retired.is_none()
                && self.now != TimelinePhase::Exit
                && p.exit_at.is_some_and(|t| t.elapsed() > GRACE)
            {
                let (status, _) = p.exit.as_ref().expect("exit_at comes with exit");
                return Err(CellError::EndedEarly {
                    pid: p.pid,
                    status: status.clone(),
                    phase: self.now,
                });
            }
        }
        self.restarts.check_early_exits(GRACE)
    }
}
