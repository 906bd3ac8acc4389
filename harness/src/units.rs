//! Human-readable numbers for tables.

/// Bytes as MiB with one decimal: `61.2 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
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

#[cfg(test)]
mod tests {
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
    }
}
