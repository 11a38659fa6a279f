//! A side's other solutions, shown beside its weights now:
//!
//! - its weight average (SWA / EMA), which the core keeps as the side trains
//!   (`crate::averaging`): its decision field, metrics and sharpness;
//! - an ensemble of k members (`crate::ensemble`: the side's config with seeds
//!   seed + i, each trained for the side's steps), trained here a piece at a
//!   time: its field (the mean of the members' probabilities) and metrics;
//! - Dinh et al.'s (2017) rescaling of the side's weights (`rescale_layers`):
//!   one ReLU layer times alpha, the next divided by alpha, so the function
//!   stays while lambda_max and the trace move; both solutions are measured.
//!
//! Everything here is done in bounded pieces by `extrasAdvance`, so the worker
//! stays responsive while an ensemble trains.

use serde_json::Value;
use wasm_bindgen::prelude::*;

use crate::averaging::Averaging;
use crate::ensemble::{EnsembleJob, EnsembleReport};
use crate::job::{Job, Slicer, Stop};
use crate::metrics::MetricPoint;
use crate::model::Workspace;
use crate::sharpness::{rescale_layers, sample_rows, SharpnessJob, SharpnessReport};
use crate::train::Run;

use super::super::field::Field;
use super::Sandbox;

/// What a side's decision panel shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Shown {
    /// The side's weights now.
    #[default]
    Weights,
    /// Its weight average (once anything has been averaged).
    Average,
    /// Its ensemble (once one has been trained).
    Ensemble,
}

/// A key for work done on a side's weights: (its step, the sandbox's settings revision).
type Key = (usize, u32);

/// A side's weight average as the page shows it.
#[derive(Default)]
pub(super) struct AverageView {
    /// Allocated when a panel first shows the average (a field's buffers are ~200 KB).
    field: Option<Field>,
    /// The key of the field shown, and of the one being computed.
    field_at: Option<Key>,
    field_job: Option<Key>,
    metrics: Option<(Key, MetricPoint)>,
    /// When (ms) the average was last evaluated: while training, at most every `EVALUATE_EVERY_MS`.
    evaluated_at: f64,
    sharpness: Option<(Key, SharpnessReport)>,
    job: Option<(Key, SharpnessJob)>,
}

/// A trained ensemble: its report, members' parameters and decision field.
pub(super) struct EnsembleView {
    report: EnsembleReport,
    steps: usize,
    field: Field,
}

/// Dinh's rescaling of one side, measured before and after a piece at a time.
pub(super) struct RescaleWork {
    side: usize,
    layer: usize,
    alpha: f64,
    step: usize,
    lr: f64,
    max_logit_change: f64,
    before_params: Vec<f64>,
    /// The metrics at the old and at the rescaled weights (the same to rounding).
    metrics: [Option<MetricPoint>; 2],
    /// Sharpness of the old and of the rescaled weights, with the side's tracker's settings.
    jobs: [SharpnessJob; 2],
}

/// While training, the weight average is evaluated at most this often (ms).
const EVALUATE_EVERY_MS: f64 = 250.0;

/// The other solutions of both sides and the work under way on them.
#[derive(Default)]
pub(super) struct Extras {
    pub(super) shown: [Shown; 2],
    average: [AverageView; 2],
    ensemble: [Option<EnsembleView>; 2],
    ensemble_job: Option<(usize, EnsembleJob)>,
    rescale: Option<RescaleWork>,
    /// The last rescaling's comparison (JSON), until the runs are replaced.
    rescaled: Option<Value>,
    /// Bumped when anything shown here changes (metrics snapshots key on it).
    pub(super) version: u32,
    slicers: [Slicer; 3],
}

impl Extras {
    /// The runs were replaced (new settings, data or a shift): what was computed
    /// for the old ones goes (the averages' field buffers stay, for reuse); the
    /// panels' choices stay.
    pub(super) fn forget(&mut self) {
        for view in &mut self.average {
            (view.field_at, view.field_job, view.metrics, view.sharpness, view.job) = (None, None, None, None, None);
        }
        self.ensemble = [None, None];
        self.ensemble_job = None;
        self.rescale = None;
        self.rescaled = None;
        self.version = self.version.wrapping_add(1);
    }
}

