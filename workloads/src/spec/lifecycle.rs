//! Worker lifecycle policies: how a preforking server replaces its workers
//! while they serve (gunicorn's `max_requests`, puma_worker_killer's memory
//! limit, Pitchfork's refork from a warmed worker), and memory sizes as the
//! command line spells them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SpecError;

/// How the master replaces workers while they serve. Spelt on the command
/// line and in results as [`Lifecycle::ALL_FORMS`] shows; the JSON holds the
/// normalised spelling (`requests=400+-40` is `requests=400±40`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Lifecycle {
    /// Workers serve until the end (no restarts).
    #[default]
    None,
    /// A worker retires after `every` requests (plus a uniform draw in
    /// ±`jitter`, drawn by the master for each worker it forks), and the
    /// master forks a new one from itself for the requests left. A worker
    /// whose quota ends on its last request is not replaced.
    Requests {
        /// Requests a worker serves before it retires.
        every: u64,
        /// Half-width of the uniform jitter on `every`.
        jitter: u64,
    },
    /// The master reads each serving worker's USS every `check` and asks a
    /// worker over `limit` bytes to retire (it finishes the request in
    /// flight), then forks a new one from itself.
    Memory {
        /// USS (private bytes, `Private_Clean + Private_Dirty`) above which
        /// a worker is replaced.
        limit: u64,
        /// How often the master checks.
        check: Duration,
    },
    /// After a worker has served `after[0]` requests it stops serving and
    /// becomes the mold: every worker is replaced by a fork of the mold, at
    /// most `max_unavailable` at a time; a worker of that generation that
    /// has served `after[1]` becomes the next mold, and so on. No refork
    /// after the list ends.
    Refork {
        /// Requests a worker of each generation serves before it becomes the
        /// next mold.
        after: Vec<u64>,
        /// Workers being replaced at once (Pitchfork's
        /// `refork_max_unavailable`).
        max_unavailable: u32,
    },
}

/// How often `memory=SIZE` checks when no interval is given.
pub const DEFAULT_MEMORY_CHECK: Duration = Duration::from_millis(250);

impl Lifecycle {
    /// The spellings, for `--help` and errors.
    pub const ALL_FORMS: &'static str =
        "none, requests=N[±J], memory=SIZE[@INTERVAL], refork=N[,N2…][/U]";

    /// `none`: workers are never replaced.
    pub fn is_none(&self) -> bool {
        *self == Lifecycle::None
    }

    /// The policy's kind: `none`, `requests`, `memory` or `refork`.
    pub fn kind(&self) -> &'static str {
        match self {
            Lifecycle::None => "none",
            Lifecycle::Requests { .. } => "requests",
            Lifecycle::Memory { .. } => "memory",
            Lifecycle::Refork { .. } => "refork",
        }
    }

    /// Splits a `--lifecycle` list at commas, keeping the numbers after a
    /// `refork=` item with it: `none,refork=50,100,requests=400` is three
    /// policies.
    pub fn split_list(list: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for item in list.split(',') {
            let continues = out.last().is_some_and(|l| l.starts_with("refork="))
                && !item.is_empty()
                && item.starts_with(|c: char| c.is_ascii_digit());
            match out.last_mut() {
                Some(last) if continues => {
                    last.push(',');
                    last.push_str(item);
                }
                _ => out.push(item.to_string()),
            }
        }
        out
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lifecycle::None => f.write_str("none"),
            Lifecycle::Requests { every, jitter: 0 } => write!(f, "requests={every}"),
            Lifecycle::Requests { every, jitter } => write!(f, "requests={every}±{jitter}"),
            Lifecycle::Memory { limit, check } => {
                write!(f, "memory={}", format_size(*limit))?;
                if *check != DEFAULT_MEMORY_CHECK {
                    write!(f, "@{}", format_interval(*check))?;
                }
                Ok(())
            }
            Lifecycle::Refork {
                after,
                max_unavailable,
            } => {
                let list: Vec<String> = after.iter().map(u64::to_string).collect();
                write!(f, "refork={}", list.join(","))?;
                if *max_unavailable != 1 {
                    write!(f, "/{max_unavailable}")?;
                }
                Ok(())
            }
        }
    }
}

fn invalid(given: &str, problem: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: format!("lifecycle {given:?}"),
        problem: problem.into(),
    }
}

