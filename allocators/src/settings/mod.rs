//! What each allocator family reads from its environment, and in which
//! format. Allocators ignore a value they cannot parse, and a variable only
//! another allocator reads, without a word: both would make a row that
//! measures the defaults under the variant's name. So a variant's settings
//! are checked when it is defined, before any run.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use thiserror::Error;

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

/// glibc's malloc variables that hold a number (the environment aliases of
/// its `glibc.malloc.*` tunables).
pub const GLIBC_NUMERIC: &[&str] = &[
    "MALLOC_ARENA_MAX",
    "MALLOC_ARENA_TEST",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
    "MALLOC_PERTURB_",
];

/// The prefix of glibc's malloc tunables in `GLIBC_TUNABLES`.
const GLIBC_MALLOC_TUNABLE: &str = "glibc.malloc.";

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

/// A number as glibc's tunables read it (`_dl_strtoul`): decimal or `0x`
/// hexadecimal. A leading `0` means octal to glibc, so `010` (8, not 10) is
/// refused, as are signs and anything after the digits.
pub fn glibc_number(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return u64::from_str_radix(hex, 16).ok();
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
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

/// The `name=value` pairs of a `GLIBC_TUNABLES` value (a pair without `=`
/// has an empty value).
fn tunable_pairs(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value
        .split(':')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// The tunables this glibc knows, from `ld.so --list-tunables` (the
/// dynamic linker that loads allocbench, which loads its workers too);
/// `None` when it cannot be run (then only the syntax is checked).
pub fn known_tunables() -> Option<&'static BTreeSet<String>> {
    static KNOWN: OnceLock<Option<BTreeSet<String>>> = OnceLock::new();
    KNOWN
        .get_or_init(|| {
            let ld_so = crate::elf::own_interpreter()?;
            let out = Command::new(ld_so)
                .arg("--list-tunables")
                .env_clear()
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .ok()?;
            if !out.status.success() {
                return None;
            }
            let names: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(name, _)| name.trim().to_string())
                .filter(|name| name.starts_with("glibc."))
                .collect();
            (!names.is_empty()).then_some(names)
        })
        .as_ref()
}

