//! What a run records as it trains: train / ID / OOD loss and accuracy.

use serde::{Deserialize, Serialize};

/// One logged point of a run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// Number of optimiser steps taken when the point was logged.
    pub step: usize,
    /// Learning rate the schedule gives at this step.
    pub lr: f64,
    /// Mean cross-entropy (nats) on the training set.
    pub train_loss: f64,
    /// Fraction of the training set classified correctly, 0 to 1.
    pub train_acc: f64,
    /// Mean cross-entropy on the in-distribution test set (same distribution as training).
    pub id_loss: f64,
    /// Fraction of the in-distribution test set classified correctly, 0 to 1.
    pub id_acc: f64,
    /// Mean cross-entropy on the shifted (out-of-distribution) test set.
    pub ood_loss: f64,
    /// Fraction of the shifted test set classified correctly, 0 to 1.
    pub ood_acc: f64,
    /// ||grad L_B(w)|| of the last minibatch (before any SAM perturbation).
    pub grad_norm: f64,
}

impl MetricPoint {
    /// False once a loss or the gradient norm is NaN or infinite, i.e. the run diverged.
    pub fn is_finite(&self) -> bool {
        [self.train_loss, self.id_loss, self.ood_loss, self.grad_norm].iter().all(|v| v.is_finite())
    }
}

/// A bounded metric history. When it reaches `capacity` points it keeps every
/// second one and logs half as often from then on, so memory stays flat however
/// long the page trains, while the curve still spans the whole run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct History {
    /// The logged points, oldest first.
    pub points: Vec<MetricPoint>,
    /// Current logging interval in steps.
    pub every: usize,
    /// Most points kept before thinning to every second one (at least 4).
    pub capacity: usize,
}

impl History {
    /// An empty history logging every `every` steps (at least 1) and holding up to `capacity` points (at least 4).
    pub fn new(every: usize, capacity: usize) -> Self {
        History { points: Vec::with_capacity(capacity), every: every.max(1), capacity: capacity.max(4) }
    }

    /// Whether a point should be logged at `step` under the current interval.
    pub fn is_due(&self, step: usize) -> bool {
        step.is_multiple_of(self.every)
    }

    /// Appends a point, first thinning the history and doubling `every` if it is full.
    pub fn push(&mut self, point: MetricPoint) {
        if self.points.len() >= self.capacity {
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.every *= 2;
        }
        self.points.push(point);
    }

    /// The most recent point, if any.
    pub fn last(&self) -> Option<&MetricPoint> {
        self.points.last()
    }

    /// Drops every point and restarts logging every `every` steps (at least 1).
    pub fn clear(&mut self, every: usize) {
        self.points.clear();
        self.every = every.max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(step: usize) -> MetricPoint {
        MetricPoint {
            step,
            lr: 0.1,
            train_loss: 1.0,
            train_acc: 0.5,
            id_loss: 1.0,
            id_acc: 0.5,
            ood_loss: 1.0,
            ood_acc: 0.5,
            grad_norm: 1.0,
        }
    }

    #[test]
    fn history_stays_bounded_and_spans_the_run() {
        let mut h = History::new(1, 8);
        for step in 0..1000 {
            if h.is_due(step) {
                h.push(point(step));
            }
        }
        assert!(h.points.len() <= 8);
        assert_eq!(h.points[0].step, 0);
        assert!(h.last().unwrap().step + h.every > 999, "the newest point is at most one interval old");
        assert!(h.points.windows(2).all(|w| w[0].step < w[1].step));
    }
}
