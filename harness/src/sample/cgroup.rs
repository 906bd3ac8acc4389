//! The CPU and memory limits of the cgroup this process runs in, under
//! cgroup v1 or v2: the least over its cgroup and the ancestors up to the
//! root of the mount (in a container, the container's own cgroup). The
//! files are found from the process's cgroup path (`/proc/self/cgroup`)
//! and the mount of its hierarchy (`/proc/self/mountinfo`, whose `root`
//! field is the cgroup the mount point shows: `/` in a cgroup namespace or
//! on the host, the container's cgroup where a runtime bind-mounts it).

use std::path::PathBuf;

use procfs::ProcessCGroups;
use procfs::process::{MountInfo, MountInfos};

/// The controllers read: `cpu` (bandwidth limit) and `memory`.
pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";

/// cgroup v1 (a hierarchy per controller or group of them) or v2 (the
/// unified hierarchy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Where a controller's files are for this process.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    /// No hierarchy of this process has the controller: no limit.
    Nowhere,
    /// The hierarchy is not mounted where this process sees it, or its
    /// cgroup lies outside the mount: the limit is unknown.
    Hidden,
    /// The process's cgroup and its ancestors, leaf first, up to the
    /// mount point.
    At {
        version: Version,
        dirs: Vec<PathBuf>,
    },
}

/// The directories of `controller` for a process in `cgroups`, given the
/// mounts it sees. A v1 hierarchy that names the controller comes first
/// (hybrid systems mount both); else the v2 hierarchy.
pub fn locate(cgroups: &ProcessCGroups, mounts: &MountInfos, controller: &str) -> Place {
    let v1 = cgroups
        .0
        .iter()
        .find(|c| c.controllers.iter().any(|n| n == controller));
    let (version, path) = match v1 {
        Some(c) => (Version::V1, &c.pathname),
        None => match cgroups.0.iter().find(|c| c.hierarchy == 0) {
            Some(c) => (Version::V2, &c.pathname),
            None => return Place::Nowhere,
        },
    };
    let mounted = |m: &&MountInfo| match version {
        Version::V1 => m.fs_type == "cgroup" && m.super_options.contains_key(controller),
        Version::V2 => m.fs_type == "cgroup2",
    };
    // Of the mounts showing the cgroup, the one showing most ancestors.
    let found = mounts
        .0
        .iter()
        .filter(mounted)
        .filter_map(|m| below(&m.root, path).map(|rel| (m, rel)))
        .min_by_key(|(m, _)| m.root.len());
    let Some((mount, rel)) = found else {
        return Place::Hidden;
    };
    let mut dir = mount.mount_point.clone();
    let mut dirs = vec![dir.clone()];
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        dir.push(part);
        dirs.push(dir.clone());
    }
    dirs.reverse();
    Place::At { version, dirs }
}

/// `path` relative to `root` (both cgroup paths), when it lies below it.
fn below<'a>(root: &str, path: &'a str) -> Option<&'a str> {
    let root = root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// v2 `cpu.max`: `$QUOTA $PERIOD` in microseconds, `max` for none; the
/// limit in CPUs.
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut words = text.split_whitespace();
    let quota = words.next()?;
    let period = words.next().unwrap_or("100000");
    if quota == "max" {
        return None;
    }
    cpus(quota.parse().ok()?, period.parse().ok()?)
}

/// v1 `cpu.cfs_quota_us` (-1 for none) and `cpu.cfs_period_us`; the limit
/// in CPUs.
pub fn parse_cfs(quota: &str, period: &str) -> Option<f64> {
    cpus(quota.trim().parse().ok()?, period.trim().parse().ok()?)
}

