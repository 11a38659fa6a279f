//! Label noise for the training set: a seeded fraction of the labels replaced
//! by another class, the setting where the literature reports SAM's largest
//! gains (Foret et al. 2021: CIFAR-10 with 40% flipped labels). The test sets
//! stay clean: they measure what the network learnt of the true rule.

use super::Dataset;
use crate::rng::Rng;

/// The most a config may flip: beyond half the labels, the noisy class is the
/// majority and "noise" is a different task.
pub const MAX_LABEL_NOISE: f64 = 0.5;

/// Replaces the labels of exactly `round(fraction * n)` points, chosen by a
/// seeded shuffle, with a uniformly drawn *other* class (so every chosen label
/// really changes). A fraction of 0 draws nothing and leaves `data` as it is.
pub fn flip_labels(data: &mut Dataset, fraction: f64, rng: &mut Rng) {
    let n = data.len();
    let flips = (fraction * n as f64).round() as usize;
    if flips == 0 || data.classes < 2 {
        return;
    }
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    for &i in &order[..flips.min(n)] {
        let other = 1 + rng.below(data.classes - 1);
        data.labels[i] = (data.labels[i] + other) % data.classes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(n: usize, classes: usize) -> Dataset {
        Dataset { points: vec![[0.0, 0.0]; n], labels: (0..n).map(|i| i % classes).collect(), classes }
    }

    #[test]
    fn flips_exactly_the_fraction_to_other_classes() {
        for (n, classes, fraction, expected) in [(200, 2, 0.2, 40), (101, 3, 0.1, 10), (10, 5, 0.5, 5), (7, 2, 0.0, 0)]
        {
            let clean = labelled(n, classes);
            let mut noisy = clean.clone();
            flip_labels(&mut noisy, fraction, &mut Rng::new(1));
            let changed = clean.labels.iter().zip(&noisy.labels).filter(|(a, b)| a != b).count();
            assert_eq!(changed, expected, "n {n}, {classes} classes, fraction {fraction}");
            assert!(noisy.labels.iter().all(|&y| y < classes));
            assert_eq!(noisy.points, clean.points);
        }
    }

    #[test]
    fn seeded() {
        let (mut a, mut b, mut c) = (labelled(100, 4), labelled(100, 4), labelled(100, 4));
        flip_labels(&mut a, 0.3, &mut Rng::new(5));
        flip_labels(&mut b, 0.3, &mut Rng::new(5));
        flip_labels(&mut c, 0.3, &mut Rng::new(6));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
