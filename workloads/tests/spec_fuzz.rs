//! Property tests of the workload spec parser: `WorkloadSpec::overlay_toml`
//! followed by `validate()`, and `PreforkHook::from_str`. Bad input must get
//! an error that names the offending key, never a panic, and a spec that is
//! accepted must hold exactly the values the file gave.

use allocbench_workloads::{PreforkHook, SpecError, WorkloadSpec};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use toml::{Table, Value};

/// The type and accepted range of each spec key, written out here so the
/// test states the contract independently of `validate()`.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Int(i64, i64),
    Share,
    Band,
    Bands,
    Hook,
}

const MAX_OBJECT_SIZE: i64 = 1 << 30;

const FIELDS: &[(&str, Kind)] = &[
    ("processes", Kind::Int(1, 256)),
    ("threads", Kind::Int(1, 1024)),
    ("requests", Kind::Int(1, 1 << 40)),
    ("static_mib", Kind::Int(0, 1 << 20)),
    ("static_small", Kind::Band),
    ("static_large", Kind::Band),
    ("static_large_share", Kind::Share),
    ("static_free_share", Kind::Share),
    ("static_hot_share", Kind::Share),
    ("static_writes_per_request", Kind::Int(0, 1_000_000)),
    ("prefork", Kind::Hook),
    ("seed", Kind::Int(0, i64::MAX)),
    ("objects_per_request", Kind::Int(1, 1_000_000)),
    ("sizes", Kind::Bands),
    ("retain_share", Kind::Share),
    ("retain_max_size", Kind::Int(0, MAX_OBJECT_SIZE)),
    ("cache_objects", Kind::Int(0, 10_000_000)),
];

const HOOKS: [&str; 4] = ["none", "trim", "warmup", "freeze"];

/// Few cases keep the run fast (`PROPTEST_CASES=N` runs more); failures
/// found are kept as the corpus (the default location needs a `src/` beside
/// the test, which tests/ lacks).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/spec_fuzz.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// Overlay on the server preset, then validate: what the CLI does with `--spec`.
fn parse(text: &str) -> Result<WorkloadSpec, SpecError> {
    let spec = WorkloadSpec::server().overlay_toml(text)?;
    spec.validate()?;
    Ok(spec)
}

fn as_table(spec: &WorkloadSpec) -> Table {
    Table::try_from(spec).expect("a spec from TOML serializes back to TOML")
}

// ---- generators -------------------------------------------------------

fn int(lo: i64, hi: i64) -> BoxedStrategy<Value> {
    prop_oneof![Just(lo), Just(hi), lo..=hi]
        .prop_map(Value::Integer)
        .boxed()
}

fn share() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Float(0.0)),
        Just(Value::Float(1.0)),
        (0.0..=1.0f64).prop_map(Value::Float),
        // An integer is a valid spelling of a float in a spec file.
        (0..=1i64).prop_map(Value::Integer),
    ]
    .boxed()
}

/// An in-range band: 16 ≤ min ≤ max ≤ 1 GiB, weight positive, or absent
/// (default 1).
fn band() -> BoxedStrategy<Value> {
    (
        16..=MAX_OBJECT_SIZE,
        0..=MAX_OBJECT_SIZE,
        prop::option::of(1e-6..1e6f64),
    )
        .prop_map(|(a, b, weight)| {
            let (min, max) = (a.min(b.max(16)), a.max(b));
            let mut t = Table::new();
            t.insert("min".into(), Value::Integer(min));
            t.insert("max".into(), Value::Integer(max));
            if let Some(w) = weight {
                t.insert("weight".into(), Value::Float(w));
            }
            Value::Table(t)
        })
        .boxed()
}

fn valid_value(kind: Kind) -> BoxedStrategy<Value> {
    match kind {
        Kind::Int(lo, hi) => int(lo, hi),
        Kind::Share => share(),
        Kind::Band => band(),
        Kind::Bands => vec(band(), 1..4).prop_map(Value::Array).boxed(),
        Kind::Hook => prop::sample::select(&HOOKS[..])
            .prop_map(|h| Value::String(h.into()))
            .boxed(),
    }
}

