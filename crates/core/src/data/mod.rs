//! Synthetic 2D datasets and the distribution shifts applied to them.
//!
//! A run trains on `train`, and is tested on `id_test` (same distribution)
//! and on `ood_test` (the same kind of data with a [`ShiftConfig`] applied).
//! The datasets live in [`generators`], the shifts in [`shift`]; this file
//! holds the configuration types, their validation and [`make_splits`].

pub mod generators;
pub mod label_noise;
pub mod shift;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{check_count, check_range, ConfigError};
use crate::rng::Rng;

pub use shift::{apply_geometric, describe};

/// Labelled 2D points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// One `[x, y]` per point, mostly within [-1.5, 1.5]^2 before a shift.
    pub points: Vec<[f64; 2]>,
    /// The class of each point, in `0..classes`.
    pub labels: Vec<usize>,
    /// How many classes the task has (2, or `DataConfig::classes` for blobs),
    /// even if a class-prior shift left some of them without points.
    pub classes: usize,
}

impl Dataset {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// True when the set has no points.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// The points as one row-major `len x 2` slice, the model's input layout.
    pub fn flat_points(&self) -> &[f64] {
        self.points.as_flattened()
    }
}

/// Which synthetic task to learn; see [`generators`] for the exact recipes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// Two interleaving half circles.
    Moons,
    /// A small circle inside a large one.
    Circles,
    /// Four quadrants, label = whether x * y > 0.
    Xor,
    /// Two interleaved spiral arms.
    Spirals,
    /// `classes` Gaussian blobs on a circle.
    Blobs,
    /// x1 predicts the label robustly but noisily, x2 cleanly but only with
    /// probability `spurious_agreement` (a 2D Colored MNIST).
    Spurious,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// How the training and test data are generated: which dataset, how many points, and the shift.
pub struct DataConfig {
    /// Which 2D dataset to draw points from.
    pub dataset: DatasetKind,
    /// Training points, in [4, 5000].
    pub n_train: usize,
    /// Points in each of the two test sets, in [4, 20000].
    pub n_test: usize,
    /// Std of the Gaussian noise added to every coordinate, in [0, 1].
    pub noise: f64,
    /// Number of classes, in [2, 8]. Only `blobs` reads it; every other
    /// dataset has exactly 2 classes and ignores this field.
    pub classes: usize,
    /// Probability that the spurious feature x2 agrees with the label in
    /// training, in [0.5, 1]. Only the `spurious` dataset reads it.
    pub spurious_agreement: f64,
    /// Fraction of training labels flipped to another class, in [0, 0.5]
    /// (see [`label_noise`]); the test sets stay clean. Left out of the JSON at 0,
    /// so configs written before it existed read and write unchanged.
    #[serde(skip_serializing_if = "is_zero")]
    pub label_noise: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: DatasetKind::Moons,
            n_train: 200,
            n_test: 500,
            noise: 0.1,
            classes: 2,
            spurious_agreement: 0.9,
            label_noise: 0.0,
        }
    }
}

/// How the OOD test set is shifted; see [`shift`] for what severity means for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftKind {
    /// No shift: the OOD set is another in-distribution draw.
    None,
    /// Move by 1.5 s along (1, 1)/sqrt 2.
    Translate,
    /// Rotate by 90 s degrees about the origin.
    Rotate,
    /// Multiply coordinates by 1 + s.
    Scale,
    /// Add Gaussian noise with std 0.5 s.
    Noise,
    /// Class k drawn with weight (1 - 0.9 s)^k relative to class 0.
    ClassPrior,
    /// The spurious feature agrees with the label with probability
    /// p + s (1 - 2p) instead of p. Spurious dataset only.
    SpuriousFlip,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// The distribution shift applied to the out-of-distribution test set.
pub struct ShiftConfig {
    /// What kind of shift to apply; `severity` says how much.
    pub kind: ShiftKind,
    /// How strong the shift is, in [0, 1]; 0 means no shift.
    pub severity: f64,
}

impl Default for ShiftConfig {
    fn default() -> Self {
        ShiftConfig { kind: ShiftKind::Rotate, severity: 0.5 }
    }
}

/// The three sets every run has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Splits {
    /// The data the models are trained on.
    pub train: Dataset,
    /// In-distribution test set: drawn like the training data.
    pub id_test: Dataset,
    /// Out-of-distribution test set: drawn with the configured shift applied.
    pub ood_test: Dataset,
}

