//! A study: many seeds of both sides of one config, so that "SAM is more
//! robust under this shift" becomes a distribution instead of one run (the
//! CLI's `flatminima study`, the element's `study()`).
//!
//! Replica i (0-based) of either side is what `compare` would train with
//! `seed = config.seed + i`, except that the data stay those of `config.seed`:
//! its initial parameters come from `Rng::derive(config.seed + i, "init")` (a
//! pinned `init` is shared by every replica instead) and its batch order from
//! `config.seed + i`. Left replica i and right replica i share both, so each
//! replica index is a fair pair and replica 0 is `compare`'s own pair.
//!
//! (A study over settings and data draws, with every run measured, is a
//! `study_grid::Grid`; it trains its units through [`ReplicaRun`].)
//!
//! A [`Study`] is plain data (serde): the page hands it as JSON to its GPU
//! module. [`StudyJob`] trains one on the CPU a few steps at a time, so that
//! the page stays responsive; the backends train it all at once.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{SideConfig, TrainingConfig};
use crate::data::Splits;
use crate::error::ConfigError;
use crate::job::Job;
use crate::model::{Architecture, Mlp};
use crate::pair::Pair;
use crate::rng::Rng;
use crate::settings::config_from_settings;
use crate::train::{Run, DIVERGENCE_FACTOR};

/// One replica: what a CPU `Run` would be built from.
#[derive(Clone, Debug)]
pub struct Replica {
    /// SGD (any momentum, dampening, weight decay, Nesterov), optionally with SAM
    /// or ASAM, and any schedule. Adam, AdamW and RMSprop are CPU-only for now.
    pub side: SideConfig,
    /// Initial parameters as one flat f64 vector, in the model's layout.
    pub init: Vec<f64>,
    /// Seeds the batch order, as `Run::new`'s `seed`.
    pub seed: u64,
}

/// Final metrics of one trained replica (f64; f32 widened on the GPU).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicaMetrics {
    /// Mean loss on the training set.
    pub train_loss: f64,
    /// Accuracy on the training set (fraction of points classified correctly).
    pub train_acc: f64,
    /// Mean loss on the in-distribution test set (same distribution as training).
    pub id_loss: f64,
    /// Accuracy on the in-distribution test set.
    pub id_acc: f64,
    /// Mean loss on the shifted (out-of-distribution) test set.
    pub ood_loss: f64,
    /// Accuracy on the shifted (out-of-distribution) test set; the gap to `id_acc` measures robustness.
    pub ood_acc: f64,
    /// The final training loss is not finite or above `train::DIVERGENCE_FACTOR`
    /// times the initial one (the CPU also stops a run whose minibatch loss stops
    /// being finite; the GPU keeps stepping it).
    pub diverged: bool,
}

/// Everything a study trains: one architecture and data set, two sides, R seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Study {
    /// The network's layer shapes (every replica has the same).
    pub architecture: Architecture,
    /// Shared, not copied, by the study's jobs and runs (serialised as plain data).
    pub splits: Arc<Splits>,
    /// Minibatch size asked for (see [`Study::effective_batch_size`]).
    pub batch_size: usize,
    /// Optimiser steps per replica.
    pub steps: usize,
    /// The left and right sides' optimisers.
    pub sides: [SideConfig; 2],
    /// One seed per replica index (initial parameters and batch order).
    pub seeds: Vec<u64>,
    /// Pinned initial parameters shared by every replica, if the config has them.
    pub init: Option<Vec<f64>>,
}

/// The most replicas per side, and steps per replica, the page's studies take.
pub const PAGE_MAX_REPLICAS: usize = 4096;
/// The most steps per replica a page's study takes.
pub const PAGE_MAX_STEPS: usize = 100_000;
/// The most parameters (replicas x the network's) per side a page's study
/// takes: the GPU holds every replica's at once (32 MiB of f64 per side
/// while they are set up), and a browser tab's memory is not the CLI's.
pub const PAGE_MAX_STUDY_PARAMS: usize = 1 << 22;

