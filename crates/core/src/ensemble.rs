//! Deep ensembles (Lakshminarayanan et al. 2017): k members of one side, each
//! trained like the side itself on the same data but from its own initial
//! parameters and batch order (member i uses seed `seed + i`, as the study's
//! replicas do; member 0 is the side itself), predicting the average of the
//! members' class probabilities.
//!
//! The ensemble's loss is the cross-entropy of that average probability,
//! -ln(mean_i p_i[y]) (without label smoothing); its accuracy is that of the
//! average's arg max. With a pinned `init` every member starts from it and
//! only the batch order differs.

use std::sync::Arc;

use serde::Serialize;

use crate::config::{RunConfig, TrainingConfig};
use crate::data::{Dataset, Splits};
use crate::error::ConfigError;
use crate::job::{self, Job};
use crate::metrics::MetricPoint;
use crate::model::{Mlp, Workspace};
use crate::rng::Rng;
use crate::train::{predict_proba, Run};

/// The most members an ensemble may have.
pub const MAX_MEMBERS: usize = 64;

/// Mean class probabilities of `members` (flat parameter vectors of `mlp`) at
/// `points` (row-major `n x 2`), written into `out` (`n x classes`).
pub fn ensemble_proba(mlp: &Mlp, members: &[Vec<f64>], points: &[f64], out: &mut [f64], ws: &mut Workspace) {
    out.fill(0.0);
    let mut one = vec![0.0; out.len()];
    for params in members {
        predict_proba(mlp, params, points, &mut one, ws);
        out.iter_mut().zip(&one).for_each(|(o, p)| *o += p);
    }
    let k = members.len().max(1) as f64;
    out.iter_mut().for_each(|o| *o /= k);
}

/// (cross-entropy of the mean probabilities, accuracy of their arg max) on a labelled set.
pub fn ensemble_evaluate(mlp: &Mlp, members: &[Vec<f64>], data: &Dataset, ws: &mut Workspace) -> (f64, f64) {
    if data.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let k = mlp.classes;
    let mut proba = vec![0.0; data.len() * k];
    ensemble_proba(mlp, members, data.flat_points(), &mut proba, ws);
    let (mut loss, mut correct) = (0.0, 0);
    for (row, &y) in proba.chunks_exact(k).zip(&data.labels) {
        loss -= libm::log(row[y]);
        // arg max, the first on ties (as torch.argmax)
        let best = (0..k).fold(0, |b, c| if row[c] > row[b] { c } else { b });
        correct += usize::from(best == y);
    }
    (loss / data.len() as f64, correct as f64 / data.len() as f64)
}

/// The train / ID / OOD loss and accuracy of an ensemble, beside its members'.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnsembleReport {
    /// The side's label.
    pub label: String,
    /// Number of members.
    pub members: usize,
    /// Each member's final metrics (member i trained with seed `seed + i`).
    pub member_metrics: Vec<MetricPoint>,
    /// Members that diverged (they still count in the ensemble, as a user would see).
    pub diverged: usize,
    /// The ensemble: cross-entropy of the mean probabilities and accuracy of its arg max.
    pub train_loss: f64,
    /// See `train_loss`.
    pub train_acc: f64,
    /// On the in-distribution test set.
    pub id_loss: f64,
    /// See `id_loss`.
    pub id_acc: f64,
    /// On the shifted (OOD) test set.
    pub ood_loss: f64,
    /// See `ood_loss`.
    pub ood_acc: f64,
}

/// Trains `k` members of side 0 (left) or 1 (right) of `config` for that
/// side's steps (its [`RunConfig::plan`]) and measures the ensemble: an
/// [`EnsembleJob`] run to its end.
pub fn train_ensemble(
    config: &RunConfig,
    side: usize,
    k: usize,
) -> Result<(EnsembleReport, Vec<Vec<f64>>), ConfigError> {
    let mut job = EnsembleJob::new(config, side, k, None)?;
    job::finish(&mut job, &mut ());
    Ok(job.into_parts().expect("a finished job has its report"))
}

