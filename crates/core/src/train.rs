//! One training run: a model, an optimiser (maybe SAM-wrapped) and its data.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::averaging::Averager;
use crate::config::{SideConfig, TrainingConfig};
use crate::data::Splits;
use crate::dropout::Masks;
use crate::metrics::{History, MetricPoint};
use crate::model::{Mlp, Workspace, EVAL_CHUNK};
use crate::optim::Optimizer;
use crate::rng::Rng;
use crate::sam::{ascent_direction, SamConfig};
use crate::switch::keeps_state;

/// How many metric points a run keeps (older ones are thinned, see [`History`]).
pub const HISTORY_CAPACITY: usize = 1000;

/// A run counts as diverged when its training loss is not finite or exceeds
/// this multiple of its starting value. Saturating networks (tanh, sigmoid)
/// rarely overflow to NaN; their loss just explodes, and that is the same failure.
pub const DIVERGENCE_FACTOR: f64 = 10.0;

/// Why and when a run stopped making sense.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// The step at which divergence was detected.
    pub step: usize,
    /// What went wrong, in words for the page (e.g. a non-finite loss).
    pub reason: String,
}

/// Minibatch order: a fresh seeded shuffle every epoch. Two runs built from
/// the same seed draw identical batches, which is what makes a pair fair.
#[derive(Clone, Debug)]
pub struct BatchOrder {
    rng: Rng,
    order: Vec<usize>,
    position: usize,
    batch_size: usize,
}

impl BatchOrder {
    /// A shuffled order of `n` training indices served `batch_size` at a time.
    pub fn new(seed: u64, n: usize, batch_size: usize) -> Self {
        let order = (0..n).collect();
        // position = n forces a shuffle before the first batch
        BatchOrder { rng: Rng::derive(seed, "batches"), order, position: n, batch_size: batch_size.clamp(1, n.max(1)) }
    }

    /// Indices of the next minibatch; the last one of an epoch may be smaller
    /// (like a PyTorch DataLoader with drop_last=False).
    pub fn next_batch(&mut self) -> &[usize] {
        if self.position >= self.order.len() {
            self.rng.shuffle(&mut self.order);
            self.position = 0;
        }
        let start = self.position;
        self.position = (start + self.batch_size).min(self.order.len());
        &self.order[start..self.position]
    }
}

/// Parameter snapshots along a run, for trajectory plots (PCA plane, projected
/// path). Off by default (`every == 0`): then a step pays one comparison.
/// Bounded like [`History`]: when full, every second snapshot is dropped and
/// the interval doubles, so the snapshots always span the whole run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoints {
    /// Record every this many steps (0 = off).
    pub every: usize,
    /// Most snapshots kept; when full, every second one is dropped and `every` doubles.
    pub capacity: usize,
    /// The step of each snapshot.
    pub steps: Vec<usize>,
    /// The parameters after that step.
    pub params: Vec<Vec<f64>>,
    /// SAM sides only (else empty), aligned with `params`: w + e, where SAM
    /// evaluated its gradient during that step (w being the parameters before
    /// the step; the first snapshot, taken before any step, repeats `params`).
    pub perturbed: Vec<Vec<f64>>,
}

impl Checkpoints {
    /// Whether a snapshot should be taken at `step` (never when recording is off).
    pub fn is_due(&self, step: usize) -> bool {
        self.every > 0 && step.is_multiple_of(self.every)
    }

    fn push(&mut self, step: usize, params: &[f64], perturbed: Option<&[f64]>) {
        if self.steps.len() >= self.capacity.max(2) {
            // Keep the first and every second one after it; the newest is appended below.
            halve(&mut self.steps);
            halve(&mut self.params);
            halve(&mut self.perturbed);
            self.every *= 2;
        }
        self.steps.push(step);
        self.params.push(params.to_vec());
        if let Some(p) = perturbed {
            self.perturbed.push(p.to_vec());
        }
    }
}

/// Keeps elements 0, 2, 4, ...
fn halve<T>(v: &mut Vec<T>) {
    let mut i = 0;
    v.retain(|_| {
        i += 1;
        i % 2 == 1
    });
}

