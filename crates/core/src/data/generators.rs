//! The six synthetic 2D datasets.
//!
//! Every dataset is drawn label first: we decide how many points each class
//! gets, shuffle the labels, then draw one point for each label. Drawing
//! conditioned on the label makes balanced sets exact and lets the class-prior
//! shift simply ask for other counts. All sets are centred near the origin and
//! lie mostly within [-1.5, 1.5]^2, so a shifted copy still fits the page's
//! [-3, 3]^2 view.
//!
//! Each point consumes the same random draws whatever the settings (noise is
//! drawn even when its std is 0), so two sets from the same stream line up
//! point for point; the shifts rely on this to move one fixed draw.

use std::f64::consts::PI;

use super::{DataConfig, Dataset, DatasetKind};
use crate::rng::Rng;

/// Spread of the robust feature x1 in the spurious set around its class mean
/// (+-0.5): large enough that x1 alone only gives about 84% accuracy, less
/// than x2 gives at the default agreement of 0.9, so x2 is the tempting cue.
pub const SPURIOUS_X1_STD: f64 = 0.5;
/// Distance of the spurious feature x2 from 0: a clean, easy-to-use offset.
pub const SPURIOUS_X2_OFFSET: f64 = 0.75;
/// Small built-in jitter on x2, so its two bands are not infinitely thin.
pub const SPURIOUS_X2_STD: f64 = 0.1;
/// Built-in spread of each Gaussian blob (the `noise` setting adds to it).
pub const BLOB_STD: f64 = 0.15;
/// Radius of the circle the blob centres sit on.
pub const BLOB_RADIUS: f64 = 1.0;

/// `n` points split as evenly as possible over `classes` classes; the first
/// `n % classes` classes get one extra point.
pub fn balanced_counts(n: usize, classes: usize) -> Vec<usize> {
    (0..classes).map(|k| n / classes + usize::from(k < n % classes)).collect()
}

/// Draws a dataset with exactly `counts[k]` points of class `k`, in random order.
///
/// `agreement` is the probability that the spurious feature agrees with the
/// label; only the spurious dataset reads it (the shift passes its own value).
pub fn draw(data: &DataConfig, counts: &[usize], agreement: f64, rng: &mut Rng) -> Dataset {
    let mut labels: Vec<usize> = counts.iter().enumerate().flat_map(|(k, &c)| std::iter::repeat_n(k, c)).collect();
    rng.shuffle(&mut labels);
    let classes = counts.len();
    let points = labels
        .iter()
        .map(|&label| {
            let [x, y] = clean_point(data.dataset, label, classes, agreement, rng);
            // The user's `noise`: isotropic Gaussian jitter on every dataset.
            [x + data.noise * rng.normal(), y + data.noise * rng.normal()]
        })
        .collect();
    Dataset { points, labels, classes }
}

/// One point of class `label` before the user's noise is added.
fn clean_point(kind: DatasetKind, label: usize, classes: usize, agreement: f64, rng: &mut Rng) -> [f64; 2] {
    match kind {
        DatasetKind::Moons => moon(label, rng),
        DatasetKind::Circles => circle(label, rng),
        DatasetKind::Xor => xor(label, rng),
        DatasetKind::Spirals => spiral(label, rng),
        DatasetKind::Blobs => blob(label, classes, rng),
        DatasetKind::Spurious => spurious(label, agreement, rng),
    }
}

/// Two interleaving half circles as in scikit-learn's `make_moons`, shifted
/// by (-0.5, -0.25) so their mean is the origin, then shrunk to radius 0.8 so
/// that a doubled (scale-shifted) copy still fits the view. Class 0 is the
/// upper moon. Spans x in [-1.2, 1.2], y in [-0.6, 0.6].
fn moon(label: usize, rng: &mut Rng) -> [f64; 2] {
    const RADIUS: f64 = 0.8;
    let t = rng.uniform_in(0.0, PI);
    let (s, c) = (libm::sin(t), libm::cos(t));
    let [x, y] = if label == 0 { [c - 0.5, s - 0.25] } else { [0.5 - c, 0.25 - s] };
    [RADIUS * x, RADIUS * y]
}

/// Two concentric circles: class 0 on the outer one (radius 1), class 1 on
/// the inner one (radius 0.5), as in scikit-learn's `make_circles`.
fn circle(label: usize, rng: &mut Rng) -> [f64; 2] {
    let angle = rng.uniform_in(0.0, 2.0 * PI);
    let radius = if label == 0 { 1.0 } else { 0.5 };
    [radius * libm::cos(angle), radius * libm::sin(angle)]
}

/// Uniform quadrants: |x| and |y| uniform in [0.1, 1.2] (a small gap along the
/// axes keeps the clean classes apart); label 1 when x * y > 0, i.e. the
/// first and third quadrants, label 0 in the other two.
fn xor(label: usize, rng: &mut Rng) -> [f64; 2] {
    let sx = rng.sign();
    let sy = if label == 1 { sx } else { -sx };
    [sx * rng.uniform_in(0.1, 1.2), sy * rng.uniform_in(0.1, 1.2)]
}