/// Piece by piece: evaluate the old weights, the new, then the two sharpness jobs.
impl Job<Run> for RescaleWork {
    fn advance(&mut self, run: &mut Run) -> bool {
        if self.metrics[0].is_none() {
            self.metrics[0] = Some(run.evaluate_params(&self.before_params));
        } else if self.metrics[1].is_none() {
            self.metrics[1] = Some(run.evaluate());
        } else if !self.jobs[0].is_done() {
            self.jobs[0].advance(&mut ());
        } else {
            self.jobs[1].advance(&mut ());
        }
        self.is_done()
    }

    fn progress(&self) -> f64 {
        let evaluated = self.metrics.iter().filter(|m| m.is_some()).count() as f64;
        (evaluated + 4.0 * (self.jobs[0].progress() + self.jobs[1].progress())) / 10.0
    }

    fn is_done(&self) -> bool {
        self.metrics[1].is_some() && self.jobs[1].is_done()
    }
}

#[wasm_bindgen]
impl Sandbox {
    /// What side `side`'s decision panel shows: "weights" (now), "average"
    /// (its SWA / EMA weights, where it keeps an average) or "ensemble" (its
    /// ensemble, once trained). Until the chosen solution exists the panel
    /// shows the weights. Returns "" or what is wrong with `which`.
    #[wasm_bindgen(js_name = showSolution)]
    pub fn show_solution(&mut self, side: u32, which: &str) -> String {
        let shown = match which {
            "weights" => Shown::Weights,
            "average" => Shown::Average,
            "ensemble" => Shown::Ensemble,
            other => return format!("show: expected weights, average or ensemble, got \"{other}\""),
        };
        self.extras.shown[(side as usize).min(1)] = shown;
        String::new()
    }

    /// Starts training an ensemble of `k` members of side `side` (the side's
    /// config with seeds seed + i, each for the side's steps), a piece per
    /// `extrasAdvance`. Replaces an ensemble under way. Returns "" or the problem.
    #[wasm_bindgen(js_name = ensembleStart)]
    pub fn ensemble_start(&mut self, side: u32, k: u32) -> String {
        let i = (side as usize).min(1);
        match EnsembleJob::new(&self.pair().config, i, k as usize, self.piece_rows()) {
            Ok(job) => {
                self.extras.ensemble_job = Some((i, job));
                self.extras.slicers[1] = Slicer::default();
                String::new()
            }
            Err(e) => e.to_string(),
        }
    }

