//! Learning-rate schedules. They advance once per optimiser step (not per
//! epoch), and give the same values as the matching torch.optim.lr_scheduler
//! stepped after every optimiser step, with one deliberate exception: past
//! `t_max` our cosine schedule holds at `eta_min`, while torch's
//! CosineAnnealingLR keeps following the cosine and climbs back towards the
//! base rate (its closed form has period 2 t_max). The page runs past `steps`
//! until paused, and a learning rate that rises again there would surprise a
//! student; the two agree for every step up to `t_max`.

use serde::{Deserialize, Serialize};

use crate::error::{check_count, check_range, ConfigError};

/// How the learning rate changes over optimiser steps (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// The base learning rate throughout.
    #[default]
    Constant,
    /// StepLR: lr * gamma^floor(step / step_size).
    Step {
        /// Number of optimiser steps between decays (at least 1).
        step_size: usize,
        /// Factor the rate is multiplied by at each decay (e.g. 0.1).
        gamma: f64,
    },
    /// CosineAnnealingLR (closed form): eta_min + (lr - eta_min) (1 + cos(pi t / t_max)) / 2
    /// for t <= t_max; held at eta_min after t_max (torch's would rise again: see the module docs).
    Cosine {
        /// Number of steps to anneal over; the rate reaches `eta_min` at step `t_max`.
        t_max: usize,
        /// The lowest learning rate, reached at `t_max` (0 by default).
        #[serde(default)]
        eta_min: f64,
    },
    /// LinearLR warm-up: factor rises linearly from `start_factor` to 1 over `steps`, then stays 1.
    Warmup {
        /// Number of warm-up steps before the full base rate is reached.
        steps: usize,
        /// Fraction of the base rate used at step 0 (1/3 by default, as in PyTorch).
        #[serde(default = "default_start_factor")]
        start_factor: f64,
    },
}

fn default_start_factor() -> f64 {
    1.0 / 3.0
}

impl Schedule {
    /// The learning rate for optimiser step number `step` (0 for the first step).
    pub fn lr_at(&self, base_lr: f64, step: usize) -> f64 {
        match *self {
            Schedule::Constant => base_lr,
            Schedule::Step { step_size, gamma } => base_lr * libm::pow(gamma, (step / step_size) as f64),
            Schedule::Cosine { t_max, eta_min } => {
                let t = step.min(t_max) as f64;
                eta_min + (base_lr - eta_min) * (1.0 + libm::cos(std::f64::consts::PI * t / t_max as f64)) / 2.0
            }
            Schedule::Warmup { steps, start_factor } => {
                let progress = (step as f64 / steps as f64).min(1.0);
                base_lr * (start_factor + (1.0 - start_factor) * progress)
            }
        }
    }

    /// Checks that the parameters are in range, so `lr_at` never divides by zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::Step { step_size, gamma } => {
                check_count("step_size", step_size, 1, 10_000_000)?;
                check_range("gamma", gamma, 0.0, 1.0)
            }
            Schedule::Cosine { t_max, eta_min } => {
                check_count("t_max", t_max, 1, 10_000_000)?;
                check_range("eta_min", eta_min, 0.0, 100.0)
            }
            Schedule::Warmup { steps, start_factor } => {
                check_count("steps", steps, 1, 10_000_000)?;
                check_range("start_factor", start_factor, 0.0, 1.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_match_their_closed_forms() {
        assert_eq!(Schedule::Constant.lr_at(0.1, 1000), 0.1);
        let step = Schedule::Step { step_size: 10, gamma: 0.5 };
        assert_eq!(
            [step.lr_at(1.0, 0), step.lr_at(1.0, 9), step.lr_at(1.0, 10), step.lr_at(1.0, 25)],
            [1.0, 1.0, 0.5, 0.25]
        );
        let cos = Schedule::Cosine { t_max: 100, eta_min: 0.01 };
        assert!((cos.lr_at(0.1, 0) - 0.1).abs() < 1e-15);
        assert!((cos.lr_at(0.1, 50) - 0.055).abs() < 1e-15);
        assert!((cos.lr_at(0.1, 100) - 0.01).abs() < 1e-15);
        assert!((cos.lr_at(0.1, 500) - 0.01).abs() < 1e-15);
        let warm = Schedule::Warmup { steps: 4, start_factor: 0.2 };
        let lrs: Vec<f64> = (0..6).map(|t| warm.lr_at(1.0, t)).collect();
        let expected = [0.2, 0.4, 0.6, 0.8, 1.0, 1.0];
        assert!(lrs.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-15), "{lrs:?}");
    }
}
