//! SVG charts beside the bench's and the report's tables (plotters' SVG backend: text
//! stays text, no font files or bitmaps): lines of a measure against a level (requests/s
//! against concurrency, latency against offered load), and points of two measures (each
//! variant's speed against its test metric).

use anyhow::{Result, anyhow};
use plotters::prelude::*;

const SIZE: (u32, u32) = (760, 440);
/// Distinguishable on white, in order (Okabe–Ito, then greys).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
];

/// One named line of points (x ascending), dashed or not.
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
    /// Lines with the same colour index share a colour (a peer's p50 and p99).
    pub colour: usize,
}

/// One labelled point; `marked` draws it larger and filled (the variant that serves).
pub struct Point {
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub marked: bool,
}

fn range(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (low, high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    let low = if from_zero { low.min(0.0) } else { low };
    let pad = ((high - low) * 0.08).max(high.abs() * 0.02).max(1e-9);
    (if from_zero { low } else { low - pad }, high + pad)
}

fn error(what: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("cannot draw the chart: {what}")
}

/// How an axis maps its values.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// For values spanning orders of magnitude (concurrency 1 to 64, latency 1 ms to 30 s).
    Log,
}

/// Height of one row of the legend under a line chart (one entry a row: peers' names
/// are long).
const LEGEND_ROW: u32 = 18;

/// A line chart, its legend under it (so that it hides no line).
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
    x_scale: Scale,
    y_scale: Scale,
) -> Result<String> {
    let rows = lines.len() as u32;
    let size = (SIZE.0, SIZE.1 + rows * LEGEND_ROW + 8);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(error)?;
        let (plot, legend) = root.split_vertically(SIZE.1);
        let xs = || lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
        let ys = || lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
        let (x_low, x_high) = range(xs(), false);
        let (_, y_high) = range(ys(), true);
        // A log axis starts at the smallest value shown, a little below it.
        let positive = |values: &mut dyn Iterator<Item = f64>| {
            values
                .filter(|v| v.is_finite() && *v > 0.0)
                .fold(f64::INFINITY, f64::min)
        };
        let x_floor = (positive(&mut xs()) * 0.8).min(x_high * 0.5).max(1e-9);
        let y_floor = (positive(&mut ys()) * 0.8).min(y_high * 0.5).max(1e-9);
        let mut builder = ChartBuilder::on(&plot);
        builder
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(64);
        // One body per pair of scales: plotters types each coordinate system apart.
        macro_rules! draw {
            ($x:expr, $y:expr) => {{
                let mut chart = builder.build_cartesian_2d($x, $y).map_err(error)?;
                chart
                    .configure_mesh()
                    .x_desc(x_label)
                    .y_desc(y_label)
                    .x_labels(8)
                    .x_label_formatter(&|x| compact(*x))
                    .y_label_formatter(&|y| compact(*y))
                    .light_line_style(WHITE.mix(0.0))
                    .draw()
                    .map_err(error)?;
                for line in lines {
                    let colour = PALETTE[line.colour % PALETTE.len()];
                    let stroke = colour.stroke_width(2);
                    let points = line
                        .points
                        .iter()
                        .copied()
                        .filter(|(x, y)| x.is_finite() && y.is_finite());
                    if line.dashed {
                        chart
                            .draw_series(DashedLineSeries::new(points.clone(), 6, 4, stroke))
                            .map_err(error)?;
                    } else {
                        chart
                            .draw_series(LineSeries::new(points.clone(), stroke))
                            .map_err(error)?;
                    }
                    chart
                        .draw_series(points.map(|p| Circle::new(p, 3, colour.filled())))
                        .map_err(error)?;
                }
            }};
        }
        match (x_scale, y_scale) {
            (Scale::Linear, Scale::Linear) => draw!(x_low..x_high, 0.0..y_high),
            (Scale::Log, Scale::Linear) => draw!((x_floor..x_high).log_scale(), 0.0..y_high),
            (Scale::Linear, Scale::Log) => draw!(x_low..x_high, (y_floor..y_high).log_scale()),
            (Scale::Log, Scale::Log) => draw!((x_floor..x_high).log_scale(), (y_floor..y_high).log_scale()),
        }
        for (index, line) in lines.iter().enumerate() {
            let (x, y) = (70, 4 + index as i32 * LEGEND_ROW as i32 + 8);
            let colour = PALETTE[line.colour % PALETTE.len()];
            let sample = vec![(x, y), (x + 24, y)];
            if line.dashed {
                legend
                    .draw(&plotters::element::DashedPathElement::new(
                        sample,
                        5,
                        3,
                        colour.stroke_width(2),
                    ))
                    .map_err(error)?;
            } else {
                legend
                    .draw(&PathElement::new(sample, colour.stroke_width(2)))
                    .map_err(error)?;
            }
            let font = ("sans-serif", 12).into_font().color(&BLACK);
            legend
                .draw(&Text::new(line.name.clone(), (x + 30, y - 6), font))
                .map_err(error)?;
        }
        root.present().map_err(error)?;
    }
    Ok(svg)
}