/// A model being trained by one optimiser. Allocation happens in `new`; `step`
/// reuses the buffers.
#[derive(Clone, Debug)]
pub struct Run {
    /// This side's optimiser, SAM and schedule settings (as configured: after a
    /// switch, `optimizer.config` and `sam` say what trains now).
    pub side: SideConfig,
    /// The SAM wrapper in use now (`side.sam` until a switch changes it).
    pub sam: Option<SamConfig>,
    /// The running average of the parameters (SWA or EMA), if the side keeps one.
    pub average: Option<Averager>,
    /// The steps this side trains when run to the end ([`crate::config::RunConfig::plan`]).
    pub steps_budget: usize,
    /// The architecture (shapes only; the weights are in `params`).
    pub mlp: Mlp,
    /// The train, ID-test and OOD-test data, shared with the other side.
    pub splits: Arc<Splits>,
    /// The current flat parameter vector (f64, PyTorch nn.Linear layout).
    pub params: Vec<f64>,
    /// The base optimiser and its running state.
    pub optimizer: Optimizer,
    /// Number of optimiser steps taken so far.
    pub step: usize,
    /// Logged train / ID / OOD metrics.
    pub history: History,
    /// Set once the run has diverged; `None` while training is healthy.
    pub diverged: Option<Divergence>,
    /// The last SAM ascent step e (zero for plain optimisers), kept so the
    /// landscape view can show where SAM looked.
    pub epsilon: Vec<f64>,
    /// ||grad|| at the last step, before any SAM perturbation.
    pub last_grad_norm: f64,
    /// Mean loss of the last minibatch, at the parameters before the step.
    pub last_batch_loss: f64,
    /// Parameter snapshots; off until [`Run::record_checkpoints`].
    pub checkpoints: Checkpoints,
    batches: BatchOrder,
    /// This step's dropout masks (drawn only when the model has dropout).
    dropout: Masks,
    grad: Vec<f64>,
    perturbed: Vec<f64>,
    batch_x: Vec<f64>,
    batch_y: Vec<usize>,
    ws: Workspace,
    /// How far the step under way has got, when it is worked in pieces (see [`Run::step_piece`]).
    under_way: StepUnderWay,
    /// The metrics owed at the current step, worked out a piece at a time:
    /// step 0's of [`Run::unlogged`], or those of a step that
    /// [`Run::step_piece`] finished. None: nothing owed.
    log_owed: Option<Evaluation>,
    /// A step's owed metrics were settled from outside ([`Run::settle_log`]):
    /// the next [`Run::step_piece`] reports that step complete.
    step_done_unreported: bool,
}

/// An evaluation of a run's metrics under way (see [`Run::evaluate_piece`]):
/// the step it is for, the set (train, ID, OOD) and row it has reached, the
/// sums so far and the finished sets' (mean loss, accuracy).
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    step: Option<usize>,
    set: usize,
    row: usize,
    sums: (f64, usize),
    done: [(f64, f64); 3],
}

/// The step under way of a [`Run`] worked a piece of the batch at a time: which
/// gradient (1: at w; 2: SAM's at w + e), the next row of the batch, and the
/// loss summed over the rows done so far. `gradient == 0`: no step under way.
#[derive(Clone, Copy, Debug, Default)]
struct StepUnderWay {
    gradient: u8,
    row: usize,
    loss_sum: f64,
}

impl Run {
    /// A run of one side from the given initial parameters; its batch order comes from `seed`, so equal seeds give equal batches.
    pub fn new(
        side: SideConfig,
        mlp: Mlp,
        splits: Arc<Splits>,
        initial_params: Vec<f64>,
        training: &TrainingConfig,
        seed: u64,
    ) -> Run {
        let mut run = Run::unlogged(side, mlp, splits, initial_params, training, seed);
        run.settle_log();
        run
    }