impl Study {
    /// The page's study: `replicas` seeds of both sides of the config that
    /// `settings` (name, value) describe, `steps` steps each. Errors name a bad
    /// setting or count (a bad setting is an error here, not a fallback: the
    /// page sends the settings it already runs).
    pub fn from_settings<'a>(
        settings: impl IntoIterator<Item = (&'a str, &'a str)>,
        replicas: usize,
        steps: usize,
    ) -> Result<Study, ConfigError> {
        if !(1..=PAGE_MAX_REPLICAS).contains(&replicas) {
            return Err(ConfigError::new(
                "replicas",
                format!("expected 1 to {PAGE_MAX_REPLICAS} per side, got {replicas}"),
            ));
        }
        if !(1..=PAGE_MAX_STEPS).contains(&steps) {
            return Err(ConfigError::new("steps", format!("expected 1 to {PAGE_MAX_STEPS}, got {steps}")));
        }
        let (config, errors) = config_from_settings(settings);
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
        let pair = Pair::new(config)?;
        let params = pair.left.mlp.num_params();
        if replicas.saturating_mul(params) > PAGE_MAX_STUDY_PARAMS {
            return Err(ConfigError::new(
                "replicas",
                format!(
                    "{replicas} replicas of a {params}-parameter network exceed the page's {PAGE_MAX_STUDY_PARAMS} \
                     parameters per side; use at most {} replicas or a smaller network",
                    PAGE_MAX_STUDY_PARAMS / params.max(1)
                ),
            ));
        }
        Ok(Study::new(&pair, replicas, steps))
    }

    /// `replicas` seeds of both sides of `pair`'s config (its data), `steps` steps each.
    pub fn new(pair: &Pair, replicas: usize, steps: usize) -> Study {
        let config = &pair.config;
        Study {
            architecture: Architecture::of(&pair.left.mlp),
            splits: pair.splits.clone(),
            batch_size: config.training.batch_size,
            steps,
            // Each side's own batch size and scaled lr (RunConfig::plan); every replica trains `steps` steps.
            sides: [&config.left, &config.right].map(|side| {
                let plan = config.plan(side);
                SideConfig { batch_size: side.batch_size.map(|_| plan.batch_size), ..plan.side }
            }),
            seeds: (0..replicas as u64).map(|i| config.seed.wrapping_add(i)).collect(),
            init: config.init.clone(),
        }
    }

    /// A fresh network of the study's architecture (shapes only; weights come from a [`Replica`]).
    pub fn mlp(&self) -> Mlp {
        self.architecture.build()
    }

    /// The replicas of side 0 (left) or 1 (right), in seed order.
    pub fn replicas(&self, side: usize) -> Vec<Replica> {
        let mlp = self.mlp();
        (0..self.seeds.len()).map(|i| self.replica(&mlp, side, i)).collect()
    }

    /// Replica `i` of side 0 (left) or 1 (right); `mlp` is [`Study::mlp`].
    pub fn replica(&self, mlp: &Mlp, side: usize, i: usize) -> Replica {
        let seed = self.seeds[i];
        Replica {
            side: self.sides[side.min(1)].clone(),
            init: self.init.clone().unwrap_or_else(|| mlp.init_params(&mut Rng::derive(seed, "init"))),
            seed,
        }
    }

    /// Batch size as the runs use it (at most the training set).
    pub fn effective_batch_size(&self) -> usize {
        self.batch_size.clamp(1, self.splits.train.len().max(1))
    }
}

/// One replica trained on the CPU: a [`Run`] that logs nothing in between
/// (metrics cost three evaluations) and remembers its initial training loss.
pub struct ReplicaRun {
    run: Run,
    initial_loss: f64,
}

impl ReplicaRun {
    /// Sets up one replica's run on `splits` (a batch of at most the training set) and measures its initial training loss.
    pub fn new(replica: &Replica, mlp: &Mlp, splits: &Arc<Splits>, batch_size: usize) -> ReplicaRun {
        let training = TrainingConfig {
            batch_size: batch_size.clamp(1, splits.train.len().max(1)),
            steps: 0,
            log_every: usize::MAX,
            ..Default::default()
        };
        let mut run =
            Run::new(replica.side.clone(), mlp.clone(), splits.clone(), replica.init.clone(), &training, replica.seed);
        let initial_loss = run.evaluate().train_loss;
        ReplicaRun { run, initial_loss }
    }

    /// Steps taken so far.
    pub fn step(&self) -> usize {
        self.run.step
    }

    /// Trains `n` more steps (fewer if the run diverges).
    pub fn train(&mut self, n: usize) {
        self.run.train(n);
    }

    /// The matched-loss stopping rule: trains until the loss on the whole
    /// training set is at most `target`, checked before the first step and
    /// then every `check_every` steps, for at most `max_steps` steps in all.
    /// Returns whether the target was reached (then `step()` is where); a run
    /// that diverges or runs out of steps returns false.
    pub fn train_until_loss(&mut self, target: f64, max_steps: usize, check_every: usize) -> bool {
        let check_every = check_every.max(1);
        loop {
            let train = self.run.splits.clone();
            if self.run.evaluate_on(&train.train).0 <= target {
                return true;
            }
            if self.run.step >= max_steps || self.run.diverged.is_some() {
                return false;
            }
            self.run.train(check_every.min(max_steps - self.run.step));
        }
    }

