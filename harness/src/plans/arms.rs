//! The arms of a comparison besides its variants: the pre-fork hooks of
//! `--prefork` and the lifecycle policies of `--lifecycle`, checked.

use allocbench_workloads::{Lifecycle, PreforkHook, WorkloadSpec};

use crate::error::usage;

/// The hooks of `--prefork` (split by clap), or `default` when none is
/// given.
pub(super) fn hooks(list: &[String], default: PreforkHook) -> anyhow::Result<Vec<PreforkHook>> {
    if list.is_empty() {
        return Ok(vec![default]);
    }
    // As for --variants: an empty item or a hook listed twice is a mistake
    // in the list, not something to guess around.
    let mut out = Vec::new();
    for item in list.iter().map(|s| s.trim()) {
        if item.is_empty() {
            return Err(usage(
                "--prefork: the list has an empty item (two commas together, or one at an end)",
            ));
        }
        let h: PreforkHook = item.parse().map_err(usage)?;
        if out.contains(&h) {
            return Err(usage(format!("--prefork: hook {item:?} is listed twice")));
        }
        out.push(h);
    }
    Ok(out)
}

/// The policies of `--lifecycle` (each flag a comma-separated list, the
/// numbers after `refork=` kept with it), each checked against `spec`; `none`
/// when none is given.
pub(super) fn lifecycles(lists: &[String], spec: &WorkloadSpec) -> anyhow::Result<Vec<Lifecycle>> {
    let mut out = Vec::new();
    for item in lists.iter().flat_map(|l| Lifecycle::split_list(l)) {
        let item = item.trim();
        if item.is_empty() {
            return Err(usage(
                "--lifecycle: the list has an empty item (two commas together, or one at an end)",
            ));
        }
        let l: Lifecycle = item.parse().map_err(usage)?;
        if out.contains(&l) {
            return Err(usage(format!("--lifecycle: {l} is listed twice")));
        }
        WorkloadSpec {
            lifecycle: l.clone(),
            ..spec.clone()
        }
        .validate()
        .map_err(usage)?;
        out.push(l);
    }
    if out.is_empty() {
        out.push(spec.lifecycle.clone());
    }
    Ok(out)
}
