//! Human-readable numbers for tables.

/// Bytes as MiB with one decimal: `61.2 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// A size a person gave (a budget): in the largest binary unit it fills,
/// with one decimal, so `1 KiB` is not "0.0 MiB": `512 B`, `1.0 KiB`,
/// `1.5 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A duration for a message: `1 ms`, `250 ms`, `2.5 s`, `90 s`; never
/// "0 s" for one that is not zero.
pub fn seconds(s: f64) -> String {
    if s >= 10.0 || s == 0.0 {
        format!("{s:.0} s")
    } else if s >= 1.0 {
        format!("{s:.1} s")
    } else {
        let ms = format!("{:.3}", s * 1e3);
        let ms = ms.trim_end_matches('0').trim_end_matches('.');
        if ms == "0" {
            format!("{s:e} s")
        } else {
            format!("{ms} ms")
        }
    }
}

/// Signed bytes as MiB: `+12.0 MiB`, `-0.5 MiB`.
pub fn signed_mib(bytes: i64) -> String {
    format!("{:+.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// A fraction as a percentage: `75%`.
pub fn pct(f: f64) -> String {
    // A share that rounds to zero is 0%, whichever side of it.
    let p = (f * 100.0).round();
    format!("{:.0}%", if p == 0.0 { 0.0 } else { p })
}

/// `value / base` as `0.82×`; `—` when the base is zero.
pub fn ratio(value: f64, base: f64) -> String {
    if base == 0.0 || !base.is_finite() || !value.is_finite() {
        "—".into()
    } else {
        format!("{:.2}×", value / base)
    }
}

/// Requests per second, thousands separated: `12,345`.
pub fn rate(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds, as load tools print latencies: `0.84 ms`, `12.3 ms`,
/// `1,250 ms`.
pub fn millis(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{} ms", rate(ms))
    }
}

/// Growth in bytes per 1,000 requests: `+243.1 KiB/1k`.
pub fn per_1k(bytes: f64) -> String {
    format!("{:+.1} KiB/1k", bytes / 1024.0)
}

/// The growth verdict from the share of repetitions judged growing.
pub fn verdict(growing: f64) -> String {
    match growing {
        g if g > 0.5 => "growing",
        g if g < 0.5 => "plateau",
        _ => "mixed",
    }
    .into()
}

/// Microseconds with sensible precision: `87.3 µs`, `1,204 µs`.
pub fn micros(us: f64) -> String {
    if us < 100.0 {
        format!("{us:.1} µs")
    } else {
        format!("{} µs", rate(us))
    }
}

/// A count of CPUs, perhaps fractional (a cgroup's limit), to two decimals
/// at most: `1 CPU`, `1.5 CPUs`, `0.33 CPUs`.
pub fn cpus(n: f64) -> String {
    let s = format!("{n:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s} CPU{}", if s == "1" { "" } else { "s" })
}

/// Words as a shell reads them back: each quoted where it needs to be
/// (`--load 'wrk -t1 http://…'`), so that a printed command line can be
/// pasted.
pub fn shell_words(words: &[String]) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    words
        .iter()
        .map(|w| {
            if !w.is_empty() && w.chars().all(safe) {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_words_quote_only_what_a_shell_would_split() {
        let w = |v: &[&str]| shell_words(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            w(&["--idle", "0,1,10", "a/b.json"]),
            "--idle 0,1,10 a/b.json"
        );
        assert_eq!(
            w(&["--load", "wrk -t1 http://127.0.0.1:8080/"]),
            "--load 'wrk -t1 http://127.0.0.1:8080/'"
        );
        assert_eq!(w(&["it's", ""]), r"'it'\''s' ''");
    }

    #[test]
    fn small_sizes_and_durations_are_not_rounded_to_zero() {
        use super::{seconds, size};
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(100), "100 B");
        assert_eq!(size(512 << 20), "512.0 MiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
        assert_eq!(seconds(0.001), "1 ms");
        assert_eq!(seconds(0.25), "250 ms");
        assert_eq!(seconds(0.0005), "0.5 ms");
        assert_eq!(seconds(2.5), "2.5 s");
        assert_eq!(seconds(60.0), "60 s");
    }

    use super::*;

    #[test]
    fn formats() {
        assert_eq!(mib(64 << 20), "64.0 MiB");
        assert_eq!(signed_mib(-(1 << 19)), "-0.5 MiB");
        assert_eq!(pct(0.754), "75%");
        assert_eq!(pct(-0.001), "0%");
        assert_eq!(ratio(82.0, 100.0), "0.82×");
        assert_eq!(ratio(1.0, 0.0), "—");
        assert_eq!(per_1k(-2048.0), "-2.0 KiB/1k");
        assert_eq!(verdict(1.0), "growing");
        assert_eq!(verdict(0.0), "plateau");
        assert_eq!(verdict(0.5), "mixed");
        assert_eq!(rate(1234567.4), "1,234,567");
        assert_eq!(rate(999.0), "999");
        assert_eq!(micros(87.31), "87.3 µs");
        assert_eq!(micros(1204.2), "1,204 µs");
        assert_eq!(cpus(1.0), "1 CPU");
        assert_eq!(cpus(1.5), "1.5 CPUs");
        assert_eq!(cpus(1.0 / 3.0), "0.33 CPUs");
        assert_eq!(cpus(64.0), "64 CPUs");
    }
}