/// An axis label: no more digits than the value needs.
fn compact(value: f64) -> String {
    if value.abs() >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A scatter of labelled points.
pub fn points(title: &str, x_label: &str, y_label: &str, points: &[Point]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(error)?;
        let (x_low, x_high) = range(points.iter().map(|p| p.x), true);
        let (y_low, y_high) = range(points.iter().map(|p| p.y), false);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d(x_low..x_high * 1.15, y_low..y_high)
            .map_err(error)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .y_label_formatter(&|y| format!("{y:.3}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(error)?;
        // Points that fall on one another (FP32 and its graph-optimized copies often do)
        // share one label.
        let near = |a: &Point, b: &Point| {
            (a.x - b.x).abs() <= (x_high - x_low) * 0.025 && (a.y - b.y).abs() <= (y_high - y_low) * 0.02
        };
        let mut labelled: Vec<(&Point, String)> = Vec::new();
        for point in points {
            let name = if point.marked {
                format!("{} (serves)", point.label)
            } else {
                point.label.clone()
            };
            match labelled.iter_mut().find(|(first, _)| near(first, point)) {
                Some((_, label)) => *label = format!("{label}, {name}"),
                None => labelled.push((point, name)),
            }
        }
        for point in points {
            let colour = if point.marked { PALETTE[1] } else { PALETTE[0] };
            let size = if point.marked { 6 } else { 4 };
            chart
                .draw_series(std::iter::once(Circle::new((point.x, point.y), size, colour.filled())))
                .map_err(error)?;
        }
        for (point, label) in labelled {
            let font = ("sans-serif", 12).into_font().color(&BLACK);
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((point.x, point.y)) + Text::new(label, (8, -14), font),
                ))
                .map_err(error)?;
        }
        root.present().map_err(error)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_their_titles_labels_and_one_mark_per_point() {
        let line = |name: &str, dashed| Line {
            name: name.into(),
            points: vec![(1.0, 100.0), (2.0, 180.0), (4.0, 210.0)],
            dashed,
            colour: 0,
        };
        let svg = lines(
            "requests/s",
            "concurrency",
            "requests/s",
            &[line("modelcrate", false), line("python p99", true)],
            Scale::Log,
            Scale::Log,
        )
        .unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
        for text in ["requests/s", "concurrency", "modelcrate", "python p99"] {
            assert!(svg.contains(text), "{text} in the chart");
        }
        assert_eq!(svg.matches("<circle").count(), 6, "one mark per point");
        let svg = points(
            "speed and accuracy",
            "texts/s",
            "accuracy",
            &[
                Point {
                    label: "fp32".into(),
                    x: 100.0,
                    y: 0.973,
                    marked: false,
                },
                Point {
                    label: "O2".into(),
                    x: 100.2,
                    y: 0.973,
                    marked: false,
                },
                Point {
                    label: "int8".into(),
                    x: 250.0,
                    y: 0.969,
                    marked: true,
                },
            ],
        )
        .unwrap();
        assert!(
            svg.contains("int8 (serves)") && svg.contains("fp32, O2"),
            "points on one another share a label: {svg}"
        );
        assert_eq!(svg.matches("<circle").count(), 3);
    }
}
