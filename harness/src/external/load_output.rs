//! What a load command printed, read as figures: requests per second and
//! the latency median and 99th percentile in milliseconds, from the
//! summaries of wrk, oha (text or `--json`), hey, ApacheBench and k6, or
//! from any output with `--load-metric REGEX`. A figure the tool does not
//! print stays `None`: nothing is derived (wrk without `--latency` prints
//! no percentile, k6 prints `p(99)` only when asked). No input panics:
//! partial lines, unknown units and non-finite numbers give `None`.

use regex::Regex;

use crate::results::Millis;

/// The tool whose output the figures come from, for `--load-metric`.
pub const METRIC_TOOL: &str = "--load-metric";

/// Figures read from a load command's output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadFigures {
    /// `wrk`, `oha`, `hey`, `ab`, `k6` or `--load-metric`; `None` when the
    /// output was not recognised.
    pub tool: Option<&'static str>,
    pub rps: Option<f64>,
    pub p50_ms: Option<Millis>,
    pub p99_ms: Option<Millis>,
    /// The line the requests per second were read from, spaces squeezed.
    pub line: Option<String>,
    /// Why there is no requests-per-second figure, when there is none.
    pub note: Option<String>,
}

/// Reads `lines` (a load command's stdout) with `metric` when given, else
/// as the first tool whose summary they hold.
pub fn read(lines: &[String], metric: Option<&Regex>) -> LoadFigures {
    let mut f = match metric {
        Some(re) => by_metric(lines, re),
        None => oha_json(lines)
            .or_else(|| k6(lines))
            .or_else(|| ab(lines))
            .or_else(|| oha_or_hey(lines))
            .or_else(|| wrk(lines))
            .unwrap_or_default(),
    };
    if f.rps.is_none() {
        f.note = Some(match (metric, f.tool) {
            (Some(re), _) => format!(
                "--load-metric {re}: no line of the load command's output matched it with a \
                 number"
            ),
            (None, Some(tool)) => format!("{tool}'s output gave no requests per second"),
            (None, None) => "load output not recognised (wrk, oha, hey, ab and k6 are read): \
                             give --load-metric REGEX"
                .into(),
        });
    }
    f
}

fn squeeze(l: &str) -> String {
    l.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A finite, non-negative number; thousands separators (`,`) allowed.
fn number(s: &str) -> Option<f64> {
    let s = s.trim().replace(',', "");
    s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// Milliseconds in one of `unit`.
fn unit_ms(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1e-6,
        "us" | "µs" | "μs" => 1e-3,
        "ms" => 1.0,
        "s" | "sec" | "secs" => 1e3,
        "m" | "min" => 60e3,
        "h" => 3600e3,
        _ => return None,
    })
}

/// A duration in milliseconds: `806.00us`, `1.87ms`, `0s`, or Go's compound
/// `1m2.5s` as k6 prints it.
fn duration_ms(s: &str) -> Option<Millis> {
    let s = s.trim();
    let mut total = 0.0;
    let mut rest = s;
    let mut parts = 0;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let u_end = rest[n_end..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .map_or(rest.len(), |i| n_end + i);
        total += number(&rest[..n_end])? * unit_ms(&rest[n_end..u_end])?;
        rest = &rest[u_end..];
        parts += 1;
    }
    (parts > 0 && total.is_finite()).then_some(total)
}

/// `<pct>% …`: the percentage and what follows it, for the percentile
/// tables of wrk, ab, oha and hey.
fn percentile_line(l: &str) -> Option<(f64, &str)> {
    let (pct, rest) = l.trim().split_once('%')?;
    Some((number(pct)?, rest.trim()))
}

