//! Property tests of the variant parsers: `Catalog::add_toml` (variants
//! files), `Catalog::resolve` (`--variants` lists) and `parse_env_assignment`.
//! Bad input gets an error naming the problem, never a panic; an accepted
//! variant launches with exactly the environment it was given.

use std::collections::BTreeMap;

use allocbench_allocators::{
    Base, Catalog, LibraryProblem, Variant, VariantError, parse_env_assignment, presets,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;
use toml::{Table, Value};

/// Few cases unless `PROPTEST_CASES` says more; failures found are kept as
/// the corpus (the default location needs a `src/` beside the test).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/variant_fuzz.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// A real shared library of this machine: the libc this test runs on.
fn real_library() -> String {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("/libc.so"))
        .expect("libc is mapped")
        .to_string()
}

fn preset_names() -> Vec<String> {
    presets().into_iter().map(|v| v.name).collect()
}

// ---- what the rules say, written out independently of the code --------

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
}

fn valid_env_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

const RESERVED: [&str; 3] = ["LD_PRELOAD", "ALLOCBENCH_ALLOCATOR", "_RJEM_MALLOC_CONF"];

/// A number as glibc reads it unambiguously: decimal without leading zeros,
/// or `0x` hexadecimal, within 64 bits.
fn glibc_number(v: &str) -> bool {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => !hex.is_empty() && u64::from_str_radix(hex, 16).is_ok() && !hex.contains('+'),
        None => {
            v.chars().all(|c| c.is_ascii_digit())
                && v.parse::<u64>().is_ok()
                && (v == "0" || !v.starts_with('0'))
        }
    }
}

/// The tunables of this glibc, from the ld.so this test runs under.
fn tunables() -> &'static Vec<String> {
    static LIST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let ld_so = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.contains("/ld-linux"))
            .expect("ld.so is mapped")
            .to_string();
        let out = std::process::Command::new(ld_so)
            .arg("--list-tunables")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(':').next())
            .map(String::from)
            .collect()
    })
}

/// glibc malloc's numeric variables.
const GLIBC: [&str; 7] = [
    "MALLOC_ARENA_MAX",
    "MALLOC_ARENA_TEST",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
    "MALLOC_PERTURB_",
];

/// The allocator that alone reads `name` set to `value`, if any.
fn reader(name: &str, value: &str) -> Option<&'static str> {
    if GLIBC.contains(&name) || name == "MALLOC_CHECK_" {
        Some("glibc")
    } else if name == "GLIBC_TUNABLES" {
        value
            .split(':')
            .any(|p| p.starts_with("glibc.malloc."))
            .then_some("glibc")
    } else if name == "MALLOC_CONF" {
        Some("jemalloc")
    } else if name.to_ascii_uppercase().starts_with("MIMALLOC_") {
        Some("mimalloc")
    } else if name.starts_with("TCMALLOC_") {
        Some("tcmalloc")
    } else {
        None
    }
}

/// The allocator a base runs on, where known. The paths generated here name
/// no allocator.
fn family(base: &Base) -> Option<&str> {
    match base {
        Base::Glibc => Some("glibc"),
        Base::Jemalloc => Some("jemalloc"),
        Base::Mimalloc => Some("mimalloc"),
        Base::Snmalloc => Some("snmalloc"),
        Base::Preload { expect, .. } => expect.as_deref(),
    }
}

