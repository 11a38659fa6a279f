//! Softmax cross-entropy over K classes, with optional label smoothing.
//!
//! Matches `torch.nn.CrossEntropyLoss(label_smoothing=eps)` with mean reduction:
//! the target distribution is q_k = (1 - eps) * [k == y] + eps / K.

/// Loss summed over the rows of `logits` (row-major, `rows x classes`), and
/// the number of rows whose arg-max equals the label. When `dlogits` is given
/// it receives d(sum of losses)/d logits = softmax - q, row by row.
pub fn softmax_cross_entropy(
    logits: &[f64],
    labels: &[usize],
    classes: usize,
    label_smoothing: f64,
    dlogits: Option<&mut [f64]>,
) -> (f64, usize) {
    softmax_cross_entropy_from(0.0, logits, labels, classes, label_smoothing, dlogits)
}

/// [`softmax_cross_entropy`] adding each row's loss to `loss_sum` in turn, so a
/// batch worked in pieces of rows sums its losses in exactly the order (and to
/// exactly the bits) of one call over the whole batch.
pub fn softmax_cross_entropy_from(
    mut loss_sum: f64,
    logits: &[f64],
    labels: &[usize],
    classes: usize,
    label_smoothing: f64,
    mut dlogits: Option<&mut [f64]>,
) -> (f64, usize) {
    let mut correct = 0;
    let off_target = label_smoothing / classes as f64;
    for (row_index, (row, &y)) in logits.chunks_exact(classes).zip(labels).enumerate() {
        // log-sum-exp with the max subtracted, so large logits never overflow.
        let (mut best, mut max) = (0, row[0]);
        for (k, &v) in row.iter().enumerate() {
            if v > max {
                max = v;
                best = k;
            }
        }
        // e^(v_k - max), kept in the gradient row when there is one: the
        // softmax reuses them rather than paying for the exponentials twice.
        let mut d_row = dlogits.as_deref_mut().map(|d| &mut d[row_index * classes..(row_index + 1) * classes]);
        let mut sum_exp = 0.0;
        for (k, &v) in row.iter().enumerate() {
            let e = libm::exp(v - max);
            sum_exp += e;
            if let Some(d) = d_row.as_deref_mut() {
                d[k] = e;
            }
        }
        let log_z = max + libm::log(sum_exp);
        let mut loss = 0.0;
        for (k, &v) in row.iter().enumerate() {
            let q = off_target + if k == y { 1.0 - label_smoothing } else { 0.0 };
            if q != 0.0 {
                loss -= q * (v - log_z);
            }
        }
        loss_sum += loss;
        correct += usize::from(best == y);
        if let Some(d) = d_row {
            for (k, dv) in d.iter_mut().enumerate() {
                let q = off_target + if k == y { 1.0 - label_smoothing } else { 0.0 };
                *dv = *dv / sum_exp - q;
            }
        }
    }
    (loss_sum, correct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_closed_form_for_two_classes() {
        // logits (0, 0): loss ln 2, gradient (0.5 - 1, 0.5).
        let mut d = [0.0; 2];
        let (l, _) = softmax_cross_entropy(&[0.0, 0.0], &[0], 2, 0.0, Some(&mut d));
        assert!((l - std::f64::consts::LN_2).abs() < 1e-15);
        assert_eq!(d, [-0.5, 0.5]);
    }

    #[test]
    fn label_smoothing_matches_pytorch() {
        // The definition torch.nn.functional.cross_entropy(..., label_smoothing=0.1) uses,
        // written out by hand: -sum_k q_k log softmax_k.
        let logits = [1.0f64, 2.0, 0.5];
        let log_z = (1f64.exp() + 2f64.exp() + 0.5f64.exp()).ln();
        let q = [0.9 + 0.1 / 3.0, 0.1 / 3.0, 0.1 / 3.0];
        let expected: f64 = -(0..3).map(|k| q[k] * (logits[k] - log_z)).sum::<f64>();
        let (l, correct) = softmax_cross_entropy(&logits, &[0], 3, 0.1, None);
        assert!((l - expected).abs() < 1e-14);
        assert_eq!(correct, 0);
    }

    #[test]
    fn huge_logits_stay_finite() {
        let (l, c) = softmax_cross_entropy(&[1000.0, -1000.0], &[0], 2, 0.0, None);
        assert!(l.is_finite() && l < 1e-12);
        assert_eq!(c, 1);
    }
}