impl DatasetKind {
    /// Every dataset kind, in the order the page lists them.
    pub const ALL: [Self; 6] = [Self::Moons, Self::Circles, Self::Xor, Self::Spirals, Self::Blobs, Self::Spurious];

    /// The name used in JSON configs and HTML attributes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Moons => "moons",
            Self::Circles => "circles",
            Self::Xor => "xor",
            Self::Spirals => "spirals",
            Self::Blobs => "blobs",
            Self::Spurious => "spurious",
        }
    }
}

impl ShiftKind {
    /// Every shift kind, in the order the page lists them.
    pub const ALL: [Self; 7] =
        [Self::None, Self::Translate, Self::Rotate, Self::Scale, Self::Noise, Self::ClassPrior, Self::SpuriousFlip];

    /// The name used in JSON configs and HTML attributes.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Translate => "translate",
            Self::Rotate => "rotate",
            Self::Scale => "scale",
            Self::Noise => "noise",
            Self::ClassPrior => "class_prior",
            Self::SpuriousFlip => "spurious_flip",
        }
    }
}

/// Finds the variant called `text`. The error has an empty field, for the
/// caller to fill in with `ConfigError::within("dataset")` or the like.
fn parse_name<T: Copy>(text: &str, all: &[T], name: fn(T) -> &'static str, what: &str) -> Result<T, ConfigError> {
    all.iter().copied().find(|&v| name(v) == text).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|&v| name(v)).collect();
        ConfigError::new("", format!("unknown {what} `{text}`; expected one of: {}", names.join(", ")))
    })
}

impl FromStr for DatasetKind {
    type Err = ConfigError;
    fn from_str(text: &str) -> Result<Self, ConfigError> {
        parse_name(text, &Self::ALL, Self::name, "dataset")
    }
}