/// Two interleaved arms of 1.5 turns each, radius growing from 0.1 to 1.3;
/// arm 1 is arm 0 turned by half a turn. Taking t = sqrt(u) puts fewer points
/// near the crowded centre and more on the long outer turns.
fn spiral(label: usize, rng: &mut Rng) -> [f64; 2] {
    let t = libm::sqrt(rng.uniform());
    let radius = 0.1 + 1.2 * t;
    let angle = 3.0 * PI * t + label as f64 * PI;
    [radius * libm::cos(angle), radius * libm::sin(angle)]
}

/// Gaussian blobs whose centres are spread evenly on a circle of radius 1,
/// class 0 at angle 0 and class k at angle 2 pi k / classes.
fn blob(label: usize, classes: usize, rng: &mut Rng) -> [f64; 2] {
    let angle = 2.0 * PI * label as f64 / classes as f64;
    [BLOB_RADIUS * libm::cos(angle) + BLOB_STD * rng.normal(), BLOB_RADIUS * libm::sin(angle) + BLOB_STD * rng.normal()]
}

/// The spurious-correlation set (a 2D Colored MNIST). With y = -1 for class 0
/// and +1 for class 1:
/// - x1 = 0.5 y + 0.5 N(0, 1): robust (same at test time) but noisy;
/// - x2 = +-0.75 + 0.1 N(0, 1), with the sign of y with probability
///   `agreement` and the opposite sign otherwise: clean but unreliable.
fn spurious(label: usize, agreement: f64, rng: &mut Rng) -> [f64; 2] {
    let y = if label == 1 { 1.0 } else { -1.0 };
    let x1 = 0.5 * y + SPURIOUS_X1_STD * rng.normal();
    // Always draw `u`, so sets with different agreements pair up point by point.
    let agrees = rng.uniform() < agreement;
    let side = if agrees { y } else { -y };
    let x2 = side * SPURIOUS_X2_OFFSET + SPURIOUS_X2_STD * rng.normal();
    [x1, x2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dataset: DatasetKind) -> DataConfig {
        DataConfig { dataset, classes: if dataset == DatasetKind::Blobs { 5 } else { 2 }, ..DataConfig::default() }
    }

    fn sample(dataset: DatasetKind, n: usize) -> Dataset {
        let data = config(dataset);
        let counts = balanced_counts(n, data.num_classes());
        draw(&data, &counts, data.spurious_agreement, &mut Rng::derive(1, "test"))
    }

    #[test]
    fn balanced_counts_add_up_and_differ_by_at_most_one() {
        for (n, k) in [(10, 2), (11, 2), (7, 3), (4, 8), (5000, 7)] {
            let c = balanced_counts(n, k);
            assert_eq!(c.len(), k);
            assert_eq!(c.iter().sum::<usize>(), n);
            assert!(c.iter().max().unwrap() - c.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn every_dataset_is_centred_and_mostly_in_view() {
        for kind in DatasetKind::ALL {
            let ds = sample(kind, 4000);
            let n = ds.len() as f64;
            let mean_x = ds.points.iter().map(|p| p[0]).sum::<f64>() / n;
            let mean_y = ds.points.iter().map(|p| p[1]).sum::<f64>() / n;
            assert!(mean_x.abs() < 0.1 && mean_y.abs() < 0.1, "{kind:?} mean ({mean_x}, {mean_y})");
            let inside = ds.points.iter().filter(|p| p[0].abs() <= 1.6 && p[1].abs() <= 1.6).count();
            assert!(inside as f64 > 0.95 * n, "{kind:?}: only {inside} of {n} points in [-1.6, 1.6]^2");
        }
    }

    #[test]
    fn clean_xor_labels_follow_the_sign_of_the_product() {
        let data = DataConfig { dataset: DatasetKind::Xor, noise: 0.0, ..DataConfig::default() };
        let ds = draw(&data, &[50, 50], 0.9, &mut Rng::new(2));
        for (p, &l) in ds.points.iter().zip(&ds.labels) {
            assert_eq!(l == 1, p[0] * p[1] > 0.0, "{p:?} labelled {l}");
        }
    }

    #[test]
    fn clean_circles_have_their_radii() {
        let data = DataConfig { dataset: DatasetKind::Circles, noise: 0.0, ..DataConfig::default() };
        let ds = draw(&data, &[20, 20], 0.9, &mut Rng::new(3));
        for (p, &l) in ds.points.iter().zip(&ds.labels) {
            let r = libm::sqrt(p[0] * p[0] + p[1] * p[1]);
            assert!((r - if l == 0 { 1.0 } else { 0.5 }).abs() < 1e-12);
        }
    }

    #[test]
    fn spurious_x1_separates_classes_on_average() {
        let ds = sample(DatasetKind::Spurious, 4000);
        let mean_x1 = |class| {
            let xs: Vec<f64> =
                ds.points.iter().zip(&ds.labels).filter(|(_, &l)| l == class).map(|(p, _)| p[0]).collect();
            xs.iter().sum::<f64>() / xs.len() as f64
        };
        assert!((mean_x1(0) + 0.5).abs() < 0.05 && (mean_x1(1) - 0.5).abs() < 0.05);
    }
}
