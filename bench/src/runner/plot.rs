//! PNG plots with plotters' bitmap backend.
//!
//! Text is rendered with plotters' pure-Rust `ab_glyph` feature and the
//! DejaVu Sans font embedded by the `dejavu` crate, so plotting needs no
//! fontconfig/freetype and no system fonts: it builds and runs on a bare
//! Debian with only the Rust toolchain.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
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
    register();
    let series: Vec<_> = series.iter().filter(|(_, pts)| !pts.is_empty()).collect();
    if series.is_empty() {
        return Err("no data".into());
    }
    let all = series.iter().flat_map(|(_, pts)| pts.iter());
    let (mut x_max, mut y_max) = (1.0f64, 0.0f64);
    for &(x, y) in all {
        x_max = x_max.max(x);
        y_max = y_max.max(y);
    }
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let x_range = (0.8f64..x_max * 1.25).log_scale();
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("sessions (log scale)")
        .y_desc("MiB/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
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
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
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
}