    /// Dinh et al.'s rescaling of side `side`'s weights now: hidden layer
    /// `layer` (0 = the first) times `alpha`, the next layer's weights divided
    /// by it. The function is unchanged (ReLU nets only); the side's weight
    /// average is rescaled the same way (it is a linear combination of weights,
    /// so it keeps its function too); the optimiser's state (momentum, Adam's
    /// moments) is cleared, since it belongs to the old parametrisation:
    /// training goes on from the rescaled weights as from a fresh start. The
    /// old and new weights are then measured a piece per `extrasAdvance`;
    /// `rescaleJson` has the comparison. Returns "" or why it cannot be done.
    #[wasm_bindgen(js_name = rescaleStart)]
    pub fn rescale_start(&mut self, side: u32, layer: u32, alpha: f64) -> String {
        if self.pair().step_under_way() {
            return "a training step is part-way through; pause and try again".to_string();
        }
        let i = (side as usize).min(1);
        let settings = self.trackers[i].settings().clone();
        let pair = self.pair_mut();
        let run = if i == 0 { &mut pair.left } else { &mut pair.right };
        if run.diverged.is_some() {
            return "this side diverged; reset it first".to_string();
        }
        let rescaled = match rescale_layers(&run.mlp, &run.params, layer as usize, alpha) {
            Ok(p) => p,
            Err(e) => return e,
        };
        if let Some(average) = run.average.as_mut().filter(|a| a.n_averaged > 0) {
            average.params = rescale_layers(&run.mlp, &average.params, layer as usize, alpha).expect("checked above");
        }
        let before = std::mem::replace(&mut run.params, rescaled);
        run.optimizer.reset();
        // The path so far is in the old parametrisation: the trajectory starts again here.
        run.checkpoints.steps.clear();
        run.checkpoints.params.clear();
        run.checkpoints.perturbed.clear();
        let (x, _) = sample_rows(&run.splits.train, settings.max_points, settings.seed);
        let mut ws = Workspace::new();
        let old = run.mlp.forward(&before, &x, &mut ws).to_vec();
        let new = run.mlp.forward(&run.params, &x, &mut ws);
        let max_logit_change = old.iter().zip(new).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        let jobs = [
            SharpnessJob::new(&run.mlp, &before, &run.splits.train, settings.clone()),
            SharpnessJob::new(&run.mlp, &run.params, &run.splits.train, settings),
        ];
        let work = RescaleWork {
            side: i,
            layer: layer as usize,
            alpha,
            step: run.step,
            lr: run.current_lr(),
            max_logit_change,
            before_params: before,
            metrics: [None, None],
            jobs,
        };
        self.extras.rescale = Some(work);
        self.extras.rescaled = None;
        self.extras.slicers[2] = Slicer::default();
        self.weights_changed();
        String::new()
    }

    /// The last rescaling's comparison as JSON (`side, label, layer, alpha, step,
    /// max_logit_change, before: {...}, after: {...}`), "" while it is measured or when there is none.
    #[wasm_bindgen(js_name = rescaleJson)]
    pub fn rescale_json(&self) -> String {
        self.extras.rescaled.as_ref().map_or(String::new(), Value::to_string)
    }

    /// Progress of the extras' long work: `[ensemble, rescaling]`, each in
    /// [0, 1], or -1 where none is under way.
    #[wasm_bindgen(js_name = extrasProgress)]
    pub fn extras_progress(&self) -> Vec<f64> {
        let e = &self.extras;
        vec![
            e.ensemble_job.as_ref().map_or(-1.0, |(_, j)| j.progress()),
            e.rescale.as_ref().map_or(-1.0, |r| r.progress()),
        ]
    }

    /// Works for about `budget_ms` on the extras: a rescaling's measurements, an
    /// ensemble's training, then the weight averages' metrics and sharpness
    /// (with `heavy`, the page is paused: measured whenever they moved; while
    /// training, every so often) and the fields of the solutions the panels
    /// show. Returns 1 | 2: 1 while work is waiting, 2 when something new is
    /// ready to show (a finished ensemble or rescaling, new metrics).
    #[wasm_bindgen(js_name = extrasAdvance)]
    pub fn extras_advance(&mut self, budget_ms: f64, heavy: bool) -> u32 {
        let start = self.clock.now();
        let mut changed = false;
        let mut busy = false;
        if self.extras.rescale.is_some() {
            changed |= self.advance_rescale(budget_ms);
            busy |= self.extras.rescale.is_some();
        }
        let left = |s: &Self| budget_ms - (s.clock.now() - start);
        if self.extras.ensemble_job.is_some() && left(self) > 0.0 {
            changed |= self.advance_ensemble(left(self));
            busy = true;
        }
        for i in 0..2 {
            if let Some(view) = self.extras.ensemble[i].as_mut().filter(|v| v.field.in_progress()) {
                busy |= !view.field.advance(&mut ());
                changed = true;
            }
            if self.pair().sides()[i].average.as_ref().and_then(|a| a.solution()).is_some() && left(self) > 0.0 {
                let (c, b) = self.advance_average(i, left(self).max(0.5), heavy);
                changed |= c;
                busy |= b;
            }
        }
        if changed {
            self.extras.version = self.extras.version.wrapping_add(1);
        }
        u32::from(busy) | if changed { 2 } else { 0 }
    }
}

