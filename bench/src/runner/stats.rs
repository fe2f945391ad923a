//! Small numeric and parsing helpers: medians and `key=value` result lines.

/// Median of `values` (mean of the two middle values for an even count);
/// NaN when empty. NaNs sort last and so only matter if they dominate.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Finds the first line starting with `prefix` and returns the value of
/// `key=value` in it.
pub fn field(text: &str, prefix: &str, key: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(prefix))?;
    line.split_whitespace()
        .filter_map(|tok| tok.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

/// `a / b`, NaN when either is not a positive finite number.
pub fn ratio(a: f64, b: f64) -> f64 {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

/// Formats a figure for a table with about 3-4 significant digits, `n/a`
/// for NaN.
pub fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Formats a ratio as `1.23x`.
pub fn fmt_ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}x")
    } else {
        "n/a".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn fields() {
        let text = "noise\nRESULT bytes=10 mib_per_s=1.5\n";
        assert_eq!(field(text, "RESULT", "mib_per_s"), Some(1.5));
        assert_eq!(field(text, "RESULT", "nope"), None);
    }
}
