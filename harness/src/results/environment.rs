//! The machine a result document was measured on. `sample::environment`
//! reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Environment {
    pub hostname: String,
    pub kernel: String,
    /// `PRETTY_NAME` of /etc/os-release.
    pub os: String,
    pub arch: String,
    pub glibc_version: String,
    /// The selected value of /sys/kernel/mm/transparent_hugepage/enabled.
    pub thp_enabled: String,
    pub thp_defrag: String,
    /// CPUs this process may run on: its affinity, fewer under a cgroup
    /// CPU limit (`available_parallelism` rounds the limit down).
    pub cpus: usize,
    /// CPUs online on the machine.
    pub cpus_online: usize,
    /// The CPU limit of the cgroup this process ran in, in CPUs (quota over
    /// period; the least over the cgroup and its ancestors up to the root
    /// of the mount): `Some(None)` when there is none (JSON `null`), `None`
    /// when not recorded (a document from before the fact, or a cgroup
    /// that could not be located; the field is then absent).
    #[serde(
        default,
        deserialize_with = "recorded",
        skip_serializing_if = "Option::is_none"
    )]
    pub cgroup_cpu_limit: Option<Option<f64>>,
    /// The memory limit of that cgroup in bytes, the same way.
    #[serde(
        default,
        deserialize_with = "recorded",
        skip_serializing_if = "Option::is_none"
    )]
    pub cgroup_memory_limit: Option<Option<u64>>,
    pub cpu_model: String,
    pub mem_total_bytes: u64,
    pub mem_available_bytes: u64,
    pub page_size: u64,
    pub allocbench_version: String,
    /// Versions of the built-in allocators and of every allocator a cell
    /// reported (name → version).
    pub allocator_versions: BTreeMap<String, String>,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix_s: u64,
}

impl Environment {
    /// The cgroup's CPU limit, when one was recorded.
    pub fn cpu_limit(&self) -> Option<f64> {
        self.cgroup_cpu_limit.flatten()
    }

    /// The cgroup's memory limit, when one was recorded.
    pub fn memory_limit(&self) -> Option<u64> {
        self.cgroup_memory_limit.flatten()
    }
}

/// A field present in the document (a value or `null`) is recorded; an
/// absent one stays `None` (`#[serde(default)]`).
fn recorded<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_limits_are_null_when_none_and_absent_when_not_recorded() {
        let mut e = Environment {
            cgroup_cpu_limit: Some(None),
            cgroup_memory_limit: Some(Some(3 << 30)),
            ..Environment::default()
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["cgroup_cpu_limit"], serde_json::Value::Null);
        assert_eq!(json["cgroup_memory_limit"], 3u64 << 30);
        let back: Environment = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
        e.cgroup_cpu_limit = Some(Some(1.5));
        let back: Environment = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back.cpu_limit(), Some(1.5));
        // A document from before the facts: absent, and absent again.
        let old = Environment::default();
        let json = serde_json::to_value(&old).unwrap();
        assert!(json.get("cgroup_cpu_limit").is_none(), "{json}");
        let back: Environment = serde_json::from_value(json).unwrap();
        assert_eq!(back.cgroup_cpu_limit, None);
    }
}