impl FromStr for ShiftKind {
    type Err = ConfigError;
    fn from_str(text: &str) -> Result<Self, ConfigError> {
        parse_name(text, &Self::ALL, Self::name, "shift kind")
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for ShiftKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl DataConfig {
    /// Checks every field; the error names the field as it appears in JSON
    /// (e.g. `n_train`). `classes` is range-checked for every dataset but only
    /// used by `blobs`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_count("n_train", self.n_train, 4, 5000)?;
        check_count("n_test", self.n_test, 4, 20_000)?;
        check_range("noise", self.noise, 0.0, 1.0)?;
        check_count("classes", self.classes, 2, 8)?;
        check_range("spurious_agreement", self.spurious_agreement, 0.5, 1.0)?;
        check_range("label_noise", self.label_noise, 0.0, label_noise::MAX_LABEL_NOISE).map_err(|e| {
            ConfigError::new(e.field, format!("{} (the fraction of training labels flipped)", e.message))
        })?;
        // Balanced sets need at least one point per class.
        let k = self.num_classes();
        for (field, n) in [("n_train", self.n_train), ("n_test", self.n_test)] {
            if n < k {
                return Err(ConfigError::new(
                    field,
                    format!("must be at least `classes` ({k}) so that every class gets a point, got {n}"),
                ));
            }
        }
        Ok(())
    }

    /// The number of classes of the task: `classes` for blobs, 2 otherwise.
    pub fn num_classes(&self) -> usize {
        if self.dataset == DatasetKind::Blobs {
            self.classes
        } else {
            2
        }
    }
}

impl ShiftConfig {
    /// Checks the severity, and that `spurious_flip` is only used with the
    /// spurious dataset (it has no spurious feature to flip otherwise).
    pub fn validate(&self, data: &DataConfig) -> Result<(), ConfigError> {
        check_range("severity", self.severity, 0.0, 1.0)?;
        if self.kind == ShiftKind::SpuriousFlip && data.dataset != DatasetKind::Spurious {
            return Err(ConfigError::new(
                "kind",
                format!("spurious_flip only applies to the spurious dataset, got dataset `{}`", data.dataset),
            ));
        }
        Ok(())
    }
}

/// Draws the three sets of a run from `seed`.
///
/// Each set has its own random stream ("data-train", "data-id-test",
/// "data-ood-test"), so the sets are independent and changing `n_train`
/// leaves the test sets alone. The train and ID sets are class-balanced.
/// The OOD set is drawn like the ID set (with `class_prior` or
/// `spurious_flip` changing the class counts or the agreement while drawing),
/// then the geometric shifts move its points; its extra noise has a stream
/// of its own ("data-ood-noise"). So for the geometric shifts the OOD sets at
/// different severities are the same draw moved by different amounts.
///
/// Expects configs that passed `validate`.
pub fn make_splits(data: &DataConfig, shift: &ShiftConfig, seed: u64) -> Splits {
    let classes = data.num_classes();
    let p = data.spurious_agreement;
    let in_distribution = |n, purpose| {
        generators::draw(data, &generators::balanced_counts(n, classes), p, &mut Rng::derive(seed, purpose))
    };
    let mut train = in_distribution(data.n_train, "data-train");
    // Its own stream, drawn from only when there is noise: a clean run is unchanged.
    label_noise::flip_labels(&mut train, data.label_noise, &mut Rng::derive(seed, "data-label-noise"));
    let id_test = in_distribution(data.n_test, "data-id-test");
    let ood_test = ood_test_set(data, shift, seed);
    Splits { train, id_test, ood_test }
}

/// The OOD test set of [`make_splits`] alone: a trained network can be tested
/// on other shifts without drawing (or training on) anything else again,
/// since the training and ID sets do not depend on the shift.
pub fn ood_test_set(data: &DataConfig, shift: &ShiftConfig, seed: u64) -> Dataset {
    let classes = data.num_classes();
    let p = data.spurious_agreement;
    let s = shift.severity;
    let counts = match shift.kind {
        ShiftKind::ClassPrior => shift::prior_counts(data.n_test, classes, s),
        _ => generators::balanced_counts(data.n_test, classes),
    };
    let agreement = match shift.kind {
        ShiftKind::SpuriousFlip => shift::ood_agreement(p, s),
        _ => p,
    };
    let mut ood_test = generators::draw(data, &counts, agreement, &mut Rng::derive(seed, "data-ood-test"));
    apply_geometric(&mut ood_test.points, shift, &mut Rng::derive(seed, "data-ood-noise"));
    ood_test
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(dataset: DatasetKind) -> DataConfig {
        DataConfig { dataset, classes: if dataset == DatasetKind::Blobs { 5 } else { 2 }, ..DataConfig::default() }
    }

    fn shift(kind: ShiftKind, severity: f64) -> ShiftConfig {
        ShiftConfig { kind, severity }
    }

    fn class_counts(ds: &Dataset) -> Vec<usize> {
        let mut counts = vec![0; ds.classes];
        for &l in &ds.labels {
            counts[l] += 1;
        }
        counts
    }

    fn mean(ds: &Dataset) -> [f64; 2] {
        let n = ds.len() as f64;
        [ds.points.iter().map(|p| p[0]).sum::<f64>() / n, ds.points.iter().map(|p| p[1]).sum::<f64>() / n]
    }

    /// Fraction of points whose x2 has the sign of the label (class 1 = +).
    fn agreement(ds: &Dataset) -> f64 {
        let agree = ds.points.iter().zip(&ds.labels).filter(|(p, &l)| (p[1] > 0.0) == (l == 1)).count();
        agree as f64 / ds.len() as f64
    }

    #[test]
    fn same_seed_same_splits_other_seed_other_splits() {
        for kind in DatasetKind::ALL {
            let d = data(kind);
            let s = shift(ShiftKind::Noise, 0.4);
            assert_eq!(make_splits(&d, &s, 11), make_splits(&d, &s, 11));
            let (a, b) = (make_splits(&d, &s, 11), make_splits(&d, &s, 12));
            assert_ne!(a.train.points, b.train.points);
            assert_ne!(a.ood_test.points, b.ood_test.points);
        }
    }

    #[test]
    fn label_noise_flips_training_labels_only() {
        let clean = DataConfig { n_train: 300, ..DataConfig::default() };
        let noisy = DataConfig { label_noise: 0.2, ..clean.clone() };
        let s = shift(ShiftKind::Rotate, 0.5);
        let (a, b) = (make_splits(&clean, &s, 4), make_splits(&noisy, &s, 4));
        assert_eq!(a.train.points, b.train.points);
        assert_eq!(a.train.labels.iter().zip(&b.train.labels).filter(|(x, y)| x != y).count(), 60);
        assert_eq!((a.id_test, a.ood_test), (b.id_test, b.ood_test), "the test sets stay clean");
        assert_eq!(make_splits(&clean, &s, 4).ood_test, ood_test_set(&clean, &s, 4));
        let e = DataConfig { label_noise: 0.6, ..clean }.validate().unwrap_err();
        assert_eq!(e.field, "label_noise");
        assert!(e.message.contains("[0, 0.5]") && e.message.contains("labels flipped"), "{e}");
    }

    #[test]
    fn the_three_sets_are_independent_draws() {
        let d = DataConfig { n_train: 500, n_test: 500, ..DataConfig::default() };
        let s = make_splits(&d, &shift(ShiftKind::None, 0.0), 3);
        assert_ne!(s.train.points, s.id_test.points);
        assert_ne!(s.id_test.points, s.ood_test.points);
    }

    #[test]
    fn counts_classes_and_balance() {
        for kind in DatasetKind::ALL {
            let d = DataConfig { n_train: 301, n_test: 403, ..data(kind) };
            let s = make_splits(&d, &shift(ShiftKind::Rotate, 0.5), 1);
            let k = if kind == DatasetKind::Blobs { 5 } else { 2 };
            for (set, n) in [(&s.train, 301), (&s.id_test, 403), (&s.ood_test, 403)] {
                assert_eq!(set.len(), n);
                assert_eq!(set.points.len(), n);
                assert_eq!(set.classes, k, "{kind:?}");
                let counts = class_counts(set);
                assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1, "{kind:?} {counts:?}");
            }
        }
    }

