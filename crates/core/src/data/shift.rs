//! Distribution shifts: how the out-of-distribution (OOD) test set differs
//! from the training distribution.
//!
//! Each shift maps its severity s in [0, 1] to a physical amount; s = 0 is no
//! shift at all (the OOD set is then just another draw from the training
//! distribution). The mappings:
//!
//! | kind            | severity s means                                                  |
//! |-----------------|-------------------------------------------------------------------|
//! | `none`          | nothing: a fresh in-distribution draw                             |
//! | `translate`     | move every point by 1.5 s along (1, 1)/sqrt 2                      |
//! | `rotate`        | rotate every point by 90 s degrees (counter-clockwise) about 0    |
//! | `scale`         | multiply every coordinate by 1 + s                                |
//! | `noise`         | add extra Gaussian noise of std 0.5 s                             |
//! | `class_prior`   | class k gets weight (1 - 0.9 s)^k relative to class 0             |
//! | `spurious_flip` | the spurious feature agrees with the label with p + s (1 - 2 p)   |
//!
//! The geometric shifts (translate, rotate, scale, noise) move points; the
//! other two change how points are drawn (which labels, which x2).

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use super::{ShiftConfig, ShiftKind};
use crate::rng::Rng;

/// Distance moved at full severity; about 1.06 along each axis.
pub const MAX_TRANSLATION: f64 = 1.5;
/// Rotation at full severity, in degrees.
pub const MAX_ROTATION_DEGREES: f64 = 90.0;
/// Extra noise std at full severity.
pub const MAX_EXTRA_NOISE: f64 = 0.5;
/// At full severity each class is 10 times rarer than the one before it.
pub const MAX_PRIOR_DECAY: f64 = 0.9;

/// The vector every point moves by under `translate`: 1.5 s (1, 1)/sqrt 2.
pub fn translation(severity: f64) -> [f64; 2] {
    let d = MAX_TRANSLATION * severity * FRAC_1_SQRT_2;
    [d, d]
}

/// The angle of `rotate`, in degrees: 90 s.
pub fn rotation_degrees(severity: f64) -> f64 {
    MAX_ROTATION_DEGREES * severity
}

/// The factor of `scale`: 1 + s.
pub fn scale_factor(severity: f64) -> f64 {
    1.0 + severity
}

/// The std of the extra noise of `noise`: 0.5 s.
pub fn extra_noise_std(severity: f64) -> f64 {
    MAX_EXTRA_NOISE * severity
}

/// The relative weight of each class under `class_prior`: (1 - 0.9 s)^k.
/// With s = 1 and two classes that is 1 : 0.1, i.e. ten to one.
pub fn prior_weights(classes: usize, severity: f64) -> Vec<f64> {
    let ratio = 1.0 - MAX_PRIOR_DECAY * severity;
    (0..classes).map(|k| libm::pow(ratio, k as f64)).collect()
}

/// Splits `n` points over the classes in proportion to `prior_weights`, by
/// largest remainder, so the total is exactly `n` and the split is
/// deterministic (no sampling noise on top of the shift). At s = 0 this is
/// the balanced split.
pub fn prior_counts(n: usize, classes: usize, severity: f64) -> Vec<usize> {
    let weights = prior_weights(classes, severity);
    let total: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| n as f64 * w / total).collect();
    let mut counts: Vec<usize> = exact.iter().map(|e| *e as usize).collect();
    // Hand the points lost to rounding down to the largest fractional parts
    // (ties go to the lower class, the stable sort keeps their order).
    let fractions: Vec<f64> = exact.iter().zip(&counts).map(|(e, &c)| e - c as f64).collect();
    let order = crate::stats::largest_first(&fractions);
    let missing = n.saturating_sub(counts.iter().sum::<usize>());
    for &k in order.iter().take(missing) {
        counts[k] += 1;
    }
    counts
}

/// The probability that the spurious feature agrees with the label in the
/// OOD set under `spurious_flip`: p + s (1 - 2 p), moving linearly from the
/// training value p (s = 0) to 1 - p (s = 1, e.g. 0.9 becomes 0.1).
pub fn ood_agreement(train_agreement: f64, severity: f64) -> f64 {
    train_agreement + severity * (1.0 - 2.0 * train_agreement)
}

