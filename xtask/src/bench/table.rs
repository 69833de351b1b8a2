//! The table of every metric: metric, value, unit, baseline, ratio, spread.

use super::metric::Metric;

pub fn print(metrics: &[Metric]) {
    let rows: Vec<[String; 6]> = metrics
        .iter()
        .map(|m| {
            let baseline = match m.number("baseline") {
                Some(b) => format!("{} ({})", number(b), m.text("baseline_name")),
                None => "-".into(),
            };
            [
                m.name.clone(),
                m.number("value").map_or("-".into(), number),
                m.text("unit").to_owned(),
                baseline,
                m.number("ratio").map_or("-".into(), |r| format!("{r:.2}")),
                m.spread().map_or("-".into(), |(lo, hi)| format!("{}..{}", number(lo), number(hi))),
            ]
        })
        .collect();
    let header = ["metric", "value", "unit", "baseline", "ratio", "spread"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String; 6]| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&header);
    line(&widths.map(|w| "-".repeat(w)));
    for row in &rows {
        line(row);
    }
}

/// Up to four significant digits, without a trailing `.0`.
fn number(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}
