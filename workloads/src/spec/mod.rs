//! What a workload is: a serde spec (CLI flags and TOML spec files set its
//! fields), the named presets, and validation.
//!
//! The spec type, its pre-fork hook and its errors are here, with what a
//! spec implies (mean object size, memory estimate) and the overlay of a
//! TOML spec file; checking a spec is `validate`, the named workloads
//! `presets`.

mod lifecycle;
mod presets;
mod validate;

pub use lifecycle::{Lifecycle, SizeError, parse_size};
pub use presets::{Focus, Workload, workload, workloads};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A band of allocation sizes, drawn log-uniformly between `min` and `max`
/// bytes (small sizes are more common, as in real programs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SizeBand {
    /// Smallest size drawn, in bytes.
    pub min: u64,
    /// Largest size drawn, in bytes.
    pub max: u64,
    /// Relative weight of the band in a mix (ignored where a single band is used).
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

impl SizeBand {
    /// A band from `min` to `max` bytes with relative weight `weight`.
    pub const fn new(min: u64, max: u64, weight: f64) -> SizeBand {
        SizeBand { min, max, weight }
    }

    /// Mean size of the band under log-uniform sampling, in bytes.
    pub fn mean(&self) -> f64 {
        if self.max == self.min {
            return self.min as f64;
        }
        let (a, b) = (self.min as f64, self.max as f64);
        (b - a) / (b / a).ln()
    }
}

/// One stretch of a thread's requests with its own size mix (the `churn`
/// workload shifts from small objects to large and back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MixPhase {
    /// Relative length of this stretch (shares are normalised).
    pub share: f64,
    /// The size bands requests draw from during this stretch.
    pub sizes: Vec<SizeBand>,
}

/// What the master does to its heap between preloading and forking.
///
/// Read from its name only: serde's other spellings of an enum (`{ trim = {} }`)
/// are not a hook name, and its errors for them ("unit variant") are unclear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(!try_from))]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum PreforkHook {
    /// Nothing: fork the heap as preloading left it.
    #[default]
    None,
    /// The allocator's own release call: glibc `malloc_trim(0)`, jemalloc
    /// `arena.<all>.purge`, mimalloc `mi_collect(true)`, tcmalloc
    /// `MallocExtension_ReleaseFreeMemory()`.
    Trim,
    /// Allocate and free a burst of request-sized objects, so the allocator's
    /// caches and free lists are in their working shape before the fork.
    Warmup,
    /// The master frees nothing before fork (no holes in the inherited heap).
    Freeze,
}

impl PreforkHook {
    /// Every hook, in the order `--help` and errors list them.
    pub const ALL: [PreforkHook; 4] = [
        PreforkHook::None,
        PreforkHook::Trim,
        PreforkHook::Warmup,
        PreforkHook::Freeze,
    ];

    /// The hook's name on the command line and in spec files.
    pub fn name(self) -> &'static str {
        match self {
            PreforkHook::None => "none",
            PreforkHook::Trim => "trim",
            PreforkHook::Warmup => "warmup",
            PreforkHook::Freeze => "freeze",
        }
    }
}

impl fmt::Display for PreforkHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PreforkHook {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        PreforkHook::ALL
            .into_iter()
            .find(|h| h.name() == s)
            .ok_or_else(|| SpecError::UnknownHook(s.to_string()))
    }
}

impl TryFrom<String> for PreforkHook {
    type Error = SpecError;
    fn try_from(s: String) -> Result<Self, SpecError> {
        s.parse()
    }
}

