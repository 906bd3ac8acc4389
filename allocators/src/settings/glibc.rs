//! glibc malloc's settings: its numeric variables, the malloc tunables in
//! `GLIBC_TUNABLES` and the tunables this glibc knows, how glibc reads a
//! number, and the arena limit (or any malloc number) a variant sets.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::Expected;

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
pub(super) const GLIBC_MALLOC_TUNABLE: &str = "glibc.malloc.";

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

/// The `name=value` pairs of a `GLIBC_TUNABLES` value (a pair without `=`
/// has an empty value).
pub(super) fn tunable_pairs(value: &str) -> impl Iterator<Item = (&str, &str)> {
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

pub(super) fn check_tunables(value: &str) -> Result<(), Expected> {
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
    use crate::settings::check_value;

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
