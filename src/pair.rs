//! A paired comparison: two runs from the same data, initial parameters and
//! batch order, so the optimiser is the only difference between them.

use std::sync::Arc;

use crate::config::{RunConfig, TrainingConfig};
use crate::data::{make_splits, Splits};
use crate::error::ConfigError;
use crate::model::Mlp;
use crate::rng::Rng;
use crate::train::Run;

/// Two runs trained side by side on the same data and from the same start,
/// so any difference between them comes from the optimiser.
#[derive(Clone, Debug)]
pub struct Pair {
    /// The validated configuration both runs were built from.
    pub config: RunConfig,
    /// The train, test and shifted-test data, shared by both runs.
    pub splits: Arc<Splits>,
    /// The flat parameter vector (f64) both runs start from.
    pub initial_params: Vec<f64>,
    /// The run with the left-hand optimiser (`config.left`).
    pub left: Run,
    /// The run with the right-hand optimiser (`config.right`).
    pub right: Run,
}

impl Pair {
    /// Validates the config, draws the data and the initial parameters once,
    /// and builds both runs from them.
    pub fn new(config: RunConfig) -> Result<Pair, ConfigError> {
        config.validate()?;
        let mut splits = make_splits(&config.data, &config.shift, config.seed);
        if let Some(points) = &config.train_points {
            splits.train = points.clone();
        }
        let splits = Arc::new(splits);
        let mlp = Mlp::new(2, &config.model, config.classes());
        let initial_params = match &config.init {
            Some(p) => p.clone(),
            None => mlp.init_params(&mut Rng::derive(config.seed, "init")),
        };
        // Each side with its own batch size, steps and (scaled) learning rate: RunConfig::plan.
        let run = |side| {
            let plan = config.plan(side);
            let training = TrainingConfig { batch_size: plan.batch_size, steps: plan.steps, ..config.training.clone() };
            Run::new(plan.side, mlp.clone(), splits.clone(), initial_params.clone(), &training, config.seed)
        };
        let left = run(&config.left);
        let right = run(&config.right);
        Ok(Pair { config, splits, initial_params, left, right })
    }

    /// Advances both sides by `n` steps.
    pub fn train(&mut self, n: usize) {
        self.left.train(n);
        self.right.train(n);
    }

    /// Trains each side to its own budget (`Run::steps_budget`: `training.steps`
    /// unless the side has its own batch size or steps), or until it diverges.
    pub fn train_to_budget(&mut self) {
        for run in self.sides_mut() {
            let left = run.steps_budget.saturating_sub(run.step);
            run.train(left);
        }
    }

    /// Records parameter snapshots on both sides (see [`Run::record_checkpoints`]).
    pub fn record_checkpoints(&mut self, every: usize, capacity: usize) {
        self.left.record_checkpoints(every, capacity);
        self.right.record_checkpoints(every, capacity);
    }

    /// Both runs, left first, for code that treats them alike.
    pub fn sides(&self) -> [&Run; 2] {
        [&self.left, &self.right]
    }

    /// Both runs, left first, mutably.
    pub fn sides_mut(&mut self) -> [&mut Run; 2] {
        [&mut self.left, &mut self.right]
    }
}