/// Everything that decides what a workload does. Sizes in bytes unless the
/// name says otherwise; `requests` is per worker process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Worker processes the master forks (P). 0: no fork, the master serves
    /// the requests itself with its threads (one process, T threads).
    pub processes: u32,
    /// Threads per worker (T); each serves an equal share of `requests`.
    pub threads: u32,
    /// Requests each worker serves.
    pub requests: u64,
    /// Static memory the master preloads before forking, in MiB.
    pub static_mib: u64,
    /// Sizes of the many small static objects.
    pub static_small: SizeBand,
    /// Sizes of the few large static buffers.
    pub static_large: SizeBand,
    /// Share of the static bytes held in large buffers (0–1).
    pub static_large_share: f64,
    /// Share of the small static objects freed again before fork, leaving
    /// holes as an interpreter's heap has (0–1).
    pub static_free_share: f64,
    /// Share of the surviving small static objects that requests write to,
    /// as an interpreter updates shared objects (0–1).
    pub static_hot_share: f64,
    /// Writes each request makes into hot static objects.
    pub static_writes_per_request: u32,
    /// Share of the surviving small static objects (not hot) that are
    /// initialized lazily: the first request in a process to use one writes
    /// it whole, later uses only read its marker, as an interpreter fills an
    /// inline cache or loads a constant on first use (0–1; 0: none, and
    /// left out of the JSON).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub static_lazy_share: f64,
    /// Lazily initialized static objects each request uses.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub lazy_uses_per_request: u32,
    /// What the master does to its heap just before forking.
    pub prefork: PreforkHook,
    /// Seed of every random choice; the same seed gives the same run.
    pub seed: u64,
    /// Objects each request allocates, writes and (mostly) frees.
    pub objects_per_request: u32,
    /// The request size mix.
    pub sizes: Vec<SizeBand>,
    /// Probability that a request object is kept in its thread's cache after
    /// the request instead of being freed (0–1).
    pub retain_share: f64,
    /// Largest object a cache keeps, in bytes.
    pub retain_max_size: u64,
    /// Objects each thread's cache holds at most; when full, a random entry
    /// is evicted (freed).
    pub cache_objects: u32,
    /// Bytes each thread's cache holds at most (0: only `cache_objects`
    /// limits it); over the limit, random entries are evicted.
    #[serde(default)]
    pub cache_bytes: u64,
    /// Stretches of requests with their own size mixes, in order; empty:
    /// `sizes` throughout.
    #[serde(default)]
    pub mix_phases: Vec<MixPhase>,
    /// A global lock every request holds while it computes and allocates,
    /// released while it waits on I/O (MRI Ruby's GVL, CPython's GIL).
    #[serde(default)]
    pub gvl: bool,
    /// Share of a request's time spent waiting on I/O (sleeping, outside
    /// the GVL) after its work: 0.5 sleeps as long as the work took.
    #[serde(default)]
    pub io_wait_share: f64,
    /// Requests per second each serving process serves through the idle
    /// window (from `drained` to the trim), each freeing all it allocated:
    /// the trickle of traffic a quiet server still sees, which lets an
    /// allocator that gives memory back only when called (jemalloc without
    /// background threads, mimalloc's purge delay) do so. 0: none (and
    /// left out of the JSON, as in documents from before the key).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub idle_trickle_rps: f64,
    /// How the master replaces workers while they serve (`none`: never;
    /// left out of the JSON then, as in documents from before the key).
    #[serde(default, skip_serializing_if = "Lifecycle::is_none")]
    pub lifecycle: Lifecycle,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// Largest `idle_trickle_rps` accepted: a trickle, not a load.
pub const MAX_IDLE_TRICKLE_RPS: f64 = 1000.0;

/// Largest counts accepted: beyond them a run is a typo, not a benchmark.
pub const MAX_PROCESSES: u32 = 256;
/// Largest thread count per worker accepted.
pub const MAX_THREADS: u32 = 1024;
/// Largest object size accepted, in bytes (1 GiB).
pub const MAX_OBJECT_SIZE: u64 = 1 << 30;

/// A spec that can't be run, named by the offending item.
#[derive(Debug, Error, PartialEq)]
pub enum SpecError {
    /// A workload name that is no preset.
    #[error("unknown workload {name:?}; valid workloads: {valid}")]
    UnknownWorkload {
        /// The name as the user gave it.
        name: String,
        /// The preset names, comma-separated.
        valid: String,
    },
    /// A pre-fork hook name that is none of the four.
    #[error("unknown pre-fork hook {0:?}; valid hooks: none, trim, warmup, freeze")]
    UnknownHook(
        /// The name as the user gave it.
        String,
    ),
    /// A count or size outside what a run accepts.
    #[error("{field} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// The spec field (or flag) at fault.
        field: &'static str,
        /// The value given.
        value: String,
        /// The smallest value accepted.
        min: String,
        /// The largest value accepted.
        max: String,
    },
    /// A field whose value cannot run for another reason.
    #[error("{field}: {problem}")]
    Invalid {
        /// The spec field (or flag) at fault.
        field: String,
        /// What is wrong with its value.
        problem: String,
    },
    /// A spec file that cannot be read or is not a valid spec.
    #[error("spec file {path}: {message}")]
    File {
        /// The file as the user named it.
        path: String,
        /// What is wrong with it (the I/O or TOML error).
        message: String,
    },
}

impl WorkloadSpec {
    /// Processes that serve requests: the workers, or the master alone.
    pub fn serving_processes(&self) -> u32 {
        self.processes.max(1)
    }

    /// Mean bytes of one request object.
    pub fn mean_object_size(&self) -> f64 {
        let total: f64 = self.sizes.iter().map(|b| b.weight).sum();
        // Shares first: weight × mean overflows for huge weights.
        self.sizes
            .iter()
            .map(|b| b.weight / total * b.mean())
            .sum::<f64>()
    }

