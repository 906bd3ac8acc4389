//! The named workloads (`server`, `cow`, `threaded`, `churn`, `lifecycle`)
//! with their focus and their default and `--quick` specs.

use super::{MixPhase, PreforkHook, SizeBand, SpecError, WorkloadSpec};

impl WorkloadSpec {
    /// The `server` workload's defaults: a preforking server with tens of MiB
    /// preloaded, two workers of two threads.
    pub fn server() -> WorkloadSpec {
        WorkloadSpec {
            processes: 2,
            threads: 2,
            requests: 150_000,
            static_mib: 64,
            static_small: SizeBand::new(16, 512, 1.0),
            static_large: SizeBand::new(256 << 10, 4 << 20, 1.0),
            static_large_share: 0.3,
            static_free_share: 0.25,
            static_hot_share: 0.02,
            static_writes_per_request: 8,
            static_lazy_share: 0.0,
            lazy_uses_per_request: 0,
            prefork: PreforkHook::None,
            seed: 1,
            objects_per_request: 40,
            sizes: vec![
                SizeBand::new(16, 512, 0.85),
                SizeBand::new(512, 64 << 10, 0.13),
                SizeBand::new(128 << 10, 1 << 20, 0.02),
            ],
            retain_share: 0.03,
            retain_max_size: 64 << 10,
            cache_objects: 2048,
            cache_bytes: 0,
            mix_phases: Vec::new(),
            gvl: false,
            io_wait_share: 0.0,
            idle_trickle_rps: 0.0,
            lifecycle: super::Lifecycle::None,
        }
    }
}

/// The question a workload's comparison answers. `allocbench report`
/// shows a workload's results in a table of the figures its focus needs,
/// and derives its "What to choose" advice by the rules of that focus; a
/// result document records only the workload's name, so a workload that is
/// no preset (a spec file's) is reported as [`Focus::Serving`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Focus {
    /// A preforking server's memory, and its cost in throughput and latency:
    /// every memory figure (steady, after the release call, copied after
    /// fork, arenas, returned while idle), and the advice on the leanest
    /// allocator, its settings and how it gives memory back.
    Serving,
    /// Copy-on-write sharing after fork: the pages the workers copy of the
    /// master's and how much stays shared, and the advice on the pre-fork
    /// hooks.
    CopyOnWrite,
    /// One process of many threads, where arenas matter: the arenas and the
    /// memory returned, with the serving advice.
    Threads,
    /// Growth over requests: the slope, whether it levels off and the
    /// fragmentation at the start and the end, with the serving advice.
    Growth,
}

/// A named workload: its description and its default and `--quick` specs.
#[derive(Debug, Clone)]
pub struct Workload {
    /// What the user calls it on the command line and in reports.
    pub name: &'static str,
    /// One line for `allocbench list` saying what it models.
    pub description: &'static str,
    /// What its comparison is about: the columns of its `report` table and
    /// the rules of its "What to choose" advice.
    pub focus: Focus,
    /// The spec a run uses by default.
    pub spec: WorkloadSpec,
    /// The smaller spec `--quick` uses.
    pub quick: WorkloadSpec,
}

