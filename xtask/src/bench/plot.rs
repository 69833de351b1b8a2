//! `growth.svg`: each growth series (`growth.<series>.<unit>_<n>`, e.g. `growth.e2e.clients_8`,
//! `growth.stripe_call.threads_8`) as throughput against clients or threads, one panel per
//! series (their scales differ by orders of magnitude), with the series' baseline when it has one.
//!
//! Drawn with plotters' SVG backend without a font backend: plotters then only estimates text
//! widths and the SVG carries `<text>` elements that the viewer renders, so no system fonts are
//! needed to draw it.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use super::metric::Metric;
use crate::Error;

struct Point {
    x: f64,
    value: f64,
    baseline: Option<f64>,
}

struct Series {
    /// `clients`, `threads`, …
    axis: String,
    unit: String,
    baseline_name: String,
    points: Vec<Point>,
}

/// Draws the growth series found in `metrics` to `path`; returns how many (0: nothing drawn).
pub fn growth(metrics: &[Metric], path: &Path) -> Result<usize, Error> {
    let series = collect(metrics);
    if series.is_empty() {
        return Ok(0);
    }
    let root = SVGBackend::new(path, (520 * series.len() as u32, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((1, series.len()));
    for (panel, (name, s)) in panels.iter().zip(&series) {
        draw(panel, name, s).map_err(|e| format!("{name}: {e}"))?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(series.len())
}

fn collect(metrics: &[Metric]) -> BTreeMap<String, Series> {
    let mut series: BTreeMap<String, Series> = BTreeMap::new();
    for m in metrics {
        let Some(rest) = m.name.strip_prefix("growth.") else { continue };
        let Some((name, point)) = rest.rsplit_once('.') else { continue };
        let Some((axis, n)) = point.rsplit_once('_') else { continue };
        let (Ok(x), Some(value)) = (n.parse::<f64>(), m.number("value")) else { continue };
        let s = series.entry(name.to_owned()).or_insert_with(|| Series {
            axis: axis.to_owned(),
            unit: m.text("unit").to_owned(),
            baseline_name: m.text("baseline_name").to_owned(),
            points: Vec::new(),
        });
        s.points.push(Point { x, value, baseline: m.number("baseline") });
    }
    for s in series.values_mut() {
        s.points.sort_by(|a, b| a.x.total_cmp(&b.x));
    }
    series
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw(area: &Area<'_>, name: &str, s: &Series) -> Result<(), String> {
    let text = |e: plotters::drawing::DrawingAreaErrorKind<_>| e.to_string();
    let x_max = s.points.iter().map(|p| p.x).fold(1.0, f64::max) * 1.25;
    let y_max = s.points.iter().flat_map(|p| [Some(p.value), p.baseline]).flatten().fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{name}: {} by {}", s.unit, s.axis), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0.8f64..x_max).log_scale(), 0f64..y_max)
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .light_line_style(WHITE)
        .x_desc(s.axis.as_str())
        .y_desc(s.unit.as_str())
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(text)?;
    let measured = BLUE.stroke_width(2);
    chart
        .draw_series(LineSeries::new(s.points.iter().map(|p| (p.x, p.value)), measured))
        .map_err(text)?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], measured));
    chart.draw_series(s.points.iter().map(|p| Circle::new((p.x, p.value), 3, BLUE.filled()))).map_err(text)?;
    let baseline: Vec<(f64, f64)> = s.points.iter().filter_map(|p| Some((p.x, p.baseline?))).collect();
    if !baseline.is_empty() {
        let style = RED.stroke_width(2);
        chart
            .draw_series(LineSeries::new(baseline.iter().copied(), style))
            .map_err(text)?
            .label(s.baseline_name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart.draw_series(baseline.iter().map(|p| Circle::new(*p, 3, RED.filled()))).map_err(text)?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str, value: f64, baseline: Option<f64>) -> Metric {
        let json = serde_json::json!({"metric": name, "value": value, "unit": "payments/s", "baseline": baseline,
            "ratio": baseline.map(|b| value / b), "baseline_name": "pgbench", "spread": [value, value], "rounds": 1});
        Metric::parse(&json.to_string()).unwrap()
    }

    #[test]
    fn draws_one_panel_per_growth_series_with_its_baseline() {
        let metrics = vec![
            metric("growth.e2e.clients_1", 400.0, Some(900.0)),
            metric("growth.e2e.clients_8", 1500.0, Some(3000.0)),
            metric("growth.stripe_call.threads_1", 50_000.0, None),
            metric("growth.stripe_call.threads_2", 90_000.0, None),
            metric("e2e.echo_pg.payments_per_s", 1.0, None),
        ];
        let dir = std::env::temp_dir().join(format!("xtask-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("growth.svg");
        assert_eq!(growth(&metrics, &path).unwrap(), 2);
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("e2e: payments/s by clients"));
        assert!(svg.contains("stripe_call: payments/s by threads"));
        assert!(svg.contains(">\npgbench\n<"), "the baseline's legend");
        // A marker per point: four measured, two of the baseline (the second series has none).
        assert_eq!(svg.matches("<circle").count(), 6);
        assert!(svg.contains(r##"stroke="#0000FF" stroke-width="2""##), "the measured lines");
        assert!(svg.contains(r##"stroke="#FF0000" stroke-width="2""##), "the baseline's line");
    }

    #[test]
    fn nothing_to_draw_without_growth_metrics() {
        let path = std::env::temp_dir().join("xtask-plot-none.svg");
        assert_eq!(growth(&[metric("e2e.x.payments_per_s", 1.0, None)], &path).unwrap(), 0);
        assert!(!path.exists());
    }
}
