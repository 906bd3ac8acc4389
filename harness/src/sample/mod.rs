//! Reading the kernel: `smaps_rollup` and `/proc/PID/status` of a process,
//! copy-on-write from `pagemap`, the timeline's sampler thread, the
//! machine's environment (with its cgroup's limits), and every process's
//! `/proc/PID/stat`.

pub mod cgroup;
pub mod cow;
pub mod environment;
pub mod smaps;
pub mod stat;
pub mod timeline;
