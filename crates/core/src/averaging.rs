//! Weight averaging: a running average of a side's parameters along its
//! trajectory, kept beside them as an extra solution (training is unchanged).
//!
//! - SWA (Izmailov et al. 2018), as `torch.optim.swa_utils.AveragedModel` with
//!   its default averaging function: the first update copies the parameters,
//!   update n + 1 moves the average by (p - avg) / (n + 1), so after n updates
//!   it is the uniform mean of the n parameter vectors averaged. Here an update
//!   happens after step `start` (>= 1), then every `every` steps.
//! - EMA, as `AveragedModel(multi_avg_fn=get_ema_multi_avg_fn(decay))`: the
//!   first update copies, each later one sets avg = decay avg + (1 - decay) p,
//!   after every step (the first update is after step 1, as in torch's loop
//!   `optimizer.step(); ema_model.update_parameters(model)`).
//!
//! Both update with `torch.lerp`'s formula (below), so they follow torch's
//! rounding too. The networks have no batch norm, so there is nothing for
//! `swa_utils.update_bn` to recompute: the averaged parameters are the model.

use serde::{Deserialize, Serialize};

use crate::error::{check_count, check_range, ConfigError};

/// Which average a side keeps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Averaging {
    /// Stochastic weight averaging: the uniform mean of the parameters after
    /// steps `start`, `start + every`, `start + 2 every`, ...
    Swa {
        /// The first step after which the parameters enter the average (>= 1).
        start: usize,
        /// Steps between two averaged parameter vectors (1 = every step).
        #[serde(default = "one")]
        every: usize,
    },
    /// Exponential moving average of the parameters, updated after every step.
    Ema {
        /// Weight of the old average per update, in [0, 1) (torch's `decay`, e.g. 0.999).
        decay: f64,
    },
}

fn one() -> usize {
    1
}

impl Averaging {
    /// "SWA" or "EMA", for tables and legends.
    pub fn name(&self) -> &'static str {
        match self {
            Averaging::Swa { .. } => "SWA",
            Averaging::Ema { .. } => "EMA",
        }
    }

    /// Checks the start, interval and decay, naming the bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Averaging::Swa { start, every } => {
                check_count("start", start, 1, 10_000_000)?;
                check_count("every", every, 1, 1_000_000)
            }
            Averaging::Ema { decay } => {
                check_range("decay", decay, 0.0, 0.999_999)?;
                Ok(())
            }
        }
    }

    /// Whether the parameters after `step` steps enter the average.
    pub fn is_due(&self, step: usize) -> bool {
        match *self {
            Averaging::Swa { start, every } => step >= start && (step - start).is_multiple_of(every.max(1)),
            Averaging::Ema { .. } => true,
        }
    }
}

/// `torch.lerp(start, end, weight)` for one element, in torch's formula (its
/// CPU kernel): start + weight (end - start) for weight < 0.5, else
/// end - (end - start) (1 - weight), which is exact at weight = 1.
pub fn lerp(start: f64, end: f64, weight: f64) -> f64 {
    if weight.abs() < 0.5 {
        start + weight * (end - start)
    } else {
        end - (end - start) * (1.0 - weight)
    }
}

/// The running average of one side: torch's `AveragedModel` state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Averager {
    /// SWA or EMA and its settings.
    pub config: Averaging,
    /// The averaged parameters (meaningless while `n_averaged` is 0).
    pub params: Vec<f64>,
    /// How many parameter vectors have entered the average (torch's `n_averaged`).
    pub n_averaged: u64,
}

impl Averager {
    /// An empty average for `num_params` parameters.
    pub fn new(config: Averaging, num_params: usize) -> Averager {
        Averager { config, params: vec![0.0; num_params], n_averaged: 0 }
    }

