//! User-defined variants from a TOML variants file, and the catalog of every
//! variant a run knows: looking names up and resolving the variant list.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use super::env::validate_name;
use super::{Base, Variant, VariantError, presets};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantsFile {
    variants: BTreeMap<String, VariantDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantDef {
    base: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    thp_disable: Option<bool>,
    #[serde(default)]
    background_thread_in_workers: Option<bool>,
}

/// Every variant known to a run: the presets, then those of a variants file.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The variants in definition order: presets first.
    pub variants: Vec<Variant>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            variants: presets(),
        }
    }
}

impl Catalog {
    /// The presets plus the variants defined in `text`, read from the TOML
    /// file at `path` (which errors name).
    pub fn with_file_text(path: &Path, text: &str) -> Result<Catalog, VariantError> {
        let mut catalog = Catalog::default();
        catalog.add_toml(text).map_err(|e| match e {
            VariantError::File { message, .. } => VariantError::File {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })?;
        Ok(catalog)
    }

    /// Adds the variants of a variants-file text (`[variants.NAME]` tables
    /// with `base`, `env` and an optional `description`). A variant may be
    /// based on another of the file, wherever that one is defined.
    pub fn add_toml(&mut self, text: &str) -> Result<(), VariantError> {
        let file: VariantsFile = toml::from_str(text).map_err(|e| VariantError::File {
            path: String::new(),
            message: e.to_string(),
        })?;
        let mut pending = file.variants;
        // Names to positions: a file may define many thousands of variants,
        // and a search of the list for each would cost their square.
        let mut index: HashMap<String, usize> = self
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| (v.name.clone(), i))
            .collect();
        let names: Vec<String> = pending.keys().cloned().collect();
        for start in names {
            if !pending.contains_key(&start) {
                continue;
            }
            // Bases first: follow the chain of bases still pending from
            // `start`, then add it from its far end (TOML tables come in
            // name order, not file order). Each variant is on one chain
            // once, so a long chain costs its length, not its square.
            let mut chain = vec![start.clone()];
            let mut on_chain = HashSet::from([start]);
            loop {
                let base = &pending[chain.last().expect("never empty")].base;
                if index.contains_key(base) || !pending.contains_key(base) {
                    break;
                }
                if on_chain.contains(base) {
                    return Err(VariantError::BaseCycle {
                        variant: base.clone(),
                        base: pending[base].base.clone(),
                    });
                }
                on_chain.insert(base.clone());
                chain.push(base.clone());
            }
            for name in chain.into_iter().rev() {
                let def = pending.remove(&name).expect("a pending variant");
                self.add_def(name, def, &mut index)?;
            }
        }
        Ok(())
    }

    fn add_def(
        &mut self,
        name: String,
        def: VariantDef,
        index: &mut HashMap<String, usize>,
    ) -> Result<(), VariantError> {
        if index.contains_key(&name) {
            return Err(VariantError::Duplicate { name });
        }
        validate_name(&name)?;
        let (base, mut env, base_desc, thp, bg) =
            match index.get(&def.base).map(|&i| &self.variants[i]) {
                Some(b) => (
                    b.base.clone(),
                    b.env.clone(),
                    b.name.clone(),
                    b.thp_disable,
                    b.background_thread_in_workers,
                ),
                None if def.base.contains('/') => (
                    Base::Preload {
                        library: def.base.clone(),
                        expect: None,
                        package: None,
                    },
                    BTreeMap::new(),
                    def.base.clone(),
                    false,
                    false,
                ),
                None => {
                    return Err(VariantError::UnknownBase {
                        variant: name,
                        base: def.base,
                        valid: self.names().join(", "),
                    });
                }
            };
        env.extend(def.env);
        let description = def.description.unwrap_or_else(|| {
            let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if pairs.is_empty() {
                base_desc
            } else {
                format!("{base_desc} with {}", pairs.join(" "))
            }
        });
        let v = Variant {
            name,
            base,
            env,
            description,
            thp_disable: def.thp_disable.unwrap_or(thp),
            background_thread_in_workers: def.background_thread_in_workers.unwrap_or(bg),
        };
        v.validate()?;
        index.insert(v.name.clone(), self.variants.len());
        self.variants.push(v);
        Ok(())
    }

