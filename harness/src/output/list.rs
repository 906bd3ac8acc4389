//! `allocbench list`: workloads and variants, and which variants can run here.

use allocbench_allocators::{Catalog, Variant};
use allocbench_workloads::workloads;
use serde::Serialize;

use crate::output::{Markup, Table, render};

#[derive(Serialize)]
struct VariantEntry<'a> {
    #[serde(flatten)]
    variant: &'a Variant,
    kind: &'static str,
    available: bool,
    /// Why the variant can't run here.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The library file a preload variant would use.
    #[serde(skip_serializing_if = "Option::is_none")]
    library: Option<String>,
}

#[derive(Serialize)]
struct WorkloadEntry {
    name: &'static str,
    description: &'static str,
    spec: allocbench_workloads::WorkloadSpec,
    quick: allocbench_workloads::WorkloadSpec,
}

/// `list --format json`.
#[derive(Serialize)]
struct ListDocument<'a> {
    allocbench_version: &'static str,
    /// The version of allocbench's output layouts (as in result documents).
    format_version: u32,
    workloads: Vec<WorkloadEntry>,
    variants: Vec<VariantEntry<'a>>,
}

fn entries(catalog: &Catalog) -> Vec<VariantEntry<'_>> {
    catalog
        .variants
        .iter()
        .map(|v| {
            let path = v.preload_path();
            VariantEntry {
                variant: v,
                kind: v.kind(),
                available: path.is_ok(),
                reason: path.as_ref().err().map(|e| e.to_string()),
                library: path.ok().flatten().map(|p| p.display().to_string()),
            }
        })
        .collect()
}

pub fn json(catalog: &Catalog) -> anyhow::Result<String> {
    let w: Vec<WorkloadEntry> = workloads()
        .into_iter()
        .map(|w| WorkloadEntry {
            name: w.name,
            description: w.description,
            spec: w.spec,
            quick: w.quick,
        })
        .collect();
    let doc = ListDocument {
        allocbench_version: env!("CARGO_PKG_VERSION"),
        format_version: crate::results::FORMAT_VERSION,
        workloads: w,
        variants: entries(catalog),
    };
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}

pub fn table(catalog: &Catalog) -> String {
    let mut out = String::from("Workloads:\n");
    let mut t = Table::new(&[("name", false), ("description", false)]);
    for w in workloads() {
        t.push(vec![w.name.into(), w.description.into()]);
    }
    out.push_str(&render(&t, Markup::Terminal));
    out.push_str("\nVariants:\n");
    let mut t = Table::new(&[
        ("name", false),
        ("kind", false),
        ("available", false),
        ("environment", false),
        ("description", false),
    ]);
    for e in entries(catalog) {
        let mut env: Vec<String> = e
            .variant
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if e.variant.thp_disable {
            env.push("thp_disable (prctl)".into());
        }
        let available = match (&e.reason, &e.library) {
            (Some(r), _) => format!("no: {r}"),
            (None, Some(lib)) => format!("yes ({lib})"),
            (None, None) => "yes".into(),
        };
        t.push(vec![
            e.variant.name.clone(),
            e.kind.into(),
            available,
            env.join(" "),
            e.variant.description.clone(),
        ]);
    }
    out.push_str(&render(&t, Markup::Terminal));
    out
}
