//! What each allocator family reads from its environment, and in which
//! format. Allocators ignore a value they cannot parse, and a variable only
//! another allocator reads, without a word: both would make a row that
//! measures the defaults under the variant's name. So a variant's settings
//! are checked when it is defined, before any run.

//! The checks are grouped by allocator: glibc's in `glibc.rs`, mimalloc's
//! in `mimalloc.rs`; jemalloc's and tcmalloc's, a few lines each, are here.

mod glibc;
mod mimalloc;

use thiserror::Error;

use glibc::{GLIBC_MALLOC_TUNABLE, check_tunables, tunable_pairs};
pub use glibc::{
    GLIBC_NUMERIC, glibc_arena_limit, glibc_malloc_setting, glibc_number, known_tunables,
};
use mimalloc::check_mimalloc;

/// An allocator family: who reads which variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// glibc's malloc: `MALLOC_*_` variables and `GLIBC_TUNABLES`.
    Glibc,
    /// jemalloc: `MALLOC_CONF` (`_RJEM_MALLOC_CONF` when prefixed).
    Jemalloc,
    /// mimalloc: `MIMALLOC_*`.
    Mimalloc,
    /// snmalloc: no variable at all.
    Snmalloc,
    /// tcmalloc: `TCMALLOC_*`.
    Tcmalloc,
}

impl Family {
    /// The family's name in messages: `glibc malloc`, `jemalloc`, ….
    pub fn name(self) -> &'static str {
        match self {
            Family::Glibc => "glibc malloc",
            Family::Jemalloc => "jemalloc",
            Family::Mimalloc => "mimalloc",
            Family::Snmalloc => "snmalloc",
            Family::Tcmalloc => "tcmalloc",
        }
    }

    /// The family of an allocator name as the probe reports it.
    pub fn from_allocator(name: &str) -> Option<Family> {
        match name {
            "glibc" => Some(Family::Glibc),
            "jemalloc" => Some(Family::Jemalloc),
            "mimalloc" => Some(Family::Mimalloc),
            "snmalloc" => Some(Family::Snmalloc),
            "tcmalloc" => Some(Family::Tcmalloc),
            _ => None,
        }
    }

    /// The family a preload library's file name clearly names:
    /// `lib<family>` (or the workspace's `liballocbench_<family>`) followed
    /// by the end, `.`, `_` or `-` (`libjemalloc.so.2`,
    /// `libtcmalloc_minimal.so.4`, `libmimalloc-secure.so`,
    /// `libsnmallocshim.so`). Anything else is of unknown family.
    pub fn of_library(library: &str) -> Option<Family> {
        let file = library.rsplit('/').next().unwrap_or(library);
        let stem = file.strip_prefix("lib")?;
        let stem = stem.strip_prefix("allocbench_").unwrap_or(stem);
        [
            ("jemalloc", Family::Jemalloc),
            ("mimalloc", Family::Mimalloc),
            ("snmalloc", Family::Snmalloc),
            // snmalloc's own build names its library libsnmallocshim.so.
            ("snmallocshim", Family::Snmalloc),
            ("tcmalloc", Family::Tcmalloc),
        ]
        .into_iter()
        .find(|(name, _)| {
            stem.strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '_', '-']))
        })
        .map(|(_, family)| family)
    }
}

/// The family that alone reads `name` (set to `value`), or `None` when any
/// process may read it or it is unknown. For `GLIBC_TUNABLES` only its
/// malloc tunables are glibc malloc's: the others apply to every program.
pub fn reader(name: &str, value: &str) -> Option<Family> {
    let upper = name.to_ascii_uppercase();
    if GLIBC_NUMERIC.contains(&name) || name == "MALLOC_CHECK_" {
        Some(Family::Glibc)
    } else if name == "GLIBC_TUNABLES" {
        tunable_pairs(value)
            .any(|(n, _)| n.starts_with(GLIBC_MALLOC_TUNABLE))
            .then_some(Family::Glibc)
    } else if name == "MALLOC_CONF" {
        Some(Family::Jemalloc)
    } else if upper.starts_with("MIMALLOC_") {
        // mimalloc looks its variables up without regard to case.
        Some(Family::Mimalloc)
    } else if name.starts_with("TCMALLOC_") {
        Some(Family::Tcmalloc)
    } else {
        None
    }
}