/// [`train_ensemble`] a bounded piece per [`Job::advance`] call, for the page:
/// a training step of the member under way (or a piece of rows of it, for a
/// big batch), a member's evaluation, or the ensemble's. The members, their
/// order and every number are those of `train_ensemble`, bit for bit.
pub struct EnsembleJob {
    label: String,
    k: usize,
    seed: u64,
    init: Option<Vec<f64>>,
    mlp: Mlp,
    splits: Arc<Splits>,
    side: crate::config::SideConfig,
    training: TrainingConfig,
    steps: usize,
    /// Rows of the batch per piece of a step (None: whole steps).
    piece_rows: Option<usize>,
    /// The member being trained, and whether its training is over (then it is evaluated next).
    current: Option<Run>,
    members: Vec<Vec<f64>>,
    member_metrics: Vec<MetricPoint>,
    diverged: usize,
    report: Option<EnsembleReport>,
}

impl EnsembleJob {
    /// Prepares `k` members of side 0 (left) or 1 (right) of `config`; names
    /// the bad field when the config or `k` is out of range. `piece_rows`: at
    /// most this many rows of a batch per piece (None: a whole step per piece).
    pub fn new(config: &RunConfig, side: usize, k: usize, piece_rows: Option<usize>) -> Result<Self, ConfigError> {
        config.validate()?;
        if !(1..=MAX_MEMBERS).contains(&k) {
            return Err(ConfigError::new("members", format!("must be in [1, {MAX_MEMBERS}], got {k}")));
        }
        let splits = config.splits();
        let side_config = if side == 0 { &config.left } else { &config.right };
        let plan = config.plan(side_config);
        let training = TrainingConfig { batch_size: plan.batch_size, steps: plan.steps, ..config.training.clone() };
        Ok(EnsembleJob {
            label: side_config.label(),
            k,
            seed: config.seed,
            init: config.init.clone(),
            mlp: Mlp::new(2, &config.model, config.classes()),
            splits: Arc::new(splits),
            side: plan.side.clone(),
            training,
            steps: plan.steps,
            piece_rows,
            current: None,
            members: Vec::with_capacity(k),
            member_metrics: Vec::with_capacity(k),
            diverged: 0,
            report: None,
        })
    }

    /// The members trained so far (member i used seed `seed + i`).
    pub fn members(&self) -> &[Vec<f64>] {
        &self.members
    }

    /// The model all members share.
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// The report, once every member is trained and the ensemble measured.
    pub fn report(&self) -> Option<&EnsembleReport> {
        self.report.as_ref()
    }

    /// The report and the members' parameters, once done.
    pub fn into_parts(self) -> Option<(EnsembleReport, Vec<Vec<f64>>)> {
        Some((self.report?, self.members))
    }
}

/// A piece: one step (or a piece of rows of one) of the member under way, the
/// evaluation of a member that finished, or the ensemble's evaluation.
impl Job for EnsembleJob {
    fn advance(&mut self, _: &mut ()) -> bool {
        if self.report.is_some() {
            return true;
        }
        let i = self.members.len();
        if i == self.k {
            let mut ws = Workspace::new();
            let s = &self.splits;
            let [(train_loss, train_acc), (id_loss, id_acc), (ood_loss, ood_acc)] =
                [&s.train, &s.id_test, &s.ood_test].map(|d| ensemble_evaluate(&self.mlp, &self.members, d, &mut ws));
            self.report = Some(EnsembleReport {
                label: self.label.clone(),
                members: self.k,
                member_metrics: std::mem::take(&mut self.member_metrics),
                diverged: self.diverged,
                train_loss,
                train_acc,
                id_loss,
                id_acc,
                ood_loss,
                ood_acc,
            });
            return true;
        }
        let Some(run) = self.current.as_mut() else {
            let seed = self.seed.wrapping_add(i as u64);
            let init = self.init.clone().unwrap_or_else(|| self.mlp.init_params(&mut Rng::derive(seed, "init")));
            let run = Run::new(self.side.clone(), self.mlp.clone(), self.splits.clone(), init, &self.training, seed);
            self.current = Some(run);
            return false;
        };
        if run.step < self.steps && run.diverged.is_none() {
            // As `Run::train`: whole steps; a piece of rows at a time gives the same bits.
            match self.piece_rows {
                Some(rows) => {
                    run.step_piece(rows);
                }
                None => run.step(),
            }
            return false;
        }
        let mut run = self.current.take().expect("checked above");
        self.diverged += usize::from(run.diverged.is_some());
        self.member_metrics.push(run.evaluate());
        self.members.push(run.params);
        false
    }

    /// Members done (a member under way counts by its steps), as a fraction of all.
    fn progress(&self) -> f64 {
        if self.report.is_some() {
            return 1.0;
        }
        let within = self.current.as_ref().map_or(0.0, |r| r.step as f64 / self.steps.max(1) as f64);
        ((self.members.len() as f64 + within.min(0.99)) / (self.k as f64 + 0.01)).min(0.999)
    }