/// Where one point goes under the deterministic geometric shifts (translate,
/// rotate, scale); every other kind leaves it where it is.
pub fn shift_point(p: [f64; 2], shift: &ShiftConfig) -> [f64; 2] {
    let s = shift.severity;
    match shift.kind {
        ShiftKind::Translate => {
            let [dx, dy] = translation(s);
            [p[0] + dx, p[1] + dy]
        }
        ShiftKind::Rotate => {
            let angle = rotation_degrees(s) * PI / 180.0;
            let (sin, cos) = (libm::sin(angle), libm::cos(angle));
            [cos * p[0] - sin * p[1], sin * p[0] + cos * p[1]]
        }
        ShiftKind::Scale => {
            let f = scale_factor(s);
            [f * p[0], f * p[1]]
        }
        ShiftKind::None | ShiftKind::Noise | ShiftKind::ClassPrior | ShiftKind::SpuriousFlip => p,
    }
}

/// Applies a geometric shift (translate, rotate, scale, noise) to already
/// drawn points in place; labels are never touched. `rng` is only used by
/// `noise`, for its extra jitter. The label-level shifts (`class_prior`,
/// `spurious_flip`) and `none` leave the points unchanged: they act while
/// drawing, see `make_splits`.
pub fn apply_geometric(points: &mut [[f64; 2]], shift: &ShiftConfig, rng: &mut Rng) {
    if shift.kind == ShiftKind::Noise {
        let std = extra_noise_std(shift.severity);
        for p in points.iter_mut() {
            p[0] += std * rng.normal();
            p[1] += std * rng.normal();
        }
    } else {
        for p in points.iter_mut() {
            *p = shift_point(*p, shift);
        }
    }
}

/// A one-line, human-readable account of the shift, for the UI and the CLI,
/// e.g. "rotated by 45 degrees about the origin".
pub fn describe(shift: &ShiftConfig) -> String {
    let s = shift.severity;
    match shift.kind {
        ShiftKind::None => "no shift: a fresh draw from the training distribution".to_string(),
        ShiftKind::Translate => {
            format!("translated by {} along the diagonal (1, 1)/sqrt2", number(MAX_TRANSLATION * s))
        }
        ShiftKind::Rotate => format!("rotated by {} degrees about the origin", number(rotation_degrees(s))),
        ShiftKind::Scale => format!("scaled by {}x about the origin", number(scale_factor(s))),
        ShiftKind::Noise => format!("extra Gaussian noise with std {} added", number(extra_noise_std(s))),
        ShiftKind::ClassPrior => format!(
            "class k drawn with weight {}^k relative to class 0 (class 0 : class 1 = {} : 1)",
            number(1.0 - MAX_PRIOR_DECAY * s),
            number(1.0 / (1.0 - MAX_PRIOR_DECAY * s)),
        ),
        ShiftKind::SpuriousFlip => format!(
            "spurious feature x2 flipped {}%: its agreement with the label goes from p to p + {} (1 - 2p)",
            number(100.0 * s),
            number(s),
        ),
    }
}