/// Whether `value` is well-formed for variable `name` (unknown ones always
/// are).
fn well_formed(name: &str, value: &str) -> bool {
    let key_ok =
        |k: &str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match name {
        n if GLIBC.contains(&n) => glibc_number(value),
        "MALLOC_CONF" => {
            value.is_empty()
                || value.split(',').all(|p| {
                    p.split_once(':')
                        .is_some_and(|(k, v)| key_ok(k) && !v.is_empty())
                })
        }
        "GLIBC_TUNABLES" => {
            value.is_empty()
                || value.split(':').all(|p| match p.split_once('=') {
                    Some((n, v)) => {
                        tunables().iter().any(|t| t == n)
                            && (!n.starts_with("glibc.malloc.") || glibc_number(v))
                    }
                    None => false,
                })
        }
        "TCMALLOC_RELEASE_RATE" => {
            value
                .chars()
                .all(|c| c.is_ascii_digit() || ".eE+-".contains(c))
                && value
                    .parse::<f64>()
                    .is_ok_and(|r| r.is_finite() && r >= 0.0)
        }
        "MIMALLOC_PURGE_DELAY" => {
            let digits = value.strip_prefix('-').unwrap_or(value);
            !digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_digit())
                && value.parse::<i64>().is_ok()
        }
        "MIMALLOC_SHOW_STATS" => ["1", "0", "true", "false", "on", "off", "yes", "no"]
            .contains(&value.to_ascii_lowercase().as_str()),
        _ => true,
    }
}

// ---- generators -------------------------------------------------------

/// Generators take `clean`: only valid items (so that whole files are often
/// accepted), or anything.
fn name(clean: bool) -> BoxedStrategy<String> {
    let valid = "[a-zA-Z0-9._+-]{1,10}";
    if clean {
        return valid.boxed();
    }
    prop_oneof![
        3 => valid,
        1 => prop::sample::select(preset_names()),
        1 => prop::sample::select(vec!["", " x", "a b", "a/b", "a,b", "x\n", "é", "a=b"])
            .prop_map(String::from),
        1 => ".{0,6}",
    ]
    .boxed()
}

/// Where a generated base points: a preset, another variant of the same
/// file (by position), or a literal (unknown names, paths, junk).
#[derive(Debug, Clone)]
enum BaseChoice {
    Preset(String),
    Sibling(Index),
    Literal(String),
}

fn base(clean: bool) -> BoxedStrategy<BaseChoice> {
    let paths = prop_oneof![
        Just(real_library()),
        prop::sample::select(vec!["/nonexistent/libx.so", "./libx.so", "/", "a/"])
            .prop_map(String::from),
    ];
    let literal = if clean {
        paths.boxed()
    } else {
        prop_oneof![
            paths,
            "[a-z-]{0,8}",
            Just("libc.so.6".to_string()),
            ".{0,8}",
        ]
        .boxed()
    };
    prop_oneof![
        3 => prop::sample::select(preset_names()).prop_map(BaseChoice::Preset),
        2 => any::<Index>().prop_map(BaseChoice::Sibling),
        1 => literal.prop_map(BaseChoice::Literal),
    ]
    .boxed()
}

fn env_name(clean: bool) -> BoxedStrategy<String> {
    const KNOWN: [&str; 7] = [
        "MALLOC_CONF",
        "MALLOC_ARENA_MAX",
        "MALLOC_TOP_PAD_",
        "GLIBC_TUNABLES",
        "MIMALLOC_PURGE_DELAY",
        "MIMALLOC_SHOW_STATS",
        "TCMALLOC_RELEASE_RATE",
    ];
    let valid = prop_oneof![
        "[A-Z_][A-Z0-9_]{0,8}",
        prop::sample::select(&KNOWN[..]).prop_map(String::from),
    ];
    if clean {
        return valid.boxed();
    }
    prop_oneof![
        4 => valid,
        1 => prop::sample::select(&RESERVED[..]).prop_map(String::from),
        1 => prop::sample::select(vec!["", "1A", "A-B", "A=B", "A\0", "é", "a b"])
            .prop_map(String::from),
        1 => ".{0,5}",
    ]
    .boxed()
}

fn env_value(clean: bool) -> BoxedStrategy<String> {
    let valid = prop_oneof![
        4 => "[ -~]{0,10}",
        1 => "[^\0]{0,10}",
        1 => prop::sample::select(vec!["", "=", "a=b", "narenas:2,dirty_decay_ms:0"])
            .prop_map(String::from),
        // Values of the known variables, well-formed or nearly so.
        2 => prop::sample::select(vec![
            "2", "0", "0x20000", "010", "-1", "2.5", "on", "yes", "narenas:2", "narenas:",
            "glibc.malloc.arena_max=2", "glibc.malloc.arena_max=x", "glibc.pthread.rseq=0",
            "glibc.malloc.top_pad=0:glibc.malloc.nope=1",
        ])
        .prop_map(String::from),
    ];
    if clean {
        return valid.boxed();
    }
    prop_oneof![
        4 => valid,
        1 => prop::sample::select(vec!["x\0y", "\0"]).prop_map(String::from),
        1 => ".{0,10}",
    ]
    .boxed()
}