fn count(given: &str, what: &str, s: &str) -> Result<u64, SpecError> {
    match s.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(invalid(
            given,
            format!("{what} must be a whole number of at least 1, got {s:?}"),
        )),
    }
}

impl FromStr for Lifecycle {
    type Err = SpecError;

    fn from_str(given: &str) -> Result<Lifecycle, SpecError> {
        let s = given.trim();
        if s == "none" {
            return Ok(Lifecycle::None);
        }
        let Some((kind, value)) = s.split_once('=') else {
            return Err(invalid(
                given,
                format!("not a policy; valid policies: {}", Lifecycle::ALL_FORMS),
            ));
        };
        match kind.trim() {
            "requests" => {
                let (every, jitter) = match value.split_once('±').or(value.split_once("+-")) {
                    Some((n, j)) => (n, Some(j)),
                    None => (value, None),
                };
                let every = count(given, "N", every)?;
                let jitter = match jitter {
                    None => 0,
                    Some(j) => j.trim().parse::<u64>().map_err(|_| {
                        invalid(
                            given,
                            format!("the jitter must be a whole number, got {j:?}"),
                        )
                    })?,
                };
                if jitter >= every {
                    return Err(invalid(
                        given,
                        format!("the jitter {jitter} must be smaller than N {every}"),
                    ));
                }
                Ok(Lifecycle::Requests { every, jitter })
            }
            "memory" => {
                let (size, check) = match value.split_once('@') {
                    Some((s, c)) => (s, Some(c)),
                    None => (value, None),
                };
                let limit = parse_size(size).map_err(|e| invalid(given, e.to_string()))?;
                if limit < 1 << 20 {
                    return Err(invalid(given, "the limit must be at least 1MiB"));
                }
                let check = match check {
                    None => DEFAULT_MEMORY_CHECK,
                    Some(c) => parse_interval(c).map_err(|e| invalid(given, e.to_string()))?,
                };
                if check < Duration::from_millis(10) || check > Duration::from_secs(60) {
                    return Err(invalid(
                        given,
                        "the check interval must be between 10ms and 60s",
                    ));
                }
                Ok(Lifecycle::Memory { limit, check })
            }
            "refork" => {
                let (list, unavailable) = match value.split_once('/') {
                    Some((l, u)) => (l, Some(u)),
                    None => (value, None),
                };
                let after = list
                    .split(',')
                    .map(|n| count(given, "each refork point", n))
                    .collect::<Result<Vec<u64>, _>>()?;
                let max_unavailable = match unavailable {
                    None => 1,
                    Some(u) => count(given, "U (workers replaced at once)", u)?
                        .try_into()
                        .map_err(|_| invalid(given, "U is too large"))?,
                };
                Ok(Lifecycle::Refork {
                    after,
                    max_unavailable,
                })
            }
            other => Err(invalid(
                given,
                format!(
                    "unknown policy {other:?}; valid policies: {}",
                    Lifecycle::ALL_FORMS
                ),
            )),
        }
    }
}

impl TryFrom<String> for Lifecycle {
    type Error = SpecError;
    fn try_from(s: String) -> Result<Lifecycle, SpecError> {
        s.parse()
    }
}

impl From<Lifecycle> for String {
    fn from(l: Lifecycle) -> String {
        l.to_string()
    }
}

/// In JSON the string `Display` writes: the normalised spelling, whose
/// numbers are those `from_str` accepts (N, sizes and intervals above 0).
#[cfg(feature = "schema")]
impl schemars::JsonSchema for Lifecycle {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Lifecycle".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "How the master replaced workers while they served, \
                            normalised: `none`, `requests=N[±J]`, \
                            `memory=SIZE[@INTERVAL]` (SIZE in the largest binary \
                            unit that divides it), `refork=N[,N2…][/U]`.",
            "type": "string",
            "pattern": "^(none\
                         |requests=[1-9][0-9]*(±[1-9][0-9]*)?\
                         |memory=[1-9][0-9]*(TiB|GiB|MiB|KiB|B)(@[1-9][0-9]*(s|ms))?\
                         |refork=[1-9][0-9]*(,[1-9][0-9]*)*(/[1-9][0-9]*)?)$"
        })
    }
}

