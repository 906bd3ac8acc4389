//! Worker lifecycles in result documents: a restart on the timeline, and
//! how a cell's server ran for messages.

use allocbench_workloads::{Lifecycle, PreforkHook, RetireReason};
use serde::{Deserialize, Serialize};

use super::Millis;

/// How a cell's server ran besides its variant, for messages: `prefork
/// none`, or `prefork none, lifecycle requests=400` under a policy.
pub fn arm(prefork: PreforkHook, lifecycle: &Lifecycle) -> String {
    if lifecycle.is_none() {
        format!("prefork {prefork}")
    } else {
        format!("prefork {prefork}, lifecycle {lifecycle}")
    }
}

/// One worker replaced under a lifecycle policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Restart {
    /// When the harness heard the worker retire (ms since the cell began).
    pub t_ms: Millis,
    /// The worker's slot (its index).
    pub index: u32,
    /// The worker that retired.
    pub pid: i32,
    /// Its generation in the slot (0: forked by the master at start).
    pub generation: u32,
    /// `quota` (served its `requests=N`), `asked` (SIGQUIT: over the memory
    /// limit, or replaced by a mold) or `mold` (became the mold).
    pub reason: RetireReason,
    /// Requests it served.
    pub requests: u64,
}