/// Every workload preset.
pub fn workloads() -> Vec<Workload> {
    let server = WorkloadSpec::server();
    let quick = WorkloadSpec {
        requests: 30_000,
        static_mib: 24,
        ..server.clone()
    };
    let cow = WorkloadSpec {
        processes: 2,
        threads: 1,
        requests: 20_000,
        static_mib: 64,
        static_small: SizeBand::new(16, 256, 1.0),
        static_large_share: 0.0,
        static_free_share: 0.5,
        static_hot_share: 0.0,
        static_writes_per_request: 0,
        objects_per_request: 16,
        sizes: vec![SizeBand::new(16, 256, 0.5), SizeBand::new(1024, 4096, 0.5)],
        retain_share: 0.0,
        cache_objects: 0,
        ..server.clone()
    };
    let cow_quick = WorkloadSpec {
        requests: 2_000,
        static_mib: 16,
        ..cow.clone()
    };
    let threaded = WorkloadSpec {
        processes: 0,
        threads: 8,
        requests: 200_000,
        static_mib: 32,
        ..server.clone()
    };
    let threaded_quick = WorkloadSpec {
        requests: 40_000,
        static_mib: 16,
        ..threaded.clone()
    };
    // Small objects, then large ones, and again: four rounds.
    let small = MixPhase {
        share: 1.0,
        sizes: vec![SizeBand::new(16, 512, 1.0)],
    };
    let large = MixPhase {
        share: 1.0,
        sizes: vec![SizeBand::new(4 << 10, 256 << 10, 1.0)],
    };
    let churn = WorkloadSpec {
        processes: 1,
        threads: 2,
        requests: 400_000,
        static_mib: 16,
        objects_per_request: 24,
        mix_phases: [small, large].into_iter().cycle().take(8).collect(),
        retain_share: 0.05,
        retain_max_size: 1 << 20,
        cache_objects: 1_000_000,
        cache_bytes: 16 << 20,
        ..server.clone()
    };
    let churn_quick = WorkloadSpec {
        requests: 60_000,
        static_mib: 8,
        cache_bytes: 4 << 20,
        ..churn.clone()
    };
    // Unicorn- or gunicorn-like: single-threaded workers whose heap grows
    // with the churn mix, over a large preload of which a share is
    // initialized on first use in each worker. What worker restarts and
    // reforks act on.
    let lifecycle = WorkloadSpec {
        processes: 4,
        threads: 1,
        requests: 120_000,
        static_mib: 64,
        // A compacted heap: no holes for the workers' allocations to
        // write into, so what they copy is what they initialize or write.
        static_free_share: 0.0,
        static_hot_share: 0.005,
        static_lazy_share: 0.1,
        lazy_uses_per_request: 2,
        ..churn.clone()
    };
    let lifecycle_quick = WorkloadSpec {
        requests: 30_000,
        static_mib: 32,
        cache_bytes: 4 << 20,
        ..lifecycle.clone()
    };
    vec![
        Workload {
            name: "server",
            description: "preforking server: the master preloads static memory with holes, forks \
                          P workers of T threads serving requests that allocate, write and free a \
                          mixed-size load, keep a bounded cache and write into shared static objects",
            focus: Focus::Serving,
            spec: server,
            quick,
        },
        Workload {
            name: "cow",
            description: "copy-on-write: the master preloads small objects and frees half of them \
                          (holes), forks single-threaded workers that allocate and free small and \
                          >= 1 KiB objects but touch nothing of the master's",
            focus: Focus::CopyOnWrite,
            spec: cow,
            quick: cow_quick,
        },
        Workload {
            name: "threaded",
            description: "one process, T threads serving requests (Puma in threaded mode, Sidekiq): \
                          where per-thread arenas matter; --gvl adds a global interpreter lock",
            focus: Focus::Threads,
            spec: threaded,
            quick: threaded_quick,
        },
        Workload {
            name: "churn",
            description: "a long-running worker whose request mix shifts from small objects to large \
                          and back while a byte-limited cache of long-lived objects rotates: RSS \
                          climbs where fragmentation wins, though live bytes stay flat",
            focus: Focus::Growth,
            spec: churn,
            quick: churn_quick,
        },
        Workload {
            name: "lifecycle",
            description: "single-threaded workers whose heap grows with the churn mix, over a preload \
                          of which 10% of the small objects are initialized on first use in each \
                          worker, a few often and many rarely (inline caches, lazily loaded constants): what --lifecycle restarts \
                          and reforks act on",
            focus: Focus::Serving,
            spec: lifecycle,
            quick: lifecycle_quick,
        },
    ]
}

/// The workload named `name`, or an error listing the valid names.
pub fn workload(name: &str) -> Result<Workload, SpecError> {
    let all = workloads();
    let valid = all.iter().map(|w| w.name).collect::<Vec<_>>().join(", ");
    all.into_iter()
        .find(|w| w.name == name)
        .ok_or(SpecError::UnknownWorkload {
            name: name.into(),
            valid,
        })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate() {
        for w in workloads() {
            w.spec.validate().unwrap();
            w.quick.validate().unwrap();
        }
    }

    #[test]
    fn every_preset_has_its_focus() {
        let focus: Vec<(&str, Focus)> = workloads().iter().map(|w| (w.name, w.focus)).collect();
        assert_eq!(
            focus,
            [
                ("server", Focus::Serving),
                ("cow", Focus::CopyOnWrite),
                ("threaded", Focus::Threads),
                ("churn", Focus::Growth),
                // Its policies' table is chosen by the cells' `--lifecycle`,
                // not by the workload; without policies it is a server's.
                ("lifecycle", Focus::Serving),
            ]
        );
        assert_eq!(workload("cow").unwrap().focus, Focus::CopyOnWrite);
    }

    #[test]
    fn unknown_workload_lists_valid_ones() {
        let e = workload("srever").unwrap_err().to_string();
        assert!(e.contains("srever") && e.contains("server"), "{e}");
    }
}