/// Values of the right type at and just past the edges of the range.
fn edge_value(kind: Kind) -> BoxedStrategy<Value> {
    let floats = || {
        prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            -1e-300,
            1.0 + f64::EPSILON,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            0.0,
        ])
    };
    match kind {
        Kind::Int(lo, hi) => prop::sample::select(vec![
            lo.saturating_sub(1),
            lo,
            hi,
            hi.saturating_add(1),
            -1,
            i64::MIN,
            i64::MAX,
            u32::MAX as i64,
            u32::MAX as i64 + 1,
        ])
        .prop_map(Value::Integer)
        .boxed(),
        Kind::Share => floats().prop_map(Value::Float).boxed(),
        Kind::Band | Kind::Bands => {
            let edge_band = (
                prop::sample::select(vec![-1i64, 0, 15, 16, MAX_OBJECT_SIZE]),
                prop::sample::select(vec![15i64, 16, MAX_OBJECT_SIZE, MAX_OBJECT_SIZE + 1]),
                floats(),
            )
                .prop_map(|(min, max, w)| {
                    let mut t = Table::new();
                    t.insert("min".into(), Value::Integer(min));
                    t.insert("max".into(), Value::Integer(max));
                    t.insert("weight".into(), Value::Float(w));
                    Value::Table(t)
                });
            if matches!(kind, Kind::Band) {
                edge_band.boxed()
            } else {
                // Bands in range but with extreme weights probe the sum of
                // the weights.
                let extreme_weight = (band(), prop::sample::select(vec![f64::MAX, 1e308, 5e-324]))
                    .prop_map(|(b, w)| {
                        let mut t = b.as_table().unwrap().clone();
                        t.insert("weight".into(), Value::Float(w));
                        Value::Table(t)
                    });
                prop_oneof![
                    vec(prop_oneof![edge_band, band()], 0..4),
                    vec(extreme_weight, 1..4),
                ]
                .prop_map(Value::Array)
                .boxed()
            }
        }
        Kind::Hook => {
            let names = prop_oneof![
                Just("".to_string()),
                Just("TRIM".to_string()),
                Just(" trim".to_string()),
                "[a-z]{1,7}",
            ];
            prop_oneof![
                names.prop_map(Value::String),
                // Other types, among them serde's spellings of an enum.
                prop::sample::select(&HOOKS[..]).prop_flat_map(|h| {
                    prop::sample::select(vec![
                        Value::Array(vec![Value::String(h.into())]),
                        Value::Table(
                            [(h.to_string(), Value::Table(Table::new()))]
                                .into_iter()
                                .collect(),
                        ),
                        Value::Table(
                            [(h.to_string(), Value::Array(vec![]))]
                                .into_iter()
                                .collect(),
                        ),
                        Value::Integer(1),
                    ])
                }),
            ]
            .boxed()
        }
    }
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        prop::sample::select(vec!["min", "max", "weight", "trim", "none", "processes"])
            .prop_map(String::from),
        "[a-z_]{0,8}",
        ".{0,4}",
    ]
    .boxed()
}

