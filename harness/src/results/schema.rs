//! The JSON Schema of the result document, `docs/result.schema.json`:
//! generated from the types (`schemars`, following their serde attributes,
//! for what they serialize), and every committed document checked against
//! it. Only the tests build it: the allocbench binary has no schemars.
//!
//! `UPDATE_DOCS=1 cargo test -p allocbench --lib schema` rewrites the file.

use std::path::{Path, PathBuf};

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

use super::cow::MappingKind;
use super::metric::MetricId;
use super::phase::PhaseName;
use super::timeline::TimelinePhase;
use super::{Document, FORMAT_VERSION};

/// A phase sample's name is the string `Display` writes.
impl JsonSchema for PhaseName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PhaseName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A phase boundary (`started`, `preloaded`, `forked`, \
                            `steady`, `drained`, `trimmed`), `measure`'s `loaded`, \
                            or an idle sample `idle+<seconds>s`.",
            "type": "string",
            "pattern": "^(started|preloaded|forked|steady|drained|trimmed|loaded\
                        |idle\\+[0-9]+(\\.[0-9]+)?s)$"
        })
    }
}

/// A timeline point's phase is one of the names `TimelinePhase` writes.
impl JsonSchema for TimelinePhase {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TimelinePhase".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = TimelinePhase::ALL.iter().map(|p| p.as_str()).collect();
        json_schema!({
            "description": "What the cell (or the measured command) was doing at the point: \
                            on the way to a workload boundary (named by it), `idle`, \
                            `exit`, or `measure`'s `starting` and `loading`.",
            "type": "string",
            "enum": names
        })
    }
}

/// The schema of [`Document`], for what allocbench writes: every field it
/// always writes is required, and no object takes a key its type lacks.
pub fn schema() -> Schema {
    let mut generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    // Maps' keys, which schemars leaves free: the mapping kinds, the phase
    // names (`analysis::metrics` keys `returned` by them) and the keys of
    // the metrics summarised over repetitions (`analysis::stats`).
    let mapping_kind = generator.subschema_for::<MappingKind>();
    let phase_name = generator.subschema_for::<PhaseName>();
    let summarised: Vec<&str> = MetricId::summarised().map(MetricId::key).collect();
    let mut schema = generator.into_root_schema_for::<Document>();
    for (def, field, keys) in [
        ("ProcessSample", "cow_by_mapping", mapping_kind.to_value()),
        ("Metrics", "returned", phase_name.clone().to_value()),
        ("Metrics", "returned_lazyfree", phase_name.to_value()),
        (
            "SummaryRow",
            "metrics",
            json_schema!({ "enum": summarised }).to_value(),
        ),
    ] {
        schema
            .get_mut("$defs")
            .and_then(|d| d.get_mut(def))
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(field))
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("{def} has a map {field}"))
            .insert("propertyNames".into(), keys);
    }
    schema.insert(
        "$comment".into(),
        "Generated from allocbench's types (harness/src/results/schema.rs): \
         `UPDATE_DOCS=1 cargo test -p allocbench --lib schema`. Do not edit."
            .into(),
    );
    // `report` reads this version alone.
    let version = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut("format_version"))
        .and_then(Value::as_object_mut)
        .expect("Document has format_version");
    version.insert("const".into(), FORMAT_VERSION.into());
    schema
}

