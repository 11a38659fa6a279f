//! Monte Carlo estimates: the mean of random draws and the standard error of
//! that mean (Hutchinson's trace, average-case sharpness).

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