    /// [`Run::new`] without its metrics at step 0 yet: they are owed
    /// ([`Run::log_owed`]) and worked out by [`Run::log_piece`] (or the first
    /// [`Run::step_piece`] calls) a piece at a time, or at once by [`Run::step`]
    /// and [`Run::settle_log`]. The history ends with the bits of `new`'s. For
    /// the page: step 0 of a big net (5000 points through 6 x 64, per side) is
    /// tens of milliseconds that the worker would otherwise spend in one go.
    pub fn unlogged(
        side: SideConfig,
        mlp: Mlp,
        splits: Arc<Splits>,
        initial_params: Vec<f64>,
        training: &TrainingConfig,
        seed: u64,
    ) -> Run {
        let n = initial_params.len();
        assert_eq!(n, mlp.num_params(), "initial parameters do not fit the model");
        let batch_size = side.batch_size.unwrap_or(training.batch_size).clamp(1, splits.train.len().max(1));
        let batches = BatchOrder::new(seed, splits.train.len(), batch_size);
        let dropout = Masks::new(&mlp, batch_size, seed);
        Run {
            optimizer: Optimizer::new(side.optimizer.clone(), n),
            sam: side.sam.clone(),
            average: side.average.clone().map(|a| Averager::new(a, n)),
            steps_budget: side.steps.unwrap_or(training.steps),
            side,
            mlp,
            params: initial_params,
            step: 0,
            history: History::new(training.log_every, HISTORY_CAPACITY),
            diverged: None,
            epsilon: vec![0.0; n],
            last_grad_norm: 0.0,
            last_batch_loss: f64::NAN,
            checkpoints: Checkpoints::default(),
            batches,
            dropout,
            grad: vec![0.0; n],
            perturbed: vec![0.0; n],
            batch_x: Vec::with_capacity(batch_size * 2),
            batch_y: Vec::with_capacity(batch_size),
            ws: Workspace::new(),
            splits,
            under_way: StepUnderWay::default(),
            log_owed: Some(Evaluation::default()),
            step_done_unreported: false,
        }
    }

    /// The learning rate of the next step, after the schedule (of the base
    /// optimiser in use: a switch may have changed it).
    pub fn current_lr(&self) -> f64 {
        self.side.schedule.lr_at(self.optimizer.config.lr(), self.step)
    }

    /// The side as it trains now: after a switch, the new base optimiser and wrapper.
    pub fn live_side(&self) -> SideConfig {
        SideConfig { optimizer: self.optimizer.config.clone(), sam: self.sam.clone(), ..self.side.clone() }
    }

    /// Applies the side's switch when its step has come (see [`crate::switch`]):
    /// the wrapper changes; a new base optimiser starts from empty state unless
    /// it is the same one (then only its lr may change). Allocates nothing.
    fn switch_if_due(&mut self) {
        let Some(switch) = &self.side.switch else { return };
        if self.step != switch.at {
            return;
        }
        self.sam = switch.sam.clone();
        if let Some(new) = &switch.optimizer {
            if !keeps_state(&self.optimizer.config, new) {
                self.optimizer.reset();
            }
            self.optimizer.config = new.clone();
        }
    }

    /// Puts the current parameters into the running average if they are due.
    fn update_average(&mut self) {
        if let Some(average) = &mut self.average {
            if average.config.is_due(self.step) {
                average.update(&self.params);
            }
        }
    }

    /// Metrics of the averaged parameters (SWA / EMA) now, if the side keeps
    /// an average and anything has entered it. (`grad_norm` is that of the
    /// last minibatch at the trained parameters, as in [`Run::evaluate`].)
    pub fn average_metrics(&mut self) -> Option<MetricPoint> {
        let average = self.average.as_ref()?.solution()?.to_vec();
        Some(self.evaluate_params(&average))
    }

    /// One optimiser step on the next minibatch. Does nothing once diverged.
    pub fn step(&mut self) {
        while !self.step_piece(usize::MAX) {}
    }