    /// The run itself (its parameters, to measure them).
    pub fn run_mut(&mut self) -> &mut Run {
        &mut self.run
    }

    /// Final metrics now.
    pub fn metrics(&mut self) -> ReplicaMetrics {
        let m = self.run.evaluate();
        ReplicaMetrics {
            train_loss: m.train_loss,
            train_acc: m.train_acc,
            id_loss: m.id_loss,
            id_acc: m.id_acc,
            ood_loss: m.ood_loss,
            ood_acc: m.ood_acc,
            diverged: self.run.diverged.is_some() || diverged(self.initial_loss, m.train_loss),
        }
    }
}

/// Whether a final training loss counts as diverged, given the initial one.
pub fn diverged(initial_train_loss: f64, final_train_loss: f64) -> bool {
    !final_train_loss.is_finite() || final_train_loss > DIVERGENCE_FACTOR * initial_train_loss
}

/// A study trained on the CPU a bounded number of steps at a time: replica
/// after replica, left side first. Each replica is set up when its turn
/// comes, so memory holds one run and the finished metrics.
pub struct StudyJob {
    study: Study,
    mlp: Mlp,
    current: Option<ReplicaRun>,
    results: [Vec<ReplicaMetrics>; 2],
}

impl StudyJob {
    /// A job for `study` with nothing trained yet.
    pub fn new(study: &Study) -> StudyJob {
        StudyJob { study: study.clone(), mlp: study.mlp(), current: None, results: [Vec::new(), Vec::new()] }
    }

    /// The (side, index) of the replica being trained, or None when done.
    fn next(&self) -> Option<(usize, usize)> {
        (0..2).map(|side| (side, self.results[side].len())).find(|&(_, i)| i < self.study.seeds.len())
    }

    /// Trains at most `max_steps` more steps (over as many replicas as that
    /// reaches); returns the steps taken. A replica that diverged stops early.
    pub fn train_steps(&mut self, max_steps: usize) -> usize {
        let mut done = 0;
        while let Some((side, i)) = self.next() {
            let (study, mlp) = (&self.study, &self.mlp);
            let current = self.current.get_or_insert_with(|| {
                ReplicaRun::new(&study.replica(mlp, side, i), mlp, &study.splits, study.batch_size)
            });
            let steps = study.steps;
            let before = current.step();
            let n = steps.saturating_sub(before).min(max_steps - done);
            current.train(n);
            // A diverged run stops stepping: count its remaining steps as done.
            let finished = current.step() >= steps || current.step() < before + n;
            done += n;
            if finished {
                let mut run = self.current.take().expect("just used");
                self.results[side].push(run.metrics());
            }
            if done >= max_steps {
                break;
            }
        }
        done
    }

    /// The metrics of every finished replica, per side.
    pub fn results(&self) -> &[Vec<ReplicaMetrics>; 2] {
        &self.results
    }
}

/// A piece is one training step of the replica under way (~40 us for the
/// reference net), and its final metrics when it is the replica's last.
impl Job for StudyJob {
    fn advance(&mut self, _: &mut ()) -> bool {
        self.train_steps(1);
        self.is_done()
    }

    /// Fraction of all steps of all replicas done, in [0, 1].
    fn progress(&self) -> f64 {
        let per = self.study.steps.max(1) as f64;
        let total = (2 * self.study.seeds.len()) as f64 * per;
        let finished = (self.results[0].len() + self.results[1].len()) as f64 * per;
        let partial = self.current.as_ref().map_or(0, ReplicaRun::step) as f64;
        if total == 0.0 {
            1.0
        } else {
            ((finished + partial) / total).min(1.0)
        }
    }

    fn is_done(&self) -> bool {
        self.next().is_none()
    }
}

/// mean / min / max of one metric over the replicas.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    /// Mean over the finite values.
    pub mean: f64,
    /// Smallest finite value.
    pub min: f64,
    /// Largest finite value.
    pub max: f64,
}

impl Spread {
    /// Over the finite values only; None if there are none.
    pub fn of(values: impl Iterator<Item = f64>) -> Option<Spread> {
        let finite: Vec<f64> = values.filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            return None;
        }
        let mean = finite.iter().sum::<f64>() / finite.len() as f64;
        let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Spread { mean, min, max })
    }
}