    /// The variant of that name, if one is defined.
    pub fn get(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// Every variant's name, in definition order.
    pub fn names(&self) -> Vec<String> {
        self.variants.iter().map(|v| v.name.clone()).collect()
    }

    /// Resolves a comma-separated list of variant names and `.so` paths:
    /// [`Catalog::resolve_each`] of its items.
    pub fn resolve(&self, list: &str) -> Result<Vec<Variant>, VariantError> {
        self.resolve_each(list.split(','))
    }

    /// Resolves variant names and `.so` paths (an item containing `/` is a
    /// preload of that file), trimmed. Each variant is checked: unknown
    /// names, unusable libraries, empty items and an item listed twice are
    /// errors.
    pub fn resolve_each<S: AsRef<str>>(
        &self,
        items: impl IntoIterator<Item = S>,
    ) -> Result<Vec<Variant>, VariantError> {
        let mut out: Vec<Variant> = Vec::new();
        for item in items {
            let item = item.as_ref().trim();
            if item.is_empty() {
                return Err(VariantError::EmptyItem);
            }
            let v = if item.contains('/') {
                Variant {
                    name: item.to_string(),
                    base: Base::Preload {
                        library: item.to_string(),
                        expect: None,
                        package: None,
                    },
                    env: BTreeMap::new(),
                    description: format!("{item} through LD_PRELOAD"),
                    thp_disable: false,
                    background_thread_in_workers: false,
                }
            } else {
                self.get(item)
                    .cloned()
                    .ok_or_else(|| VariantError::Unknown {
                        name: item.into(),
                        valid: self.names().join(", "),
                    })?
            };
            v.availability().map_err(|problem| VariantError::Library {
                variant: v.name.clone(),
                problem,
            })?;
            if out.iter().any(|o| o.name == v.name) {
                return Err(VariantError::ListedTwice { name: v.name });
            }
            out.push(v);
        }
        if out.is_empty() {
            return Err(VariantError::Empty);
        }
        Ok(out)
    }

    /// Every variant that can run here, in catalog order.
    pub fn available(&self) -> Vec<Variant> {
        self.variants
            .iter()
            .filter(|v| v.availability().is_ok())
            .cloned()
            .collect()
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_listed_twice_is_refused_as_such() {
        // It said "defined twice", though it was defined once.
        let e = Catalog::default()
            .resolve("glibc,jemalloc, glibc")
            .unwrap_err();
        assert_eq!(
            e,
            VariantError::ListedTwice {
                name: "glibc".into()
            }
        );
        assert_eq!(e.to_string(), "variant \"glibc\" is listed twice");
    }

    #[test]
    fn an_empty_item_is_refused_like_a_duplicate() {
        // "glibc,,jemalloc" ran, while "glibc,glibc" was refused.
        for list in ["glibc,,jemalloc", "glibc,", ",glibc", " , "] {
            assert_eq!(
                Catalog::default().resolve(list).unwrap_err(),
                VariantError::EmptyItem,
                "{list}"
            );
        }
    }

    #[test]
    fn unknown_variant_lists_valid_ones() {
        let err = Catalog::default().resolve("glibc,nope").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"nope\""), "{msg}");
        assert!(msg.contains("glibc-arena1"), "{msg}");
    }

    #[test]
    fn user_variant_inherits_base_env() {
        let mut c = Catalog::default();
        c.add_toml(
            "[variants.a2t]\nbase = \"glibc-arena2\"\nenv = { GLIBC_TUNABLES = \"glibc.malloc.trim_threshold=0\" }\n",
        )
        .unwrap();
        let v = c.get("a2t").unwrap();
        assert_eq!(v.base, Base::Glibc);
        assert_eq!(v.env.get("MALLOC_ARENA_MAX").unwrap(), "2");
        assert_eq!(v.env.len(), 2);
    }

