//! The run record: everything needed to inspect or replay a finished pair.
//!
//! `flatminima train --out run.json` writes one; `landscape --run` and
//! `sharpness --run` read one back instead of training again.

use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::data::Splits;
use crate::metrics::MetricPoint;
use crate::pair::Pair;
use crate::train::{Divergence, Run};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    /// The config, with `init` filled in, so replaying it needs nothing else.
    pub config: RunConfig,
    /// The shared initial flat parameter vector (PyTorch nn.Linear layout).
    pub initial_params: Vec<f64>,
    pub left: SideRecord,
    pub right: SideRecord,
    pub data: Splits,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SideRecord {
    pub label: String,
    pub step: usize,
    pub final_params: Vec<f64>,
    pub diverged: Option<Divergence>,
    pub history: Vec<MetricPoint>,
}

impl SideRecord {
    fn of(run: &Run) -> Self {
        SideRecord {
            label: run.side.label(),
            step: run.step,
            final_params: run.params.clone(),
            diverged: run.diverged.clone(),
            history: run.history.points.clone(),
        }
    }
}

impl RunRecord {
    pub fn of(pair: &Pair) -> Self {
        let mut config = pair.config.clone();
        config.init = Some(pair.initial_params.clone());
        RunRecord {
            config,
            initial_params: pair.initial_params.clone(),
            left: SideRecord::of(&pair.left),
            right: SideRecord::of(&pair.right),
            data: (*pair.splits).clone(),
        }
    }

    /// A pair rebuilt from the record, with each side's parameters set to its
    /// final ones (the optimiser state is not recorded: this is for probing the
    /// solutions, not for resuming training).
    pub fn to_pair(&self) -> Result<Pair, crate::error::ConfigError> {
        let mut pair = Pair::new(self.config.clone())?;
        let n = pair.left.params.len();
        for (run, side) in [(&mut pair.left, &self.left), (&mut pair.right, &self.right)] {
            if side.final_params.len() != n {
                return Err(crate::error::ConfigError::new(
                    "final_params",
                    format!("has {} numbers but the model has {n} parameters", side.final_params.len()),
                ));
            }
            run.params.clone_from(&side.final_params);
            run.step = side.step;
        }
        Ok(pair)
    }
}