    /// Works on the step under way (or starts the next one) for at most
    /// `max_rows` rows of the batch per gradient; returns true once the step
    /// is complete (or the run has diverged), false while rows remain. A big
    /// batch on a big net (5000 points through 6 x 64) takes tenths of a
    /// second a step: the page works it in pieces of a few milliseconds so it
    /// can answer in between. The gradient sums run row by row whatever the
    /// pieces, so any split gives exactly the bits of [`Run::step`]. Between
    /// pieces `params`, `step` and the history still show the last complete
    /// step, until the gradient is complete; metrics due at the new step are
    /// then the step's last pieces (evaluated [`EVAL_CHUNK`]s at a time, the
    /// bits of [`Run::log`]), and metrics owed at step 0 ([`Run::unlogged`])
    /// its first.
    pub fn step_piece(&mut self, max_rows: usize) -> bool {
        if std::mem::take(&mut self.step_done_unreported) {
            return true;
        }
        if self.log_owed.is_some() {
            // Step 0's metrics come before the first step; a later step's
            // metrics are the end of that step.
            return self.log_piece(max_rows) && self.step > 0;
        }
        if self.diverged.is_some() {
            self.under_way = StepUnderWay::default();
            return true;
        }
        if self.under_way.gradient == 0 {
            let train = &self.splits.train;
            self.batch_x.clear();
            self.batch_y.clear();
            for &i in self.batches.next_batch() {
                self.batch_x.extend_from_slice(&train.points[i]);
                self.batch_y.push(train.labels[i]);
            }
            self.switch_if_due();
            if self.mlp.has_dropout() {
                // Dropout masks are drawn for the whole batch: such a step is one piece
                // (its metrics, where due, in pieces after it).
                self.step_with_dropout(false);
                return self.log_owed.is_none();
            }
            self.grad.fill(0.0);
            self.under_way = StepUnderWay { gradient: 1, row: 0, loss_sum: 0.0 };
        }
        let rows = self.batch_y.len();
        let inputs = self.batch_x.len() / rows.max(1);
        let StepUnderWay { gradient, row, loss_sum } = self.under_way;
        let end = row + max_rows.max(1).min(rows - row);
        let at = if gradient == 1 { &self.params } else { &self.perturbed };
        let (x, y) = (&self.batch_x[row * inputs..end * inputs], &self.batch_y[row..end]);
        let loss_sum = self.mlp.accumulate_loss_and_grad(at, x, y, None, rows, loss_sum, &mut self.grad, &mut self.ws);
        self.under_way = StepUnderWay { gradient, row: end, loss_sum };
        if end < rows {
            return false;
        }
        if gradient == 1 && self.first_gradient_done(loss_sum * (1.0 / rows as f64)) {
            self.grad.fill(0.0);
            self.under_way = StepUnderWay { gradient: 2, row: 0, loss_sum: 0.0 };
            return false;
        }
        self.under_way = StepUnderWay::default();
        self.finish_step(false);
        // Metrics due at this step are owed: the next pieces work them out.
        self.log_owed.is_none()
    }

    /// Takes the first gradient's minibatch `loss` and norm; for a SAM side it
    /// then moves `perturbed` to w + e and returns true: the gradient there (on
    /// the same minibatch) is the one the base optimiser steps from w with.
    fn first_gradient_done(&mut self, loss: f64) -> bool {
        self.last_batch_loss = loss;
        self.last_grad_norm = self.grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        let Some(sam) = &self.sam else { return false };
        ascent_direction(sam, &self.params, &self.grad, &mut self.epsilon);
        for ((p, &w), &e) in self.perturbed.iter_mut().zip(&self.params).zip(&self.epsilon) {
            *p = w + e;
        }
        true
    }

    /// A whole step with dropout (the batch is the batch just drawn): both
    /// gradients with the same masks, SAM's too (davda54/sam's usage).
    fn step_with_dropout(&mut self, log_now: bool) {
        let masks = self.dropout.draw(&self.mlp, self.batch_y.len());
        let (x, y) = (&self.batch_x, &self.batch_y);
        let loss = self.mlp.loss_and_grad_dropout(&self.params, x, y, masks, &mut self.grad, &mut self.ws);
        if self.first_gradient_done(loss) {
            let (x, y, masks) = (&self.batch_x, &self.batch_y, &self.dropout.masks);
            self.mlp.loss_and_grad_dropout(&self.perturbed, x, y, masks, &mut self.grad, &mut self.ws);
        }
        self.finish_step(log_now);
    }

    /// Whether a step is part-way through (see [`Run::step_piece`]), its
    /// metrics included.
    pub fn step_under_way(&self) -> bool {
        self.under_way.gradient != 0 || (self.step > 0 && self.log_owed.is_some()) || self.step_done_unreported
    }

    /// Whether metrics at the current step are owed (see [`Run::unlogged`]).
    pub fn log_owed(&self) -> bool {
        self.log_owed.is_some()
    }

    /// Works on the metrics owed at the current step for at least `min_rows`
    /// more rows ([`Run::evaluate_piece`]); once they are complete, logs them
    /// as [`Run::log`] would. Returns true when nothing is owed any more.
    pub fn log_piece(&mut self, min_rows: usize) -> bool {
        let Some(mut eval) = self.log_owed.take() else { return true };
        match self.evaluate_piece(&mut eval, min_rows) {
            Some(point) => {
                self.record(point);
                true
            }
            None => {
                self.log_owed = Some(eval);
                false
            }
        }
    }

