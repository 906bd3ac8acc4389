//! Reading the kernel: `smaps_rollup` and `/proc/PID/status` of a process,
//! copy-on-write from `pagemap`, the timeline's sampler thread, and the
//! machine's environment.

pub mod cow;
pub mod environment;
pub mod smaps;
pub mod timeline;
