//! The bench output protocol shared by every benchmark `cargo xtask bench` runs: besides its
//! human-readable lines, a bench prints one line per metric on stdout,
//!
//! `BENCH {"metric", "value", "unit", "baseline", "ratio", "baseline_name", "spread", "rounds"}`
//!
//! where `value` is the median of the figure over interleaved rounds (host round, baseline round,
//! host round, …), `spread` its minimum and maximum over those rounds, and `ratio` always
//! `value / baseline`. `BENCH_SMOKE=1` asks for tiny sizes and few, short rounds.
//!
//! Included by path (`#[path = "…/support/bench_line.rs"]`) from each bench target, also from
//! other crates' benches, so it uses nothing but `serde_json`.

/// What a figure is compared with.
#[allow(dead_code, reason = "each bench uses the kinds it needs")]
pub enum Baseline<'a> {
    /// No baseline: `baseline` and `ratio` are null.
    None,
    /// A figure measured in the same run, round for round with the host's: its median is used.
    Measured { name: &'a str, rounds: &'a [f64] },
    /// A fixed reference (a target, a limit), named as such.
    Fixed { name: &'a str, value: f64 },
}

/// Whether `BENCH_SMOKE` asks for a smoke run (set and not `0`).
#[allow(dead_code, reason = "each bench uses the parts it needs")]
pub fn smoke() -> bool {
    std::env::var("BENCH_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The median of `values` (the mean of the middle two for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Prints the `BENCH` line of `metric` from its per-round figures.
pub fn emit(metric: &str, unit: &str, rounds: &[f64], baseline: Baseline<'_>) {
    println!("{}", line(metric, unit, rounds, baseline));
}

/// The `BENCH` line of `metric` (see the module's documentation).
pub fn line(metric: &str, unit: &str, rounds: &[f64], baseline: Baseline<'_>) -> String {
    let value = median(rounds);
    let min = rounds.iter().copied().fold(f64::INFINITY, f64::min);
    let max = rounds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (base, name) = match baseline {
        Baseline::None => (None, "none"),
        Baseline::Measured { name, rounds } => (Some(median(rounds)), name),
        Baseline::Fixed { name, value } => (Some(value), name),
    };
    let ratio = base.filter(|b| *b != 0.0).map(|b| value / b);
    format!(
        "BENCH {{\"metric\": {}, \"value\": {}, \"unit\": {}, \"baseline\": {}, \"ratio\": {}, \"baseline_name\": {}, \"spread\": [{}, {}], \"rounds\": {}}}",
        text(metric),
        number(Some(value)),
        text(unit),
        number(base),
        number(ratio),
        text(name),
        number(Some(min)),
        number(Some(max)),
        rounds.len()
    )
}

fn text(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A JSON number to four significant digits (the rounds' spread is far wider), or `null`.
fn number(x: Option<f64>) -> String {
    match x.filter(|x| x.is_finite()) {
        Some(x) => serde_json::Value::from(round(x)).to_string(),
        None => "null".into(),
    }
}

fn round(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 3 - x.abs().log10().floor() as i32;
    if digits >= 0 {
        let scale = 10f64.powi(digits);
        (x * scale).round() / scale
    } else {
        let scale = 10f64.powi(-digits);
        (x / scale).round() * scale
    }
}