impl Sandbox {
    /// The weights of a side changed in place (a rescaling): what was computed for them goes.
    /// Same settings revision, same step, new weights: every result keyed by
    /// (step, revision) is dropped here rather than keyed by yet another counter.
    fn weights_changed(&mut self) {
        self.fields_at = [None, None];
        self.field_job = [None, None];
        self.offload.boundary = None;
        self.evaluated = [None, None];
        self.metrics_cache = None;
        for view in &mut self.extras.average {
            (view.field_at, view.field_job, view.metrics, view.sharpness, view.job) = (None, None, None, None, None);
        }
        self.landscape_shown = None;
        self.landscape_pending = None;
        self.landscape_start = None;
        self.evals = Default::default();
    }

    fn advance_rescale(&mut self, budget_ms: f64) -> bool {
        let Some(mut work) = self.extras.rescale.take() else { return false };
        let clock = &self.clock;
        let slot = self.slot.as_mut().expect("a sandbox always holds a pair");
        let run = if work.side == 0 { &mut slot.left } else { &mut slot.right };
        if self.extras.slicers[2].work_for(&mut work, run, budget_ms, &mut || clock.now()) != Stop::Done {
            self.extras.rescale = Some(work);
            return false;
        }
        let label = run.side.label();
        let [before, after] = work.jobs.map(SharpnessJob::into_report);
        let [m0, m1] = work.metrics.map(|m| m.expect("done"));
        let side = |m: &MetricPoint, r: &SharpnessReport| {
            let mut v = numbers(&[
                ("train_loss", m.train_loss),
                ("ood_loss", m.ood_loss),
                ("train_acc", m.train_acc),
                ("id_acc", m.id_acc),
                ("ood_acc", m.ood_acc),
            ]);
            sharpness_fields(&mut v, r);
            v
        };
        let mut v = numbers(&[
            ("layer", work.layer as f64),
            ("alpha", work.alpha),
            ("step", work.step as f64),
            ("max_logit_change", work.max_logit_change),
        ]);
        v["side"] = Value::from(if work.side == 0 { "left" } else { "right" });
        v["label"] = Value::from(label);
        v["before"] = side(&m0, &before);
        v["after"] = side(&m1, &after);
        self.extras.rescaled = Some(v);
        // The rescaled weights' sharpness joins the side's measurements (a jump in the lambda_max chart).
        self.trackers[work.side].record(work.step, work.lr, after);
        self.metrics_cache = None; // the metrics show the measurements
        true
    }

    fn advance_ensemble(&mut self, budget_ms: f64) -> bool {
        let Some((side, mut job)) = self.extras.ensemble_job.take() else { return false };
        let clock = &self.clock;
        if self.extras.slicers[1].work_for(&mut job, &mut (), budget_ms, &mut || clock.now()) != Stop::Done {
            self.extras.ensemble_job = Some((side, job));
            return false;
        }
        let mlp = job.mlp().clone();
        let (report, members) = job.into_parts().expect("a finished job has its report");
        let mut field = Field::new();
        let refs: Vec<&[f64]> = members.iter().map(Vec::as_slice).collect();
        field.begin_members(&mlp, &refs);
        let steps = report.member_metrics.first().map_or(0, |m| m.step);
        self.extras.ensemble[side] = Some(EnsembleView { report, steps, field });
        true
    }

