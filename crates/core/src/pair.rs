//! A paired comparison: two runs from the same data, initial parameters and
//! batch order, so the optimiser is the only difference between them.

use std::sync::Arc;

use crate::config::{RunConfig, TrainingConfig};
use crate::data::Splits;
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
    /// The left side has taken its half of a pair step whose right half is
    /// still to come (a [`Training`] job stopped between the two halves).
    right_owes: bool,
}

impl Pair {
    /// Validates the config, draws the data and the initial parameters once,
    /// and builds both runs from them.
    pub fn new(config: RunConfig) -> Result<Pair, ConfigError> {
        let mut pair = Pair::unlogged(config)?;
        pair.left.settle_log();
        pair.right.settle_log();
        Ok(pair)
    }

    /// [`Pair::new`] with both runs' metrics at step 0 still owed
    /// ([`Run::unlogged`]): a [`Training`] job in pieces, or
    /// [`Run::log_piece`], works them out a piece at a time.
    pub fn unlogged(config: RunConfig) -> Result<Pair, ConfigError> {
        config.validate()?;
        let splits = Arc::new(config.splits());
        let mlp = Mlp::new(2, &config.model, config.classes());
        let initial_params = match &config.init {
            Some(p) => p.clone(),
            None => mlp.init_params(&mut Rng::derive(config.seed, "init")),
        };
        // Each side with its own batch size, steps and (scaled) learning rate: RunConfig::plan.
        let run = |side| {
            let plan = config.plan(side);
            let training = TrainingConfig { batch_size: plan.batch_size, steps: plan.steps, ..config.training.clone() };
            Run::unlogged(plan.side, mlp.clone(), splits.clone(), initial_params.clone(), &training, config.seed)
        };
        let left = run(&config.left);
        let right = run(&config.right);
        Ok(Pair { config, splits, initial_params, left, right, right_owes: false })
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

/// Training both sides of a [`Pair`] as a [`Job`]: `steps` more pair steps,
/// a pair step being one step of each side that may step (it has not diverged
/// and, with `to_budget`, is below its own budget, [`Run::steps_budget`]). A
/// piece is one side's step, or with [`Training::in_pieces`] a piece of rows of
/// it ([`Run::step_piece`]), so a full batch of 5000 points on a 6 x 64 net
/// (tens of ms a step) never holds the page for long. A pair step left half
/// done when a time budget ends is finished by the next job on the pair, so
/// the sides never drift apart; the results are the bits of [`Pair::train`]
/// (the sides are independent, and a step worked in pieces is the same step).
#[derive(Clone, Copy, Debug)]
pub struct Training {
    steps: usize,
    to_budget: bool,
    rows: Option<usize>,
    completed: usize,
    stalled: bool,
}

impl Training {
    /// `steps` more pair steps; with `to_budget`, none beyond a side's own budget.
    pub fn new(steps: usize, to_budget: bool) -> Training {
        Training { steps, to_budget, rows: None, completed: 0, stalled: false }
    }

    /// Works a step `rows` rows of the batch at a time (None: whole steps).
    pub fn in_pieces(mut self, rows: Option<usize>) -> Training {
        self.rows = rows;
        self
    }

    /// Pair steps completed so far (a pair step half done does not count).
    pub fn taken(&self) -> usize {
        self.completed
    }

    fn may_step(&self, run: &Run) -> bool {
        run.step_under_way() || (run.diverged.is_none() && (!self.to_budget || run.step < run.steps_budget))
    }

    /// One piece of `run`'s step; true once that step is complete.
    fn piece(&self, run: &mut Run) -> bool {
        match self.rows {
            Some(rows) => run.step_piece(rows),
            None => {
                run.step();
                true
            }
        }
    }
}

impl Job<Pair> for Training {
    fn advance(&mut self, pair: &mut Pair) -> bool {
        if self.is_done() {
            return true;
        }
        if !pair.right_owes {
            // The left half of the next pair step (skipped when the left may not step).
            if !(self.may_step(&pair.left) || self.may_step(&pair.right)) {
                self.stalled = true; // both diverged or at their budgets
                return true;
            }
            if self.may_step(&pair.left) && !self.piece(&mut pair.left) {
                return false;
            }
            pair.right_owes = true;
            return false;
        }
        if self.may_step(&pair.right) && !self.piece(&mut pair.right) {
            return false;
        }
        pair.right_owes = false;
        self.completed += 1;
        self.is_done()
    }

    fn progress(&self) -> f64 {
        if self.steps == 0 || self.stalled {
            1.0
        } else {
            (self.completed as f64 / self.steps as f64).min(1.0)
        }
    }

    fn is_done(&self) -> bool {
        self.stalled || self.completed >= self.steps
    }
}

impl Pair {
    /// Whether a pair step is part-way: a side's step worked in pieces, or the
    /// left half taken and the right half still to come.
    pub fn step_under_way(&self) -> bool {
        self.right_owes || self.left.step_under_way() || self.right.step_under_way()
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
    fn training_in_pieces_of_rows_across_calls_gives_the_same_bits() {
        let mut config = RunConfig::default();
        config.data.n_train = 64;
        config.data.n_test = 50;
        config.training.batch_size = 64; // full batch, SAM on the right: two gradients a step
        let (mut by_job, mut at_once) = (Pair::new(config.clone()).unwrap(), Pair::new(config).unwrap());
        at_once.train(12);
        // Budgets that end mid-step: each call is a new job, as the page's slices are.
        let mut clock = 0.0;
        let mut taken = 0;
        while taken < 12 {
            let mut job = Training::new(12 - taken, false).in_pieces(Some(7));
            Slicer::default().work_for(&mut job, &mut by_job, 0.35, &mut || {
                clock += 0.1;
                clock
            });
            taken += job.taken();
            let steps = [by_job.left.step, by_job.right.step];
            assert!(steps[0].abs_diff(steps[1]) <= 1, "lockstep: {steps:?}");
        }
        assert!(!by_job.step_under_way(), "each call's job counts only whole pair steps");
        for (a, b) in by_job.sides().iter().zip(at_once.sides()) {
            assert_eq!((a.step, &a.params), (12, &b.params), "same bits");
        }
    }

    #[test]
    fn metrics_owed_at_step_0_and_at_logged_steps_come_in_pieces_with_the_same_bits() {
        let mut config = RunConfig::default();
        config.data.n_train = 600; // more than one EVAL_CHUNK: each log takes several pieces
        config.data.n_test = 300;
        config.training.batch_size = 600;
        config.training.log_every = 2;
        let mut at_once = Pair::new(config.clone()).unwrap();
        at_once.train(7);
        let mut by_job = Pair::unlogged(config).unwrap();
        assert!(by_job.left.log_owed() && by_job.left.history.points.is_empty(), "step 0 owed");
        assert!(!by_job.step_under_way(), "no step begun yet");
        let mut clock = 0.0;
        let (mut taken, mut calls) = (0, 0);
        while taken < 7 {
            let mut job = Training::new(7 - taken, false).in_pieces(Some(100));
            Slicer::default().work_for(&mut job, &mut by_job, 0.35, &mut || {
                clock += 0.1;
                clock
            });
            taken += job.taken();
            calls += 1;
        }
        assert!(calls > 7, "the logs took pieces of their own ({calls} calls)");
        assert!(!by_job.step_under_way() && !by_job.left.log_owed(), "the last step's metrics are in");
        for (a, b) in by_job.sides().iter().zip(at_once.sides()) {
            assert_eq!((a.step, &a.params), (7, &b.params), "same bits");
            assert_eq!(a.history.points, b.history.points, "the same metrics at the same steps");
        }
        // A step's owed metrics settled from outside (a run record while paused): the
        // step still counts once, as the first of the next job's, as a step under way does.
        let mut paused = Pair::unlogged(at_once.config.clone()).unwrap();
        while paused.left.step < 2 || !paused.left.log_owed() {
            Training::new(1, false).in_pieces(Some(100)).advance(&mut paused);
        }
        paused.left.settle_log();
        assert!(paused.step_under_way(), "the step is done but not yet reported");
        let before = paused.right.step;
        let mut job = Training::new(3, false).in_pieces(Some(100));
        finish(&mut job, &mut paused);
        assert_eq!((job.taken(), paused.left.step, paused.right.step), (3, 4, before + 3));
        let mut whole = Pair::new(at_once.config.clone()).unwrap();
        whole.train(4);
        assert_eq!(paused.left.history.points, whole.left.history.points);
        assert_eq!(paused.left.params, whole.left.params);

        // Owed metrics settled at once (Run::step, the CLI's way) give the same bits too.
        let mut settled = Pair::unlogged(at_once.config.clone()).unwrap();
        settled.train(7);
        assert_eq!(settled.left.history.points, at_once.left.history.points);
    }

    #[test]
    fn training_to_budget_stops_each_side_at_its_own_and_explicit_steps_move_both() {
        let settings = [("points", "64"), ("steps", "10"), ("left-steps", "4")];
        let (config, errors) = crate::settings::config_from_settings(settings);
        assert!(errors.is_empty(), "{errors:?}");
        let mut p = Pair::new(config).unwrap();
        finish(&mut Training::new(1000, true), &mut p);
        assert_eq!([p.left.step, p.right.step], [4, 10], "each side's own budget");
        let mut job = Training::new(3, false);
        finish(&mut job, &mut p);
        assert_eq!(([p.left.step, p.right.step], job.taken()), ([7, 13], 3), "step(n) moves both sides n");
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