    /// Starts the metrics owed (if any) again from the first row: the data
    /// they are evaluated on changed (the page swapped the OOD set).
    pub fn restart_owed_log(&mut self) {
        if let Some(eval) = &mut self.log_owed {
            *eval = Evaluation::default();
        }
    }

    /// Logs the metrics owed at the current step, if any, all at once (for a
    /// reader that needs the history complete, such as a run record). Where
    /// they were a step's last pieces, that step is complete: the next
    /// [`Run::step_piece`] says so without starting another.
    pub fn settle_log(&mut self) {
        if self.log_owed.is_none() {
            return;
        }
        let rows = self.splits.train.len() + self.splits.id_test.len() + self.splits.ood_test.len();
        while !self.log_piece(rows) {}
        self.step_done_unreported = self.step > 0;
    }

    /// The end of a step, once its gradient is complete: the optimiser's update,
    /// divergence checks, metric logging (now, or owed with `log_now` false:
    /// see [`Run::step_piece`]) and checkpoints.
    fn finish_step(&mut self, log_now: bool) {
        let lr = self.current_lr();
        let loss = self.last_batch_loss;
        self.optimizer.step(&mut self.params, &self.grad, lr);
        self.step += 1;
        if !loss.is_finite() || !self.last_grad_norm.is_finite() {
            self.diverge(format!("the minibatch loss became {loss} (learning rate {lr} too large?)"));
            return;
        }
        self.update_average();
        if self.history.is_due(self.step) {
            if log_now {
                self.log();
            } else {
                self.log_owed = Some(Evaluation::default());
            }
        }
        if self.checkpoints.is_due(self.step) {
            let perturbed = self.sam.as_ref().map(|_| &self.perturbed[..]);
            self.checkpoints.push(self.step, &self.params, perturbed);
        }
    }

    /// Starts recording a parameter snapshot every `every` steps (at most
    /// `capacity` kept, thinned as the run grows), beginning with the current
    /// parameters. Does not change the training itself.
    pub fn record_checkpoints(&mut self, every: usize, capacity: usize) {
        self.checkpoints = Checkpoints { every: every.max(1), capacity: capacity.max(2), ..Default::default() };
        // No ascent has happened yet: a SAM side's first w + e is w itself (keeps the lists aligned).
        let perturbed = self.sam.as_ref().map(|_| &self.params[..]);
        self.checkpoints.push(self.step, &self.params, perturbed);
    }

    /// Runs up to `n` steps (fewer if the run diverges).
    pub fn train(&mut self, n: usize) {
        for _ in 0..n {
            if self.diverged.is_some() {
                break;
            }
            self.step();
        }
    }

    /// Evaluates train, ID and OOD metrics now and appends them to the history.
    pub fn log(&mut self) {
        let point = self.evaluate();
        self.record(point);
    }

    /// Appends `point`, the metrics at the current step, to the history (or
    /// marks the run diverged where they are not finite or blew up).
    fn record(&mut self, point: MetricPoint) {
        if !point.is_finite() || self.params.iter().any(|p| !p.is_finite()) {
            self.diverge(format!("the train loss became {} (learning rate {} too large?)", point.train_loss, point.lr));
            return;
        }
        let start = self.history.points.first().map_or(point.train_loss, |p| p.train_loss);
        self.history.push(point);
        if point.train_loss > DIVERGENCE_FACTOR * start {
            self.diverge(format!(
                "the train loss blew up from {start:.3} to {:.3} (learning rate {} too large?)",
                point.train_loss, point.lr
            ));
        }
    }

    /// Metrics at the current parameters (no side effects on the history).
    pub fn evaluate(&mut self) -> MetricPoint {
        let sets = evaluate_sets(&self.mlp, &self.splits, &self.params, &mut self.ws);
        self.metric_point(sets)
    }

    /// Metrics of other parameters of this model (an average, an ensemble member) on this run's data.
    pub fn evaluate_params(&mut self, params: &[f64]) -> MetricPoint {
        let sets = evaluate_sets(&self.mlp, &self.splits, params, &mut self.ws);
        self.metric_point(sets)
    }

