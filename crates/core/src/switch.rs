//! Switching optimiser mid-run (e.g. SGD for k steps, then SAM over the same
//! SGD): from step `at` on, a side trains with `sam` as its wrapper and
//! `optimizer` (or its current one) as its base.
//!
//! What happens to the optimiser's state (momentum buffers, Adam's moments),
//! as it would in torch:
//! - the same base optimiser with the same hyperparameters (only the wrapper
//!   and perhaps the learning rate change, e.g. SGD -> SAM over that SGD): the
//!   state is kept, as SAM wraps the very same `torch.optim` instance and a new
//!   lr is a `param_group['lr']` change;
//! - any other base (another kind, or other momentum, betas, ...): a fresh
//!   optimiser with empty state and its step count at 0, as constructing a new
//!   `torch.optim` optimiser gives.
//!
//! The learning-rate schedule keeps counting the side's steps across the switch.

use serde::{Deserialize, Serialize};

use crate::error::{check_count, ConfigError};
use crate::optim::OptimizerConfig;
use crate::sam::SamConfig;

/// A change of a side's optimiser at a given step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    /// The step from which the new optimiser trains (after `at` steps of the old one), >= 1.
    pub at: usize,
    /// The base optimiser from then on; absent: keep the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<OptimizerConfig>,
    /// The SAM wrapper from then on; absent: the plain base optimiser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sam: Option<SamConfig>,
}

impl Switch {
    /// Checks the step, the new optimiser and SAM, naming the bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_count("at", self.at, 1, 10_000_000)?;
        if let Some(o) = &self.optimizer {
            o.validate().map_err(|e| e.within("optimizer"))?;
        }
        if let Some(s) = &self.sam {
            s.validate().map_err(|e| e.within("sam"))?;
        }
        Ok(())
    }

    /// A short description for labels: "SAM(rho=0.2)+SGD from step 500".
    pub fn describe(&self, current: &OptimizerConfig) -> String {
        let base = self.optimizer.as_ref().unwrap_or(current).display_name();
        let to = match &self.sam {
            Some(s) => format!("{}(rho={})+{base}", if s.adaptive { "ASAM" } else { "SAM" }, s.rho),
            None => base.to_string(),
        };
        format!("{to} from step {}", self.at)
    }
}

/// Whether moving from optimiser `old` to `new` keeps the state: the same kind
/// and hyperparameters, the learning rate aside.
pub fn keeps_state(old: &OptimizerConfig, new: &OptimizerConfig) -> bool {
    let mut same = old.clone();
    same.set_lr(new.lr());
    same == *new
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_kept_only_for_the_same_base() {
        let sgd = OptimizerConfig::sgd_momentum(0.1);
        assert!(keeps_state(&sgd, &sgd));
        assert!(keeps_state(&sgd, &OptimizerConfig::sgd_momentum(0.05)), "an lr change keeps the buffers");
        let other_momentum =
            OptimizerConfig::Sgd { lr: 0.1, momentum: 0.5, dampening: 0.0, weight_decay: 0.0, nesterov: false };
        assert!(!keeps_state(&sgd, &other_momentum));
        assert!(!keeps_state(&sgd, &OptimizerConfig::with_kind("adam", 0.1).unwrap()));
    }

    #[test]
    fn bad_switches_are_named() {
        let s = Switch { at: 0, optimizer: None, sam: None };
        assert_eq!(s.validate().unwrap_err().field, "at");
        let s = Switch { at: 5, optimizer: None, sam: Some(SamConfig { rho: 50.0, adaptive: false }) };
        assert_eq!(s.validate().unwrap_err().field, "sam.rho");
        let s = Switch { at: 5, optimizer: None, sam: Some(SamConfig { rho: 0.1, adaptive: false }) };
        assert_eq!(s.describe(&OptimizerConfig::sgd_momentum(0.1)), "SAM(rho=0.1)+SGD from step 5");
    }
}
