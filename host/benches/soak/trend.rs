//! Whether a sampled series grows: the least-squares slope over the run's second half, against
//! the median of its first half (what the process settled at), confirmed by the second half's
//! median (a burst at the end of the run steepens the slope but does not move the median).

/// One series' verdict.
pub struct Trend {
    pub first_half_median: f64,
    pub second_half_median: f64,
    /// Least-squares slope over the second half, per minute.
    pub slope_per_min: f64,
    /// What that slope adds over the second half's span.
    pub second_half_growth: f64,
}

/// `samples` are `(seconds since start, value)`, in time order; at least two per half are
/// needed for a slope (else it is 0).
pub fn trend(samples: &[(f64, f64)]) -> Trend {
    let middle = samples.len() / 2;
    let (first, second) = samples.split_at(middle);
    let first_half_median = median(&first.iter().map(|(_, v)| *v).collect::<Vec<_>>());
    let second_half_median = median(&second.iter().map(|(_, v)| *v).collect::<Vec<_>>());
    let slope = slope(second);
    let span = match (second.first(), second.last()) {
        (Some((a, _)), Some((b, _))) => b - a,
        _ => 0.0,
    };
    Trend { first_half_median, second_half_median, slope_per_min: slope * 60.0, second_half_growth: slope * span }
}

impl Trend {
    /// Grows when the second half's trend adds more than `absolute` and more than `relative`
    /// of the first half's median, and the second half's median is above the first's by as much.
    pub fn grows(&self, absolute: f64, relative: f64) -> bool {
        let tolerance = absolute.max(relative * self.first_half_median);
        self.second_half_growth > tolerance && self.second_half_median - self.first_half_median > tolerance
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Least-squares slope of `value` over `seconds`.
fn slope(samples: &[(f64, f64)]) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let n = samples.len() as f64;
    let mean_t = samples.iter().map(|(t, _)| t).sum::<f64>() / n;
    let mean_v = samples.iter().map(|(_, v)| v).sum::<f64>() / n;
    let covariance: f64 = samples.iter().map(|(t, v)| (t - mean_t) * (v - mean_v)).sum();
    let variance: f64 = samples.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    if variance == 0.0 { 0.0 } else { covariance / variance }
}
