//! Small statistics on plain numbers: the mean of random draws and its
//! standard error (Hutchinson's trace, average-case sharpness), Student's t
//! interval, the exact sign test and bootstrap percentiles (the study's
//! verdicts, see `study_stats`).

use serde::{Deserialize, Serialize};

/// (mean, standard error of the mean) of `draws`; the error is NaN for fewer
/// than two draws, the mean NaN for none.
pub fn mean_and_std_error(draws: &[f64]) -> (f64, f64) {
    let n = draws.len();
    let mean = draws.iter().sum::<f64>() / n as f64;
    let std_error = if n > 1 {
        let var = draws.iter().map(|d| (d - mean) * (d - mean)).sum::<f64>() / (n - 1) as f64;
        libm::sqrt(var / n as f64)
    } else {
        f64::NAN
    };
    (mean, std_error)
}

/// A mean and its two-sided 95% interval. `lo` and `hi` are NaN when there
/// are too few values for one (fewer than two), so nothing pretends to know.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The mean of the values (NaN for none).
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub mean: f64,
    /// Lower end of the 95% interval (NaN for fewer than two values).
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub lo: f64,
    /// Upper end of the 95% interval (NaN for fewer than two values).
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub hi: f64,
    /// How many values the interval is over (data draws, for a study).
    pub n: usize,
}

impl Interval {
    /// Whether the interval lies entirely on one side of 0.
    pub fn excludes_zero(&self) -> bool {
        self.lo > 0.0 || self.hi < 0.0
    }
}

/// Student's t 95% interval of the mean of `values`: mean +- t(0.975, n - 1) s / sqrt(n).
pub fn t_interval(values: &[f64]) -> Interval {
    let n = values.len();
    let (mean, std_error) = mean_and_std_error(values);
    let half = if n > 1 { student_t_quantile(0.975, (n - 1) as f64) * std_error } else { f64::NAN };
    Interval { mean, lo: mean - half, hi: mean + half, n }
}

/// The p-quantile of Student's t distribution with `df` degrees of freedom
/// (0 < p < 1, df > 0), by bisection on the CDF to full precision.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if !(p > 0.0 && p < 1.0 && df > 0.0) {
        return f64::NAN;
    }
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, df);
    }
    // F(t) rises from 0.5 at 0; double an upper bound until it passes p.
    let (mut lo, mut hi) = (0.0, 1.0);
    while student_t_cdf(hi, df) < p {
        lo = hi;
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if student_t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// P(T <= t) for Student's t with `df` degrees of freedom:
/// 1 - I_x(df / 2, 1 / 2) / 2 with x = df / (df + t^2), for t >= 0.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * regularized_incomplete_beta(df / (df + t * t), 0.5 * df, 0.5);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// I_x(a, b), by the continued fraction (Lentz's method, as in Numerical
/// Recipes' betacf), using the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) where it
/// converges faster.
pub fn regularized_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let log_front = libm::lgamma(a + b) - libm::lgamma(a) - libm::lgamma(b) + a * libm::log(x) + b * libm::log1p(-x);
    if x < (a + 1.0) / (a + b + 2.0) {
        libm::exp(log_front) * beta_continued_fraction(x, a, b) / a
    } else {
        1.0 - libm::exp(log_front) * beta_continued_fraction(1.0 - x, b, a) / b
    }
}

fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..1000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))] {
            d = 1.0 + aa * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + aa / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// The exact two-sided sign test: the probability, if each non-tied pair were
/// a fair coin, of a split at least as lopsided as `wins` to `losses`
/// (2 P(X <= min) for X ~ Binomial(wins + losses, 1/2), at most 1). Ties are
/// left out before calling. 1 when there are no pairs.
pub fn sign_test(wins: usize, losses: usize) -> f64 {
    let n = wins + losses;
    let k = wins.min(losses);
    let log_half_n = n as f64 * core::f64::consts::LN_2;
    let log_choose =
        |i: usize| libm::lgamma(n as f64 + 1.0) - libm::lgamma(i as f64 + 1.0) - libm::lgamma((n - i) as f64 + 1.0);
    let tail: f64 = (0..=k).map(|i| libm::exp(log_choose(i) - log_half_n)).sum();
    (2.0 * tail).min(1.0)
}

/// The q-quantile (0..=1) of `sorted` values with linear interpolation between
/// order statistics (numpy's default); NaN for no values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => {
            let position = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let below = position.floor() as usize;
            let above = (below + 1).min(n - 1);
            let fraction = position - below as f64;
            sorted[below] + fraction * (sorted[above] - sorted[below])
        }
    }
}

