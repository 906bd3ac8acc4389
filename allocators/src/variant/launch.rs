//! The environment a process is launched with under a variant: for
//! allocbench's own workload, or for another program (`allocbench measure`).

use std::path::Path;

use super::{
    Base, FAULT_ENV, LibraryProblem, THP_DISABLE_ENV, Variant, VariantError,
    WORKER_BACKGROUND_THREAD_ENV,
};
use crate::dispatch::{SELECT_ENV, Selection};

/// The workspace's preload library of the built-in (prefixed) jemalloc.
const JEMALLOC_LIBRARY: &str = "liballocbench_jemalloc.so";

impl Variant {
    /// Whether the variant's jemalloc is the prefixed build, which reads
    /// `_RJEM_MALLOC_CONF`: the built-in one, or the workspace's library
    /// that carries it.
    fn prefixed_jemalloc(&self) -> bool {
        match &self.base {
            Base::Jemalloc => true,
            Base::Preload { library, .. } => library.rsplit('/').next() == Some(JEMALLOC_LIBRARY),
            _ => false,
        }
    }

    /// The environment to launch a process under this variant with.
    pub fn launch(&self) -> Result<Launch, VariantError> {
        let mut set = Vec::new();
        let selection = match self.base {
            Base::Jemalloc => Selection::Jemalloc,
            Base::Mimalloc => Selection::Mimalloc,
            Base::Snmalloc => Selection::Snmalloc,
            _ => Selection::System,
        };
        set.push((SELECT_ENV.to_string(), selection.env_value().to_string()));
        if let Some(path) = self
            .preload_path()
            .map_err(|problem| VariantError::Library {
                variant: self.name.clone(),
                problem,
            })?
        {
            set.push(("LD_PRELOAD".into(), path.to_string_lossy().into_owned()));
        }
        for (k, v) in &self.env {
            // The built-in jemalloc is prefixed: it reads _RJEM_MALLOC_CONF.
            let key = if self.prefixed_jemalloc() && k == "MALLOC_CONF" {
                "_RJEM_MALLOC_CONF".to_string()
            } else {
                k.clone()
            };
            set.push((key, v.clone()));
        }
        if self.thp_disable {
            set.push((THP_DISABLE_ENV.into(), "1".into()));
        }
        if self.background_thread_in_workers {
            set.push((WORKER_BACKGROUND_THREAD_ENV.into(), "1".into()));
        }
        Ok(Launch { set })
    }

    /// The file name of the preload library that carries a built-in
    /// allocator into any program (built by the workspace's `preload/`
    /// crates next to the `allocbench` executable); `None` for other bases.
    pub fn builtin_preload_file(&self) -> Option<&'static str> {
        match self.base {
            Base::Jemalloc => Some(JEMALLOC_LIBRARY),
            Base::Mimalloc => Some("liballocbench_mimalloc.so"),
            Base::Snmalloc => Some("liballocbench_snmalloc.so"),
            _ => None,
        }
    }

    /// The environment to launch *another program* under this variant
    /// (`allocbench measure`): a built-in allocator comes in through its
    /// preload library, `builtin_library` (see
    /// [`Variant::builtin_preload_file`]), since a foreign program has no
    /// `DispatchAlloc` to select it. `MALLOC_CONF` becomes
    /// `_RJEM_MALLOC_CONF` for the jemalloc library, which is prefixed like
    /// the built-in. The variables only allocbench's own workload reads
    /// ([`THP_DISABLE_ENV`], …) are left out: the caller applies what it can.
    pub fn launch_program(&self, builtin_library: Option<&Path>) -> Result<Launch, VariantError> {
        let library = match (&self.base, self.builtin_preload_file()) {
            (_, Some(file)) => Some(builtin_library.map(Path::to_path_buf).ok_or_else(|| {
                VariantError::Library {
                    variant: self.name.clone(),
                    problem: LibraryProblem::Missing { path: file.into() },
                }
            })?),
            _ => self
                .preload_path()
                .map_err(|problem| VariantError::Library {
                    variant: self.name.clone(),
                    problem,
                })?,
        };
        let mut set = Vec::new();
        if let Some(path) = library {
            set.push(("LD_PRELOAD".into(), path.to_string_lossy().into_owned()));
        }
        for (k, v) in &self.env {
            let key = if self.prefixed_jemalloc() && k == "MALLOC_CONF" {
                "_RJEM_MALLOC_CONF".to_string()
            } else {
                k.clone()
            };
            set.push((key, v.clone()));
        }
        Ok(Launch { set })
    }
}

/// The environment of a process launched under a variant: variables to set,
/// after removing every allocator variable the parent had (see
/// [`is_allocator_env`]) so that the user's shell does not leak into a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The variables to set, in order, as (name, value).
    pub set: Vec<(String, String)>,
}

