//! PNG plots with plotters' bitmap backend.
//!
//! Text is rendered with plotters' pure-Rust `ab_glyph` feature and the
//! DejaVu Sans font embedded by the `dejavu` crate, so plotting needs no
//! fontconfig/freetype and no system fonts: it builds and runs on a bare
//! Debian with only the Rust toolchain.

use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 400;

/// Fixed colours per stack so every plot reads the same way: ours in warm
/// colours, peers in cool ones; anything else falls back to a palette.
fn color_for(name: &str, index: usize) -> RGBColor {
    match name {
        "ours-t0" => RGBColor(214, 39, 40),
        "ours-t1" => RGBColor(255, 127, 14),
        "ours-t2" => RGBColor(140, 86, 75),
        "tokio-t2" => RGBColor(31, 119, 180),
        "epoll-t1" => RGBColor(44, 160, 44),
        "epoll-t2" => RGBColor(148, 103, 189),
        "read-write" => RGBColor(31, 119, 180),
        "mmap-write" => RGBColor(44, 160, 44),
        "sendfile" => RGBColor(214, 39, 40),
        // The models lab: one colour per server model and per poller.
        "threads" => RGBColor(31, 119, 180),
        "single" => RGBColor(214, 39, 40),
        "pool" => RGBColor(44, 160, 44),
        "multi" => RGBColor(148, 103, 189),
        "multi-pool" => RGBColor(255, 127, 14),
        "proactor" => RGBColor(23, 190, 207),
        "select" => RGBColor(140, 86, 75),
        "poll" => RGBColor(31, 119, 180),
        "epoll" => RGBColor(214, 39, 40),
        _ => {
            let (r, g, b) = Palette99::pick(index).rgb();
            RGBColor(r, g, b)
        }
    }
}

fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is valid TTF shipped by the crate; failure would only
        // mean unreadable labels, which the caller reports as an error.
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Writes a line chart of MiB/s against sessions (log x axis), one line per
/// stack; stacks without points are left out.
pub fn throughput(
    path: &Path,
    title: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), String> {
    lines(
        path,
        &Axes {
            title,
            x_desc: "sessions (log scale)",
            y_desc: "MiB/s",
            log_y: false,
        },
        series,
    )
}

/// Titles and scales of a [`lines`] chart.
pub struct Axes<'a> {
    /// Chart caption.
    pub title: &'a str,
    /// X axis label (the x axis is always logarithmic).
    pub x_desc: &'a str,
    /// Y axis label.
    pub y_desc: &'a str,
    /// Logarithmic y axis (for figures spanning several decades, e.g. latency).
    pub log_y: bool,
}

/// Writes a line chart against a log x axis, one line per series; series
/// without points are left out. Non-positive or non-finite points are
/// dropped (they have no place on a log axis and mean "no figure").
pub fn lines(path: &Path, axes: &Axes, series: &[(String, Vec<(f64, f64)>)]) -> Result<(), String> {
    register();
    let series: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, pts)| {
            let pts = pts
                .iter()
                .copied()
                .filter(|&(x, y)| x > 0.0 && y.is_finite() && (y > 0.0 || !axes.log_y))
                .collect();
            (name.clone(), pts)
        })
        .filter(|(_, pts): &(String, Vec<(f64, f64)>)| !pts.is_empty())
        .collect();
    if series.is_empty() {
        return Err("no data".into());
    }
    let all = series.iter().flat_map(|(_, pts)| pts.iter());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, 1.0f64, f64::MAX, 0.0f64);
    for &(x, y) in all {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let x_range = (x_min * 0.8..x_max * 1.25).log_scale();
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(axes.title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60);
    if axes.log_y {
        let y_range = (y_min.max(1e-9) * 0.8..y_max * 1.5).log_scale();
        let chart = builder
            .build_cartesian_2d(x_range, y_range)
            .map_err(|e| e.to_string())?;
        draw_lines(chart, axes, &series)?;
    } else {
        let chart = builder
            .build_cartesian_2d(x_range, 0.0..y_max)
            .map_err(|e| e.to_string())?;
        draw_lines(chart, axes, &series)?;
    }
    root.present().map_err(|e| e.to_string())
}

fn draw_lines<'a, Y>(
    mut chart: ChartContext<'a, BitMapBackend<'a>, Cartesian2d<LogCoord<f64>, Y>>,
    axes: &Axes,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_labels(8)
        .y_label_formatter(&|y| short_number(*y))
        // No minor grid: it adds nothing here and bloats the PNG.
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = color_for(name, i);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())
}

