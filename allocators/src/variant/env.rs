//! Checking a variant: its name, and that every environment variable it
//! sets is well formed, not reserved, and read by the allocator it runs on.

use super::{Base, Variant, VariantError};
use crate::dispatch::SELECT_ENV;
use crate::settings;

impl Variant {
    /// Checks the variant's name, its environment, and that only a jemalloc
    /// base turns background threads on in the workers.
    pub(super) fn validate(&self) -> Result<(), VariantError> {
        validate_name(&self.name)?;
        if self.background_thread_in_workers
            && matches!(self.base, Base::Glibc | Base::Mimalloc | Base::Snmalloc)
        {
            return Err(VariantError::NotJemalloc {
                variant: self.name.clone(),
            });
        }
        for (k, v) in &self.env {
            validate_env(&self.name, k, v)?;
            // The allocator would ignore a value it cannot parse, silently.
            settings::check_value(k, v).map_err(|expected| VariantError::BadEnvFormat {
                variant: self.name.clone(),
                name: k.clone(),
                value: v.clone(),
                expected,
            })?;
            // Nor does an allocator read another's variables.
            if let (Some(runs_on), Some(reader)) = (self.family(), settings::reader(k, v))
                && runs_on != reader
            {
                return Err(VariantError::ForeignEnv {
                    variant: self.name.clone(),
                    name: k.clone(),
                    what: if k == "GLIBC_TUNABLES" {
                        format!("{k} with glibc.malloc tunables")
                    } else {
                        k.clone()
                    },
                    reader: reader.name(),
                    runs_on: runs_on.name(),
                });
            }
        }
        Ok(())
    }
}

pub(super) fn validate_name(name: &str) -> Result<(), VariantError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(VariantError::BadName(name.into()))
    }
}

/// The longest `NAME=VALUE` string Linux passes to a new program, its NUL
/// included: `MAX_ARG_STRLEN`, 32 pages of 4 KiB.
pub const MAX_ENV_STRING: usize = 32 * 4096;

fn validate_env(variant: &str, name: &str, value: &str) -> Result<(), VariantError> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(VariantError::BadEnvName {
            variant: variant.into(),
            name: name.into(),
        });
    }
    let reserved = match name {
        "LD_PRELOAD" => Some("preload a library by giving its path as the variant's base"),
        SELECT_ENV => Some("allocbench sets it from the variant's base"),
        "_RJEM_MALLOC_CONF" => {
            Some("write MALLOC_CONF; allocbench passes it to the built-in jemalloc")
        }
        _ => None,
    };
    if let Some(why) = reserved {
        return Err(VariantError::ReservedEnv {
            variant: variant.into(),
            name: name.into(),
            why,
        });
    }
    // Linux refuses to exec with an environment string of 32 pages or more
    // (MAX_ARG_STRLEN), so every cell would fail to start.
    if name.len() + value.len() + 2 > MAX_ENV_STRING {
        return Err(VariantError::EnvTooLong {
            variant: variant.into(),
            name: name.into(),
            bytes: name.len() + value.len() + 1,
        });
    }
    if value.contains('\0') {
        return Err(VariantError::BadEnvValue {
            variant: variant.into(),
            name: name.into(),
        });
    }
    Ok(())
}