    #[test]
    fn classes_is_ignored_except_for_blobs() {
        let moons = make_splits(&DataConfig { classes: 7, ..data(DatasetKind::Moons) }, &ShiftConfig::default(), 1);
        assert_eq!(moons.train.classes, 2);
        for k in 2..=8 {
            let blobs = make_splits(&DataConfig { classes: k, ..data(DatasetKind::Blobs) }, &ShiftConfig::default(), 1);
            assert_eq!(blobs.train.classes, k);
            assert!(class_counts(&blobs.train).iter().all(|&c| c > 0));
        }
    }

    #[test]
    fn spurious_agreement_in_train_and_after_the_flip() {
        for (p, s) in [(0.9, 1.0), (0.9, 0.5), (0.8, 0.25), (1.0, 1.0)] {
            let d = DataConfig { n_train: 5000, n_test: 10_000, spurious_agreement: p, ..data(DatasetKind::Spurious) };
            let splits = make_splits(&d, &shift(ShiftKind::SpuriousFlip, s), 5);
            let expected_ood = p + s * (1.0 - 2.0 * p);
            assert!((agreement(&splits.train) - p).abs() < 0.02, "train {}", agreement(&splits.train));
            assert!((agreement(&splits.id_test) - p).abs() < 0.02);
            assert!((agreement(&splits.ood_test) - expected_ood).abs() < 0.02, "ood {}", agreement(&splits.ood_test));
        }
    }

    #[test]
    fn class_prior_shift_reweights_classes() {
        let d = DataConfig { n_test: 1100, ..data(DatasetKind::Moons) };
        let ood = make_splits(&d, &shift(ShiftKind::ClassPrior, 1.0), 2).ood_test;
        assert_eq!(class_counts(&ood), vec![1000, 100]);
        let d = DataConfig { n_test: 6000, classes: 3, ..data(DatasetKind::Blobs) };
        let ood = make_splits(&d, &shift(ShiftKind::ClassPrior, 0.5), 2).ood_test;
        // Weights 1, 0.55, 0.3025 of a total 1.8525.
        let c = class_counts(&ood);
        assert_eq!(c.iter().sum::<usize>(), 6000);
        assert!((c[1] as f64 / c[0] as f64 - 0.55).abs() < 0.01, "{c:?}");
        assert!((c[2] as f64 / c[0] as f64 - 0.3025).abs() < 0.01, "{c:?}");
    }

    #[test]
    fn translation_moves_the_mean() {
        let d = DataConfig { n_test: 5000, ..data(DatasetKind::Circles) };
        let splits = make_splits(&d, &shift(ShiftKind::Translate, 0.8), 9);
        let (id, ood) = (mean(&splits.id_test), mean(&splits.ood_test));
        let expected = 1.5 * 0.8 / libm::sqrt(2.0);
        assert!((ood[0] - id[0] - expected).abs() < 0.05 && (ood[1] - id[1] - expected).abs() < 0.05);
    }

    #[test]
    fn geometric_shifts_move_the_unshifted_draw() {
        // The OOD set of a geometric shift is the severity-0 OOD set, moved.
        let d = data(DatasetKind::Spirals);
        let base = make_splits(&d, &shift(ShiftKind::None, 0.0), 4).ood_test;
        let rotated = make_splits(&d, &shift(ShiftKind::Rotate, 0.3), 4).ood_test;
        let mut moved = base.points.clone();
        apply_geometric(&mut moved, &shift(ShiftKind::Rotate, 0.3), &mut Rng::new(0));
        assert_eq!(rotated.points, moved);
        assert_eq!(rotated.labels, base.labels);
    }

