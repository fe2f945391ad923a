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

/// A goal for a ratio ours / peer, checked in the targets tables.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Reported only.
    None,
    /// The ratio must not exceed this (CPU, syscalls).
    AtMost(f64),
    /// The ratio must reach at least this (throughput).
    AtLeast(f64),
}

/// A goal ratio with the digits it needs: `0.5`, `1.0`, `0.95`.
fn goal(v: f64) -> String {
    let s = format!("{v:.2}");
    match s.strip_suffix('0') {
        Some(short) if !short.ends_with('.') => short.to_string(),
        _ => s,
    }
}

impl Target {
    /// The goal as shown in a table, e.g. `<= 0.5x`.
    pub fn describe(self) -> String {
        match self {
            Target::None => "(reported)".into(),
            Target::AtMost(v) => format!("<= {}x", goal(v)),
            Target::AtLeast(v) => format!(">= {}x", goal(v)),
        }
    }

    /// `met`, `missed`, `n/a` (no figure) or `-` (no target) for `ratio`.
    pub fn status(self, ratio: f64) -> &'static str {
        match self {
            Target::None => "-",
            _ if !ratio.is_finite() => "n/a",
            Target::AtMost(v) if ratio <= v => "met",
            Target::AtLeast(v) if ratio >= v => "met",
            _ => "missed",
        }
    }
}

/// One row of a targets table: a metric of ours against a peer.
pub struct TargetRow {
    /// What was measured, e.g. `keep-alive` or `1 MiB`.
    pub context: String,
    /// The metric, e.g. `user CPU µs/req`.
    pub metric: String,
    /// Our figure.
    pub ours: f64,
    /// The peer's figure.
    pub peer: f64,
    /// The goal for ours / peer.
    pub target: Target,
}

/// Renders a Markdown targets table: context, metric, both figures, the
/// ratio ours / peer, the target and whether it was met.
pub fn targets_table(context: &str, ours: &str, peer: &str, rows: &[TargetRow]) -> String {
    let mut md = format!(
        "| {context} | metric | {ours} | {peer} | {ours} / {peer} | target | status |\n\
         |---|---|---:|---:|---:|---|---|\n"
    );
    for r in rows {
        let q = ratio(r.ours, r.peer);
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.context,
            r.metric,
            fmt(r.ours),
            fmt(r.peer),
            fmt_ratio(q),
            r.target.describe(),
            r.target.status(q)
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_show_the_digits_they_need() {
        assert_eq!(Target::AtMost(0.95).describe(), "<= 0.95x");
        assert_eq!(Target::AtMost(0.5).describe(), "<= 0.5x");
        assert_eq!(Target::AtLeast(1.0).describe(), ">= 1.0x");
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn targets() {
        assert_eq!(Target::AtMost(0.5).status(0.4), "met");
        assert_eq!(Target::AtMost(0.5).status(0.6), "missed");
        assert_eq!(Target::AtLeast(1.0).status(1.0), "met");
        assert_eq!(Target::AtLeast(1.0).status(f64::NAN), "n/a");
        assert_eq!(Target::None.status(2.0), "-");
        let t = targets_table(
            "load",
            "ours",
            "hyper",
            &[TargetRow {
                context: "keep-alive".into(),
                metric: "user CPU µs/req".into(),
                ours: 1.0,
                peer: 4.0,
                target: Target::AtMost(0.5),
            }],
        );
        assert!(
            t.contains("| keep-alive | user CPU µs/req | 1.00 | 4.00 | 0.25x | <= 0.5x | met |")
        );
    }

    #[test]
    fn fields() {
        let text = "noise\nRESULT bytes=10 mib_per_s=1.5\n";
        assert_eq!(field(text, "RESULT", "mib_per_s"), Some(1.5));
        assert_eq!(field(text, "RESULT", "nope"), None);
    }
}
