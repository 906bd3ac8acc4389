//! The named presets: the variants allocbench knows without a variants file.

use super::{Base, Variant};

impl Variant {
    fn preset(name: &str, base: Base, env: &[(&str, &str)], description: &str) -> Variant {
        Variant {
            name: name.into(),
            base,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            description: description.into(),
            thp_disable: false,
            background_thread_in_workers: false,
        }
    }
}

fn preload(library: &str, expect: &str, package: &str) -> Base {
    Base::Preload {
        library: library.into(),
        expect: Some(expect.into()),
        package: Some(package.into()),
    }
}

/// The named presets, in the order tables show them (baseline first).
pub fn presets() -> Vec<Variant> {
    vec![
        Variant::preset("glibc", Base::Glibc, &[], "glibc malloc, default settings"),
        Variant::preset(
            "glibc-arena1",
            Base::Glibc,
            &[("MALLOC_ARENA_MAX", "1")],
            "glibc malloc with a single arena",
        ),
        Variant::preset(
            "glibc-arena2",
            Base::Glibc,
            &[("MALLOC_ARENA_MAX", "2")],
            "glibc malloc with at most two arenas",
        ),
        Variant::preset(
            "glibc-mmap128k",
            Base::Glibc,
            &[("MALLOC_MMAP_THRESHOLD_", "131072")],
            "glibc malloc with a fixed 128 KiB mmap threshold (disables the dynamic threshold)",
        ),
        Variant::preset(
            "jemalloc",
            Base::Jemalloc,
            &[],
            "jemalloc built in (tikv-jemallocator), default settings",
        ),
        Variant::preset(
            "mimalloc",
            Base::Mimalloc,
            &[],
            "mimalloc built in (mimalloc crate), default settings",
        ),
        Variant::preset(
            "snmalloc",
            Base::Snmalloc,
            &[],
            "snmalloc built in (snmalloc-rs crate); it reads no settings",
        ),
        Variant::preset(
            "glibc-trim128k",
            Base::Glibc,
            &[("MALLOC_TRIM_THRESHOLD_", "131072")],
            "glibc malloc with a fixed 128 KiB trim threshold (no dynamic growth)",
        ),
        Variant::preset(
            "jemalloc-decay0",
            Base::Jemalloc,
            &[("MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")],
            "built-in jemalloc returning freed pages at once",
        ),
        Variant::preset(
            "jemalloc-decay1s",
            Base::Jemalloc,
            &[("MALLOC_CONF", "dirty_decay_ms:1000,muzzy_decay_ms:1000")],
            "built-in jemalloc decaying freed pages over 1 s (default 10 s)",
        ),
        Variant::preset(
            "jemalloc-bg",
            Base::Jemalloc,
            &[("MALLOC_CONF", "background_thread:true")],
            "built-in jemalloc with background threads (in the master only: they do not survive fork)",
        ),
        Variant {
            background_thread_in_workers: true,
            ..Variant::preset(
                "jemalloc-bg-workers",
                Base::Jemalloc,
                &[("MALLOC_CONF", "background_thread:true")],
                "built-in jemalloc with background threads turned on again in every worker",
            )
        },
        Variant::preset(
            "mimalloc-purge0",
            Base::Mimalloc,
            &[("MIMALLOC_PURGE_DELAY", "0")],
            "built-in mimalloc purging freed memory at once",
        ),
        Variant::preset(
            "mimalloc-purge25ms",
            Base::Mimalloc,
            &[("MIMALLOC_PURGE_DELAY", "25")],
            "built-in mimalloc purging freed memory after 25 ms (default 1 s)",
        ),
        Variant::preset(
            "mimalloc-nothp",
            Base::Mimalloc,
            &[("MIMALLOC_ALLOW_THP", "0")],
            "built-in mimalloc without transparent huge pages (by default it asks for them)",
        ),
        Variant::preset(
            "jemalloc-thp",
            Base::Jemalloc,
            &[("MALLOC_CONF", "thp:always,metadata_thp:auto")],
            "built-in jemalloc asking for transparent huge pages for its heap and metadata",
        ),
        Variant {
            thp_disable: true,
            ..Variant::preset(
                "glibc-nothp",
                Base::Glibc,
                &[],
                "glibc malloc with transparent huge pages disabled for the whole tree (prctl)",
            )
        },
        Variant::preset(
            "jemalloc-so",
            preload("libjemalloc.so.2", "jemalloc", "libjemalloc2"),
            &[],
            "the system's jemalloc through LD_PRELOAD",
        ),
        Variant::preset(
            "tcmalloc-so",
            preload(
                "libtcmalloc_minimal.so.4",
                "tcmalloc",
                "libtcmalloc-minimal4",
            ),
            &[],
            "the system's tcmalloc (gperftools, minimal) through LD_PRELOAD",
        ),
        Variant::preset(
            "mimalloc-so",
            preload("libmimalloc.so.2", "mimalloc", "libmimalloc2.0"),
            &[],
            "the system's mimalloc through LD_PRELOAD",
        ),
        Variant::preset(
            "tcmalloc-so-release10",
            preload(
                "libtcmalloc_minimal.so.4",
                "tcmalloc",
                "libtcmalloc-minimal4",
            ),
            &[("TCMALLOC_RELEASE_RATE", "10")],
            "the system's tcmalloc releasing freed memory ten times faster than by default",
        ),
    ]
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_unique_valid_names() {
        let p = presets();
        for v in &p {
            v.validate().unwrap();
        }
        let mut names: Vec<_> = p.iter().map(|v| &v.name).collect();
        names.dedup();
        assert_eq!(names.len(), p.len());
        assert_eq!(p[0].name, "glibc");
    }
}