    /// The weight average of side `i`: its metrics (while training at most every
    /// `EVALUATE_EVERY_MS`, and not at all for a big net) and its sharpness (a
    /// new measurement when the last is older than a tenth of the steps, or
    /// whenever it moved with `heavy`). Returns (something new, work waiting).
    fn advance_average(&mut self, i: usize, budget_ms: f64, heavy: bool) -> (bool, bool) {
        let revision = self.revision;
        let now = self.clock.now();
        let long = self.evaluation_is_long();
        let settings = self.trackers[i].settings().clone();
        let slot = self.slot.as_mut().expect("a sandbox always holds a pair");
        let run = if i == 0 { &mut slot.left } else { &mut slot.right };
        let key = (run.step, revision);
        let view = &mut self.extras.average[i];
        let params = run.average.as_ref().and_then(|a| a.solution()).expect("checked by the caller").to_vec();
        let mut changed = false;
        let stale = view.metrics.as_ref().is_none_or(|(k, _)| *k != key);
        if stale && (heavy || (!long && now - view.evaluated_at >= EVALUATE_EVERY_MS)) {
            view.metrics = Some((key, run.evaluate_params(&params)));
            view.evaluated_at = now;
            changed = true;
        }
        if view.job.as_ref().is_some_and(|(k, _)| k.1 != revision) {
            view.job = None;
        }
        // Like the sides' own measurements: about ten per decade of steps while
        // training, the current weights when paused, at once after a rescaling.
        let due = match view.sharpness.as_ref().map(|(k, _)| *k) {
            None => true,
            Some(k) if heavy || k.1 != revision => k != key,
            Some((s, _)) => run.step >= s + 10.max(s / 10),
        };
        if view.job.is_none() && due && run.diverged.is_none() {
            view.job = Some((key, SharpnessJob::new(&run.mlp, &params, &run.splits.train, settings)));
        }
        let mut busy = stale;
        if let Some((k, mut job)) = view.job.take() {
            let clock = &self.clock;
            if self.extras.slicers[0].work_for(&mut job, &mut (), budget_ms, &mut || clock.now()) == Stop::Done {
                view.sharpness = Some((k, job.into_report()));
                changed = true;
            } else {
                view.job = Some((k, job));
                busy = true;
            }
        }
        (changed, busy)
    }

    /// Brings the field of side `i`'s weight average towards the current one
    /// (a band of rows per call for a big net, as `update_field`). Returns false
    /// where the side keeps no average or nothing has entered it yet.
    pub(super) fn update_average_field(&mut self, i: usize) -> bool {
        let revision = self.revision;
        let pair = self.slot.as_ref().expect("a sandbox always holds a pair");
        let run = pair.sides()[i];
        let Some(params) = run.average.as_ref().and_then(|a| a.solution()) else { return false };
        let key = Some((run.step, revision));
        let view = &mut self.extras.average[i];
        let stale_job = view.field_job.is_some_and(|(_, g)| g != revision);
        let field = view.field.get_or_insert_with(Field::new);
        if !field.in_progress() || stale_job {
            if view.field_at == key {
                return true;
            }
            field.begin_members(&run.mlp, &[params]);
            view.field_job = key;
        }
        if field.advance(&mut ()) {
            view.field_at = view.field_job.take();
        }
        true
    }

    /// Brings the field side `i`'s panel shows towards the current one, where
    /// that is the weight average's (an ensemble's is computed by `extrasAdvance`).
    /// Returns whether that field is still being computed.
    pub(super) fn update_extra_field(&mut self, i: usize) -> bool {
        self.extras.shown[i] == Shown::Average
            && self.update_average_field(i)
            && self.extras.average[i].field.as_ref().is_some_and(Field::in_progress)
    }

    /// The field side `i`'s panel shows, if not the weights' own: the weight
    /// average's or the ensemble's, where chosen and complete.
    pub(super) fn extra_field(&self, i: usize) -> Option<&Field> {
        match self.extras.shown[i] {
            Shown::Weights => None,
            Shown::Average => {
                let has = self.pair().sides()[i].average.as_ref().is_some_and(|a| a.n_averaged > 0);
                let view = &self.extras.average[i];
                let current = has && view.field_at.is_some_and(|(_, g)| g == self.revision);
                view.field.as_ref().filter(|_| current)
            }
            Shown::Ensemble => self.extras.ensemble[i].as_ref().filter(|v| !v.field.in_progress()).map(|v| &v.field),
        }
    }