    fn is_done(&self) -> bool {
        self.report.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    /// A linear 2-class model (no hidden layer) whose logits at x = (1, 0) are (a, b): W = [[a, 0], [b, 0]], b = 0.
    fn linear(a: f64, b: f64) -> Vec<f64> {
        vec![a, 0.0, b, 0.0, 0.0, 0.0]
    }

    #[test]
    fn the_ensemble_averages_probabilities_by_hand() {
        let mlp = Mlp::new(2, &ModelConfig { hidden: vec![], ..Default::default() }, 2);
        let ln3 = 3f64.ln();
        // Member A: logits (0, ln 3) -> p = (1/4, 3/4); member B: (ln 3, 0) -> (3/4, 1/4); C: (0, 0) -> (1/2, 1/2).
        let members = [linear(0.0, ln3), linear(ln3, 0.0), linear(0.0, 0.0)];
        let mut ws = Workspace::new();
        let mut out = [0.0; 2];
        ensemble_proba(&mlp, &members[..2], &[1.0, 0.0], &mut out, &mut ws);
        assert!((out[0] - 0.5).abs() < 1e-15 && (out[1] - 0.5).abs() < 1e-15, "{out:?}");
        // A and A and B: (1/4 + 1/4 + 3/4) / 3 = 5/12 for class 0.
        let aab = vec![members[0].clone(), members[0].clone(), members[1].clone()];
        ensemble_proba(&mlp, &aab, &[1.0, 0.0], &mut out, &mut ws);
        assert!((out[0] - 5.0 / 12.0).abs() < 1e-15, "{out:?}");
        // Loss and accuracy: labels 1 and 0 at x = (1, 0): -ln(7/12) and -ln(5/12); arg max is 1 -> 1/2 correct.
        let data = Dataset { points: vec![[1.0, 0.0], [1.0, 0.0]], labels: vec![1, 0], classes: 2 };
        let (loss, acc) = ensemble_evaluate(&mlp, &aab, &data, &mut ws);
        let expected = -0.5 * ((7.0f64 / 12.0).ln() + (5.0f64 / 12.0).ln());
        assert!((loss - expected).abs() < 1e-15, "{loss} vs {expected}");
        assert_eq!(acc, 0.5);
        // One member: the ensemble is the model (loss without label smoothing).
        let (l1, a1) = ensemble_evaluate(&mlp, &members[..1], &data, &mut ws);
        let (l2, a2) = mlp.evaluate(&members[0], data.flat_points(), &data.labels, &mut ws);
        assert!((l1 - l2).abs() < 1e-15 && a1 == a2);
    }

    #[test]
    fn member_zero_is_the_side_itself_and_bad_sizes_are_named() {
        let mut config = RunConfig::default();
        config.training.steps = 30;
        let (report, members) = train_ensemble(&config, 1, 3).unwrap();
        let mut pair = crate::pair::Pair::new(config.clone()).unwrap();
        pair.train(30);
        assert_eq!(members[0], pair.right.params);
        assert_ne!(members[1], members[0]);
        assert_eq!(report.member_metrics[0], pair.right.evaluate());
        assert_eq!(report.label, "SAM(rho=0.2)+SGD");
        assert_eq!(train_ensemble(&config, 0, 0).unwrap_err().field, "members");
    }

    #[test]
    fn the_job_in_pieces_gives_the_bits_of_train_ensemble() {
        let mut config = RunConfig::default();
        config.training.steps = 12;
        config.training.batch_size = 16;
        let (report, members) = train_ensemble(&config, 0, 3).unwrap();
        // Pieces of 5 rows split every step of every member.
        let mut job = EnsembleJob::new(&config, 0, 3, Some(5)).unwrap();
        let mut pieces = 0;
        while !job.advance(&mut ()) {
            assert!(job.progress() < 1.0);
            pieces += 1;
        }
        assert!(pieces > 3 * 12 * 3, "{pieces} pieces: steps were split into rows");
        assert_eq!(job.progress(), 1.0);
        let (r2, m2) = job.into_parts().unwrap();
        assert_eq!(m2, members);
        assert_eq!(r2, report);
        assert_eq!(EnsembleJob::new(&config, 0, MAX_MEMBERS + 1, None).err().unwrap().field, "members");
    }
}