/// What a malformed value of a known variable should have been: the error
/// of [`check_value`], worded to follow "expected".
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum Expected {
    /// A glibc malloc number (`MALLOC_ARENA_MAX` and the like).
    #[error("a non-negative integer (decimal without leading zeros, or hexadecimal with 0x)")]
    GlibcNumber,
    /// A `GLIBC_TUNABLES` item that is not `name=value`.
    #[error("name=value pairs separated by ':' (e.g. glibc.malloc.arena_max=2), not {pair:?}")]
    TunablePair {
        /// The item as written.
        pair: String,
    },
    /// A tunable this glibc does not know.
    #[error("tunables this glibc knows (ld.so --list-tunables); it has no {name}")]
    UnknownTunable {
        /// The tunable's name.
        name: String,
    },
    /// A `glibc.malloc` tunable whose value is no glibc number.
    #[error("{} for {name}, not {value:?}", Expected::GlibcNumber)]
    TunableNumber {
        /// The tunable's name.
        name: String,
        /// Its value as written.
        value: String,
    },
    /// A `MALLOC_CONF` item that is not `key:value`.
    #[error("key:value pairs separated by ',' (e.g. narenas:2,dirty_decay_ms:0), not {pair:?}")]
    ConfPair {
        /// The item as written.
        pair: String,
    },
    /// `TCMALLOC_RELEASE_RATE`.
    #[error("a non-negative number (e.g. 10)")]
    ReleaseRate,
    /// A boolean mimalloc option.
    #[error("1, 0, true, false, on, off, yes or no")]
    MiBool,
    /// A numeric mimalloc option.
    #[error("an integer")]
    MiNumber,
    /// A mimalloc option read as a size.
    #[error("a size: a number of bytes, or of KiB, MiB, GiB or TiB (e.g. 64MiB)")]
    MiSize,
}

/// `key:value` pairs separated by `,`, keys of letters, digits and `_`, as
/// jemalloc's option parser reads them.
fn check_malloc_conf(value: &str) -> Result<(), Expected> {
    if value.is_empty() {
        return Ok(());
    }
    for pair in value.split(',') {
        let ok = pair.split_once(':').is_some_and(|(k, v)| {
            !k.is_empty()
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !v.is_empty()
        });
        if !ok {
            return Err(Expected::ConfPair { pair: pair.into() });
        }
    }
    Ok(())
}