/// A TOML value of any type, nested up to three levels.
fn any_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Integer),
        prop::sample::select(vec![
            0i64,
            -1,
            1,
            16,
            u32::MAX as i64 + 1,
            1 << 40,
            (1 << 40) + 1,
            i64::MAX,
            i64::MIN,
        ])
        .prop_map(Value::Integer),
        proptest::num::f64::ANY.prop_map(Value::Float),
        prop::sample::select(vec![f64::NAN, f64::INFINITY, -0.0, 0.5, f64::MAX])
            .prop_map(Value::Float),
        ".{0,8}".prop_map(Value::String),
        prop::sample::select(&HOOKS[..]).prop_map(|h| Value::String(h.into())),
        any::<bool>().prop_map(Value::Boolean),
        Just(Value::Datetime("1979-05-27T07:32:00Z".parse().unwrap())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(key(), inner, 0..4).prop_map(|m| Value::Table(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// One key of a generated spec file, and whether its value is in range.
#[derive(Debug, Clone)]
struct Given {
    key: String,
    value: Value,
    in_range: bool,
}

/// A spec file built from the real keys, each absent, in range, at an edge,
/// or of any type; plus unknown keys.
fn spec_file() -> impl Strategy<Value = Vec<Given>> {
    let fields: Vec<BoxedStrategy<Option<Given>>> = FIELDS
        .iter()
        .map(|&(name, kind)| {
            let given = move |in_range| {
                move |value| {
                    Some(Given {
                        key: name.into(),
                        value,
                        in_range,
                    })
                }
            };
            prop_oneof![
                4 => Just(None),
                3 => valid_value(kind).prop_map(given(true)),
                1 => edge_value(kind).prop_map(given(false)),
                1 => any_value().prop_map(given(false)),
            ]
            .boxed()
        })
        .collect();
    let unknown = vec(
        (
            key().prop_filter("unknown keys only", |k| {
                FIELDS.iter().all(|(name, _)| name != k)
            }),
            any_value(),
        ),
        0..2,
    );
    (fields, unknown).prop_map(|(fields, unknown)| {
        let mut given: Vec<Given> = fields.into_iter().flatten().collect();
        for (key, value) in unknown {
            if given.iter().all(|g| g.key != key) {
                given.push(Given {
                    key,
                    value,
                    in_range: false,
                });
            }
        }
        given
    })
}

/// Only in-range values of the real keys.
fn valid_spec_file() -> impl Strategy<Value = Vec<Given>> {
    let fields: Vec<BoxedStrategy<Option<Given>>> = FIELDS
        .iter()
        .map(|&(name, kind)| {
            prop::option::of(valid_value(kind).prop_map(move |value| Given {
                key: name.into(),
                value,
                in_range: true,
            }))
            .boxed()
        })
        .collect();
    fields.prop_map(|f| f.into_iter().flatten().collect())
}

fn to_text(given: &[Given]) -> String {
    let table: Table = given
        .iter()
        .map(|g| (g.key.clone(), g.value.clone()))
        .collect();
    toml::to_string(&table).expect("a TOML table serializes")
}

// ---- oracles ----------------------------------------------------------

/// Whether a value read back from the spec is the value the file gave: the
/// same number (an integer may stand for a float), the same string, and the
/// same members; a band may be written positionally as `[min, max, weight]`
/// and its weight may be left out (default 1).
fn same(given: &Value, got: &Value) -> bool {
    match (given, got) {
        (Value::Integer(a), Value::Integer(b)) => a == b,
        (Value::Integer(a), Value::Float(b)) => *a as f64 == *b,
        (Value::Float(a), Value::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Boolean(a), Value::Boolean(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Table(a), Value::Table(b)) => {
            a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
                && b.iter().all(|(k, w)| {
                    a.contains_key(k) || (k == "weight" && same(&Value::Float(1.0), w))
                })
        }
        (Value::Array(a), Value::Table(_)) => {
            let named: Table = ["min", "max", "weight"]
                .into_iter()
                .zip(a)
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            same(&Value::Table(named), got)
        }
        _ => false,
    }
}

/// Whether an error message names `key`: the TOML layer says "unknown field
/// `key`" or "in `key…`"; `validate()` starts with the field's name.
fn names_key(err: &SpecError, key: &str) -> bool {
    let msg = match err {
        SpecError::File { message, .. } => message.clone(),
        other => other.to_string(),
    };
    msg.contains(&format!("unknown field `{key}`"))
        || msg.contains(&format!("in `{key}`"))
        || msg.contains(&format!("in `{key}."))
        || [" ", ":", "["]
            .iter()
            .any(|end| !key.is_empty() && msg.starts_with(&format!("{key}{end}")))
}

/// The spec file was accepted: every key holds the value given, every other
/// key the preset's, and the spec is usable by the code that reads it.
fn check_accepted(given: &[Given], spec: &WorkloadSpec) -> Result<(), TestCaseError> {
    let got = as_table(spec);
    let base = as_table(&WorkloadSpec::server());
    for g in given {
        let v = got.get(&g.key);
        prop_assert!(
            v.is_some_and(|v| same(&g.value, v)),
            "{} = {} came back as {:?}",
            g.key,
            g.value,
            v
        );
    }
    for (k, v) in &base {
        if given.iter().all(|g| &g.key != k) {
            prop_assert_eq!(got.get(k), Some(v), "{} changed without being given", k);
        }
    }
    let mean = spec.mean_object_size();
    prop_assert!(
        // 16 is the smallest size; the sum of shares may round below 1.
        mean.is_finite() && mean > 15.99,
        "mean object size {mean} of an accepted spec"
    );
    // Must not overflow: the harness checks it against MemAvailable.
    let _ = spec.memory_estimate_bytes();
    Ok(())
}

fn check_spec_file(given: &[Given]) -> Result<(), TestCaseError> {
    let text = to_text(given);
    match parse(&text) {
        Ok(spec) => check_accepted(given, &spec),
        Err(e) => {
            let offending: Vec<&str> = given
                .iter()
                .filter(|g| !g.in_range)
                .map(|g| g.key.as_str())
                .collect();
            prop_assert!(!offending.is_empty(), "in-range spec refused: {e}\n{text}");
            prop_assert!(
                offending.iter().any(|k| names_key(&e, k)),
                "error names none of {offending:?}: {e}\n{text}"
            );
            Ok(())
        }
    }
}

// ---- properties -------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_text_is_refused_or_valid(text in any::<String>()) {
        if let Ok(spec) = parse(&text) {
            prop_assert!(spec.validate().is_ok());
        }
    }

    #[test]
    fn any_bytes_are_refused_or_valid(bytes in vec(any::<u8>(), 0..256)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(spec) = parse(&text) {
            prop_assert!(spec.validate().is_ok());
        }
    }

    /// Text from TOML's alphabet and the real key names reaches past the
    /// tokenizer into the deserializer.
    #[test]
    fn toml_like_text_is_refused_or_valid(
        lines in vec(
            "(processes|threads|sizes|static_small|prefork|retain_share|seed|\\[sizes\\]|\\[\\[sizes\\]\\]|min|max|weight|x)?[ =.]{0,3}[-+0-9.a-z\"'\\[\\]{},=_ ]{0,16}",
            0..6,
        )
    ) {
        let text = lines.join("\n");
        if let Ok(spec) = parse(&text) {
            prop_assert!(spec.validate().is_ok());
        }
    }

    #[test]
    fn generated_spec_files_are_refused_by_name_or_kept_exactly(given in spec_file()) {
        check_spec_file(&given)?;
    }

    #[test]
    fn in_range_spec_files_are_accepted(given in valid_spec_file()) {
        let text = to_text(&given);
        let spec = parse(&text);
        prop_assert!(spec.is_ok(), "in-range spec refused: {:?}\n{}", spec, text);
        check_accepted(&given, &spec.unwrap())?;
    }

    #[test]
    fn hook_parses_only_its_names(s in prop_oneof![
        prop::sample::select(&HOOKS[..]).prop_map(String::from),
        "[a-zA-Z ]{0,8}",
        any::<String>(),
    ]) {
        match s.parse::<PreforkHook>() {
            Ok(h) => prop_assert_eq!(h.name(), s.as_str()),
            Err(e) => {
                prop_assert!(!HOOKS.contains(&s.as_str()));
                prop_assert!(e.to_string().contains(&format!("{s:?}")), "{}", e);
            }
        }
    }
}

#[test]
fn hook_names_round_trip() {
    for h in PreforkHook::ALL {
        assert_eq!(h.to_string().parse::<PreforkHook>(), Ok(h));
        assert_eq!(h.name().parse::<PreforkHook>(), Ok(h));
    }
}