/// An axis label: `12k`, `1.5M`, `250`, `0.35`.
fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        let m = format!("{:.3}", v / 1e6);
        format!("{}M", m.trim_end_matches('0').trim_end_matches('.'))
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// One panel of a grouped bar chart: `groups` along x, one bar per series
/// in each group; a bar may be a stack of segments (drawn bottom up, later
/// segments lighter).
pub struct BarPanel {
    /// Panel caption.
    pub title: String,
    /// Y axis label.
    pub y_desc: String,
    /// Group labels along x, e.g. `1 client`.
    pub groups: Vec<String>,
    /// (series name, per group the bar's segments; empty = no figure).
    pub series: Vec<(String, Vec<Vec<f64>>)>,
}

/// Writes panels side by side, each a grouped (optionally stacked) bar
/// chart, with a legend of the series in every panel.
pub fn grouped_bars(path: &Path, panels: &[BarPanel]) -> Result<(), String> {
    register();
    if panels.iter().all(|p| {
        p.series
            .iter()
            .all(|(_, bars)| bars.iter().all(Vec::is_empty))
    }) {
        return Err("no data".into());
    }
    let width = WIDTH * panels.len().max(1) as u32;
    let root = BitMapBackend::new(path, (width, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        bar_panel(area, panel)?;
    }
    root.present().map_err(|e| e.to_string())
}

fn bar_panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    p: &BarPanel,
) -> Result<(), String> {
    let n = p.groups.len().max(1);
    let y_max = p
        .series
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|segs| segs.iter().sum::<f64>()))
        .fold(0.0f64, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.25 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0f64..n as f64, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    let groups = p.groups.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(p.y_desc.as_str())
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(|e| e.to_string())?;
    // Group labels under the axis, centred on each group.
    let style =
        TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (g, label) in groups.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(g as f64 + 0.5, 0.0));
        area.draw_text(
            label,
            &style,
            (x - area.get_base_pixel().0, y - area.get_base_pixel().1 + 6),
        )
        .map_err(|e| e.to_string())?;
    }
    let count = p.series.len().max(1) as f64;
    let width = 0.8 / count;
    for (i, (name, bars)) in p.series.iter().enumerate() {
        let color = color_for(name, i);
        let mut rects = Vec::new();
        for (g, segs) in bars.iter().enumerate() {
            let x0 = g as f64 + 0.1 + i as f64 * width;
            let mut y0 = 0.0;
            for (k, v) in segs.iter().enumerate() {
                let fill = if k == 0 {
                    color.filled()
                } else {
                    color.mix(0.45).filled()
                };
                rects.push(Rectangle::new(
                    [(x0, y0), (x0 + width * 0.92, y0 + v)],
                    fill,
                ));
                y0 += v;
            }
        }
        chart
            .draw_series(rects)
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_without_system_fonts() {
        let path =
            std::env::temp_dir().join(format!("muduo-bench-plot-{}.png", std::process::id()));
        let series = vec![
            (
                "epoll-t1".to_string(),
                vec![(1.0, 10.0), (10.0, 50.0), (100.0, 80.0)],
            ),
            (
                "tokio-t2".to_string(),
                vec![(1.0, 8.0), (10.0, 40.0), (100.0, 90.0)],
            ),
            ("empty".to_string(), vec![]),
        ];
        throughput(&path, "test plot", &series).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(bytes.starts_with(b"\x89PNG"));
    }

    #[test]
    fn writes_a_log_log_chart() {
        let path =
            std::env::temp_dir().join(format!("muduo-bench-lines-{}.png", std::process::id()));
        let axes = Axes {
            title: "p99",
            x_desc: "connections",
            y_desc: "µs",
            log_y: true,
        };
        let series = vec![(
            "single".to_string(),
            vec![(1.0, 20.0), (10.0, 300.0), (1000.0, f64::NAN), (100.0, 0.0)],
        )];
        lines(&path, &axes, &series).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(bytes.starts_with(b"\x89PNG"));
        assert_eq!(short_number(12_500.0), "12k");
        assert_eq!(short_number(1_500_000.0), "1.5M");
    }

    #[test]
    fn writes_grouped_bars() {
        let path =
            std::env::temp_dir().join(format!("muduo-bench-bars-{}.png", std::process::id()));
        let groups = vec!["1 client".to_string(), "4 clients".to_string()];
        let panels = [
            BarPanel {
                title: "throughput".into(),
                y_desc: "MiB/s".into(),
                groups: groups.clone(),
                series: vec![
                    ("read-write".into(), vec![vec![100.0], vec![150.0]]),
                    ("sendfile".into(), vec![vec![120.0], vec![]]),
                ],
            },
            BarPanel {
                title: "cpu".into(),
                y_desc: "s/GiB".into(),
                groups,
                series: vec![("read-write".into(), vec![vec![0.3, 0.1], vec![0.2, 0.1]])],
            },
        ];
        grouped_bars(&path, &panels).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(bytes.starts_with(b"\x89PNG"));
    }
}
