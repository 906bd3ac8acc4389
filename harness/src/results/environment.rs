//! The machine a result document was measured on. `sample::environment`
//! reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// CPUs this process may run on.
    pub cpus: usize,
    /// CPUs online on the machine.
    pub cpus_online: usize,
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