    #[test]
    fn severity_zero_is_in_distribution() {
        for kind in ShiftKind::ALL {
            let d = DataConfig { n_test: 10_000, ..data(DatasetKind::Spurious) };
            let splits = make_splits(&d, &shift(kind, 0.0), 8);
            let (id, ood) = (&splits.id_test, &splits.ood_test);
            assert_ne!(id.points, ood.points, "{kind:?}: OOD should be its own draw");
            assert_eq!(class_counts(id), class_counts(ood), "{kind:?}");
            let (mi, mo) = (mean(id), mean(ood));
            assert!((mi[0] - mo[0]).abs() < 0.04 && (mi[1] - mo[1]).abs() < 0.04, "{kind:?} {mi:?} {mo:?}");
            assert!((agreement(id) - agreement(ood)).abs() < 0.02, "{kind:?}");
        }
    }

    #[test]
    fn full_severity_stays_mostly_in_view() {
        for dataset in DatasetKind::ALL {
            for kind in ShiftKind::ALL {
                let d = DataConfig { n_test: 2000, noise: 0.2, ..data(dataset) };
                let ood = make_splits(&d, &shift(kind, 1.0), 6).ood_test;
                let inside = ood.points.iter().filter(|p| p[0].abs() <= 3.0 && p[1].abs() <= 3.0).count();
                assert!(inside as f64 >= 0.95 * ood.len() as f64, "{dataset:?} {kind:?}: {inside} in view");
            }
        }
    }

    #[test]
    fn validation_names_the_field() {
        let field = |d: DataConfig| d.validate().unwrap_err().field;
        assert!(DataConfig::default().validate().is_ok());
        assert_eq!(field(DataConfig { n_train: 3, ..DataConfig::default() }), "n_train");
        assert_eq!(field(DataConfig { n_train: 5001, ..DataConfig::default() }), "n_train");
        assert_eq!(field(DataConfig { n_test: 20_001, ..DataConfig::default() }), "n_test");
        assert_eq!(field(DataConfig { noise: -0.1, ..DataConfig::default() }), "noise");
        assert_eq!(field(DataConfig { noise: f64::NAN, ..DataConfig::default() }), "noise");
        assert_eq!(field(DataConfig { classes: 9, ..DataConfig::default() }), "classes");
        assert_eq!(field(DataConfig { spurious_agreement: 0.4, ..DataConfig::default() }), "spurious_agreement");
        let too_few = DataConfig { n_train: 5, classes: 8, ..data(DatasetKind::Blobs) };
        assert_eq!(field(too_few), "n_train");
        assert!(DataConfig { n_train: 5, classes: 8, ..data(DatasetKind::Moons) }.validate().is_ok());
        let err = DataConfig { n_test: 2, ..DataConfig::default() }.validate().unwrap_err();
        assert!(err.message.contains("[4, 20000]"), "{err}");

        let moons = DataConfig::default();
        let spurious = data(DatasetKind::Spurious);
        assert!(ShiftConfig::default().validate(&moons).is_ok());
        assert_eq!(shift(ShiftKind::Rotate, 1.5).validate(&moons).unwrap_err().field, "severity");
        let err = shift(ShiftKind::SpuriousFlip, 0.5).validate(&moons).unwrap_err();
        assert_eq!(err.field, "kind");
        assert!(err.message.contains("spurious dataset"), "{err}");
        assert!(shift(ShiftKind::SpuriousFlip, 0.5).validate(&spurious).is_ok());
        assert_eq!(err.within("shift").field, "shift.kind");
    }

    #[test]
    fn names_match_serde_and_parse_back() {
        for kind in DatasetKind::ALL {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.name()));
            assert_eq!(kind.name().parse::<DatasetKind>().unwrap(), kind);
        }
        for kind in ShiftKind::ALL {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.name()));
            assert_eq!(kind.name().parse::<ShiftKind>().unwrap(), kind);
        }
        let err = "moon".parse::<DatasetKind>().unwrap_err().within("dataset");
        assert_eq!(err.field, "dataset");
        assert!(err.message.contains("moons, circles, xor, spirals, blobs, spurious"), "{err}");
        let err = "classprior".parse::<ShiftKind>().unwrap_err();
        assert!(err.message.contains("class_prior") && err.message.contains("spurious_flip"), "{err}");
    }
}