    /// `AveragedModel.update_parameters`: the first call copies `params`, later
    /// ones move the average towards them (SWA by 1 / (n + 1), EMA by 1 - decay).
    pub fn update(&mut self, params: &[f64]) {
        if self.n_averaged == 0 {
            self.params.copy_from_slice(params);
        } else {
            let weight = match self.config {
                Averaging::Swa { .. } => 1.0 / (self.n_averaged as f64 + 1.0),
                Averaging::Ema { decay } => 1.0 - decay,
            };
            for (a, &p) in self.params.iter_mut().zip(params) {
                *a = lerp(*a, p, weight);
            }
        }
        self.n_averaged += 1;
    }

    /// The averaged parameters once anything has been averaged.
    pub fn solution(&self) -> Option<&[f64]> {
        (self.n_averaged > 0).then_some(&self.params[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swa_is_the_uniform_mean_of_what_it_averaged() {
        let mut avg = Averager::new(Averaging::Swa { start: 1, every: 1 }, 2);
        assert!(avg.solution().is_none());
        let seen = [[1.0, -2.0], [4.0, 0.0], [7.0, 5.0], [-3.0, 1.0]];
        for p in &seen {
            avg.update(p);
        }
        assert_eq!(avg.n_averaged, 4);
        // By hand: (1 + 4 + 7 - 3) / 4 = 2.25, (-2 + 0 + 5 + 1) / 4 = 1.
        let got = avg.solution().unwrap();
        assert!((got[0] - 2.25).abs() < 1e-15 && (got[1] - 1.0).abs() < 1e-15, "{got:?}");
        // The steps torch's recipe averages: from `start`, every `every`.
        let swa = Averaging::Swa { start: 10, every: 5 };
        let due: Vec<usize> = (0..30).filter(|&s| swa.is_due(s)).collect();
        assert_eq!(due, [10, 15, 20, 25]);
    }

    #[test]
    fn ema_by_hand_and_against_its_textbook_form() {
        // decay 0.5 on 4, 8, 0: copy 4; lerp(4, 8, 0.5) = 8 - 4 * 0.5 = 6; lerp(6, 0, 0.5) = 3.
        let mut avg = Averager::new(Averaging::Ema { decay: 0.5 }, 1);
        for p in [4.0, 8.0, 0.0] {
            avg.update(&[p]);
        }
        assert_eq!(avg.params, [3.0]);
        // decay 0.9: avg = 0.9 avg + 0.1 p, within rounding of torch's lerp.
        let mut avg = Averager::new(Averaging::Ema { decay: 0.9 }, 1);
        let mut textbook = 0.0;
        for (i, p) in [2.0, -1.0, 3.5, 0.25, 10.0].into_iter().enumerate() {
            avg.update(&[p]);
            textbook = if i == 0 { p } else { 0.9 * textbook + 0.1 * p };
            assert!((avg.params[0] - textbook).abs() < 1e-14, "{} vs {textbook}", avg.params[0]);
        }
        // With lerp's weight 0.1: avg + 0.1 (p - avg), the same bits as torch.lerp.
        let mut by_lerp: f64 = 2.0;
        for p in [-1.0, 3.5, 0.25, 10.0] {
            by_lerp += 0.1 * (p - by_lerp);
        }
        assert_eq!(avg.params[0].to_bits(), by_lerp.to_bits());
    }

    #[test]
    fn lerp_follows_torchs_two_branches() {
        assert_eq!(lerp(1.0, 3.0, 0.25), 1.0 + 0.25 * 2.0);
        assert_eq!(lerp(1.0, 3.0, 0.75), 3.0 - 2.0 * 0.25);
        assert_eq!(lerp(0.1, 0.7, 1.0), 0.7, "exact at weight 1");
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(Averaging::Swa { start: 1, every: 0 }.validate().unwrap_err().field, "every");
        assert_eq!(Averaging::Swa { start: 0, every: 1 }.validate().unwrap_err().field, "start");
        assert_eq!(Averaging::Ema { decay: 1.0 }.validate().unwrap_err().field, "decay");
        assert!(Averaging::Ema { decay: f64::NAN }.validate().is_err());
    }
}