fn check_tunables(value: &str) -> Result<(), Expected> {
    if value.is_empty() {
        return Ok(());
    }
    for pair in value.split(':') {
        let Some((name, v)) = pair.split_once('=').filter(|(n, _)| !n.is_empty()) else {
            return Err(Expected::TunablePair { pair: pair.into() });
        };
        if let Some(known) = known_tunables()
            && !known.contains(name)
        {
            return Err(Expected::UnknownTunable { name: name.into() });
        }
        if name.starts_with(GLIBC_MALLOC_TUNABLE) && glibc_number(v).is_none() {
            return Err(Expected::TunableNumber {
                name: name.into(),
                value: v.into(),
            });
        }
    }
    Ok(())
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

/// How mimalloc reads an option's value.
#[derive(Clone, Copy)]
enum MiKind {
    Bool,
    Number,
    /// A number of bytes, or of KiB, MiB, … with a suffix.
    Size,
}

/// mimalloc's documented options (`mi_option_t`, v2 and v3, with their
/// legacy names, and Debian's 2.0.9) and how each value is read.
fn mimalloc_option(option: &str) -> Option<MiKind> {
    use MiKind::*;
    const OPTIONS: &[(&str, MiKind)] = &[
        ("show_errors", Bool),
        ("show_stats", Bool),
        ("verbose", Bool),
        ("eager_commit", Bool),
        ("deprecated_eager_commit", Bool),
        ("arena_eager_commit", Number),
        ("eager_region_commit", Number),
        ("purge_decommits", Bool),
        ("reset_decommits", Bool),
        ("allow_large_os_pages", Bool),
        ("large_os_pages", Bool),
        ("reserve_huge_os_pages", Number),
        ("reserve_huge_os_pages_at", Number),
        ("reserve_os_memory", Size),
        ("segment_cache", Number),
        ("deprecated_segment_cache", Number),
        ("page_reset", Bool),
        ("deprecated_page_reset", Bool),
        ("abandoned_page_purge", Bool),
        ("abandoned_page_reset", Bool),
        ("abandoned_page_decommit", Bool),
        ("deprecated_abandoned_page_purge", Bool),
        ("segment_reset", Bool),
        ("deprecated_segment_reset", Bool),
        ("eager_commit_delay", Number),
        ("deprecated_eager_commit_delay", Number),
        ("purge_delay", Number),
        ("reset_delay", Number),
        ("decommit_delay", Number),
        ("use_numa_nodes", Number),
        ("disallow_os_alloc", Bool),
        ("limit_os_alloc", Bool),
        ("os_tag", Number),
        ("max_errors", Number),
        ("max_warnings", Number),
        ("max_segment_reclaim", Number),
        ("deprecated_max_segment_reclaim", Number),
        ("allow_decommit", Bool),
        ("segment_decommit_delay", Number),
        ("destroy_on_exit", Bool),
        ("arena_reserve", Size),
        ("arena_purge_mult", Number),
        ("purge_extend_delay", Number),
        ("decommit_extend_delay", Number),
        ("deprecated_purge_extend_delay", Number),
        ("disallow_arena_alloc", Bool),
        ("retry_on_oom", Number),
        ("visit_abandoned", Bool),
        ("guarded_min", Number),
        ("guarded_max", Number),
        ("guarded_precise", Bool),
        ("guarded_sample_rate", Number),
        ("guarded_sample_seed", Number),
        ("target_segments_per_thread", Number),
        ("generic_collect", Number),
        // v2: a boolean; v3: -1, 0 or 1 (the legacy name of
        // page_reclaim_on_free).
        ("abandoned_reclaim_on_free", Number),
        ("page_reclaim_on_free", Number),
        ("page_full_retain", Number),
        ("page_max_candidates", Number),
        ("max_vabits", Number),
        ("pagemap_commit", Bool),
        ("page_commit_on_demand", Number),
        ("page_max_reclaim", Number),
        ("page_cross_thread_max_reclaim", Number),
        ("allow_thp", Number),
        ("minimal_purge_size", Size),
        ("arena_max_object_size", Size),
        ("arena_is_numa_local", Bool),
    ];
    OPTIONS
        .iter()
        .find(|(name, _)| *name == option)
        .map(|&(_, kind)| kind)
}

fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && s.parse::<i64>().is_ok()
}