    #[test]
    fn a_variant_may_be_based_on_one_defined_after_it() {
        // The file's variants used to be added in name order, so `a` based on
        // `b` was refused as an unknown base wherever `b` was defined.
        let mut c = Catalog::default();
        c.add_toml(
            "[variants.b]\nbase = \"glibc-arena1\"\n\
             [variants.a]\nbase = \"b\"\nenv = { GLIBC_TUNABLES = \"glibc.malloc.top_pad=0\" }\n",
        )
        .unwrap();
        let a = c.get("a").unwrap();
        assert_eq!(a.base, Base::Glibc);
        assert_eq!(a.env.get("MALLOC_ARENA_MAX").unwrap(), "1");
        assert_eq!(a.env.len(), 2);
    }

    #[test]
    fn generated_descriptions_list_the_env() {
        // A variant without env used to be described as "jemalloc with ".
        let mut c = Catalog::default();
        c.add_toml(
            "[variants.a1]\nbase = \"glibc-arena1\"\n[variants.plain]\nbase = \"jemalloc\"\n",
        )
        .unwrap();
        assert_eq!(
            c.get("a1").unwrap().description,
            "glibc-arena1 with MALLOC_ARENA_MAX=1"
        );
        assert_eq!(c.get("plain").unwrap().description, "jemalloc");
    }

    #[test]
    fn cycles_of_bases_are_refused() {
        for text in [
            "[variants.x]\nbase = \"x\"\n",
            "[variants.a]\nbase = \"b\"\n[variants.b]\nbase = \"c\"\n[variants.c]\nbase = \"b\"\n",
        ] {
            let e = Catalog::default().add_toml(text).unwrap_err();
            assert!(
                matches!(&e, VariantError::BaseCycle { variant, .. } if variant != "a"),
                "{e}"
            );
            assert!(e.to_string().contains("cycle"), "{e}");
        }
    }

    #[test]
    fn variants_file_errors_name_the_problem() {
        let mut c = Catalog::default();
        let e = c
            .add_toml("[variants.x]\nbase = \"glibc\"\nenv = { \"BAD-NAME\" = \"1\" }\n")
            .unwrap_err();
        assert!(matches!(e, VariantError::BadEnvName { .. }), "{e}");
        let e = c
            .add_toml("[variants.x]\nbase = \"glibc\"\nenv = { MALLOC_ARENA_MAX = 2 }\n")
            .unwrap_err();
        assert!(e.to_string().contains("string"), "{e}");
        let e = c.add_toml("[variants.x]\nbase = \"glibcc\"\n").unwrap_err();
        assert!(matches!(e, VariantError::UnknownBase { .. }), "{e}");
        let e = c
            .add_toml("[variants.x]\nbase = \"glibc\"\nflavour = 1\n")
            .unwrap_err();
        assert!(e.to_string().contains("flavour"), "{e}");
        let e = c
            .add_toml("[variants.glibc]\nbase = \"glibc\"\n")
            .unwrap_err();
        assert!(matches!(e, VariantError::Duplicate { .. }), "{e}");
        let e = c
            .add_toml("[variants.x]\nbase = \"glibc\"\nenv = { LD_PRELOAD = \"/x.so\" }\n")
            .unwrap_err();
        assert!(matches!(e, VariantError::ReservedEnv { .. }), "{e}");
    }

    #[test]
    fn a_long_chain_of_bases_resolves() {
        // 5,000 variants each based on the next took over a minute (each
        // step searched every pending variant for one it could add).
        let n = 5000;
        let mut text = String::new();
        for i in 0..n {
            text.push_str(&format!("[variants.v{i}]\nbase = \"v{}\"\n", i + 1));
        }
        text.push_str(&format!("[variants.v{n}]\nbase = \"glibc-arena1\"\n"));
        let mut c = Catalog::default();
        c.add_toml(&text).unwrap();
        let v0 = c.get("v0").unwrap();
        assert_eq!(v0.env.get("MALLOC_ARENA_MAX").unwrap(), "1");
    }
}