impl Launch {
    /// Applies the launch environment to a command.
    pub fn apply(&self, cmd: &mut std::process::Command) {
        for (k, _) in std::env::vars_os() {
            if let Some(k) = k.to_str()
                && is_allocator_env(k)
            {
                cmd.env_remove(k);
            }
        }
        for (k, v) in &self.set {
            cmd.env(k, v);
        }
    }
}

/// Environment variables that tune or replace an allocator, or that
/// allocbench's own workload reads; a launched process gets only those its
/// variant sets.
pub fn is_allocator_env(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "LD_PRELOAD",
        "GLIBC_TUNABLES",
        SELECT_ENV,
        THP_DISABLE_ENV,
        WORKER_BACKGROUND_THREAD_ENV,
        FAULT_ENV,
    ];
    const PREFIXES: &[&str] = &["MALLOC_", "_RJEM_", "MIMALLOC_", "TCMALLOC_", "JE_MALLOC"];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Family;
    use crate::variant::Catalog;
    use crate::variant::library::resolve_library;

    #[test]
    fn builtin_jemalloc_gets_prefixed_malloc_conf() {
        let mut c = Catalog::default();
        c.add_toml("[variants.je2]\nbase = \"jemalloc\"\nenv = { MALLOC_CONF = \"narenas:2\" }\n")
            .unwrap();
        let l = c.get("je2").unwrap().launch().unwrap();
        assert!(
            l.set
                .contains(&("_RJEM_MALLOC_CONF".into(), "narenas:2".into()))
        );
        assert!(
            l.set
                .contains(&("ALLOCBENCH_ALLOCATOR".into(), "jemalloc".into()))
        );
        assert!(!l.set.iter().any(|(k, _)| k == "MALLOC_CONF"));
    }

    #[test]
    fn a_program_gets_builtin_allocators_through_their_preload_library() {
        let mut c = Catalog::default();
        c.add_toml("[variants.je2]\nbase = \"jemalloc\"\nenv = { MALLOC_CONF = \"narenas:2\" }\n")
            .unwrap();
        let lib = Path::new("/opt/ab/liballocbench_jemalloc.so");
        let l = c.get("je2").unwrap().launch_program(Some(lib)).unwrap();
        assert_eq!(
            l.set,
            vec![
                ("LD_PRELOAD".into(), lib.display().to_string()),
                ("_RJEM_MALLOC_CONF".into(), "narenas:2".into()),
            ]
        );
        let e = c.get("mimalloc").unwrap().launch_program(None).unwrap_err();
        assert!(e.to_string().contains("liballocbench_mimalloc.so"), "{e}");
        // glibc: its variables only, no allocator selection.
        let l = c.get("glibc-arena2").unwrap().launch_program(None).unwrap();
        assert_eq!(l.set, vec![("MALLOC_ARENA_MAX".into(), "2".into())]);
    }

    #[test]
    fn the_workspace_jemalloc_library_gets_a_prefixed_malloc_conf() {
        // It is the prefixed build: MALLOC_CONF never reached it.
        let mut c = Catalog::default();
        c.add_toml(
            "[variants.je]\nbase = \"/opt/ab/liballocbench_jemalloc.so\"\nenv = { MALLOC_CONF = \"narenas:2\" }\n",
        )
        .unwrap();
        let v = c.get("je").unwrap();
        assert_eq!(v.family(), Some(Family::Jemalloc));
        let dir = std::env::temp_dir().join(format!("allocbench-prefixed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lib = dir.join("liballocbench_jemalloc.so");
        std::fs::copy(resolve_library("libc.so.6", None).unwrap(), &lib).unwrap();
        let v = Variant {
            base: Base::Preload {
                library: lib.display().to_string(),
                expect: None,
                package: None,
            },
            ..v.clone()
        };
        for set in [v.launch().unwrap().set, v.launch_program(None).unwrap().set] {
            assert!(
                set.contains(&("_RJEM_MALLOC_CONF".into(), "narenas:2".into())),
                "{set:?}"
            );
            assert!(!set.iter().any(|(k, _)| k == "MALLOC_CONF"), "{set:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn allocator_env_is_recognised() {
        for k in [
            "LD_PRELOAD",
            "MALLOC_ARENA_MAX",
            "MALLOC_CONF",
            "_RJEM_MALLOC_CONF",
            "GLIBC_TUNABLES",
            "MIMALLOC_PURGE_DELAY",
            "TCMALLOC_RELEASE_RATE",
            // It leaked from the user's shell into every cell.
            "ALLOCBENCH_FAULT",
        ] {
            assert!(is_allocator_env(k), "{k}");
        }
        assert!(!is_allocator_env("PATH"));
    }
}