    /// Side `i`'s other solutions for `metricsJson`: `average` (null where the side
    /// keeps none) and `ensemble` (null until one is trained), plus what its panel shows.
    pub(super) fn extras_json(&self, i: usize, out: &mut Value) {
        let run = self.pair().sides()[i];
        let e = &self.extras;
        out["shown"] = Value::from(match e.shown[i] {
            Shown::Weights => "weights",
            Shown::Average => "average",
            Shown::Ensemble => "ensemble",
        });
        out["average"] = match &run.average {
            None => Value::Null,
            Some(a) => {
                let view = &e.average[i];
                let starts_at = match a.config {
                    Averaging::Swa { start, .. } => start,
                    Averaging::Ema { .. } => 1,
                };
                let mut v = numbers(&[("n_averaged", a.n_averaged as f64), ("starts_at", starts_at as f64)]);
                v["kind"] = Value::from(a.config.name());
                if let Some(((step, _), m)) = view.metrics.as_ref().filter(|_| a.n_averaged > 0) {
                    v["step"] = Value::from(*step);
                    metric_fields(&mut v, m);
                }
                v["sharpness"] = match view.sharpness.as_ref().filter(|_| a.n_averaged > 0) {
                    None => Value::Null,
                    Some(((step, _), r)) => {
                        let mut s = numbers(&[("step", *step as f64)]);
                        sharpness_fields(&mut s, r);
                        s
                    }
                };
                v
            }
        };
        out["ensemble"] = match &e.ensemble[i] {
            None => Value::Null,
            Some(view) => {
                let r = &view.report;
                let mean = |f: fn(&MetricPoint) -> f64| {
                    r.member_metrics.iter().map(f).sum::<f64>() / r.member_metrics.len().max(1) as f64
                };
                let mut v = numbers(&[
                    ("members", r.members as f64),
                    ("steps", view.steps as f64),
                    ("diverged", r.diverged as f64),
                    ("train_loss", r.train_loss),
                    ("train_acc", r.train_acc),
                    ("id_loss", r.id_loss),
                    ("id_acc", r.id_acc),
                    ("ood_loss", r.ood_loss),
                    ("ood_acc", r.ood_acc),
                    ("ood_gap", r.id_acc - r.ood_acc),
                ]);
                v["member_mean"] = numbers(&[
                    ("train_acc", mean(|m| m.train_acc)),
                    ("id_acc", mean(|m| m.id_acc)),
                    ("ood_acc", mean(|m| m.ood_acc)),
                    ("ood_loss", mean(|m| m.ood_loss)),
                ]);
                v["member_ood_acc"] = r.member_metrics.iter().map(|m| Value::from(m.ood_acc)).collect();
                v
            }
        };
    }
}

/// A JSON object of named numbers (non-finite ones as null), built by one
/// small loop rather than a `json!` expansion per object (the page's module stays smaller).
fn numbers(pairs: &[(&str, f64)]) -> Value {
    Value::Object(pairs.iter().map(|&(k, x)| (k.to_string(), Value::from(x))).collect())
}

/// A sharpness report's measures as the metrics snapshot names them.
fn sharpness_fields(v: &mut Value, r: &SharpnessReport) {
    for (k, x) in [
        ("lambda_max", r.lambda_max),
        ("trace", r.trace),
        ("eps_sharpness", r.eps_sharpness),
        ("rho_sharpness", r.rho_sharpness),
        ("adaptive_sharpness", r.adaptive_sharpness),
        ("average_sharpness", r.average_sharpness),
    ] {
        v[k] = Value::from(x);
    }
}

/// A metric point's numbers as the metrics snapshot names them.
fn metric_fields(v: &mut Value, m: &MetricPoint) {
    for (k, x) in [
        ("train_loss", m.train_loss),
        ("train_acc", m.train_acc),
        ("id_loss", m.id_loss),
        ("id_acc", m.id_acc),
        ("ood_loss", m.ood_loss),
        ("ood_acc", m.ood_acc),
        ("ood_gap", m.id_acc - m.ood_acc),
    ] {
        v[k] = Value::from(x);
    }
}
