//! The timeline: the tree sampled on a timer, column by column.

use serde::{Deserialize, Serialize};

use super::{Bytes, Mem, Millis, ProcessRole, ProcessSample, Restart};

/// A memory series: one value per timeline point, `null` where the process
/// did not exist yet or its sample was missed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct MemSeries {
    pub pss: Vec<Option<Bytes>>,
    pub pss_anon: Vec<Option<Bytes>>,
    pub rss: Vec<Option<Bytes>>,
    pub uss: Vec<Option<Bytes>>,
    pub anonymous: Vec<Option<Bytes>>,
    pub lazyfree: Vec<Option<Bytes>>,
    pub anon_huge: Vec<Option<Bytes>>,
}

impl MemSeries {
    /// Appends `m`: all of it when `walked` (read from smaps_rollup), else
    /// only the figures the kernel's counters give (`rss`, `anonymous`).
    pub fn push(&mut self, m: Option<&Mem>, walked: bool) {
        let walk = m.filter(|_| walked);
        self.pss.push(walk.map(|m| m.pss));
        self.pss_anon.push(walk.map(|m| m.pss_anon));
        self.rss.push(m.map(|m| m.rss));
        self.uss.push(walk.map(|m| m.uss));
        self.anonymous.push(m.map(|m| m.anonymous));
        self.lazyfree.push(walk.map(|m| m.lazyfree));
        self.anon_huge.push(walk.map(|m| m.anon_huge));
    }

    pub fn len(&self) -> usize {
        self.rss.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rss.is_empty()
    }
}

/// One process's series on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct ProcessSeries {
    pub pid: i32,
    pub role: ProcessRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    #[serde(flatten)]
    pub mem: MemSeries,
    /// Inherited bytes copied since the fork (workers).
    pub cow_copied: Vec<Option<Bytes>>,
}

/// The tree sampled on a timer, column by column (compact in JSON, and what
/// plots need).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Timeline {
    /// The sampling rate asked for.
    pub sample_hz: f64,
    pub t_ms: Vec<Millis>,
    /// The phase the cell was in at each point (`steady` while serving).
    pub phase: Vec<String>,
    /// Requests the workers had served at each point.
    pub requests: Vec<u64>,
    /// Bytes the serving processes' caches held live at each point (as of
    /// their last progress report).
    #[serde(default)]
    pub live_bytes: Vec<u64>,
    /// Sums over the processes sampled.
    pub tree: MemSeries,
    pub processes: Vec<ProcessSeries>,
    /// Whether each point walked the processes' page tables (smaps_rollup:
    /// every figure) or read the kernel's counters alone (`/proc/PID/status`:
    /// `rss` and `anonymous`, the others `null`). Every phase boundary walks;
    /// the timer walks as often as the walk budget allows. Empty in documents
    /// from before the budget: every point walked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub walked: Vec<bool>,
    /// The most of one CPU the timer's walks may use (0–1; 1: every point).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walk_budget: Option<f64>,
    /// CPU time the sampling thread used, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler_cpu_ms: Option<Millis>,
    /// With `--sample-toggle`: the windows of the serving phase in which the
    /// timer sampled and those in which it did not, in time order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub toggle: Vec<ToggleWindow>,
    /// Under `--lifecycle`: each worker that stopped serving before its
    /// slot's requests ran out, in time order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarts: Vec<Restart>,
}

/// One window of `--sample-toggle`: the timer sampled in it or stayed still,
/// and the workers served `requests` meanwhile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct ToggleWindow {
    pub start_ms: Millis,
    pub end_ms: Millis,
    pub sampling: bool,
    /// Requests served in the window, as of the workers' progress reports
    /// (each at most 20 ms old at either end).
    pub requests: u64,
    /// CPU time the sampling thread used in the window.
    pub sampler_cpu_ms: Millis,
}

impl ToggleWindow {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / ((self.end_ms - self.start_ms) / 1e3)
    }
}

impl Timeline {
    /// The sampling rate achieved: points per second between the first and
    /// the last point.
    pub fn achieved_hz(&self) -> Option<f64> {
        let (first, last) = (self.t_ms.first()?, self.t_ms.last()?);
        (last > first).then(|| (self.t_ms.len() - 1) as f64 / ((last - first) / 1e3))
    }

    pub fn is_empty(&self) -> bool {
        self.t_ms.is_empty()
    }

    /// No point and no restart: nothing to write.
    pub fn is_unused(&self) -> bool {
        self.is_empty() && self.restarts.is_empty()
    }

    pub fn len(&self) -> usize {
        self.t_ms.len()
    }

    /// Appends one point: a tree sample taken at `t_ms`, which `walked` the
    /// page tables or read the counters alone (see [`Self::walked`]).
    pub fn push(
        &mut self,
        t_ms: Millis,
        phase: &str,
        requests: u64,
        tree: &Mem,
        procs: &[ProcessSample],
        walked: bool,
    ) {
        let n = self.t_ms.len();
        self.t_ms.push(t_ms);
        self.phase.push(phase.to_string());
        self.requests.push(requests);
        self.walked.push(walked);
        self.tree.push(Some(tree), walked);
        for p in procs {
            // A worker that becomes the mold keeps its series under its
            // last role.
            if let Some(s) = self.processes.iter_mut().find(|s| s.pid == p.pid) {
                s.role = p.role;
            } else {
                let mut mem = MemSeries::default();
                for _ in 0..n {
                    mem.push(None, false);
                }
                self.processes.push(ProcessSeries {
                    pid: p.pid,
                    role: p.role,
                    index: p.index,
                    mem,
                    cow_copied: vec![None; n],
                });
            }
        }
        for s in &mut self.processes {
            let p = procs.iter().find(|p| p.pid == s.pid);
            s.mem.push(p.and_then(|p| p.mem.as_ref()), walked);
            s.cow_copied
                .push(p.and_then(|p| p.cow.as_ref()).map(|c| c.cow_copied));
        }
    }
}