/// One side's replicas summed up.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SideSummary {
    /// The side's optimiser, as [`SideConfig::label`] writes it.
    pub label: String,
    /// OOD test accuracy over the replicas that did not diverge.
    pub ood_acc: Option<Spread>,
    /// In-distribution test accuracy, same replicas.
    pub id_acc: Option<Spread>,
    /// Final training loss, same replicas.
    pub train_loss: Option<Spread>,
    /// OOD test loss, same replicas.
    pub ood_loss: Option<Spread>,
    /// How many replicas diverged.
    pub diverged: usize,
}

impl SideSummary {
    /// The spreads are over the replicas that did not diverge (a diverged
    /// network's accuracy is finite but meaningless: NaN logits all vote for
    /// class 0); `diverged` counts the others.
    pub fn new(label: String, metrics: &[ReplicaMetrics]) -> SideSummary {
        let spread = |f: fn(&ReplicaMetrics) -> f64| Spread::of(metrics.iter().filter(|m| !m.diverged).map(f));
        SideSummary {
            label,
            ood_acc: spread(|m| m.ood_acc),
            id_acc: spread(|m| m.id_acc),
            train_loss: spread(|m| m.train_loss),
            ood_loss: spread(|m| m.ood_loss),
            diverged: metrics.iter().filter(|m| m.diverged).count(),
        }
    }
}

/// Replica i of the right side against replica i of the left (same seed).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Paired {
    /// Mean of right - left OOD accuracy (a fraction, not points).
    pub mean_ood_acc_difference: f64,
    /// Pairs where the right side's OOD accuracy is higher.
    pub right_higher: usize,
    /// Pairs where it is lower (ties count in neither).
    pub right_lower: usize,
    /// Pairs where neither side diverged (and both OOD accuracies are finite).
    pub pairs: usize,
}

impl Paired {
    /// The comparison over pairs where neither side diverged; None if there are none.
    pub fn of(left: &[ReplicaMetrics], right: &[ReplicaMetrics]) -> Option<Paired> {
        let d: Vec<f64> = left
            .iter()
            .zip(right)
            .filter(|(l, r)| !l.diverged && !r.diverged)
            .map(|(l, r)| r.ood_acc - l.ood_acc)
            .filter(|d| d.is_finite())
            .collect();
        (!d.is_empty()).then(|| Paired {
            mean_ood_acc_difference: d.iter().sum::<f64>() / d.len() as f64,
            right_higher: d.iter().filter(|&&x| x > 0.0).count(),
            right_lower: d.iter().filter(|&&x| x < 0.0).count(),
            pairs: d.len(),
        })
    }
}

/// What a finished study reports (the element's `study()` result): each
/// side's summary and every replica's metrics, and the paired comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StudyReport {
    /// "gpu" or "cpu": what trained it.
    pub backend: String,
    /// Replicas per side, and steps per replica.
    pub replicas: usize,
    /// Optimiser steps per replica.
    pub steps: usize,
    /// Wall-clock milliseconds for both sides.
    pub ms: f64,
    /// The left side's summary and replicas.
    pub left: SideReport,
    /// The right side's summary and replicas.
    pub right: SideReport,
    /// Right against left, seed by seed; None when no pair is usable.
    pub paired: Option<Paired>,
}

/// One side of a [`StudyReport`]: the summary and every replica's metrics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SideReport {
    /// Spreads over the replicas (flattened into the same JSON object).
    #[serde(flatten)]
    pub summary: SideSummary,
    /// Each replica's final metrics, in seed order.
    pub replicas: Vec<ReplicaMetrics>,
}