/// Parses `NAME=VALUE`.
pub fn parse_env_assignment(s: &str) -> Result<(String, String), VariantError> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(VariantError::BadAssignment(s.into())),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::variant::Catalog;

    #[test]
    fn malformed_values_are_refused_naming_variable_value_and_format() {
        // These were accepted, and glibc, jemalloc, mimalloc or tcmalloc
        // ignored them without a word: the row measured the defaults.
        for (base, name, value, expected) in [
            ("glibc", "MALLOC_ARENA_MAX", "two", "non-negative integer"),
            (
                "glibc",
                "MALLOC_MMAP_THRESHOLD_",
                "128k",
                "non-negative integer",
            ),
            (
                "glibc",
                "GLIBC_TUNABLES",
                "glibc.malloc.arena_max",
                "name=value",
            ),
            (
                "glibc",
                "GLIBC_TUNABLES",
                "glibc.malloc.arena_mx=1",
                "no glibc.malloc.arena_mx",
            ),
            ("jemalloc", "MALLOC_CONF", "narenas=2", "key:value"),
            ("mimalloc", "MIMALLOC_PURGE_DELAY", "soon", "an integer"),
            ("mimalloc", "MIMALLOC_SHOW_STATS", "2", "true, false"),
            (
                "tcmalloc-so",
                "TCMALLOC_RELEASE_RATE",
                "fast",
                "non-negative number",
            ),
        ] {
            let text =
                format!("[variants.v]\nbase = \"{base}\"\nenv = {{ {name} = \"{value}\" }}\n");
            let e = Catalog::default().add_toml(&text).unwrap_err();
            assert!(matches!(e, VariantError::BadEnvFormat { .. }), "{e}");
            let msg = e.to_string();
            for part in ["\"v\"", name, value, expected] {
                assert!(msg.contains(part), "{part:?} not in {msg}");
            }
        }
        let mut c = Catalog::default();
        c.add_toml(
            "[variants.ok]\nbase = \"glibc\"\n\
             env = { MALLOC_ARENA_MAX = \"0x2\", GLIBC_TUNABLES = \"glibc.malloc.trim_threshold=0:glibc.pthread.rseq=0\" }\n",
        )
        .unwrap();
    }

    #[test]
    fn variables_of_another_allocator_family_are_refused() {
        // These ran as rows of the defaults: only another allocator reads them.
        for (base, name, value, reader) in [
            ("tcmalloc-so", "MALLOC_CONF", "narenas:2", "jemalloc"),
            ("glibc", "MIMALLOC_PURGE_DELAY", "0", "mimalloc"),
            ("jemalloc", "MALLOC_ARENA_MAX", "2", "glibc malloc"),
            ("jemalloc-so", "TCMALLOC_RELEASE_RATE", "10", "tcmalloc"),
            (
                "mimalloc",
                "GLIBC_TUNABLES",
                "glibc.malloc.arena_max=1",
                "glibc malloc",
            ),
            (
                "/opt/lib/libtcmalloc.so.4",
                "MALLOC_TOP_PAD_",
                "0",
                "glibc malloc",
            ),
            (
                "/opt/liballocbench_mimalloc.so",
                "MALLOC_CONF",
                "narenas:1",
                "jemalloc",
            ),
        ] {
            let text =
                format!("[variants.v]\nbase = \"{base}\"\nenv = {{ {name} = \"{value}\" }}\n");
            let e = Catalog::default().add_toml(&text).unwrap_err();
            assert!(matches!(e, VariantError::ForeignEnv { .. }), "{base}: {e}");
            let msg = e.to_string();
            for part in ["\"v\"", name, reader, "would ignore it"] {
                assert!(msg.contains(part), "{part:?} not in {msg}");
            }
        }
        // Any program reads the other tunables; a library of unknown family
        // gets no family check.
        let mut c = Catalog::default();
        c.add_toml(
            "[variants.je]\nbase = \"jemalloc\"\nenv = { GLIBC_TUNABLES = \"glibc.pthread.rseq=0\" }\n\
             [variants.any]\nbase = \"/opt/libhoard.so\"\nenv = { MALLOC_CONF = \"narenas:1\", MALLOC_ARENA_MAX = \"1\" }\n",
        )
        .unwrap();
    }

    #[test]
    fn env_assignments_parse() {
        assert_eq!(
            parse_env_assignment("MALLOC_CONF=narenas:2,dirty_decay_ms:0").unwrap(),
            ("MALLOC_CONF".into(), "narenas:2,dirty_decay_ms:0".into())
        );
        assert!(parse_env_assignment("NOEQUALS").is_err());
        assert!(parse_env_assignment("=x").is_err());
    }

    #[test]
    fn an_environment_string_linux_cannot_pass_is_refused() {
        // Accepted, it failed every cell with "Argument list too long".
        let long = "x".repeat(MAX_ENV_STRING);
        let text = format!("[variants.x]\nbase = \"glibc\"\nenv = {{ SOME_VAR = \"{long}\" }}\n");
        let e = Catalog::default().add_toml(&text).unwrap_err();
        assert!(matches!(e, VariantError::EnvTooLong { .. }), "{e}");
        assert!(e.to_string().contains("128 KiB"), "{e}");
    }
}