/// A number with at most two decimals and no trailing zeros: 45, 22.5, 1.06.
fn number(x: f64) -> String {
    let text = format!("{x:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataConfig;

    fn norm(p: [f64; 2]) -> f64 {
        libm::sqrt(p[0] * p[0] + p[1] * p[1])
    }

    fn moons(seed: u64) -> crate::data::Dataset {
        let data = DataConfig { n_train: 1000, ..DataConfig::default() };
        crate::data::make_splits(&data, &ShiftConfig { kind: ShiftKind::None, severity: 0.0 }, seed).train
    }

    #[test]
    fn rotation_keeps_norms_and_labels_and_turns_by_the_angle() {
        let ds = moons(4);
        let shift = ShiftConfig { kind: ShiftKind::Rotate, severity: 0.5 };
        let mut points = ds.points.clone();
        apply_geometric(&mut points, &shift, &mut Rng::new(0));
        for (before, after) in ds.points.iter().zip(&points) {
            assert!((norm(*before) - norm(*after)).abs() < 1e-12);
            // Rotated by 45 degrees: the angle between them has cos = 1/sqrt2.
            let dot = before[0] * after[0] + before[1] * after[1];
            assert!((dot / (norm(*before) * norm(*after)) - FRAC_1_SQRT_2).abs() < 1e-9);
        }
        // A quarter turn maps (1, 0) to (0, 1).
        let q = shift_point([1.0, 0.0], &ShiftConfig { kind: ShiftKind::Rotate, severity: 1.0 });
        assert!(q[0].abs() < 1e-12 && (q[1] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn scale_multiplies_norms_by_one_plus_s() {
        let ds = moons(5);
        for s in [0.0, 0.3, 1.0] {
            let mut points = ds.points.clone();
            apply_geometric(&mut points, &ShiftConfig { kind: ShiftKind::Scale, severity: s }, &mut Rng::new(0));
            for (before, after) in ds.points.iter().zip(&points) {
                assert!((norm(*after) - (1.0 + s) * norm(*before)).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn translation_moves_every_point_by_the_documented_vector() {
        let ds = moons(6);
        let mut points = ds.points.clone();
        apply_geometric(&mut points, &ShiftConfig { kind: ShiftKind::Translate, severity: 1.0 }, &mut Rng::new(0));
        let d = 1.5 / libm::sqrt(2.0);
        for (before, after) in ds.points.iter().zip(&points) {
            assert!((after[0] - before[0] - d).abs() < 1e-12 && (after[1] - before[1] - d).abs() < 1e-12);
        }
        assert!((norm(translation(1.0)) - 1.5).abs() < 1e-12);
    }

    #[test]
    fn extra_noise_has_the_documented_std() {
        let n = 20_000;
        let mut points = vec![[0.0, 0.0]; n];
        apply_geometric(&mut points, &ShiftConfig { kind: ShiftKind::Noise, severity: 0.6 }, &mut Rng::new(7));
        let var = points.iter().map(|p| p[0] * p[0] + p[1] * p[1]).sum::<f64>() / (2 * n) as f64;
        assert!((libm::sqrt(var) - 0.3).abs() < 0.01, "std {}", libm::sqrt(var));
    }

    #[test]
    fn label_shifts_leave_points_alone() {
        for kind in [ShiftKind::None, ShiftKind::ClassPrior, ShiftKind::SpuriousFlip] {
            let mut points = vec![[0.3, -0.7], [1.0, 2.0]];
            apply_geometric(&mut points, &ShiftConfig { kind, severity: 1.0 }, &mut Rng::new(0));
            assert_eq!(points, vec![[0.3, -0.7], [1.0, 2.0]]);
        }
    }

    #[test]
    fn prior_counts_follow_the_weights() {
        assert_eq!(prior_counts(1100, 2, 1.0), vec![1000, 100]);
        assert_eq!(prior_counts(10, 2, 0.0), vec![5, 5]);
        assert_eq!(prior_counts(7, 3, 0.0).iter().sum::<usize>(), 7);
        for (n, k, s) in [(500, 2, 0.5), (999, 8, 1.0), (4, 5, 0.7), (20_000, 3, 0.25)] {
            let counts = prior_counts(n, k, s);
            assert_eq!(counts.iter().sum::<usize>(), n);
            let w = prior_weights(k, s);
            let total: f64 = w.iter().sum();
            for (c, w) in counts.iter().zip(&w) {
                assert!((*c as f64 - n as f64 * w / total).abs() < 1.0);
            }
        }
    }

    #[test]
    fn ood_agreement_moves_from_p_to_one_minus_p() {
        assert!((ood_agreement(0.9, 0.0) - 0.9).abs() < 1e-12);
        assert!((ood_agreement(0.9, 0.5) - 0.5).abs() < 1e-12);
        assert!((ood_agreement(0.9, 1.0) - 0.1).abs() < 1e-12);
        assert!((ood_agreement(0.5, 0.7) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn descriptions_read_well() {
        let d = |kind, severity| describe(&ShiftConfig { kind, severity });
        assert_eq!(d(ShiftKind::Rotate, 0.5), "rotated by 45 degrees about the origin");
        assert_eq!(d(ShiftKind::Rotate, 0.25), "rotated by 22.5 degrees about the origin");
        assert_eq!(d(ShiftKind::Scale, 1.0), "scaled by 2x about the origin");
        assert_eq!(d(ShiftKind::Translate, 1.0), "translated by 1.5 along the diagonal (1, 1)/sqrt2");
        assert!(d(ShiftKind::ClassPrior, 1.0).contains("= 10 : 1"));
        for kind in ShiftKind::ALL {
            let text = d(kind, 0.3);
            assert!(!text.is_empty() && !text.contains('\n'));
        }
    }
}