impl StudyReport {
    /// The report of `study` from its per-side results, with what trained it and how long it took.
    pub fn new(study: &Study, results: &[Vec<ReplicaMetrics>; 2], backend: &str, ms: f64) -> StudyReport {
        let side = |i: usize| SideReport {
            summary: SideSummary::new(study.sides[i].label(), &results[i]),
            replicas: results[i].clone(),
        };
        StudyReport {
            backend: backend.to_string(),
            replicas: study.seeds.len(),
            steps: study.steps,
            ms,
            left: side(0),
            right: side(1),
            paired: Paired::of(&results[0], &results[1]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunConfig;
    use crate::cpu::CpuBackend;

    fn small_pair() -> Pair {
        let mut config = RunConfig::default();
        config.data.n_train = 64;
        config.data.n_test = 50;
        config.model.hidden = vec![6];
        Pair::new(config).unwrap()
    }

    #[test]
    fn replica_zero_is_the_pair_itself_and_sides_share_inits() {
        let pair = small_pair();
        let study = Study::new(&pair, 3, 10);
        let (left, right) = (study.replicas(0), study.replicas(1));
        assert_eq!(left[0].init, pair.initial_params);
        assert_eq!(left[0].seed, pair.config.seed);
        for i in 0..3 {
            assert_eq!(left[i].init, right[i].init);
            assert_eq!(left[i].side, pair.config.left);
            assert_eq!(right[i].side, pair.config.right);
        }
        assert_ne!(left[0].init, left[1].init);
        let json = serde_json::to_string(&study).unwrap();
        assert_eq!(serde_json::from_str::<Study>(&json).unwrap(), study, "plain data round trip");
    }

    #[test]
    fn the_page_builds_the_same_study_from_its_settings() {
        let settings = [("points", "64"), ("hidden", "6"), ("dataset", "xor"), ("shift", "rotate")];
        let study = Study::from_settings(settings, 4, 30).unwrap();
        let (config, errors) = config_from_settings(settings);
        assert!(errors.is_empty());
        assert_eq!(study, Study::new(&Pair::new(config).unwrap(), 4, 30));
        let e = Study::from_settings([("lr", "-1")], 4, 30).unwrap_err();
        assert_eq!(e.field, "lr");
        assert_eq!(Study::from_settings([], 0, 30).unwrap_err().field, "replicas");
        assert_eq!(Study::from_settings([], 1, 100_001).unwrap_err().field, "steps");
        // The default 2-16-16-2 net (354 parameters) takes the most replicas; a wide
        // deep one does not, and the message says how many it would take.
        assert!(Study::from_settings([], PAGE_MAX_REPLICAS, 1).is_ok());
        let e = Study::from_settings([("hidden", "64,64,64,64,64,64")], PAGE_MAX_REPLICAS, 1).unwrap_err();
        assert_eq!(e.field, "replicas");
        assert!(e.message.contains("use at most 198 replicas"), "{}", e.message);
    }

    #[test]
    fn the_job_in_slices_equals_the_backend_at_once() {
        let pair = small_pair();
        let study = Study::new(&pair, 3, 25);
        let mut job = StudyJob::new(&study);
        let mut calls = 0;
        while !job.is_done() {
            let before = job.progress();
            assert!(job.train_steps(7) <= 7);
            assert!(job.progress() >= before);
            calls += 1;
            assert!(calls < 100, "the job must finish");
        }
        assert_eq!(job.progress(), 1.0);
        let splits = study.splits.clone();
        for side in 0..2 {
            let at_once = CpuBackend.train_replicas(&study.mlp(), &splits, study.batch_size, &study.replicas(side), 25);
            assert_eq!(job.results()[side], at_once, "side {side}");
        }
        // And replica 0 ends where the pair's own run does.
        let mut pair = pair;
        pair.train(25);
        assert_eq!(job.results()[0][0].train_loss, pair.left.evaluate().train_loss);
    }

    #[test]
    fn summaries_leave_out_diverged_replicas_and_non_finite_values() {
        let m = |acc: f64, diverged: bool| ReplicaMetrics {
            train_loss: if diverged { f64::NAN } else { 0.1 },
            train_acc: 1.0,
            id_loss: 0.1,
            id_acc: 1.0,
            ood_loss: 0.5,
            ood_acc: acc,
            diverged,
        };
        // A diverged network still has a finite accuracy (its NaN logits all pick
        // class 0): 0.5 here, which must count neither in the spread nor the pairs.
        let left = [m(0.5, false), m(0.7, false), m(0.5, true), m(f64::NAN, false)];
        let right = [m(0.6, false), m(0.6, false), m(0.9, false), m(0.8, false)];
        let s = SideSummary::new("L".into(), &left);
        assert_eq!(s.ood_acc, Some(Spread { mean: 0.6, min: 0.5, max: 0.7 }));
        assert_eq!(s.train_loss.map(|t| (t.min, t.max)), Some((0.1, 0.1)));
        assert_eq!(s.diverged, 1);
        let p = Paired::of(&left, &right).unwrap();
        assert_eq!((p.right_higher, p.right_lower, p.pairs), (1, 1, 2));
        assert!(p.mean_ood_acc_difference.abs() < 1e-12);
        assert_eq!(Paired::of(&[], &[]), None);
        assert_eq!(SideSummary::new("all diverged".into(), &[m(0.5, true)]).ood_acc, None);
    }

    #[test]
    fn divergence_rule() {
        assert!(!diverged(0.7, 0.1));
        assert!(!diverged(0.7, 6.9));
        assert!(diverged(0.7, 7.1));
        assert!(diverged(0.7, f64::NAN));
    }
}
