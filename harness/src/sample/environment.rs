//! Facts about the machine recorded with every run: results from different
//! kernels, glibc versions, THP settings or cgroup limits are not
//! comparable.

use crate::results::environment::Environment;
use crate::sample::cgroup;

use procfs::Current;

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The bracketed choice of a sysfs selector like `always [madvise] never`.
pub fn selected(choice_line: &str) -> String {
    choice_line
        .split_whitespace()
        .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')))
        .unwrap_or(choice_line)
        .to_string()
}

impl Environment {
    pub fn collect() -> Environment {
        let meminfo = procfs::Meminfo::current().ok();
        let os = read_trim("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|s| s.trim_matches('"').to_string())
            .unwrap_or_default();
        let cpu_model = procfs::CpuInfo::current()
            .ok()
            .and_then(|c| c.model_name(0).map(str::to_string))
            .unwrap_or_default();
        let allocator_versions = allocbench_allocators::builtin_versions()
            .into_iter()
            .map(|(k, v)| (format!("{k} (built-in)"), v))
            .collect();
        Environment {
            hostname: read_trim("/proc/sys/kernel/hostname"),
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            os,
            arch: std::env::consts::ARCH.into(),
            glibc_version: allocbench_allocators::glibc_version(),
            thp_enabled: selected(&read_trim("/sys/kernel/mm/transparent_hugepage/enabled")),
            thp_defrag: selected(&read_trim("/sys/kernel/mm/transparent_hugepage/defrag")),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpus_online: procfs::CpuInfo::current()
                .map(|c| c.num_cores())
                .unwrap_or(0),
            cgroup_cpu_limit: cgroup::cpu_limit(&cgroup::own_place(cgroup::CPU)),
            cgroup_memory_limit: cgroup::memory_limit(
                &cgroup::own_place(cgroup::MEMORY),
                procfs::page_size(),
            ),
            cpu_model,
            mem_total_bytes: meminfo.as_ref().map(|m| m.mem_total).unwrap_or(0),
            mem_available_bytes: meminfo.as_ref().and_then(|m| m.mem_available).unwrap_or(0),
            page_size: procfs::page_size(),
            allocbench_version: env!("CARGO_PKG_VERSION").into(),
            allocator_versions,
            started_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }
}

/// Bytes the kernel says can be allocated without swapping.
pub fn mem_available() -> Option<u64> {
    procfs::Meminfo::current()
        .ok()
        .and_then(|m| m.mem_available)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_choice_is_the_bracketed_word() {
        assert_eq!(selected("always [madvise] never"), "madvise");
        assert_eq!(selected("[always] defer"), "always");
        assert_eq!(selected("weird"), "weird");
    }

    #[test]
    fn facts_are_read() {
        let e = Environment::collect();
        assert!(!e.kernel.is_empty());
        assert!(e.glibc_version.starts_with("2."));
        assert!(e.mem_total_bytes > 0 && e.cpus > 0);
        assert!(e.allocator_versions.contains_key("jemalloc (built-in)"));
    }

    #[test]
    fn the_cpu_model_is_the_first_model_name_of_cpuinfo() {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
        let first = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|s| s.split_once(':'))
            .map(|(_, v)| v.trim())
            .unwrap_or_default();
        assert_eq!(Environment::collect().cpu_model, first);
    }
}