/// The values of the 50th and 99th percentiles among `lines`, read by `value`.
fn percentiles<'a>(
    lines: impl Iterator<Item = &'a String>,
    value: impl Fn(&str) -> Option<Millis>,
) -> (Option<Millis>, Option<Millis>) {
    let (mut p50, mut p99) = (None, None);
    for l in lines {
        if let Some((pct, rest)) = percentile_line(l) {
            if pct == 50.0 {
                p50 = p50.or_else(|| value(rest));
            } else if pct == 99.0 {
                p99 = p99.or_else(|| value(rest));
            }
        }
    }
    (p50, p99)
}

/// The lines after the first one that is `header` (trimmed).
fn after<'a>(lines: &'a [String], header: &str) -> &'a [String] {
    match lines.iter().position(|l| l.trim() == header) {
        Some(i) => &lines[i + 1..],
        None => &[],
    }
}

/// The first line starting (trimmed) with `label`, and the rest of it.
fn labelled<'a>(lines: &'a [String], label: &str) -> Option<(&'a String, &'a str)> {
    lines
        .iter()
        .find_map(|l| Some((l, l.trim_start().strip_prefix(label)?)))
}

/// wrk: `Requests/sec:` and, with `--latency`, its `Latency Distribution`.
fn wrk(lines: &[String]) -> Option<LoadFigures> {
    let (line, rest) = labelled(lines, "Requests/sec:")?;
    // Up to the next blank line or the request count.
    let table = after(lines, "Latency Distribution")
        .iter()
        .take_while(|l| percentile_line(l).is_some());
    let (p50_ms, p99_ms) = percentiles(table, duration_ms);
    let errors: Vec<String> = lines
        .iter()
        .map(|l| squeeze(l))
        .filter(|l| l.starts_with("Non-2xx or 3xx responses:") || l.starts_with("Socket errors:"))
        .collect();
    let line = squeeze(line);
    Some(LoadFigures {
        tool: Some("wrk"),
        rps: number(rest),
        p50_ms,
        p99_ms,
        line: Some(if errors.is_empty() {
            line
        } else {
            format!("{line} ({})", errors.join("; "))
        }),
        note: None,
    })
}

/// oha's and hey's text summaries: `Requests/sec:` and `50.00% in 0.0012
/// secs` under `Response time distribution:` (oha) or `Latency
/// distribution:` (hey).
fn oha_or_hey(lines: &[String]) -> Option<LoadFigures> {
    let (tool, header) = if lines
        .iter()
        .any(|l| l.trim() == "Response time distribution:")
    {
        ("oha", "Response time distribution:")
    } else if lines.iter().any(|l| l.trim() == "Latency distribution:") {
        ("hey", "Latency distribution:")
    } else {
        return None;
    };
    let (line, rest) = labelled(lines, "Requests/sec:")?;
    let in_secs = |rest: &str| {
        let mut w = rest.strip_prefix("in")?.split_whitespace();
        let (n, unit) = (w.next()?, w.next()?);
        Some(number(n)? * unit_ms(unit)?)
    };
    let (p50_ms, p99_ms) = percentiles(after(lines, header).iter(), in_secs);
    Some(LoadFigures {
        tool: Some(tool),
        rps: number(rest),
        p50_ms,
        p99_ms,
        line: Some(squeeze(line)),
        note: None,
    })
}

/// oha `--json`: `summary.requestsPerSec`, `latencyPercentiles.p50`/`p99`
/// in seconds.
fn oha_json(lines: &[String]) -> Option<LoadFigures> {
    let first = lines.iter().find(|l| !l.trim().is_empty())?;
    if !first.trim_start().starts_with('{') {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&lines.join("\n")).ok()?;
    let rps = v.get("summary")?.get("requestsPerSec")?;
    let finite = |v: Option<&serde_json::Value>| v?.as_f64().filter(|v| v.is_finite() && *v >= 0.0);
    let rps = finite(Some(rps));
    let pct = |k: &str| finite(v.get("latencyPercentiles").and_then(|p| p.get(k))).map(|s| s * 1e3);
    Some(LoadFigures {
        tool: Some("oha"),
        rps,
        p50_ms: pct("p50"),
        p99_ms: pct("p99"),
        line: rps.map(|r| format!("Requests/sec: {r:.4}")),
        note: None,
    })
}

