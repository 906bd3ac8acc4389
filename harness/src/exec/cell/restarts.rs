//! The workers a cell's lifecycle policy replaced: what each served, added
//! to its slot's last generation at the end, and when each retired.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use allocbench_workloads::{Phase, PhaseReport, RetireReason, Role};

use super::{CellError, CellRun};
use crate::results::Restart;
use crate::results::TreeSample;

/// What a slot's retired generations served, added to its last
/// generation's report at the end.
#[derive(Default)]
struct SlotServed {
    requests: u64,
    latency_ns: Vec<(u64, u64)>,
    checksum: u64,
}

/// The retired workers of a cell, by slot and in the order heard.
#[derive(Default)]
pub(super) struct Restarts {
    slots: HashMap<u32, SlotServed>,
    list: Vec<Restart>,
    /// Exit reports (pid, status, when) of workers whose `hello` has not
    /// been handled yet: events on different connections are not ordered,
    /// and a worker that lives a few milliseconds can be reaped and
    /// reported by the master before its own connection is read.
    early: Vec<(i32, String, Instant)>,
}

impl Restarts {
    /// The exit status reported for `pid` before its `hello`, if any.
    pub(super) fn early_exit(&mut self, pid: i32) -> Option<(String, bool)> {
        let i = self.early.iter().position(|e| e.0 == pid)?;
        Some((self.early.swap_remove(i).1, true))
    }

    /// Fails on an exit reported for a pid that never said hello within
    /// `grace`.
    pub(super) fn check_early_exits(&self, grace: Duration) -> Result<(), CellError> {
        match self.early.iter().find(|e| e.2.elapsed() > grace) {
            Some((pid, status, _)) => Err(CellError::EndedBeforeConnecting {
                pid: *pid,
                status: status.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Requests the retired generations of slot `index` served.
    pub(super) fn base(&self, index: u32) -> u64 {
        self.slots.get(&index).map_or(0, |s| s.requests)
    }

    /// Records a worker that retired; returns its slot's requests so far.
    pub(super) fn retired(
        &mut self,
        restart: Restart,
        latency_ns: Vec<(u64, u64)>,
        checksum: u64,
    ) -> u64 {
        let slot = self.slots.entry(restart.index).or_default();
        slot.requests += restart.requests;
        slot.latency_ns.extend(latency_ns);
        slot.checksum = slot.checksum.wrapping_add(checksum);
        let base = slot.requests;
        self.list.push(restart);
        base
    }

    /// Adds what each slot's retired generations served to the report of
    /// its last generation at `steady`, so that the cell's requests,
    /// latencies and checksum count every generation; returns the restarts
    /// for the timeline.
    pub(super) fn fold(
        &mut self,
        reports: &mut HashMap<(Role, u32, Phase), PhaseReport>,
    ) -> Vec<Restart> {
        for (index, slot) in std::mem::take(&mut self.slots) {
            if let Some(r) = reports.get_mut(&(Role::Worker, index, Phase::Steady)) {
                r.requests = Some(r.requests.unwrap_or(0) + slot.requests);
                r.checksum = Some(r.checksum.unwrap_or(0).wrapping_add(slot.checksum));
                r.latency_ns
                    .get_or_insert_with(Vec::new)
                    .extend(slot.latency_ns);
            }
        }
        std::mem::take(&mut self.list)
    }
}

impl CellRun<'_> {
    /// A worker of connection `conn` stopped serving before its slot's
    /// requests ran out: record what it served, and move a new mold from the
    /// workers to the molds the sampler reads.
    pub(super) fn on_retired(
        &mut self,
        conn: usize,
        requests: u64,
        latency_ns: Vec<(u64, u64)>,
        checksum: u64,
        reason: RetireReason,
    ) -> Result<(), CellError> {
        let t_ms = self.t0.elapsed().as_secs_f64() * 1e3;
        let policy = !self.plan.spec.lifecycle.is_none();
        let who = self.who(conn);
        let p = self
            .procs
            .get_mut(&conn)
            .ok_or(CellError::BeforeHello("retired"))?;
        if p.role != Role::Worker || !policy {
            return Err(CellError::RetiredWithoutPolicy { who });
        }
        p.retired = Some(reason);
        let (pid, index, generation) = (p.pid, p.index, p.generation);
        let mold = reason == RetireReason::Mold;
        let base = self.restarts.retired(
            Restart {
                t_ms,
                index,
                pid,
                generation,
                reason,
                requests,
            },
            latency_ns,
            checksum,
        );
        let mut tree = self.lock_tree();
        if let Some(r) = tree.requests.get_mut(index as usize) {
            *r = (*r).max(base);
        }
        if mold {
            tree.workers.retain(|&(w, _)| w != pid);
            tree.molds.push((pid, index));
        }
        Ok(())
    }
}

impl CellRun<'_> {
    /// The master (or a mold) reaped `pid`: it leaves the tree the sampler
    /// reads. A failure fails the cell at once; an exit while serving must
    /// come with a `retired` (checked after a grace, as it may arrive
    /// later), and one of a pid not yet connected is held for its `hello`.
    pub(super) fn on_child_exit(
        &mut self,
        pid: i32,
        status: String,
        success: bool,
    ) -> Result<(), CellError> {
        {
            let mut tree = self.lock_tree();
            tree.workers.retain(|&(w, _)| w != pid);
            tree.molds.retain(|&(w, _)| w != pid);
        }
        if !success {
            return Err(CellError::WorkerFailed {
                pid,
                status,
                phase: self.now,
            });
        }
        match self.procs.values_mut().find(|p| p.pid == pid) {
            Some(p) => {
                p.exit = Some((status, success));
                p.exit_at = Some(Instant::now());
            }
            None => self.restarts.early.push((pid, status, Instant::now())),
        }
        Ok(())
    }

    /// A worker said hello: the sampler reads it from now on, and no longer
    /// an earlier generation of its slot, which has retired (its exit report
    /// may come later, from another connection).
    pub(super) fn on_worker_hello(&mut self, pid: i32, index: u32, generation: u32) {
        let older: HashSet<i32> = self
            .procs
            .values()
            .filter(|p| p.role == Role::Worker && p.index == index && p.generation < generation)
            .filter(|p| p.retired.is_some_and(|r| r != RetireReason::Mold))
            .map(|p| p.pid)
            .collect();
        let mut tree = self.lock_tree();
        tree.workers.retain(|(w, _)| !older.contains(w));
        tree.workers.push((pid, index));
    }

    /// Drops from a phase sample the processes it missed because they had
    /// retired and were exiting: a worker leaving, or a mold whose
    /// workers were all replaced.
    pub(super) fn drop_leaving(&self, s: &mut TreeSample) {
        let retired: HashSet<i32> = self
            .procs
            .values()
            .filter(|p| p.retired.is_some())
            .map(|p| p.pid)
            .collect();
        s.processes
            .retain(|p| p.missed.is_none() || !retired.contains(&p.pid));
    }
}
