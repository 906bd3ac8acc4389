//! The name of a phase sample: a boundary of the workload, `measure`'s end
//! of the load, or an idle sample. In JSON a string: `started`, `steady`,
//! `loaded`, `idle+0.1s`, …

use std::fmt;
use std::str::FromStr;

use allocbench_workloads::Phase;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The name of a phase sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PhaseName {
    /// A boundary of the workload (`measure` uses `started`).
    Fixed(Phase),
    /// `measure`: the end of the load command (or of `--duration`).
    Loaded,
    /// An idle sample, this many seconds after `drained` (for `measure`,
    /// after `loaded`).
    Idle(f64),
}

impl PhaseName {
    /// The seconds after the work ended of an idle sample.
    pub fn idle_offset(self) -> Option<f64> {
        match self {
            PhaseName::Idle(s) => Some(s),
            _ => None,
        }
    }
}

impl From<Phase> for PhaseName {
    fn from(p: Phase) -> PhaseName {
        PhaseName::Fixed(p)
    }
}

impl PartialEq<Phase> for PhaseName {
    fn eq(&self, p: &Phase) -> bool {
        *self == PhaseName::Fixed(*p)
    }
}

/// A phase sample named as in the JSON (`p.name == "steady"`).
impl PartialEq<&str> for PhaseName {
    fn eq(&self, name: &&str) -> bool {
        name.parse::<PhaseName>().is_ok_and(|p| p == *self)
    }
}

impl fmt::Display for PhaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhaseName::Fixed(p) => f.write_str(p.name()),
            PhaseName::Loaded => f.write_str("loaded"),
            PhaseName::Idle(s) => write!(f, "idle+{s}s"),
        }
    }
}

/// A phase sample's name that is none of [`PhaseName`]'s.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown phase name {0:?}")]
pub struct UnknownPhaseName(pub String);

impl FromStr for PhaseName {
    type Err = UnknownPhaseName;
    fn from_str(s: &str) -> Result<PhaseName, UnknownPhaseName> {
        if s == "loaded" {
            return Ok(PhaseName::Loaded);
        }
        if let Some(p) = Phase::from_name(s) {
            return Ok(PhaseName::Fixed(p));
        }
        s.strip_prefix("idle+")
            .and_then(|r| r.strip_suffix('s'))
            .and_then(|n| n.parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(PhaseName::Idle)
            .ok_or_else(|| UnknownPhaseName(s.to_string()))
    }
}

impl Serialize for PhaseName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PhaseName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PhaseName, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_written() {
        for name in [
            "started",
            "preloaded",
            "forked",
            "steady",
            "drained",
            "trimmed",
            "loaded",
            "idle+0s",
            "idle+0.1s",
            "idle+30s",
        ] {
            let p: PhaseName = name.parse().unwrap();
            assert_eq!(p.to_string(), name);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<PhaseName>(&json).unwrap(), p);
        }
        assert_eq!(PhaseName::Idle(0.1).idle_offset(), Some(0.1));
        assert_eq!(PhaseName::from(Phase::Steady), Phase::Steady);
    }

    #[test]
    fn other_names_are_refused() {
        for bad in ["", "idle", "idle+s", "idle+-1s", "idle+1", "exit", "Steady"] {
            assert!(bad.parse::<PhaseName>().is_err(), "{bad}");
        }
    }
}
