//! A paired comparison: two runs from the same data, initial parameters and
//! batch order, so the optimiser is the only difference between them.

use std::sync::Arc;

use crate::config::{RunConfig, TrainingConfig};
use crate::data::{make_splits, Splits};
use crate::error::ConfigError;
use crate::job::Job;
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

/// Training both sides of a [`Pair`] as a [`Job`]: up to `steps` more steps on
/// each side that has not diverged (with `to_budget`, none beyond the side's own
/// budget, [`Run::steps_budget`]).
/// A piece is one step of each side, so the two stay in lockstep whenever a time
/// budget ends; the results are those of [`Pair::train`].
#[derive(Clone, Copy, Debug)]
pub struct Training {
    steps: usize,
    to_budget: bool,
    taken: usize,
    stalled: bool,
}

impl Training {
    /// `steps` more steps on each side; with `to_budget`, none beyond the side's own budget.
    pub fn new(steps: usize, to_budget: bool) -> Training {
        Training { steps, to_budget, taken: 0, stalled: false }
    }

    /// Steps taken so far (by the side that moved most).
    pub fn taken(&self) -> usize {
        self.taken
    }
}

impl Job<Pair> for Training {
    fn advance(&mut self, pair: &mut Pair) -> bool {
        if self.is_done() {
            return true;
        }
        let mut moved = false;
        for run in pair.sides_mut() {
            let at_limit = self.to_budget && run.step >= run.steps_budget;
            if !at_limit && run.diverged.is_none() {
                run.train(1);
                moved = true;
            }
        }
        if moved {
            self.taken += 1;
        } else {
            // Both sides diverged or reached the limit: nothing more to do.
            self.stalled = true;
        }
        self.is_done()
    }

    fn progress(&self) -> f64 {
        if self.steps == 0 || self.stalled {
            1.0
        } else {
            self.taken as f64 / self.steps as f64
        }
    }

    fn is_done(&self) -> bool {
        self.stalled || self.taken >= self.steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{finish, Slicer, Stop};

    fn pair() -> Pair {
        let mut config = RunConfig::default();
        config.data.n_train = 64;
        config.data.n_test = 50;
        config.training.steps = 30;
        Pair::new(config).unwrap()
    }

    #[test]
    fn training_as_a_job_gives_the_bits_of_pair_train() {
        let (mut by_job, mut at_once) = (pair(), pair());
        at_once.train(25);
        // In slices of a few pieces, as the page runs it.
        let mut job = Training::new(25, false);
        let mut clock = 0.0;
        let mut slicer = Slicer::default();
        while slicer.work_for(&mut job, &mut by_job, 0.5, &mut || {
            clock += 0.1;
            clock
        }) != Stop::Done
        {}
        assert_eq!((job.taken(), job.progress()), (25, 1.0));
        for (a, b) in by_job.sides().iter().zip(at_once.sides()) {
            assert_eq!(a.step, 25);
            assert_eq!(a.params, b.params, "same bits");
            assert_eq!(a.history.points, b.history.points);
        }
    }

    #[test]
    fn training_stops_at_the_limit_and_at_a_diverged_side() {
        let mut p = pair();
        let mut job = Training::new(100, true);
        finish(&mut job, &mut p);
        assert_eq!([p.left.step, p.right.step], [30, 30], "the budget holds");
        assert_eq!(job.taken(), 30);

        let mut p = pair();
        p.left.diverged = Some(crate::train::Divergence { step: 0, reason: "a test".into() });
        let mut job = Training::new(10, false);
        finish(&mut job, &mut p);
        assert_eq!([p.left.step, p.right.step], [0, 10], "the diverged side waits, the other goes on");
    }
}
