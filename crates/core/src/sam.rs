//! Sharpness-aware minimisation (Foret et al. 2020) around any base optimiser.
//!
//! One SAM step on a minibatch B (methods.md; davda54/sam):
//!   g  = grad L_B(w)
//!   e  = rho * g / (||g|| + 1e-12)                 (one norm over all parameters)
//!   g' = grad L_B(w + e)                            (same minibatch)
//!   restore w, then the base optimiser steps with g'.
//! ASAM (Kwon et al. 2021) scales by T = diag(|w|):  e = rho * T^2 g / (||T g|| + 1e-12).
//! With rho = 0, e is exactly 0, so a step is bit-identical to the base optimiser's.

use serde::{Deserialize, Serialize};

use crate::error::{check_range, ConfigError};

/// Settings of SAM (or ASAM) for one side: how far it looks for the worst
/// nearby loss before each step. `rho` = 0 makes it the plain base optimiser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamConfig {
    /// Radius of the neighbourhood in which SAM looks for the worst loss.
    pub rho: f64,
    /// ASAM: the radius is measured relative to each weight's magnitude.
    #[serde(default)]
    pub adaptive: bool,
}

impl SamConfig {
    /// Checks that `rho` lies in 0..=5 (0..=10 for ASAM, whose radii are relative
    /// and so need to be about ten times larger).
    pub fn validate(&self) -> Result<(), ConfigError> {
        // ASAM needs radii about ten times larger than SAM (davda54: rho 2.0 on CIFAR-10).
        let max = if self.adaptive { 10.0 } else { 5.0 };
        check_range("rho", self.rho, 0.0, max)
    }
}

/// Writes SAM's ascent step e for gradient `grad` at `params` into `epsilon`;
/// returns ||e|| (useful to show how far SAM looked).
pub fn ascent_direction(config: &SamConfig, params: &[f64], grad: &[f64], epsilon: &mut [f64]) -> f64 {
    let scaled_norm_sq: f64 = if config.adaptive {
        params.iter().zip(grad).map(|(w, g)| (w.abs() * g) * (w.abs() * g)).sum()
    } else {
        grad.iter().map(|g| g * g).sum()
    };
    let scale = config.rho / (scaled_norm_sq.sqrt() + 1e-12);
    let mut norm_sq = 0.0;
    for ((e, &w), &g) in epsilon.iter_mut().zip(params).zip(grad) {
        *e = if config.adaptive { w * w * g * scale } else { g * scale };
        norm_sq += *e * *e;
    }
    norm_sq.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_has_radius_rho_along_the_gradient() {
        let grad = [3.0, 4.0];
        let mut e = [0.0; 2];
        let norm = ascent_direction(&SamConfig { rho: 0.5, adaptive: false }, &[1.0, 1.0], &grad, &mut e);
        assert!((e[0] - 0.3).abs() < 1e-12 && (e[1] - 0.4).abs() < 1e-12);
        assert!((norm - 0.5).abs() < 1e-12);
    }

    #[test]
    fn adaptive_epsilon_by_hand() {
        // w = (2, -1), g = (1, 1): T g = (2, 1), ||T g|| = sqrt 5, e = rho * (4, 1) / sqrt 5.
        let mut e = [0.0; 2];
        ascent_direction(&SamConfig { rho: 1.0, adaptive: true }, &[2.0, -1.0], &[1.0, 1.0], &mut e);
        let s5 = 5f64.sqrt();
        assert!((e[0] - 4.0 / s5).abs() < 1e-12 && (e[1] - 1.0 / s5).abs() < 1e-12);
    }

    #[test]
    fn zero_rho_gives_zero_epsilon() {
        let mut e = [1.0; 3];
        ascent_direction(&SamConfig { rho: 0.0, adaptive: false }, &[1.0, 2.0, 3.0], &[0.1, -0.2, 0.3], &mut e);
        assert_eq!(e, [0.0; 3]);
    }
}