fn check_mimalloc(option: &str, value: &str) -> Result<(), Expected> {
    let upper = value.to_ascii_uppercase();
    match mimalloc_option(option) {
        // Unknown (another version's): mimalloc ignores it.
        None => Ok(()),
        Some(MiKind::Bool) => {
            let words = ["1", "0", "TRUE", "FALSE", "ON", "OFF", "YES", "NO"];
            if words.contains(&upper.as_str()) {
                Ok(())
            } else {
                Err(Expected::MiBool)
            }
        }
        Some(MiKind::Number) => {
            if is_integer(value) {
                Ok(())
            } else {
                Err(Expected::MiNumber)
            }
        }
        Some(MiKind::Size) => {
            let digits_end = upper
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(upper.len());
            let (digits, unit) = upper.split_at(digits_end);
            let unit_ok = [
                "", "B", "K", "KB", "KIB", "M", "MB", "MIB", "G", "GB", "GIB",
            ]
            .into_iter()
            .chain(["T", "TB", "TIB"])
            .any(|u| u == unit);
            if !digits.is_empty() && digits.parse::<u64>().is_ok() && unit_ok {
                Ok(())
            } else {
                Err(Expected::MiSize)
            }
        }
    }
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

/// The arena limit a glibc variant sets: `glibc.malloc.arena_max` in
/// `GLIBC_TUNABLES` (the last one; it takes precedence over the alias, as
/// in glibc), else `MALLOC_ARENA_MAX`. Returns the limit and the setting as
/// written, for messages.
pub fn glibc_arena_limit<'a>(
    env: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<(u64, String)> {
    glibc_malloc_setting(env, "MALLOC_ARENA_MAX", "glibc.malloc.arena_max")
}

/// A number a glibc variant sets for malloc: the tunable `tunable` in
/// `GLIBC_TUNABLES` (the last one), else its alias variable `alias`, as
/// glibc reads them. Returns the number and the setting as written.
pub fn glibc_malloc_setting<'a>(
    env: impl IntoIterator<Item = (&'a str, &'a str)>,
    alias: &str,
    tunable: &str,
) -> Option<(u64, String)> {
    let mut from_alias = None;
    let mut from_tunable = None;
    for (k, v) in env {
        if k == alias {
            from_alias = glibc_number(v).map(|n| (n, format!("{k}={v}")));
        } else if k == "GLIBC_TUNABLES" {
            for (name, value) in tunable_pairs(v) {
                if name == tunable
                    && let Some(n) = glibc_number(value)
                {
                    from_tunable = Some((n, format!("GLIBC_TUNABLES {name}={value}")));
                }
            }
        }
    }
    from_tunable.or(from_alias)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_numbers_are_what_glibc_reads_unambiguously() {
        for (s, n) in [("0", 0), ("2", 2), ("131072", 131072), ("0x20000", 131072)] {
            assert_eq!(glibc_number(s), Some(n), "{s}");
        }
        for s in [
            "",
            "-1",
            "+2",
            "2k",
            "two",
            "010",
            "0x",
            "0xg",
            " 2",
            "99999999999999999999",
        ] {
            assert_eq!(glibc_number(s), None, "{s}");
        }
    }

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

    #[test]
    fn tunable_names_are_this_glibcs() {
        let known = known_tunables().expect("ld.so --list-tunables runs here");
        assert!(known.contains("glibc.malloc.arena_max"), "{known:?}");
        check_value(
            "GLIBC_TUNABLES",
            "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=0x20000",
        )
        .unwrap();
        let e = check_value("GLIBC_TUNABLES", "glibc.malloc.arena_mx=2").unwrap_err();
        assert!(e.to_string().contains("no glibc.malloc.arena_mx"), "{e}");
    }

    #[test]
    fn arena_limits_prefer_the_tunable() {
        let limit = |env: &[(&'static str, &'static str)]| glibc_arena_limit(env.iter().copied());
        assert_eq!(limit(&[]), None);
        assert_eq!(
            limit(&[("MALLOC_ARENA_MAX", "2")]),
            Some((2, "MALLOC_ARENA_MAX=2".into()))
        );
        assert_eq!(
            limit(&[
                ("GLIBC_TUNABLES", "glibc.malloc.arena_max=1"),
                ("MALLOC_ARENA_MAX", "4"),
            ]),
            Some((1, "GLIBC_TUNABLES glibc.malloc.arena_max=1".into()))
        );
        assert_eq!(
            limit(&[("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")]),
            None
        );
    }

    #[test]
    fn any_malloc_setting_is_read_as_the_arena_limit_is() {
        let test = |env: &[(&'static str, &'static str)]| {
            glibc_malloc_setting(
                env.iter().copied(),
                "MALLOC_ARENA_TEST",
                "glibc.malloc.arena_test",
            )
            .map(|(n, _)| n)
        };
        assert_eq!(test(&[("MALLOC_ARENA_MAX", "2")]), None);
        assert_eq!(test(&[("MALLOC_ARENA_TEST", "0x10")]), Some(16));
        assert_eq!(
            test(&[
                (
                    "GLIBC_TUNABLES",
                    "glibc.malloc.arena_max=2:glibc.malloc.arena_test=20"
                ),
                ("MALLOC_ARENA_TEST", "4"),
            ]),
            Some(20)
        );
    }
}