    /// A metric point of this run now from (loss, accuracy) on train, ID and OOD.
    fn metric_point(
        &self,
        [(train_loss, train_acc), (id_loss, id_acc), (ood_loss, ood_acc)]: [(f64, f64); 3],
    ) -> MetricPoint {
        MetricPoint {
            step: self.step,
            lr: self.current_lr(),
            train_loss,
            train_acc,
            id_loss,
            id_acc,
            ood_loss,
            ood_acc,
            grad_norm: self.last_grad_norm,
        }
    }

    /// Works on `eval`, an evaluation of the current parameters as
    /// [`Run::evaluate`] does it, for at least `min_rows` more rows (whole chunks
    /// of [`EVAL_CHUNK`]) or to the end; returns the metrics once complete, with
    /// exactly the bits of `evaluate`. An evaluation begun at an earlier step
    /// starts again. A big net's metrics (5000 points through 6 x 64: tens of
    /// milliseconds) are worked this way in the page, between other work.
    pub fn evaluate_piece(&mut self, eval: &mut Evaluation, min_rows: usize) -> Option<MetricPoint> {
        if eval.step != Some(self.step) {
            *eval = Evaluation { step: Some(self.step), ..Evaluation::default() };
        }
        let s = &*self.splits;
        let mut budget = min_rows.div_ceil(EVAL_CHUNK).max(1).saturating_mul(EVAL_CHUNK);
        while eval.set < 3 {
            let data = [&s.train, &s.id_test, &s.ood_test][eval.set];
            let end = (eval.row + budget).min(data.len());
            let x = &data.flat_points()[eval.row * 2..end * 2];
            eval.sums = self.mlp.evaluate_sums(eval.sums, &self.params, x, &data.labels[eval.row..end], &mut self.ws);
            budget -= end - eval.row;
            eval.row = end;
            if end < data.len() {
                return None;
            }
            let n = data.len() as f64;
            eval.done[eval.set] =
                if data.is_empty() { (f64::NAN, f64::NAN) } else { (eval.sums.0 / n, eval.sums.1 as f64 / n) };
            eval.set += 1;
            eval.row = 0;
            eval.sums = (0.0, 0);
            // The next set's pieces must start at multiples of EVAL_CHUNK too.
            budget -= budget % EVAL_CHUNK;
            if budget == 0 && eval.set < 3 {
                return None;
            }
        }
        Some(self.metric_point(eval.done))
    }

    /// (mean loss, accuracy) of the current parameters on any labelled set:
    /// the training set alone for a stopping rule, or another shift's OOD set.
    pub fn evaluate_on(&mut self, data: &crate::data::Dataset) -> (f64, f64) {
        self.mlp.evaluate(&self.params, data.flat_points(), &data.labels, &mut self.ws)
    }

    fn diverge(&mut self, reason: String) {
        self.diverged = Some(Divergence { step: self.step, reason });
    }

    /// Class probabilities at arbitrary points (row-major `n x 2`), written into
    /// `out` (`n x classes`). Used for decision boundaries.
    pub fn predict_proba(&mut self, points: &[f64], out: &mut [f64]) {
        predict_proba(&self.mlp, &self.params, points, out, &mut self.ws);
    }
}

/// Softmax probabilities of `mlp` at `points`, chunked to keep scratch small.
pub fn predict_proba(mlp: &Mlp, params: &[f64], points: &[f64], out: &mut [f64], ws: &mut Workspace) {
    const CHUNK: usize = 512;
    let k = mlp.classes;
    for (xc, oc) in points.chunks(CHUNK * mlp.inputs).zip(out.chunks_mut(CHUNK * k)) {
        let logits = mlp.forward(params, xc, ws);
        for (row, o) in logits.chunks_exact(k).zip(oc.chunks_exact_mut(k)) {
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for (ov, &z) in o.iter_mut().zip(row) {
                *ov = libm::exp(z - max);
                sum += *ov;
            }
            o.iter_mut().for_each(|v| *v /= sum);
        }
    }
}

/// (mean loss, accuracy) of `params` on the train, ID and OOD sets of `splits`.
fn evaluate_sets(mlp: &Mlp, splits: &Splits, params: &[f64], ws: &mut Workspace) -> [(f64, f64); 3] {
    [&splits.train, &splits.id_test, &splits.ood_test].map(|d| mlp.evaluate(params, d.flat_points(), &d.labels, ws))
}