/// Checks the value of a variable whose format is known; the error says
/// what was expected. Unknown variables pass.
pub fn check_value(name: &str, value: &str) -> Result<(), Expected> {
    let upper = name.to_ascii_uppercase();
    if GLIBC_NUMERIC.contains(&name) {
        glibc_number(value).map(|_| ()).ok_or(Expected::GlibcNumber)
    } else if name == "GLIBC_TUNABLES" {
        check_tunables(value)
    } else if name == "MALLOC_CONF" {
        check_malloc_conf(value)
    } else if name == "TCMALLOC_RELEASE_RATE" {
        let ok = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b))
            && value
                .parse::<f64>()
                .is_ok_and(|r| r.is_finite() && r >= 0.0);
        if ok {
            Ok(())
        } else {
            Err(Expected::ReleaseRate)
        }
    } else if let Some(option) = upper.strip_prefix("MIMALLOC_") {
        check_mimalloc(&option.to_ascii_lowercase(), value)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_of_library_names() {
        for (lib, family) in [
            (
                "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
                Some(Family::Jemalloc),
            ),
            ("/opt/libtcmalloc_minimal.so.4", Some(Family::Tcmalloc)),
            ("/opt/libtcmalloc.so", Some(Family::Tcmalloc)),
            ("./libmimalloc-secure.so", Some(Family::Mimalloc)),
            ("/opt/libsnmallocshim.so", Some(Family::Snmalloc)),
            ("/opt/libsnmallocshim-checks.so", Some(Family::Snmalloc)),
            ("/opt/libsnmallocator.so", None),
            (
                "target/release/liballocbench_snmalloc.so",
                Some(Family::Snmalloc),
            ),
            (
                "target/debug/liballocbench_jemalloc.so",
                Some(Family::Jemalloc),
            ),
            ("/opt/libjemallocator.so", None),
            ("/opt/my-jemalloc.so", None),
            ("/lib/libc.so.6", None),
            ("/opt/jemalloc/lib/libfoo.so", None),
        ] {
            assert_eq!(Family::of_library(lib), family, "{lib}");
        }
    }

    #[test]
    fn readers_of_variables() {
        assert_eq!(reader("MALLOC_ARENA_MAX", "1"), Some(Family::Glibc));
        assert_eq!(reader("MALLOC_CONF", "x"), Some(Family::Jemalloc));
        assert_eq!(reader("mimalloc_verbose", "1"), Some(Family::Mimalloc));
        assert_eq!(reader("TCMALLOC_RELEASE_RATE", "1"), Some(Family::Tcmalloc));
        assert_eq!(
            reader(
                "GLIBC_TUNABLES",
                "glibc.pthread.rseq=0:glibc.malloc.arena_max=1"
            ),
            Some(Family::Glibc)
        );
        // Not malloc's: every program reads them.
        assert_eq!(reader("GLIBC_TUNABLES", "glibc.pthread.rseq=0"), None);
        assert_eq!(reader("MALLOC_SOMETHING", "1"), None);
    }

    #[test]
    fn values_of_known_variables() {
        let ok = [
            ("MALLOC_ARENA_MAX", "2"),
            ("MALLOC_PERTURB_", "0"),
            ("MALLOC_MMAP_THRESHOLD_", "0x20000"),
            ("MALLOC_CONF", "narenas:2,dirty_decay_ms:0"),
            ("MALLOC_CONF", "bin_shards:1-160:16|129-512:4"),
            ("MALLOC_CONF", ""),
            ("TCMALLOC_RELEASE_RATE", "10"),
            ("TCMALLOC_RELEASE_RATE", "0.5"),
            ("MIMALLOC_PURGE_DELAY", "-1"),
            ("MIMALLOC_SHOW_STATS", "On"),
            ("MIMALLOC_RESERVE_OS_MEMORY", "64MiB"),
            ("MIMALLOC_ARENA_RESERVE", "1g"),
            ("MIMALLOC_SOME_FUTURE_OPTION", "anything"),
            ("GLIBC_TUNABLES", ""),
            ("SOMETHING_ELSE", "whatever"),
        ];
        for (k, v) in ok {
            check_value(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
        }
        let bad = [
            ("MALLOC_ARENA_MAX", "two", "non-negative integer"),
            ("MALLOC_ARENA_TEST", "-1", "non-negative integer"),
            ("MALLOC_TRIM_THRESHOLD_", "128k", "non-negative integer"),
            ("MALLOC_TOP_PAD_", "", "non-negative integer"),
            ("MALLOC_MMAP_MAX_", "1.5", "non-negative integer"),
            ("MALLOC_CONF", "narenas=2", "key:value"),
            ("MALLOC_CONF", "narenas:2,", "key:value"),
            ("MALLOC_CONF", "narenas:", "key:value"),
            ("MALLOC_CONF", "dirty-decay:0", "key:value"),
            ("TCMALLOC_RELEASE_RATE", "fast", "non-negative number"),
            ("TCMALLOC_RELEASE_RATE", "inf", "non-negative number"),
            ("TCMALLOC_RELEASE_RATE", "-1", "non-negative number"),
            ("MIMALLOC_PURGE_DELAY", "1s", "an integer"),
            ("MIMALLOC_PURGE_DELAY", "on", "an integer"),
            ("MIMALLOC_SHOW_STATS", "enabled", "true, false"),
            ("MIMALLOC_RESERVE_OS_MEMORY", "64XB", "a size"),
            ("GLIBC_TUNABLES", "glibc.malloc.arena_max", "name=value"),
            ("GLIBC_TUNABLES", "=2", "name=value"),
            (
                "GLIBC_TUNABLES",
                "glibc.malloc.arena_max=two",
                "for glibc.malloc.arena_max",
            ),
        ];
        for (k, v, expected) in bad {
            let e = check_value(k, v).expect_err(&format!("{k}={v}"));
            assert!(e.to_string().contains(expected), "{k}={v}: {e}");
        }
    }
}