/// Something a definition should not have: an unknown key or an env value
/// that is not a string. The key it is under must be named in the error.
#[derive(Debug, Clone)]
enum Flaw {
    UnknownKey(String),
    NonStringEnv(String, Value),
}

fn flaw() -> BoxedStrategy<Flaw> {
    prop_oneof![
        prop::sample::select(vec!["flavour", "Base", "envs", "name"])
            .prop_map(|k| Flaw::UnknownKey(k.into())),
        (
            "[A-Z][A-Z_]{0,6}",
            prop_oneof![
                any::<i64>().prop_map(Value::Integer),
                any::<bool>().prop_map(Value::Boolean),
                Just(Value::Array(vec![])),
                Just(Value::Float(2.5)),
            ]
        )
            .prop_map(|(k, v)| Flaw::NonStringEnv(k, v)),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
struct Def {
    name: String,
    base: String,
    env: BTreeMap<String, String>,
    description: Option<String>,
    flaw: Option<Flaw>,
}

/// The definitions of a variants file, names unique (TOML has no duplicate
/// keys), siblings resolved to names.
fn defs() -> impl Strategy<Value = Vec<Def>> {
    any::<bool>().prop_flat_map(defs_of)
}

fn defs_of(clean: bool) -> impl Strategy<Value = Vec<Def>> {
    let one = (
        name(clean),
        base(clean),
        btree_map(env_name(clean), env_value(clean), 0..3),
        prop::option::of(".{0,12}"),
        prop::option::weighted(0.1, flaw()).prop_map(move |f| f.filter(|_| !clean)),
    );
    vec(one, 1..5).prop_map(|raw| {
        let mut names: Vec<String> = Vec::new();
        for (n, ..) in &raw {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        let mut defs: Vec<Def> = Vec::new();
        for (name, base, env, description, flaw) in raw {
            if defs.iter().any(|d| d.name == name) {
                continue;
            }
            let base = match base {
                BaseChoice::Preset(p) => p,
                BaseChoice::Sibling(i) => i.get(&names).clone(),
                BaseChoice::Literal(l) => l,
            };
            defs.push(Def {
                name,
                base,
                env,
                description,
                flaw,
            });
        }
        defs
    })
}

fn to_text(defs: &[Def]) -> String {
    let mut variants = Table::new();
    for d in defs {
        let mut t = Table::new();
        t.insert("base".into(), Value::String(d.base.clone()));
        let mut env: Table = d
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        if let Some(desc) = &d.description {
            t.insert("description".into(), Value::String(desc.clone()));
        }
        match &d.flaw {
            Some(Flaw::UnknownKey(k)) => {
                t.insert(k.clone(), Value::Integer(1));
            }
            Some(Flaw::NonStringEnv(k, v)) => {
                env.insert(k.clone(), v.clone());
            }
            None => {}
        }
        if !env.is_empty() || d.flaw.is_none() {
            t.insert("env".into(), Value::Table(env));
        }
        variants.insert(d.name.clone(), Value::Table(t));
    }
    let mut file = Table::new();
    file.insert("variants".into(), Value::Table(variants));
    toml::to_string(&file).expect("a TOML table serializes")
}

// ---- the model --------------------------------------------------------

/// A problem the file has, as the error should name it.
#[derive(Debug, Clone, PartialEq)]
enum Problem {
    Duplicate(String),
    BadName(String),
    UnknownBase(String, String),
    Cycle(String),
    BadEnvName(String, String),
    ReservedEnv(String, String),
    BadEnvValue(String, String),
    BadEnvFormat(String, String),
    ForeignEnv(String, String),
    /// A TOML-level error that must name this key.
    File(String),
}

/// What a file's variant should become: its base and its whole environment.
#[derive(Debug)]
struct Expected {
    base: Base,
    env: BTreeMap<String, String>,
}

/// Every problem of the file, and what each variant becomes if there is none.
fn model(defs: &[Def]) -> (Vec<Problem>, BTreeMap<String, Expected>) {
    let presets: BTreeMap<String, Variant> =
        presets().into_iter().map(|v| (v.name.clone(), v)).collect();
    let mut problems = Vec::new();
    for d in defs {
        if presets.contains_key(&d.name) {
            problems.push(Problem::Duplicate(d.name.clone()));
        }
        if !valid_name(&d.name) {
            problems.push(Problem::BadName(d.name.clone()));
        }
        for (k, v) in &d.env {
            if !valid_env_name(k) {
                problems.push(Problem::BadEnvName(d.name.clone(), k.clone()));
            } else if RESERVED.contains(&k.as_str()) {
                problems.push(Problem::ReservedEnv(d.name.clone(), k.clone()));
            } else if v.contains('\0') {
                problems.push(Problem::BadEnvValue(d.name.clone(), k.clone()));
            } else if !well_formed(k, v) {
                problems.push(Problem::BadEnvFormat(d.name.clone(), k.clone()));
            }
        }
        match &d.flaw {
            Some(Flaw::UnknownKey(k)) => problems.push(Problem::File(k.clone())),
            Some(Flaw::NonStringEnv(k, _)) => problems.push(Problem::File(k.clone())),
            None => {}
        }
    }
    let by_name: BTreeMap<&str, &Def> = defs.iter().map(|d| (d.name.as_str(), d)).collect();
    let mut expected = BTreeMap::new();
    for d in defs {
        // Follow the chain of bases down to a preset or a path. A preset
        // comes first: it is there before any variant of the file.
        let mut chain = vec![d];
        let root = loop {
            let last = chain.last().unwrap();
            if let Some(p) = presets.get(&last.base) {
                break Some((p.base.clone(), p.env.clone()));
            } else if let Some(sibling) = by_name.get(last.base.as_str()) {
                if chain.iter().any(|c| c.name == sibling.name) {
                    problems.push(Problem::Cycle(sibling.name.clone()));
                    break None;
                }
                chain.push(sibling);
            } else if last.base.contains('/') {
                let library = last.base.clone();
                let base = Base::Preload {
                    library,
                    expect: None,
                    package: None,
                };
                break Some((base, BTreeMap::new()));
            } else {
                problems.push(Problem::UnknownBase(last.name.clone(), last.base.clone()));
                break None;
            }
        };
        if let Some((base, _)) = &root
            && let Some(runs_on) = family(base)
        {
            for (k, v) in &d.env {
                if reader(k, v).is_some_and(|r| r != runs_on) {
                    problems.push(Problem::ForeignEnv(d.name.clone(), k.clone()));
                }
            }
        }
        if let Some((base, mut env)) = root {
            for c in chain.iter().rev() {
                env.extend(c.env.clone());
            }
            expected.insert(d.name.clone(), Expected { base, env });
        }
    }
    (problems, expected)
}

/// Whether the error is one of the file's problems, naming its variant and
/// the offending name.
fn is_one_of(err: &VariantError, problems: &[Problem]) -> bool {
    problems.iter().any(|p| match (p, err) {
        (Problem::Duplicate(n), VariantError::Duplicate { name }) => n == name,
        (Problem::BadName(n), VariantError::BadName(name)) => n == name,
        (Problem::UnknownBase(v, b), VariantError::UnknownBase { variant, base, .. }) => {
            v == variant && b == base
        }
        (Problem::Cycle(v), VariantError::BaseCycle { variant, .. }) => v == variant,
        (Problem::BadEnvName(v, k), VariantError::BadEnvName { variant, name }) => {
            v == variant && k == name
        }
        (Problem::ReservedEnv(v, k), VariantError::ReservedEnv { variant, name, .. }) => {
            v == variant && k == name
        }
        (Problem::BadEnvValue(v, k), VariantError::BadEnvValue { variant, name }) => {
            v == variant && k == name
        }
        (Problem::BadEnvFormat(v, k), VariantError::BadEnvFormat { variant, name, .. }) => {
            v == variant && k == name
        }
        (Problem::ForeignEnv(v, k), VariantError::ForeignEnv { variant, name, .. }) => {
            v == variant && k == name
        }
        (Problem::File(k), VariantError::File { message, .. }) => message.contains(k.as_str()),
        _ => false,
    })
}

/// The variant is what its definition says, and launches with exactly its
/// environment (MALLOC_CONF passed on as _RJEM_MALLOC_CONF for the
/// built-in jemalloc).
fn check_variant(v: &Variant, want: &Expected) -> Result<(), TestCaseError> {
    prop_assert_eq!(&v.base, &want.base);
    prop_assert_eq!(&v.env, &want.env);
    let launch = match v.launch() {
        Ok(l) => l,
        Err(VariantError::Library { variant, .. }) => {
            // Only a library that is not there or not usable here.
            prop_assert!(matches!(v.base, Base::Preload { .. }), "{}", v.name);
            prop_assert_eq!(&variant, &v.name);
            return Ok(());
        }
        Err(e) => return Err(TestCaseError::fail(format!("{}: {e}", v.name))),
    };
    let mut set = BTreeMap::new();
    for (k, val) in &launch.set {
        prop_assert!(
            set.insert(k.clone(), val.clone()).is_none(),
            "{} set twice in {:?}",
            k,
            launch.set
        );
    }
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    let selection = match want.base {
        Base::Jemalloc => "jemalloc",
        Base::Mimalloc => "mimalloc",
        Base::Snmalloc => "snmalloc",
        _ => "system",
    };
    expected.insert("ALLOCBENCH_ALLOCATOR".into(), selection.into());
    if let Base::Preload { .. } = &want.base {
        let path = v.preload_path().unwrap().unwrap();
        expected.insert("LD_PRELOAD".into(), path.display().to_string());
    }
    for (k, val) in &want.env {
        let k = match (&want.base, k.as_str()) {
            (Base::Jemalloc, "MALLOC_CONF") => "_RJEM_MALLOC_CONF".to_string(),
            _ => k.clone(),
        };
        expected.insert(k, val.clone());
    }
    // Flags inherited from a preset base (jemalloc-bg-workers) add their own.
    if v.thp_disable {
        expected.insert(allocbench_allocators::THP_DISABLE_ENV.into(), "1".into());
    }
    if v.background_thread_in_workers {
        expected.insert(
            allocbench_allocators::WORKER_BACKGROUND_THREAD_ENV.into(),
            "1".into(),
        );
    }
    prop_assert_eq!(set, expected);
    Ok(())
}

fn check_file(defs: &[Def]) -> Result<(), TestCaseError> {
    let text = to_text(defs);
    let (problems, expected) = model(defs);
    let mut catalog = Catalog::default();
    match catalog.add_toml(&text) {
        Err(e) => {
            prop_assert!(!problems.is_empty(), "valid file refused: {e}\n{text}");
            prop_assert!(
                is_one_of(&e, &problems),
                "{e:?} is none of {problems:?}\n{text}"
            );
        }
        Ok(()) => {
            prop_assert!(problems.is_empty(), "{problems:?} accepted\n{text}");
            prop_assert_eq!(catalog.variants.len(), presets().len() + defs.len());
            for d in defs {
                let v = catalog.get(&d.name).expect("every variant is added");
                match &d.description {
                    Some(desc) => prop_assert_eq!(&v.description, desc),
                    None => prop_assert!(
                        !v.description.is_empty() && !v.description.ends_with(" with "),
                        "generated description {:?}",
                        v.description
                    ),
                }
                check_variant(v, &expected[&d.name])?;
            }
        }
    }
    Ok(())
}

// ---- properties -------------------------------------------------------

fn parsers_survive(text: &str) {
    let mut catalog = Catalog::default();
    if catalog.add_toml(text).is_ok() {
        for v in &catalog.variants {
            let _ = v.launch();
        }
    }
    let _ = catalog.resolve(text);
    let _ = parse_env_assignment(text);
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_text_is_survived(text in any::<String>()) {
        parsers_survive(&text);
    }

    #[test]
    fn any_bytes_are_survived(bytes in vec(any::<u8>(), 0..256)) {
        parsers_survive(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn toml_like_text_is_survived(
        lines in vec(
            "(\\[variants\\.[a-z\"./ -]{0,6}\\]|base|env|description|MALLOC_CONF)?[ =.]{0,3}[-a-z0-9\"'/{}=_, ]{0,16}",
            0..6,
        )
    ) {
        parsers_survive(&lines.join("\n"));
    }

    #[test]
    fn variants_files_are_refused_by_name_or_launch_as_given(defs in defs()) {
        check_file(&defs)?;
    }

    #[test]
    fn env_assignments_split_at_the_first_equals(
        k in "[^=]{1,12}",
        v in prop_oneof![".{0,12}", "[=a]{0,6}"],
    ) {
        prop_assert_eq!(
            parse_env_assignment(&format!("{k}={v}")),
            Ok((k.clone(), v.clone()))
        );
    }

    #[test]
    fn env_assignments_without_a_name_are_refused(
        s in prop_oneof!["[^=]{0,12}", "=.{0,12}"],
    ) {
        let r = parse_env_assignment(&s);
        prop_assert_eq!(r, Err(VariantError::BadAssignment(s.clone())));
    }

    #[test]
    fn variant_lists_resolve_in_order_or_name_the_bad_item(
        items in vec(
            prop_oneof![
                3 => prop::sample::select(preset_names()),
                1 => "[a-z-]{0,8}",
                1 => prop::sample::select(vec!["/nonexistent/libx.so", "/", "./x.so", " "])
                    .prop_map(String::from),
                1 => Just(real_library()),
                1 => ".{0,6}",
            ],
            0..5,
        ),
        spaces in vec(prop::sample::select(vec!["", " ", "\t", " ,"]), 5),
    ) {
        let list: String = items
            .iter()
            .zip(spaces.iter().cycle())
            .map(|(item, sp)| format!("{sp}{item}{sp}"))
            .collect::<Vec<_>>()
            .join(",");
        let catalog = Catalog::default();
        let wanted: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        match catalog.resolve(&list) {
            Ok(vs) => {
                prop_assert!(list.split(',').all(|s| !s.trim().is_empty()), "{list:?}");
                let names: Vec<&str> = vs.iter().map(|v| v.name.as_str()).collect();
                prop_assert_eq!(&names, &wanted);
                for v in &vs {
                    prop_assert!(v.availability().is_ok());
                    prop_assert!(v.launch().is_ok(), "{}", v.name);
                }
            }
            Err(VariantError::Empty) => prop_assert!(wanted.is_empty()),
            // An empty item is a mistake in the list, refused as such.
            Err(VariantError::EmptyItem) => {
                prop_assert!(list.split(',').any(|s| s.trim().is_empty()));
            }
            Err(VariantError::Unknown { name, .. }) => {
                prop_assert!(wanted.contains(&name.as_str()) && catalog.get(&name).is_none());
                prop_assert!(!name.contains('/'));
            }
            Err(VariantError::ListedTwice { name }) => {
                prop_assert!(wanted.iter().filter(|w| **w == name).count() > 1);
            }
            Err(VariantError::Library { variant, problem }) => {
                prop_assert!(wanted.contains(&variant.as_str()));
                let unavailable = match catalog.get(&variant) {
                    Some(v) => v.availability().is_err(),
                    None => variant.contains('/'),
                };
                prop_assert!(unavailable, "{}: {}", variant, problem);
                if variant == "/nonexistent/libx.so" {
                    let missing = matches!(problem, LibraryProblem::Missing { .. });
                    prop_assert!(missing, "{}", problem);
                }
            }
            Err(e) => prop_assert!(false, "unexpected error {e:?} for {list:?}"),
        }
    }
}
