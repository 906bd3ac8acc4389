//! The timeline: the tree sampled on a timer, column by column.

use std::fmt;
use std::str::FromStr;

use allocbench_workloads::Phase;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Bytes, Mem, Millis, ProcessRole, ProcessSample, Restart};

/// What a cell (or `measure`'s command) was doing at a timeline point. In
/// JSON a string: `started`, `steady`, `idle`, `exit`, `loading`, ….
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimelinePhase {
    /// On the way to a boundary of the workload, named by it: `steady`
    /// while the workers serve, `drained` while they free their caches, ….
    Workload(Phase),
    /// The idle window after `drained` (`measure`: after the load).
    Idle,
    /// After `trimmed`: the processes exit and leave the tree.
    Exit,
    /// `measure`: the command is starting, before its load.
    Starting,
    /// `measure`: the load command (or `--duration`) is running.
    Loading,
}

impl TimelinePhase {
    /// Every phase a timeline point can be in.
    pub const ALL: [TimelinePhase; 10] = [
        TimelinePhase::Workload(Phase::Started),
        TimelinePhase::Workload(Phase::Preloaded),
        TimelinePhase::Workload(Phase::Forked),
        TimelinePhase::Workload(Phase::Steady),
        TimelinePhase::Workload(Phase::Drained),
        TimelinePhase::Workload(Phase::Trimmed),
        TimelinePhase::Idle,
        TimelinePhase::Exit,
        TimelinePhase::Starting,
        TimelinePhase::Loading,
    ];

    /// The phase's name in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            TimelinePhase::Workload(p) => p.name(),
            TimelinePhase::Idle => "idle",
            TimelinePhase::Exit => "exit",
            TimelinePhase::Starting => "starting",
            TimelinePhase::Loading => "loading",
        }
    }
}

/// A cell starts at `started`.
impl Default for TimelinePhase {
    fn default() -> TimelinePhase {
        TimelinePhase::Workload(Phase::Started)
    }
}

impl From<Phase> for TimelinePhase {
    fn from(p: Phase) -> TimelinePhase {
        TimelinePhase::Workload(p)
    }
}

impl PartialEq<Phase> for TimelinePhase {
    fn eq(&self, p: &Phase) -> bool {
        *self == TimelinePhase::Workload(*p)
    }
}

/// A point's phase named as in the JSON (`t.phase[i] == "steady"`).
impl PartialEq<str> for TimelinePhase {
    fn eq(&self, name: &str) -> bool {
        self.as_str() == name
    }
}

impl PartialEq<&str> for TimelinePhase {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

impl fmt::Display for TimelinePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A timeline phase name that is none of [`TimelinePhase::ALL`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown timeline phase {name:?} (expected one of {})", valid_names())]
pub struct UnknownTimelinePhase {
    pub name: String,
}

fn valid_names() -> String {
    let names: Vec<&str> = TimelinePhase::ALL.iter().map(|p| p.as_str()).collect();
    names.join(", ")
}

impl FromStr for TimelinePhase {
    type Err = UnknownTimelinePhase;
    fn from_str(s: &str) -> Result<TimelinePhase, UnknownTimelinePhase> {
        TimelinePhase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownTimelinePhase { name: s.into() })
    }
}

impl Serialize for TimelinePhase {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TimelinePhase {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TimelinePhase, D::Error> {
        // A visitor, not a `String`: a timeline has a phase per point, and
        // reading one needs no allocation.
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = TimelinePhase;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timeline phase name")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<TimelinePhase, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Name)
    }
}

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
    pub phase: Vec<TimelinePhase>,
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
        phase: TimelinePhase,
        requests: u64,
        tree: &Mem,
        procs: &[ProcessSample],
        walked: bool,
    ) {
        let n = self.t_ms.len();
        self.t_ms.push(t_ms);
        self.phase.push(phase);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_read_back_as_written() {
        let names = [
            "started",
            "preloaded",
            "forked",
            "steady",
            "drained",
            "trimmed",
            "idle",
            "exit",
            "starting",
            "loading",
        ];
        assert_eq!(names.len(), TimelinePhase::ALL.len());
        for (name, phase) in names.into_iter().zip(TimelinePhase::ALL) {
            assert_eq!(phase.as_str(), name);
            assert_eq!(phase.to_string(), name);
            assert_eq!(name.parse::<TimelinePhase>(), Ok(phase));
            let json = serde_json::to_string(&phase).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<TimelinePhase>(&json).unwrap(), phase);
            assert!(phase == name);
        }
        assert_eq!(
            TimelinePhase::from(Phase::Steady),
            TimelinePhase::Workload(Phase::Steady)
        );
        assert_eq!(TimelinePhase::Workload(Phase::Steady), Phase::Steady);
        assert_ne!(TimelinePhase::Idle, Phase::Steady);
        assert_eq!(TimelinePhase::default(), Phase::Started);
    }

    #[test]
    fn unknown_phases_are_refused() {
        for bad in ["", "Steady", "idle+1s", "loaded", "serving", " idle"] {
            let e = bad.parse::<TimelinePhase>().unwrap_err().to_string();
            assert!(
                e.contains(&format!("{bad:?}")) && e.contains("steady"),
                "{e}"
            );
            let mut t = Timeline::default();
            t.t_ms.push(0.0);
            t.phase.push(TimelinePhase::Idle);
            let json = serde_json::to_string(&t)
                .unwrap()
                .replace("\"idle\"", &format!("{bad:?}"));
            let e = serde_json::from_str::<Timeline>(&json)
                .unwrap_err()
                .to_string();
            assert!(e.contains("unknown timeline phase"), "{e}");
        }
        // Not a string at all.
        assert!(serde_json::from_str::<TimelinePhase>("3").is_err());
    }
}