/// ApacheBench: `Requests per second:    911.46 [#/sec] (mean)` and its
/// table of percentages served within a time, in whole milliseconds.
fn ab(lines: &[String]) -> Option<LoadFigures> {
    let (line, rest) = labelled(lines, "Requests per second:")?;
    let table = after(
        lines,
        "Percentage of the requests served within a certain time (ms)",
    );
    let ms = |rest: &str| number(rest.split_whitespace().next()?);
    let (p50_ms, p99_ms) = percentiles(table.iter(), ms);
    Some(LoadFigures {
        tool: Some("ab"),
        rps: rest.split_whitespace().next().and_then(number),
        p50_ms,
        p99_ms,
        line: Some(squeeze(line)),
        note: None,
    })
}

/// A k6 metric line, `name.....: values`, by its exact name: the values.
fn k6_metric<'a>(lines: &'a [String], name: &str) -> Option<(&'a String, &'a str)> {
    lines.iter().find_map(|l| {
        let (key, values) = l.split_once(':')?;
        (key.trim().trim_end_matches('.') == name && key.contains("..")).then_some((l, values))
    })
}

/// k6's end-of-test summary: `http_reqs…: 1800 59.86/s` and
/// `http_req_duration…: avg=… med=… p(99)=…` (`med` is the median; p99 only
/// when `summaryTrendStats` has it).
fn k6(lines: &[String]) -> Option<LoadFigures> {
    let reqs = k6_metric(lines, "http_reqs");
    let duration = k6_metric(lines, "http_req_duration");
    if reqs.is_none() && duration.is_none() {
        return None;
    }
    let rps = reqs.and_then(|(_, v)| {
        v.split_whitespace()
            .find_map(|w| w.strip_suffix("/s"))
            .and_then(number)
    });
    let stat = |k: &str| {
        duration.and_then(|(_, v)| {
            v.split_whitespace()
                .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
                .and_then(duration_ms)
        })
    };
    Some(LoadFigures {
        tool: Some("k6"),
        rps,
        p50_ms: stat("med"),
        p99_ms: stat("p(99)"),
        line: reqs.map(|(_, v)| format!("http_reqs: {}", squeeze(v))),
        note: None,
    })
}

/// `--load-metric`: the last line the regex matches with a number in its
/// group `rps` (or its first group).
fn by_metric(lines: &[String], re: &Regex) -> LoadFigures {
    let found = lines.iter().rev().find_map(|l| {
        let c = re.captures(l)?;
        let g = c.name("rps").or_else(|| c.get(1))?;
        Some((l, number(g.as_str())?))
    });
    LoadFigures {
        tool: Some(METRIC_TOOL),
        rps: found.map(|(_, r)| r),
        line: found.map(|(l, _)| squeeze(l)),
        ..LoadFigures::default()
    }
}

/// Why a `--load-metric` regex cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MetricRegexError {
    /// It does not compile.
    #[error("--load-metric: {0}")]
    Invalid(#[source] regex::Error),
    /// It has no group to read the number from.
    #[error(
        "--load-metric {0:?}: no capture group; put the number in one, as in 'Throughput: ([0-9.]+)', or name it (?P<rps>…)"
    )]
    NoGroup(String),
}