/// The schema as the committed file holds it: pretty, keys sorted.
pub fn schema_json() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).expect("a schema serializes");
    text.push('\n');
    text
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    use allocbench_workloads::Lifecycle;

    /// Every problem `validator` finds in `doc`, as `instance path: message`.
    fn problems(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for e in validator.iter_errors(doc) {
            explain(&e, &mut out);
        }
        out
    }

    /// `e`, or for a value that matches no alternative of an `anyOf` or
    /// `oneOf` (an `Option`: the type or `null`), the problems of the
    /// alternatives it has the right type for: `/cells/0/metrics: "requests"
    /// is a required property` rather than "not valid under any of the
    /// schemas".
    fn explain(e: &jsonschema::ValidationError, out: &mut Vec<String>) {
        use jsonschema::error::ValidationErrorKind as Kind;
        let wrong_type = |branch: &Vec<jsonschema::ValidationError>| {
            branch.iter().all(|b| {
                matches!(b.kind(), Kind::Type { .. }) && b.instance_path() == e.instance_path()
            })
        };
        if let Kind::AnyOf { context } | Kind::OneOfNotValid { context } = e.kind() {
            let near: Vec<_> = context.iter().filter(|b| !wrong_type(b)).collect();
            if !near.is_empty() {
                for b in near.into_iter().flatten() {
                    explain(b, out);
                }
                return;
            }
        }
        out.push(format!("{}: {e}", e.instance_path()));
    }

    fn validator() -> jsonschema::Validator {
        jsonschema::validator_for(&schema().to_value()).expect("the schema compiles")
    }

    /// The committed result documents: the published ones and the tests'
    /// fixtures.
    fn committed_documents() -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for dir in ["results/json", "harness/tests/fixtures"] {
            for entry in std::fs::read_dir(workspace().join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "json") {
                    paths.push(path);
                }
            }
        }
        paths.sort();
        paths
    }

    fn read(path: &Path) -> Value {
        let text = std::fs::read_to_string(path).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn fixture(name: &str) -> Value {
        read(&workspace().join("harness/tests/fixtures").join(name))
    }

    #[test]
    fn docs_result_schema_json_is_generated_from_the_types() {
        crate::results::check_generated_doc("docs/result.schema.json", &schema_json(), "schema");
    }

    #[test]
    fn every_committed_document_matches_the_schema() {
        let validator = validator();
        let paths = committed_documents();
        // 7 published documents and 2 fixtures when this was written.
        assert!(paths.len() >= 9, "{paths:?}");
        // A thread a file: reading 30 MB of JSON is most of the time.
        let bad: Vec<String> = std::thread::scope(|s| {
            let checks: Vec<_> = paths
                .iter()
                .map(|path| {
                    let validator = &validator;
                    s.spawn(move || {
                        let found = problems(validator, &read(path));
                        found
                            .into_iter()
                            .take(5)
                            .map(|p| format!("{}: {p}", path.display()))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            checks.into_iter().flat_map(|c| c.join().unwrap()).collect()
        });
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    /// The one problem of a document that had one thing changed.
    fn only_problem(doc: &Value) -> String {
        let found = problems(&validator(), doc);
        assert_eq!(found.len(), 1, "{found:#?}");
        found.into_iter().next().unwrap()
    }

    #[test]
    fn a_string_for_a_number_fails_at_its_path() {
        let mut doc = fixture("measure.json");
        doc["cells"][0]["wall_ms"] = "1234.5".into();
        let p = only_problem(&doc);
        assert!(p.starts_with("/cells/0/wall_ms: "), "{p}");
        assert!(p.contains("\"1234.5\" is not of type \"number\""), "{p}");
    }

    #[test]
    fn a_misspelt_key_fails_at_its_object_and_serde_still_reads_it() {
        // A process sample's memory figures are flattened and absent when the
        // sample was missed, so only `additionalProperties` catches this.
        let mut doc = fixture("sweep.json");
        let process = doc["cells"][0]["phases"][1]["processes"][0]
            .as_object_mut()
            .unwrap();
        let v = process.remove("pss_anon").unwrap();
        process.insert("pss_amon".into(), v);
        let p = only_problem(&doc);
        assert!(p.starts_with("/cells/0/phases/1/processes/0: "), "{p}");
        assert!(p.contains("pss_amon"), "{p}");
        assert!(serde_json::from_value::<Document>(doc).is_ok());
        // `schemars(deny_unknown_fields)` is the schema's alone: serde reads
        // a key no type has (a newer document's) as before.
        let mut doc = fixture("sweep.json");
        doc["environment"]["kernal"] = "6.1".into();
        let p = only_problem(&doc);
        assert!(p.starts_with("/environment: "), "{p}");
        assert!(p.contains("kernal"), "{p}");
        assert!(serde_json::from_value::<Document>(doc).is_ok());
    }

    #[test]
    fn a_missing_required_key_fails_at_its_object() {
        let mut doc = fixture("sweep.json");
        doc["cells"][2]["metrics"]
            .as_object_mut()
            .unwrap()
            .remove("requests")
            .unwrap();
        let p = only_problem(&doc);
        assert!(p.starts_with("/cells/2/metrics: "), "{p}");
        assert!(p.contains("\"requests\" is a required property"), "{p}");
    }

    #[test]
    fn a_map_key_of_no_kind_fails_at_its_map() {
        let mut doc = fixture("sweep.json");
        let by = doc["cells"][0]["phases"][3]["processes"][1]["cow_by_mapping"]
            .as_object_mut()
            .unwrap();
        let v = by.remove("stack").unwrap();
        by.insert("stak".into(), v);
        let p = only_problem(&doc);
        assert!(
            p.starts_with("/cells/0/phases/3/processes/1/cow_by_mapping: \"stak\" "),
            "{p}"
        );
        let mut doc = fixture("sweep.json");
        let m = doc["summary"][0]["metrics"].as_object_mut().unwrap();
        let v = m.remove("tree_pss_anon_steady").unwrap();
        m.insert("tree_pss_anon_stedy".into(), v);
        let p = only_problem(&doc);
        assert!(
            p.starts_with("/summary/0/metrics: \"tree_pss_anon_stedy\" "),
            "{p}"
        );
    }

    #[test]
    fn another_format_version_fails() {
        let mut doc = fixture("measure.json");
        doc["format_version"] = (FORMAT_VERSION + 1).into();
        let p = only_problem(&doc);
        assert!(p.starts_with("/format_version: "), "{p}");
    }

    /// `value` checked against the schema's definition `name` alone.
    fn matches(name: &str, value: &str) -> bool {
        let mut schema = schema().to_value();
        let def = schema["$defs"][name].take();
        jsonschema::is_valid(&def, &Value::from(value))
    }

    #[test]
    fn lifecycles_match_as_written_and_only_so() {
        for given in [
            "none",
            "requests=400",
            "requests=400+-40",
            "memory=64M@100ms",
            "memory=1.5GiB@2s",
            "memory=1048577B",
            "refork=50,100,1000",
            "refork=500/2",
        ] {
            let written = serde_json::to_value(given.parse::<Lifecycle>().unwrap()).unwrap();
            let written = written.as_str().unwrap();
            assert!(
                matches("Lifecycle", written),
                "{given} written as {written}"
            );
        }
        for bad in [
            "",
            "None",
            "requests=400+-40",
            "requests=0",
            "memory=64M",
            "memory=64MiB@",
            "refork=",
            "refork=50,",
            "fork=5",
        ] {
            assert!(!matches("Lifecycle", bad), "{bad}");
        }
    }

    #[test]
    fn phase_names_match_as_written_and_only_so() {
        for name in [
            "started",
            "steady",
            "trimmed",
            "loaded",
            "idle+0s",
            "idle+0.1s",
            "idle+30s",
        ] {
            let p: PhaseName = name.parse().unwrap();
            assert!(matches("PhaseName", &p.to_string()), "{name}");
        }
        for bad in ["", "idle", "idle+s", "idle+-1s", "idle+1", "exit", "Steady"] {
            assert!(!matches("PhaseName", bad), "{bad}");
        }
    }
}