    /// An upper estimate of the memory a run of this spec needs: the master's
    /// static memory, a full private copy of it per worker, and per thread
    /// the largest request plus a full cache of the largest kept objects.
    pub fn memory_estimate_bytes(&self) -> u64 {
        let static_bytes = self.static_mib << 20;
        let largest = self
            .sizes
            .iter()
            .chain(self.mix_phases.iter().flat_map(|p| p.sizes.iter()))
            .map(|b| b.max)
            .max()
            .unwrap_or(0);
        // Saturating throughout: in-range sizes can exceed u64, and a wrapped
        // sum would pass the memory check.
        let mut cache =
            u64::from(self.cache_objects).saturating_mul(self.retain_max_size.min(largest));
        if self.cache_bytes > 0 {
            cache = cache.min(self.cache_bytes);
        }
        let per_thread = u64::from(self.objects_per_request)
            .saturating_mul(largest)
            .saturating_add(cache);
        let workers = u64::from(self.serving_processes());
        static_bytes.saturating_mul(1 + workers).saturating_add(
            workers
                .saturating_mul(u64::from(self.threads))
                .saturating_mul(per_thread),
        )
    }

    /// Overlays the keys of a TOML spec text on this spec. Unknown keys and
    /// wrong types are errors naming the key.
    pub fn overlay_toml(&self, text: &str) -> Result<WorkloadSpec, SpecError> {
        let file_err = |message: String| SpecError::File {
            path: String::new(),
            message,
        };
        let overlay: toml::Table = toml::from_str(text).map_err(|e| file_err(e.to_string()))?;
        let mut base = toml::Table::try_from(self).map_err(|e| file_err(e.to_string()))?;
        for (k, v) in overlay {
            base.insert(k, v);
        }
        let merged: WorkloadSpec = toml::Value::Table(base)
            .try_into()
            .map_err(|e: toml::de::Error| file_err(e.to_string()))?;
        Ok(merged)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_changes_only_given_keys() {
        let s = WorkloadSpec::server()
            .overlay_toml("processes = 3\nprefork = \"trim\"\n")
            .unwrap();
        assert_eq!(s.processes, 3);
        assert_eq!(s.prefork, PreforkHook::Trim);
        assert_eq!(s.threads, WorkloadSpec::server().threads);
    }

    #[test]
    fn overlay_rejects_unknown_keys_and_wrong_types() {
        let e = WorkloadSpec::server()
            .overlay_toml("procesess = 3\n")
            .unwrap_err();
        assert!(e.to_string().contains("procesess"), "{e}");
        let e = WorkloadSpec::server()
            .overlay_toml("threads = \"two\"\n")
            .unwrap_err();
        assert!(
            e.to_string().contains("threads") || e.to_string().contains("u32"),
            "{e}"
        );
        let e = WorkloadSpec::server()
            .overlay_toml("requests = -5\n")
            .unwrap_err();
        assert!(e.to_string().contains("-5"), "{e}");
    }

    #[test]
    fn hook_in_a_spec_file_is_a_name() {
        // Found by fuzzing: `prefork = { trim = {} }` was taken as trim, and
        // `prefork = 3` was refused as an "invalid type: unit variant".
        for text in ["prefork = { trim = {} }", "prefork = [\"trim\"]"] {
            let e = WorkloadSpec::server().overlay_toml(text).unwrap_err();
            assert!(e.to_string().contains("in `prefork`"), "{text}: {e}");
        }
        let e = WorkloadSpec::server()
            .overlay_toml("prefork = 3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("integer `3`, expected a string"), "{e}");
        let e = WorkloadSpec::server()
            .overlay_toml("prefork = \"TRIM\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"TRIM\"") && e.contains("none, trim, warmup, freeze"),
            "{e}"
        );
        let s = WorkloadSpec::server()
            .overlay_toml("prefork = \"freeze\"")
            .unwrap();
        assert_eq!(s.prefork, PreforkHook::Freeze);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"prefork\":\"freeze\""), "{json}");
        assert_eq!(serde_json::from_str::<WorkloadSpec>(&json).unwrap(), s);
    }

    #[test]
    fn hooks_parse_and_unknown_is_listed() {
        assert_eq!(
            "warmup".parse::<PreforkHook>().unwrap(),
            PreforkHook::Warmup
        );
        let e = "trimm".parse::<PreforkHook>().unwrap_err();
        assert!(e.to_string().contains("none, trim, warmup, freeze"));
    }

    #[test]
    fn memory_estimate_saturates_for_the_largest_valid_sizes() {
        // Found by fuzzing: the sum overflowed (a panic in debug builds, a
        // small wrapped estimate that passed the memory check in release).
        let s = WorkloadSpec {
            processes: MAX_PROCESSES,
            threads: MAX_THREADS,
            objects_per_request: 1_000_000,
            sizes: vec![SizeBand::new(16, MAX_OBJECT_SIZE, 1.0)],
            ..WorkloadSpec::server()
        };
        s.validate().unwrap();
        assert_eq!(s.memory_estimate_bytes(), u64::MAX);
    }

    #[test]
    fn log_uniform_mean_is_between_bounds() {
        let b = SizeBand::new(16, 512, 1.0);
        let m = b.mean();
        assert!(m > 16.0 && m < 264.0, "{m}");
        assert_eq!(SizeBand::new(64, 64, 1.0).mean(), 64.0);
    }
}