fn cpus(quota: i64, period: i64) -> Option<f64> {
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

/// v2 `memory.max`: bytes, `max` for none.
pub fn parse_memory_max(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// v1 `memory.limit_in_bytes`: bytes; none is the largest count of pages
/// the kernel keeps (`i64::MAX` rounded down to the page) or above.
pub fn parse_limit_in_bytes(text: &str, page_size: u64) -> Option<u64> {
    let bytes: u64 = text.trim().parse().ok()?;
    let none = i64::MAX as u64 / page_size.max(1) * page_size.max(1);
    (bytes < none).then_some(bytes)
}

fn read(dir: &std::path::Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

/// The least of `f` over the directories: a limit anywhere above applies.
fn least<T: PartialOrd>(dirs: &[PathBuf], f: impl Fn(&std::path::Path) -> Option<T>) -> Option<T> {
    dirs.iter()
        .filter_map(|d| f(d))
        .reduce(|a, b| if b < a { b } else { a })
}

/// The CPU limit at `place`: `None` when unknown, `Some(None)` when none.
pub fn cpu_limit(place: &Place) -> Option<Option<f64>> {
    match place {
        Place::Nowhere => Some(None),
        Place::Hidden => None,
        Place::At { version, dirs } => Some(least(dirs, |d| match version {
            Version::V1 => parse_cfs(
                &read(d, "cpu.cfs_quota_us")?,
                &read(d, "cpu.cfs_period_us")?,
            ),
            Version::V2 => parse_cpu_max(&read(d, "cpu.max")?),
        })),
    }
}

/// The memory limit at `place`, the same way.
pub fn memory_limit(place: &Place, page_size: u64) -> Option<Option<u64>> {
    match place {
        Place::Nowhere => Some(None),
        Place::Hidden => None,
        Place::At { version, dirs } => Some(least(dirs, |d| match version {
            Version::V1 => parse_limit_in_bytes(&read(d, "memory.limit_in_bytes")?, page_size),
            Version::V2 => parse_memory_max(&read(d, "memory.max")?),
        })),
    }
}

/// Where this process's `controller` files are; `Hidden` when
/// `/proc/self` cannot be read.
pub fn own_place(controller: &str) -> Place {
    let me = procfs::process::Process::myself();
    match me.and_then(|p| Ok((p.cgroups()?, p.mountinfo()?))) {
        Ok((cgroups, mounts)) => locate(&cgroups, &mounts, controller),
        Err(_) => Place::Hidden,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use procfs::FromBufRead;

    /// `/proc/PID/cgroup` and `/proc/PID/mountinfo` texts, parsed.
    fn parse(cgroup: &str, mountinfo: &str) -> (ProcessCGroups, MountInfos) {
        (
            ProcessCGroups::from_buf_read(cgroup.as_bytes()).unwrap(),
            MountInfos::from_buf_read(mountinfo.as_bytes()).unwrap(),
        )
    }

    fn at(version: Version, dirs: &[&str]) -> Place {
        Place::At {
            version,
            dirs: dirs.iter().map(PathBuf::from).collect(),
        }
    }

    const V2_MOUNT: &str = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot";

    #[test]
    fn a_v2_cgroup_and_its_ancestors_up_to_the_mount() {
        let (c, m) = parse("0::/user.slice/user-1000.slice/session-1.scope\n", V2_MOUNT);
        let expected = at(
            Version::V2,
            &[
                "/sys/fs/cgroup/user.slice/user-1000.slice/session-1.scope",
                "/sys/fs/cgroup/user.slice/user-1000.slice",
                "/sys/fs/cgroup/user.slice",
                "/sys/fs/cgroup",
            ],
        );
        assert_eq!(locate(&c, &m, CPU), expected);
        assert_eq!(locate(&c, &m, MEMORY), expected);
    }

    #[test]
    fn a_container_with_a_cgroup_namespace_sees_its_cgroup_at_the_mount_point() {
        // In the namespace the path is `/` and the mount's root is too.
        let (c, m) = parse(
            "0::/\n",
            "1380 1371 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate",
        );
        assert_eq!(locate(&c, &m, CPU), at(Version::V2, &["/sys/fs/cgroup"]));
    }

    #[test]
    fn a_bind_mounted_v1_container_cgroup_is_the_mount_root() {
        // Docker without a cgroup namespace: the path is the host's, and the
        // mount shows the container's cgroup (`root`) at the mount point.
        let (c, m) = parse(
            "5:memory:/docker/0123abcd\n4:cpu,cpuacct:/docker/0123abcd\n0::/docker/0123abcd\n",
            "1401 1392 0:30 /docker/0123abcd /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime master:11 - cgroup cgroup rw,cpu,cpuacct\n\
             1402 1392 0:31 /docker/0123abcd /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:12 - cgroup cgroup rw,memory\n",
        );
        assert_eq!(
            locate(&c, &m, CPU),
            at(Version::V1, &["/sys/fs/cgroup/cpu,cpuacct"])
        );
        assert_eq!(
            locate(&c, &m, MEMORY),
            at(Version::V1, &["/sys/fs/cgroup/memory"])
        );
    }

    #[test]
    fn a_hybrid_host_reads_the_v1_controller_hierarchies() {
        // This machine's layout: v1 controllers, an empty v2 beside them.
        let (c, m) = parse(
            "9:name=systemd:/\n4:memory:/process_api/49bd\n2:cpuacct:/\n1:cpu:/\n0::/\n",
            "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
             33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n\
             35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(
            locate(&c, &m, CPU),
            at(Version::V1, &["/sys/fs/cgroup/cpu"])
        );
        assert_eq!(
            locate(&c, &m, MEMORY),
            at(
                Version::V1,
                &[
                    "/sys/fs/cgroup/memory/process_api/49bd",
                    "/sys/fs/cgroup/memory/process_api",
                    "/sys/fs/cgroup/memory",
                ]
            )
        );
    }

    #[test]
    fn a_cgroup_outside_the_mount_or_unmounted_is_hidden_and_none_is_nowhere() {
        let (c, m) = parse(
            "0::/elsewhere\n",
            "29 23 0:26 /docker/0123 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(locate(&c, &m, CPU), Place::Hidden);
        // `/docker/01234` is not below `/docker/0123`.
        let (c, m) = parse(
            "0::/docker/01234\n",
            "29 23 0:26 /docker/0123 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(locate(&c, &m, CPU), Place::Hidden);
        let (c, m) = parse("1:cpu:/\n", V2_MOUNT);
        assert_eq!(locate(&c, &m, CPU), Place::Hidden);
        let (c, m) = parse("1:name=systemd:/\n", V2_MOUNT);
        assert_eq!(locate(&c, &m, CPU), Place::Nowhere);
        assert_eq!(cpu_limit(&Place::Nowhere), Some(None));
        assert_eq!(memory_limit(&Place::Hidden, 4096), None);
    }

    #[test]
    fn limits_in_the_files_of_v2_and_v1() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cpu_max("50000 100000"), Some(0.5));
        assert_eq!(parse_cfs("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs("150000\n", "100000\n"), Some(1.5));
        assert_eq!(parse_cfs("200000", "50000"), Some(4.0));
        assert_eq!(parse_memory_max("max\n"), None);
        assert_eq!(parse_memory_max("3221225472\n"), Some(3 << 30));
        assert_eq!(parse_limit_in_bytes("9223372036854771712\n", 4096), None);
        assert_eq!(parse_limit_in_bytes("9223372036854775807", 4096), None);
        // 64 KiB pages round lower.
        assert_eq!(parse_limit_in_bytes("9223372036854710272", 65536), None);
        assert_eq!(parse_limit_in_bytes("3221225472\n", 4096), Some(3 << 30));
    }

    #[test]
    fn this_process_cgroups_are_found_and_read() {
        for controller in [CPU, MEMORY] {
            let place = own_place(controller);
            let Place::At { version, dirs } = &place else {
                eprintln!("skipped {controller}: {place:?}");
                continue;
            };
            let file = match (version, controller) {
                (Version::V1, CPU) => "cpu.cfs_quota_us",
                (Version::V1, _) => "memory.limit_in_bytes",
                (Version::V2, CPU) => "cpu.max",
                (Version::V2, _) => "memory.max",
            };
            // The root of a v2 hierarchy has no limit files; a v1 one has.
            let leaf = &dirs[0];
            assert!(
                leaf.is_dir() && (*version == Version::V2 || leaf.join(file).is_file()),
                "{controller}: {place:?}"
            );
            assert!(cpu_limit(&place).is_some() && memory_limit(&place, 4096).is_some());
        }
    }
}
