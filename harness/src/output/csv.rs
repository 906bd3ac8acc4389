//! CSV with raw numbers: bytes, fractions, requests per second,
//! microseconds. One row per cell.

use super::Exporter;
use crate::results::metric::MetricId;
use crate::results::{Document, Status};

pub struct Csv;

/// The columns that name a cell; the registry's CSV metrics follow.
const ID_COLUMNS: &[&str] = &[
    "workload",
    "variant",
    "prefork",
    "lifecycle",
    "repetition",
    "status",
    "error",
    "allocator",
    "allocator_version",
];

/// The header: the cell's columns, then every metric the registry puts in
/// the CSV, by key.
fn header() -> Vec<&'static str> {
    let metrics = MetricId::csv_columns().map(MetricId::key);
    ID_COLUMNS.iter().copied().chain(metrics).collect()
}

/// CSV text of `header` and `rows`, fields quoted only where they must be
/// (a comma, quote or line break). Every row has as many fields as the
/// header, or this is an error.
pub(crate) fn text<R, F>(
    header: &[&str],
    rows: impl IntoIterator<Item = R>,
) -> anyhow::Result<String>
where
    R: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record(header)?;
    for row in rows {
        w.write_record(row)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// A figure as CSV writes it: empty for `null`.
pub(super) fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

impl Exporter for Csv {
    fn serialize(&self, doc: &Document) -> anyhow::Result<String> {
        let rows = doc.cells.iter().map(|c| {
            let m = c.metrics.as_ref();
            let a = c.allocator.as_ref();
            let mut row = vec![
                c.workload.clone(),
                c.variant.clone(),
                c.prefork.to_string(),
                c.lifecycle.to_string(),
                c.repetition.to_string(),
                match c.status {
                    Status::Ok => "ok".into(),
                    Status::Failed => "failed".into(),
                },
                c.error.clone().unwrap_or_default(),
                opt(a.map(|a| a.name.clone())),
                opt(a.and_then(|a| a.version.clone())),
            ];
            row.extend(MetricId::csv_columns().map(|id| opt(m.and_then(|m| id.get(m)))));
            row
        });
        text(&header(), rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_needed() {
        let t = text(&["a", "b"], [["plain", "a,b"], ["say \"hi\"", "x\ry"]]).unwrap();
        assert_eq!(t, "a,b\nplain,\"a,b\"\n\"say \"\"hi\"\"\",\"x\ry\"\n");
    }

    #[test]
    fn a_row_shorter_than_the_header_is_an_error() {
        assert!(text(&["a", "b"], [["only"]]).is_err());
    }

    #[test]
    fn every_row_has_as_many_fields_as_the_header() {
        let ok =
            crate::results::test_cell("glibc", 2, 2, 0, Default::default(), Default::default());
        let mut failed = ok.clone();
        failed.status = Status::Failed;
        failed.error = Some("worker 1 died: signal 9, \"Killed\"".into());
        failed.metrics = None;
        let mut doc = crate::exec::runner::new_document();
        doc.cells = vec![ok, failed];
        let out = Csv.serialize(&doc).unwrap();
        let mut r = csv::Reader::from_reader(out.as_bytes());
        assert_eq!(r.headers().unwrap().len(), header().len());
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        let error = header().iter().position(|h| *h == "error").unwrap();
        assert_eq!(&rows[1][error], "worker 1 died: signal 9, \"Killed\"");
    }
}