/// Checks a `--load-metric` regex: it compiles and has a group to read.
pub fn metric_regex(s: &str) -> Result<Regex, MetricRegexError> {
    let re = Regex::new(s).map_err(MetricRegexError::Invalid)?;
    if re.captures_len() < 2 {
        return Err(MetricRegexError::NoGroup(s.into()));
    }
    Ok(re)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(String::from).collect()
    }

    fn fixture(name: &str) -> Vec<String> {
        let path = format!("{}/tests/fixtures/load/{name}", env!("CARGO_MANIFEST_DIR"));
        lines(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9 * b.max(1.0))
    }

    #[test]
    fn wrk_without_latency_has_no_percentiles() {
        let f = read(&fixture("wrk.txt"), None);
        assert_eq!(f.tool, Some("wrk"));
        assert_eq!(f.rps, Some(948.10));
        // Avg and Stdev are there; percentiles are not derived from them.
        assert_eq!((f.p50_ms, f.p99_ms), (None, None));
        assert_eq!(f.line.as_deref(), Some("Requests/sec: 948.10"));
        assert_eq!(f.note, None);
    }

    #[test]
    fn wrk_with_latency_has_its_distribution() {
        let f = read(&fixture("wrk-latency.txt"), None);
        assert_eq!(f.tool, Some("wrk"));
        assert_eq!(f.rps, Some(898.56));
        // 50% 806.00us, 99% 36.67ms.
        assert!(close(f.p50_ms, 0.806), "{f:?}");
        assert!(close(f.p99_ms, 36.67), "{f:?}");
    }

    #[test]
    fn ab_reads_its_percentage_table() {
        let f = read(&fixture("ab.txt"), None);
        assert_eq!(f.tool, Some("ab"));
        assert_eq!(f.rps, Some(911.46));
        assert_eq!((f.p50_ms, f.p99_ms), (Some(1.0), Some(32.0)));
        assert_eq!(
            f.line.as_deref(),
            Some("Requests per second: 911.46 [#/sec] (mean)")
        );
    }

    #[test]
    fn hey_reads_its_latency_distribution() {
        let f = read(&fixture("hey.txt"), None);
        assert_eq!(f.tool, Some("hey"));
        assert_eq!(f.rps, Some(1450.9438));
        assert!(close(f.p50_ms, 1.2), "{f:?}");
        assert!(close(f.p99_ms, 4.6), "{f:?}");
    }

    #[test]
    fn oha_reads_its_response_time_distribution() {
        // From oha's documented format (not packaged here).
        let f = read(&fixture("oha.txt"), None);
        assert_eq!(f.tool, Some("oha"));
        assert_eq!(f.rps, Some(8841.2093));
        assert!(close(f.p50_ms, 0.8), "{f:?}");
        // 99.00%, not 99.90% nor 99.99%.
        assert!(close(f.p99_ms, 3.1), "{f:?}");
    }

    #[test]
    fn oha_json_is_read_in_seconds() {
        let f = read(
            &lines(
                r#"{"summary":{"successRate":1.0,"requestsPerSec":8841.2},
                "latencyPercentiles":{"p10":0.0005,"p50":0.0008,"p99":0.0031,"p99.9":0.01}}"#,
            ),
            None,
        );
        assert_eq!(f.tool, Some("oha"));
        assert_eq!(f.rps, Some(8841.2));
        assert!(close(f.p50_ms, 0.8) && close(f.p99_ms, 3.1), "{f:?}");
        // Other JSON is not oha's.
        assert_eq!(read(&lines(r#"{"rps": 3}"#), None).tool, None);
    }

    #[test]
    fn k6_takes_med_and_p99_only_when_printed() {
        // From k6's documented format (not packaged here).
        let f = read(&fixture("k6.txt"), None);
        assert_eq!(f.tool, Some("k6"));
        assert_eq!(f.rps, Some(59.862341));
        assert!(close(f.p50_ms, 1.87), "{f:?}");
        // p(90) and p(95) only: no p99.
        assert_eq!(f.p99_ms, None);
        assert_eq!(f.line.as_deref(), Some("http_reqs: 1800 59.862341/s"));

        let f = read(&fixture("k6-compact.txt"), None);
        assert_eq!(f.rps, Some(6.561034));
        assert!(close(f.p50_ms, 139.7), "{f:?}");
        assert!(close(f.p99_ms, 1300.0), "{f:?}");
    }

    #[test]
    fn units_convert_to_milliseconds() {
        for (s, ms) in [
            ("806.00us", 0.806),
            ("512.3µs", 0.5123),
            ("512.3μs", 0.5123),
            ("1.87ms", 1.87),
            ("2s", 2000.0),
            ("1.5m", 90_000.0),
            ("1m2.5s", 62_500.0),
            ("1h", 3_600_000.0),
            ("0s", 0.0),
            ("250ns", 0.00025),
        ] {
            assert!(close(duration_ms(s), ms), "{s}");
        }
        for s in [
            "", "ms", "12", "1.2xs", "NaN ms", "1e999s", "-1ms", "1..2ms", "µ",
        ] {
            assert_eq!(duration_ms(s), None, "{s}");
        }
    }

    #[test]
    fn a_regex_reads_any_tool() {
        let out = lines("progress: 10 req/s\nprogress: 20 req/s\ndone\nthroughput 1,234.5 req/s\n");
        let re = metric_regex(r"throughput ([0-9.,]+)").unwrap();
        let f = read(&out, Some(&re));
        assert_eq!(f.tool, Some("--load-metric"));
        assert_eq!(f.rps, Some(1234.5));
        assert_eq!(f.line.as_deref(), Some("throughput 1,234.5 req/s"));
        assert_eq!((f.p50_ms, f.p99_ms), (None, None));
        // The last match counts; a named group wins over the first.
        let re = metric_regex(r"(progress): (?P<rps>\d+)").unwrap();
        assert_eq!(read(&out, Some(&re)).rps, Some(20.0));
        // No match: null, and said.
        let re = metric_regex(r"total: (\d+)").unwrap();
        let f = read(&out, Some(&re));
        assert_eq!(f.rps, None);
        assert!(f.note.unwrap().contains("--load-metric"));
    }

    #[test]
    fn bad_regexes_are_refused() {
        assert!(metric_regex("(unclosed").is_err());
        assert!(
            metric_regex(r"Requests/sec: \d+")
                .unwrap_err()
                .to_string()
                .contains("no capture group")
        );
        assert!(metric_regex(r"(?:x)").is_err());
    }

    #[test]
    fn unrecognised_output_is_said() {
        for out in [
            "",
            "\n\n",
            "hello\nworld",
            "Requests/sec:",
            "50% in",
            "{not json",
        ] {
            let f = read(&lines(out), None);
            assert_eq!(f.rps, None, "{out:?}");
            assert!(f.note.is_some(), "{out:?}");
        }
        assert!(
            read(&lines("hello"), None)
                .note
                .unwrap()
                .contains("give --load-metric REGEX")
        );
    }

    #[test]
    fn nothing_panics_on_odd_input() {
        let odd = [
            "Requests/sec: NaN",
            "Requests/sec: inf",
            "Requests/sec: 1e400",
            "Requests/sec: -5",
            "Requests per second:",
            "http_reqs...: ",
            "http_req_duration...: med= p(99)=µ",
            "http_req_duration: avg=1ms",
            "  Latency Distribution\n 50%\n 99% 1e999ms",
            "Latency distribution:\n  50% in\n  99% in 1 parsecs\nRequests/sec:\t",
            "Response time distribution:\n  50.00% in NaN secs",
            "Percentage of the requests served within a certain time (ms)\n  50%\n 99% x",
            "%%%\n%\n% in",
            "€€€: µs=µs",
        ];
        for s in odd {
            let f = read(&lines(s), None);
            assert!(f.rps.is_none_or(|r| r.is_finite()), "{s:?}");
            assert!(f.p50_ms.is_none() && f.p99_ms.is_none(), "{s:?}: {f:?}");
        }
        assert_eq!(read(&lines("Requests/sec: 1e400"), None).rps, None);
    }
}