/// Why a memory size does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum SizeError {
    /// No number in front.
    #[error("{given:?} is not a size (examples: 2GiB, 512MiB, 1.5G)")]
    NotASize {
        /// The size as written.
        given: String,
    },
    /// A unit that is not B, KiB, MiB, GiB or TiB (or their short forms).
    #[error("{given:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB or TiB)")]
    UnknownUnit {
        /// The size as written.
        given: String,
        /// The unit, lower-cased.
        unit: String,
    },
    /// Less than a byte, or more than 2^63.
    #[error("{given:?} is not a usable size")]
    Unusable {
        /// The size as written.
        given: String,
    },
}

/// Why a check interval does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
enum IntervalError {
    /// Neither `ms` nor `s` at the end.
    #[error("the check interval {given:?} needs a unit: 250ms or 1s")]
    NoUnit { given: String },
    /// Not a positive number in front of the unit.
    #[error("{given:?} is not an interval (examples: 250ms, 1s)")]
    NotAnInterval { given: String },
}

/// Parses a memory size: `2GiB`, `512MiB`, `1.5G`, `2048M`, `64k`, or bytes.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| SizeError::NotASize { given: s.into() })?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(SizeError::UnknownUnit {
                given: s.into(),
                unit: other.into(),
            });
        }
    };
    let bytes = value * mult;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < 2f64.powi(63)) {
        return Err(SizeError::Unusable { given: s.into() });
    }
    Ok(bytes as u64)
}

/// A size in the largest binary unit that divides it: `64MiB`, `1536KiB`.
fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

/// `250ms`, `1.5s`, `2s`.
fn parse_interval(s: &str) -> Result<Duration, IntervalError> {
    let t = s.trim();
    let (num, scale) = if let Some(ms) = t.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(sec) = t.strip_suffix('s') {
        (sec, 1.0)
    } else {
        return Err(IntervalError::NoUnit { given: s.into() });
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * scale < 1e6 => {
            Ok(Duration::from_secs_f64(v * scale))
        }
        _ => Err(IntervalError::NotAnInterval { given: s.into() }),
    }
}

fn format_interval(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print_back() {
        for (given, shown) in [
            ("none", "none"),
            ("requests=400", "requests=400"),
            ("requests=400±40", "requests=400±40"),
            ("requests=400+-40", "requests=400±40"),
            ("memory=64MiB", "memory=64MiB"),
            ("memory=64M@100ms", "memory=64MiB@100ms"),
            ("memory=1.5GiB@2s", "memory=1536MiB@2s"),
            ("refork=50,100,1000", "refork=50,100,1000"),
            ("refork=500/2", "refork=500/2"),
        ] {
            let l: Lifecycle = given.parse().unwrap();
            assert_eq!(l.to_string(), shown, "{given}");
            assert_eq!(shown.parse::<Lifecycle>().unwrap(), l);
            let json = serde_json::to_string(&l).unwrap();
            assert_eq!(json, format!("\"{shown}\""));
            assert_eq!(serde_json::from_str::<Lifecycle>(&json).unwrap(), l);
        }
    }

    #[test]
    fn bad_policies_say_what_is_wrong() {
        for (given, says) in [
            ("sometimes", "valid policies: none, requests"),
            ("requests=0", "at least 1"),
            ("requests=abc", "whole number"),
            ("requests=100±100", "smaller than N"),
            ("requests=100±x", "jitter"),
            ("memory=64", "at least 1MiB"),
            ("memory=64XB", "unknown unit"),
            ("memory=64MiB@5ms", "between 10ms and 60s"),
            ("memory=64MiB@100", "needs a unit"),
            ("refork=", "refork point"),
            ("refork=50,,100", "refork point"),
            ("refork=50/0", "at least 1"),
            ("restart=5", "unknown policy \"restart\""),
        ] {
            let e = given.parse::<Lifecycle>().unwrap_err().to_string();
            assert!(e.contains(says), "{given}: {e}");
            assert!(e.contains(given), "{given}: {e}");
        }
    }

    #[test]
    fn a_list_keeps_refork_points_together() {
        assert_eq!(
            Lifecycle::split_list("none,refork=50,100,1000,requests=400±40,memory=64MiB"),
            [
                "none",
                "refork=50,100,1000",
                "requests=400±40",
                "memory=64MiB"
            ]
        );
        assert_eq!(Lifecycle::split_list("none,,x"), ["none", "", "x"]);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("2048M").unwrap(), 2 << 30);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        for bad in ["", "GiB", "-1G", "1.2.3G", "5 XB", "0"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