/// The indices of `keys` from largest to smallest; equal keys keep their
/// order (a stable sort by `f64::total_cmp`). An insertion sort: the lists
/// are short (spectra, classes, surface quads), and one small routine shared
/// by every caller keeps the page's wasm module small where std's sort would
/// be compiled again for each call site's closure.
pub fn largest_first(keys: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = Vec::with_capacity(keys.len());
    for i in 0..keys.len() {
        let mut at = order.len();
        while at > 0 && keys[order[at - 1]].total_cmp(&keys[i]).is_lt() {
            at -= 1;
        }
        order.insert(at, i);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_first_is_a_stable_descending_sort() {
        let keys = [1.0, 3.0, -2.0, 3.0, f64::NEG_INFINITY, 0.5, 1.0];
        let mut want: Vec<usize> = (0..keys.len()).collect();
        want.sort_by(|&a, &b| keys[b].total_cmp(&keys[a]));
        assert_eq!(largest_first(&keys), want);
        assert_eq!(largest_first(&keys), vec![1, 3, 0, 6, 5, 2, 4]);
        assert!(largest_first(&[]).is_empty());
    }

    #[test]
    fn closed_forms() {
        // 1, 2, 3, 4: mean 2.5, sample variance 5/3, error sqrt(5/12).
        let (mean, se) = mean_and_std_error(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(mean, 2.5);
        assert!((se - (5.0f64 / 12.0).sqrt()).abs() < 1e-15);
        let (mean, se) = mean_and_std_error(&[7.0]);
        assert_eq!(mean, 7.0);
        assert!(se.is_nan());
        assert!(mean_and_std_error(&[]).0.is_nan());
    }

    #[test]
    fn t_quantiles_and_intervals_match_tables() {
        // Student's t 0.975 quantiles (standard tables; scipy.stats.t.ppf agrees).
        for (df, want) in
            [(1.0, 12.706204736174707), (2.0, 4.302652729749464), (7.0, 2.364624251592784), (30.0, 2.042272456301238)]
        {
            let got = student_t_quantile(0.975, df);
            assert!((got - want).abs() < 1e-9 * want, "df {df}: {got} vs {want}");
        }
        assert!((student_t_cdf(0.0, 5.0) - 0.5).abs() < 1e-15);
        // df = 1 is the Cauchy distribution: F(t) = 1/2 + atan(t) / pi.
        for t in [-3.0, 0.5, 2.0, 40.0] {
            let cauchy = 0.5 + libm::atan(t) / std::f64::consts::PI;
            assert!((student_t_cdf(t, 1.0) - cauchy).abs() < 1e-13, "t {t}");
        }
        // 1, 2, 3, 4: mean 2.5, standard error sqrt(5/12), t(0.975, 3) = 3.182446305284263.
        let i = t_interval(&[1.0, 2.0, 3.0, 4.0]);
        let half = 3.182446305284263 * (5.0f64 / 12.0).sqrt();
        assert!((i.lo - (2.5 - half)).abs() < 1e-9 && (i.hi - (2.5 + half)).abs() < 1e-9, "{i:?}");
        assert_eq!(i.n, 4);
        assert!(i.excludes_zero(), "[0.45, 4.55]");
        assert!(!t_interval(&[-1.0, 2.0]).excludes_zero());
        let one = t_interval(&[0.3]);
        assert!(one.mean == 0.3 && one.lo.is_nan() && one.hi.is_nan() && !one.excludes_zero());
    }

    #[test]
    fn sign_test_is_the_exact_binomial_tail() {
        // 1 of 10: 2 (1 + 10) / 1024.
        assert!((sign_test(1, 9) - 22.0 / 1024.0).abs() < 1e-15);
        assert!((sign_test(9, 1) - 22.0 / 1024.0).abs() < 1e-15);
        // 0 of 5: 2 / 32; an even split is no evidence at all.
        assert!((sign_test(0, 5) - 0.0625).abs() < 1e-15);
        assert_eq!(sign_test(5, 5), 1.0);
        assert_eq!(sign_test(0, 0), 1.0);
        // 31 of 32 (the data draws): 2 * 33 / 2^32.
        assert!((sign_test(31, 1) - 66.0 / 4_294_967_296.0).abs() < 1e-22);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 8.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert!((quantile(&v, 0.025) - 1.075).abs() < 1e-15);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
