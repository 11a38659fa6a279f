//! The object the page holds: a [`Pair`] of runs plus everything needed to
//! train it in time slices and draw it. The landscape and sharpness views
//! are in [`views`].

use std::sync::Arc;

use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use web_sys::HtmlCanvasElement;

use crate::config::RunConfig;
use crate::data::{describe, make_splits, ShiftConfig, Splits};
use crate::error::ConfigError;
use crate::job::{self, Job, Slicer};
use crate::live_landscape::{LandscapeStart, LiveLandscape, LiveSettings};
use crate::metrics::MetricPoint;
use crate::pair::{Pair, Training};
use crate::settings::{config_from_settings, parse_query, settings_from_config, to_query, SETTINGS};
use crate::sharpness_tracker::SharpnessTracker;
use crate::train::{Evaluation, Run};

use super::boundary::{BoundaryPainter, PanelOptions, PlotRect};
use super::curves::{self, CurveInput};
use super::field::Field;

mod extras;
mod offload;
mod pinned;
mod views;
use super::landscape_view::LandscapePainter;

/// Multiply-adds of one forward pass (rows x parameters) in one piece of a step
/// worked piecewise: about a millisecond of a gradient in wasm. A step whose
/// batch fits (the reference net's whole batch, and far more) is never split.
const PIECE_WORK: usize = 1 << 21;
/// Parameter snapshots kept per side for trajectories and the PCA plane
/// (thinned to every second one when full, so they span the whole run).
const CHECKPOINTS: usize = 64;
const CHECKPOINT_EVERY: usize = 5;

/// Two runs that differ only in their optimiser, trained and drawn for the page.
#[wasm_bindgen]
pub struct Sandbox {
    /// Always `Some` between calls; `None` only inside `rebuild`, so that the
    /// old runs are freed before the new ones are allocated (see there).
    slot: Option<Pair>,
    errors: Vec<ConfigError>,
    /// The element's settings revision these runs were built for: the runs, their
    /// data and weights change only with a new one (new settings, a reset, pinned
    /// weights or points). Every result the sandbox keeps or hands out is tagged
    /// with (revision, step), so one computed for replaced runs is told apart.
    revision: u32,
    fields: [Field; 2],
    /// (step, revision) each field was last computed for.
    fields_at: [Option<(usize, u32)>; 2],
    /// (step, revision) of each side's field being computed on the CPU, if any.
    field_job: [Option<(usize, u32)>; 2],
    painter: Option<BoundaryPainter>,
    /// Where the last panel drawn of each side put its view.
    plot_rects: [PlotRect; 2],
    /// Runs the time-sliced work (one per kind of job: each learns its job's speed).
    slicers: Slicers,
    /// Steps at which the OOD set was changed in place.
    shift_marks: Vec<usize>,
    /// The last metrics JSON, with what it shows (`MetricsKey`); dropped when a
    /// sharpness measurement finishes or the backend changes.
    metrics_cache: Option<(MetricsKey, String)>,
    /// A big net's metrics evaluated a piece at a time (`metricsAdvance`), and
    /// the last complete one per side with the revision it belongs to.
    evals: [Evaluation; 2],
    evaluated: [Option<(u32, MetricPoint)>; 2],
    clock: Clock,
    /// The landscape view: the last complete one (drawn) and the one being
    /// computed (drawn as it fills in while there is no complete one).
    landscape_settings: LiveSettings,
    landscape_shown: Option<LiveLandscape>,
    landscape_pending: Option<LiveLandscape>,
    /// The next landscape's Hessian planes, a Lanczos product per call, before it becomes pending.
    landscape_start: Option<LandscapeStart>,
    landscape_painter: Option<LandscapePainter>,
    /// What each landscape and sharpness canvas shows now (see `views::DrawnPictures`).
    drawn: views::DrawnPictures,
    /// Sharpness over training, per side.
    trackers: [SharpnessTracker; 2],
    /// Alternates the sides' sharpness work.
    sharpness_turn: usize,
    /// Set while the page's GPU module computes boundaries, surfaces and
    /// studies (see `offload.rs`): the adapter's description.
    gpu: Option<String>,
    offload: offload::Offload,
    /// Initial weights and training points that outlive settings changes (see `pinned.rs`).
    pins: pinned::Pins,
    /// Each side's other solutions: weight average, ensemble, rescaling (see `extras.rs`).
    extras: extras::Extras,
}

#[wasm_bindgen]
impl Sandbox {
    /// Builds a sandbox from settings given as a URL query (`dataset=spirals&rho=0.2`:
    /// the element's attribute names, as `URLSearchParams` writes them; the
    /// format of `settingsQuery`), the element's settings `revision`. Bad settings
    /// fall back to their defaults and are listed by [`Sandbox::errors_json`];
    /// this never fails.
    #[wasm_bindgen(js_name = fromSettings)]
    pub fn from_settings(settings_query: &str, revision: u32) -> Sandbox {
        super::install_panic_hook();
        let (config, errors) = parse_settings(settings_query);
        let pair = new_pair(config);
        let trackers = new_trackers(&pair.config);
        let mut sandbox = Sandbox {
            slot: Some(pair),
            errors,
            revision,
            fields: [Field::new(), Field::new()],
            fields_at: [None, None],
            field_job: [None, None],
            painter: None,
            plot_rects: [PlotRect::default(); 2],
            slicers: Slicers::default(),
            shift_marks: Vec::new(),
            metrics_cache: None,
            evals: Default::default(),
            evaluated: [None, None],
            clock: Clock::new(),
            landscape_settings: LiveSettings::default(),
            landscape_shown: None,
            landscape_pending: None,
            landscape_start: None,
            landscape_painter: None,
            drawn: views::DrawnPictures::default(),
            trackers,
            sharpness_turn: 0,
            gpu: None,
            offload: offload::Offload::default(),
            pins: pinned::Pins::default(),
            extras: extras::Extras::default(),
        };
        sandbox.start_logs();
        sandbox
    }

    /// The problems with the last settings, as `[{"setting", "message"}]`.
    #[wasm_bindgen(js_name = errorsJson)]
    pub fn errors_json(&self) -> String {
        let list: Vec<Value> = self.errors.iter().map(|e| json!({"setting": e.field, "message": e.message})).collect();
        Value::Array(list).to_string()
    }

    /// Applies new settings (same format as `fromSettings`) of settings revision
    /// `revision`. Only the shift changed: the OOD test set is redrawn in place
    /// and training goes on. Anything else changed: both runs restart. Nothing
    /// changed: the runs, and the revision their results belong to, stay.
    /// Returns whether they restarted.
    pub fn reconfigure(&mut self, settings_query: &str, revision: u32) -> bool {
        let (config, mut errors) = parse_settings(settings_query);
        let config = self.pins.apply(config, &mut errors);
        self.errors = errors;
        let current = &self.pair().config;
        if config == *current {
            return false;
        }
        let only_shift = RunConfig { shift: current.shift.clone(), ..config.clone() } == *current;
        if only_shift {
            self.set_shift(config.shift, revision);
            false
        } else {
            self.rebuild(config, revision);
            true
        }
    }

    /// Trains both sides for at most `max_steps` steps each, or until
    /// `budget_ms` milliseconds have passed, whichever comes first; stops at
    /// the configured number of steps and for a side that diverged. Returns
    /// the steps taken. Works in chunks whose size follows the measured speed,
    /// so the budget is exceeded by at most one short chunk.
    #[wasm_bindgen(js_name = trainFor)]
    pub fn train_for(&mut self, max_steps: u32, budget_ms: f64) -> u32 {
        self.advance_for(max_steps, budget_ms, true)
    }

    /// `step(n)` in slices: at most `max_steps` more steps on each side that
    /// has not diverged, even past the configured number of steps, or until
    /// `budget_ms` have passed. Returns the steps taken (0: both diverged).
    #[wasm_bindgen(js_name = stepFor)]
    pub fn step_for(&mut self, max_steps: u32, budget_ms: f64) -> u32 {
        self.advance_for(max_steps, budget_ms, false)
    }

    /// The time-budgeted loop of `trainFor` and `stepFor`: a [`Training`] job
    /// run by the one driver, [`Slicer::work_for`].
    fn advance_for(&mut self, max_steps: u32, budget_ms: f64, stop_at_limit: bool) -> u32 {
        let mut job = Training::new(max_steps as usize, stop_at_limit).in_pieces(self.piece_rows());
        let pair = self.slot.as_mut().expect("a sandbox always holds a pair");
        let clock = &self.clock;
        self.slicers.training.work_for(&mut job, pair, budget_ms, &mut || clock.now());
        self.note_logged_start();
        job.taken() as u32
    }

    /// Whether a pair step is part-way through (a big batch worked in pieces,
    /// or one side stepped and the other not yet): then `trainFor` and
    /// `stepFor` may return 0 with work still to do.
    #[wasm_bindgen(js_name = stepUnderWay)]
    pub fn step_under_way(&self) -> bool {
        self.pair().step_under_way()
    }

    /// Exactly `n` more steps on each side that has not diverged, even past
    /// the configured number of steps. Returns the steps taken.
    pub fn step(&mut self, n: u32) -> u32 {
        let mut training = Training::new(n as usize, false);
        job::finish(&mut training, self.pair_mut());
        self.note_logged_start();
        training.taken() as u32
    }

    /// Both runs back to step 0 (same data, same initial parameters), as the
    /// element's settings revision `revision` (results from before are stale).
    pub fn reset(&mut self, revision: u32) {
        self.rebuild(self.pair().config.clone(), revision);
    }

    /// Both sides reached their configured steps (`Run::steps_budget`), the
    /// last one's metrics logged, or diverged.
    pub fn finished(&self) -> bool {
        self.pair().sides().iter().all(|r| r.diverged.is_some() || (r.step >= r.steps_budget && !r.step_under_way()))
    }

    /// Logs any metrics the runs still owe (a big net's, worked in pieces) at
    /// once, so that their histories are complete (a run record).
    #[wasm_bindgen(js_name = settleLogs)]
    pub fn settle_logs(&mut self) {
        for run in self.pair_mut().sides_mut() {
            run.settle_log();
        }
        self.note_logged_start();
    }

    /// Metrics at the current parameters, as JSON:
    /// `{backend, step, steps, finished, shift, classes, left: {...}, right: {...}}`;
    /// each side has `label, step, lr, train_loss, train_acc, id_loss, id_acc,
    /// ood_loss, ood_acc, ood_gap, grad_norm, diverged, diverged_step, diverged_reason`.
    /// A diverged side reports its last finite metrics.
    #[wasm_bindgen(js_name = metricsJson)]
    pub fn metrics_json(&mut self) -> String {
        self.note_logged_start();
        let owed = self.pair().sides().map(|r| r.log_owed());
        let key = (self.pair().left.step, self.pair().right.step, self.revision, self.extras.version, owed);
        if let Some((k, text)) = &self.metrics_cache {
            if *k == key {
                return text.clone();
            }
        }
        let config = &self.pair().config;
        let mut out = json!({
            "backend": if self.gpu.is_some() { "gpu" } else { "cpu" },
            "step": self.current_step(),
            "steps": config.training.steps,
            "finished": self.finished(),
            "classes": config.classes(),
            "shift": describe(&config.shift),
            // What Dinh's rescaling needs: hidden layers that can be rescaled (ReLU only).
            "activation": config.model.activation.name(),
            "hidden_layers": config.model.hidden.len(),
        });
        let pair = self.slot.as_mut().expect("a sandbox always holds a pair");
        for (i, (name, run)) in [("left", &mut pair.left), ("right", &mut pair.right)].into_iter().enumerate() {
            let ready = self.evaluated[i].filter(|(r, p)| *r == self.revision && p.step == run.step).map(|(_, p)| p);
            out[name] = side_metrics(run, ready);
            out[name]["sharpness"] = views::sharpness_metrics(&self.trackers[i], &run.live_side());
        }
        for (i, name) in ["left", "right"].into_iter().enumerate() {
            self.extras_json(i, &mut out[name]);
        }
        let text = out.to_string();
        self.metrics_cache = Some((key, text.clone()));
        text
    }

    /// Whether `metricsJson` would have to evaluate a run now (it moved since
    /// its metrics were last computed) and that evaluation is long: every train,
    /// ID and OOD point through a big net (more than `PIECE_WORK` multiply-adds,
    /// a millisecond or more). The worker then answers a click with the last
    /// snapshot and has `metricsAdvance` evaluate the runs in pieces meanwhile.
    #[wasm_bindgen(js_name = metricsStale)]
    pub fn metrics_stale(&self) -> bool {
        (0..2).any(|i| self.needs_evaluation(i)) && self.evaluation_is_long()
    }

    /// Evaluates the runs' metrics at their current step a piece at a time
    /// (about `PIECE_WORK` multiply-adds each) for about `budget_ms`, where
    /// that is long (see `metricsStale`); `metricsJson` then uses them.
    /// Returns whether an evaluation is still under way.
    #[wasm_bindgen(js_name = metricsAdvance)]
    pub fn metrics_advance(&mut self, budget_ms: f64) -> bool {
        if !self.evaluation_is_long() {
            return false;
        }
        let start = self.clock.now();
        let rows = PIECE_WORK / self.pair().left.mlp.num_params().max(1);
        for i in 0..2 {
            while self.needs_evaluation(i) {
                let revision = self.revision;
                let pair = self.slot.as_mut().expect("a sandbox always holds a pair");
                let run = if i == 0 { &mut pair.left } else { &mut pair.right };
                if run.log_owed() && run.step == 0 {
                    // New runs' metrics at step 0 (`start_logs`): the run logs them itself.
                    if run.log_piece(rows) {
                        self.note_logged_start();
                    } else if self.clock.now() - start >= budget_ms {
                        return true;
                    }
                } else if let Some(point) = run.evaluate_piece(&mut self.evals[i], rows) {
                    self.evaluated[i] = Some((revision, point));
                } else if self.clock.now() - start >= budget_ms {
                    return true;
                }
            }
        }
        false
    }

    /// The settings that differ from the defaults, as a URL query without the
    /// `?` (e.g. `dataset=spirals&rho=0.2`); empty for the default run.
    #[wasm_bindgen(js_name = settingsQuery)]
    pub fn settings_query(&self) -> String {
        let pairs = settings_from_config(&self.pair().config);
        to_query(pairs.iter().map(|(k, v)| (*k, v.as_str())))
    }

    /// Every setting's effective value (defaults included) as a JSON object,
    /// for controls that show the run as it really is after any fallback.
    #[wasm_bindgen(js_name = effectiveSettingsJson)]
    pub fn effective_settings_json(&self) -> String {
        let mut map = serde_json::Map::new();
        for spec in SETTINGS {
            map.insert(spec.name.to_string(), Value::String(spec.default.to_string()));
        }
        for (k, v) in settings_from_config(&self.pair().config) {
            map.insert(k.to_string(), Value::String(v));
        }
        Value::Object(map).to_string()
    }

    /// Draws one side's panel (`side` 0 = left, 1 = right): decision heatmap,
    /// boundary, axes, training points and, if `show_ood`, the OOD test points.
    /// `scale` is the device pixel ratio the canvas was sized with. Returns
    /// true while a newer field is still being computed (a big net's takes
    /// several calls; the last complete one is drawn meanwhile): call again.
    #[wasm_bindgen(js_name = drawBoundary)]
    pub fn draw_boundary(
        &mut self,
        side: u32,
        canvas: &HtmlCanvasElement,
        show_ood: bool,
        scale: f64,
    ) -> Result<bool, JsValue> {
        let i = (side as usize).min(1);
        self.update_field(i);
        if self.painter.is_none() {
            self.painter = Some(BoundaryPainter::new()?);
        }
        let revision = self.revision;
        // The weight average's or the ensemble's field where the panel shows one.
        let extra_in_progress = self.update_extra_field(i);
        let field = self.extra_field(i).unwrap_or(&self.fields[i]);
        let in_progress = field.in_progress();
        let painter = self.painter.as_ref().expect("just set");
        let splits = &self.slot.as_ref().expect("a sandbox always holds a pair").splits;
        let options = PanelOptions { show_train: true, show_ood, scale, data_version: revision };
        self.plot_rects[i] = painter.draw(canvas, field, &splits.train, &splits.ood_test, &options)?;
        Ok(in_progress || extra_in_progress || self.fields[i].in_progress())
    }

    /// Draws the loss curves on `loss` and the accuracy curves on `accuracy`.
    #[wasm_bindgen(js_name = drawCurves)]
    pub fn draw_curves(
        &self,
        loss: &HtmlCanvasElement,
        accuracy: &HtmlCanvasElement,
        scale: f64,
    ) -> Result<(), JsValue> {
        let input = CurveInput { runs: self.pair().sides(), shift_marks: &self.shift_marks, scale };
        curves::draw_loss(loss, &input)?;
        curves::draw_accuracy(accuracy, &input)
    }

    /// Where the last panel of `side` drew the view, as `[x, y, size]` in canvas pixels.
    #[wasm_bindgen(js_name = plotRect)]
    pub fn plot_rect(&self, side: u32) -> Vec<f64> {
        let r = self.plot_rects[(side as usize).min(1)];
        vec![r.x, r.y, r.size]
    }

    /// The full run config as JSON (the CLI's format: a run can be replayed
    /// with `flatminima train --config`).
    #[wasm_bindgen(js_name = configJson)]
    pub fn config_json(&self) -> String {
        self.pair().config.to_json_pretty()
    }
}

/// Sharpness trackers for both sides, with the run's seed and the radius of
/// its SAM side (the default radius when neither side uses SAM). ASAM's rho is
/// already relative to |w|, so it is the adaptive radius itself.
fn new_trackers(config: &RunConfig) -> [SharpnessTracker; 2] {
    let sam = [&config.right, &config.left].into_iter().find_map(|s| s.sam.as_ref());
    let rho = match sam {
        Some(s) if s.adaptive => s.rho / 10.0,
        Some(s) => s.rho,
        None => crate::config::DEFAULT_RHO,
    };
    [SharpnessTracker::new(config.seed, rho), SharpnessTracker::new(config.seed, rho)]
}

/// A pair that keeps parameter snapshots for trajectories and PCA planes;
/// its metrics at step 0 are still owed (see `Sandbox::start_logs`).
fn new_pair(config: RunConfig) -> Pair {
    let mut pair = Pair::unlogged(config).expect("config_from_settings returns valid configs");
    pair.record_checkpoints(CHECKPOINT_EVERY, CHECKPOINTS);
    pair
}

/// Rust-side access for tests and other Rust code.
impl Sandbox {
    /// Both runs.
    pub fn pair(&self) -> &Pair {
        self.slot.as_ref().expect("a sandbox always holds a pair")
    }

    fn pair_mut(&mut self) -> &mut Pair {
        self.slot.as_mut().expect("a sandbox always holds a pair")
    }

    /// The larger of the two sides' step counts.
    pub fn current_step(&self) -> u32 {
        self.pair().left.step.max(self.pair().right.step) as u32
    }

    /// The problems with the last settings (each fell back to its default).
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// Side `side`'s decision field (0 left, 1 right).
    pub fn field(&self, side: usize) -> &Field {
        &self.fields[side.min(1)]
    }

    /// Rows of the batch per piece when one step of this net is too long to
    /// do in one go (more than `PIECE_WORK` multiply-adds a forward pass), or
    /// its metrics are (`evaluation_is_long`: logged a piece at a time too),
    /// else None.
    fn piece_rows(&self) -> Option<usize> {
        let pair = self.pair();
        let rows = PIECE_WORK / pair.left.mlp.num_params().max(1);
        (pair.config.training.batch_size > rows || self.evaluation_is_long()).then_some(rows.max(1))
    }

    /// Whether side `i`'s metrics at its current step have not been evaluated
    /// yet (a diverged side shows its last logged ones).
    fn needs_evaluation(&self, i: usize) -> bool {
        let run = if i == 0 { &self.pair().left } else { &self.pair().right };
        let evaluated = self.evaluated[i].filter(|(r, _)| *r == self.revision).map(|(_, p)| p.step);
        run.diverged.is_none() && evaluated != Some(run.step)
    }

    /// New runs (`new_pair`): their metrics at step 0 at once where that is
    /// quick. A big net's (5000 points through 6 x 64, per side: tens of ms)
    /// stay owed and are worked out a piece at a time, by the training job or
    /// `metricsAdvance`, so that the worker answers the next message meanwhile;
    /// `metricsJson` shows them as null until then.
    fn start_logs(&mut self) {
        self.evaluated = [None, None];
        if !self.evaluation_is_long() {
            for run in self.pair_mut().sides_mut() {
                run.settle_log();
            }
        }
        self.note_logged_start();
    }

    /// A run whose metrics at step 0 are logged (at once or by the last piece)
    /// has them noted as evaluated, with the same evaluation as `metricsJson`'s:
    /// the first snapshot need not compute them again.
    fn note_logged_start(&mut self) {
        let revision = self.revision;
        let pair = self.slot.as_ref().expect("a sandbox always holds a pair");
        for (i, run) in [&pair.left, &pair.right].into_iter().enumerate() {
            let known = self.evaluated[i].is_some_and(|(g, p)| g == revision && p.step == run.step);
            if known || run.step != 0 || run.log_owed() {
                continue;
            }
            if let Some(point) = run.history.last().filter(|p| p.step == 0) {
                self.evaluated[i] = Some((revision, *point));
            }
        }
    }

    /// Whether evaluating both runs' metrics takes long enough to be done in pieces.
    fn evaluation_is_long(&self) -> bool {
        let pair = self.pair();
        let s = &pair.splits;
        let points = s.train.len() + s.id_test.len() + s.ood_test.len();
        points * pair.left.mlp.num_params() > PIECE_WORK
    }

    /// New runs for `config`, as settings revision `revision`.
    fn rebuild(&mut self, config: RunConfig, revision: u32) {
        // Drop the old runs first: the new ones then reuse their memory, and
        // the wasm heap stays the same size across any number of resets.
        self.slot = None;
        self.landscape_shown = None;
        self.landscape_pending = None;
        self.landscape_start = None;
        self.trackers = new_trackers(&config);
        self.slot = Some(new_pair(config));
        self.revision = revision;
        self.evals = Default::default();
        self.start_logs();
        self.shift_marks.clear();
        self.slicers = Slicers::default();
        self.extras.forget();
    }

    /// Swaps in the OOD test set of `shift`. Train and ID sets come from their
    /// own random streams, so they stay exactly as they were.
    fn set_shift(&mut self, shift: ShiftConfig, revision: u32) {
        // Metrics known at each side's current step keep their train and ID
        // figures: only the OOD set changes, so only it is evaluated again below.
        self.note_logged_start();
        let known: [Option<MetricPoint>; 2] = [0, 1].map(|i| {
            let run = if i == 0 { &self.pair().left } else { &self.pair().right };
            self.evaluated[i].filter(|(r, p)| *r == self.revision && p.step == run.step).map(|(_, p)| p)
        });
        let pair = self.pair_mut();
        // A student's own OOD points stay: the shift only moves the drawn OOD set.
        let ood_test = match &pair.config.ood_points {
            Some(points) => points.clone(),
            None => make_splits(&pair.config.data, &shift, pair.config.seed).ood_test,
        };
        let old = &pair.splits;
        let splits = Arc::new(Splits { train: old.train.clone(), id_test: old.id_test.clone(), ood_test });
        for run in pair.sides_mut() {
            run.splits = splits.clone();
            // Metrics still owed are worked out on the new set, from its first row.
            run.restart_owed_log();
        }
        pair.splits = splits;
        pair.config.shift = shift;
        self.extras.forget();
        // The OOD surfaces were computed on the old OOD set.
        self.landscape_shown = None;
        self.landscape_pending = None;
        self.landscape_start = None;
        self.revision = revision;
        self.evals = Default::default();
        let pair = self.slot.as_mut().expect("a sandbox always holds a pair");
        for (i, run) in [&mut pair.left, &mut pair.right].into_iter().enumerate() {
            self.evaluated[i] = known[i].map(|mut point| {
                let splits = run.splits.clone();
                // The same call, on the same set, as the OOD part of `Run::evaluate`.
                (point.ood_loss, point.ood_acc) = run.evaluate_on(&splits.ood_test);
                (revision, point)
            });
        }
        let step = self.current_step() as usize;
        if step > 0 && self.shift_marks.last() != Some(&step) {
            self.shift_marks.push(step);
        }
    }

    /// Brings side `i`'s field towards the run's current step: a band of rows
    /// per call for a big net (see `Field::advance`). A field under way is
    /// finished, then shown, even if training moved on meanwhile; the next
    /// call starts the current step's.
    fn update_field(&mut self, i: usize) {
        let pair = self.slot.as_ref().expect("a sandbox always holds a pair");
        let run = if i == 0 { &pair.left } else { &pair.right };
        let key = Some((run.step, self.revision));
        // With the GPU on, its fields (a frame or so behind) are drawn; the CPU
        // computes one only where there is none for these runs yet.
        let gpu_field = self.gpu.is_some() && self.fields_at[i].is_some_and(|(_, r)| r == self.revision);
        let field = &mut self.fields[i];
        let stale_job = self.field_job[i].is_some_and(|(_, r)| r != self.revision);
        if !field.in_progress() || stale_job {
            if self.fields_at[i] == key || gpu_field {
                return;
            }
            field.begin(run);
            self.field_job[i] = key;
        }
        if field.advance(&mut ()) {
            self.fields_at[i] = self.field_job[i].take();
        }
    }
}

/// One side's part of `metricsJson`; `ready`: its metrics at the current
/// step, where `metricsAdvance` has evaluated them already.
fn side_metrics(run: &mut Run, ready: Option<MetricPoint>) -> Value {
    let m: MetricPoint = match (&run.diverged, run.history.last(), ready) {
        (Some(_), Some(last), _) => *last,
        (None, _, Some(point)) => point,
        // New runs of a big net: their metrics at step 0 are still being worked out.
        (None, _, None) if run.log_owed() && run.step == 0 => return pending_metrics(run),
        _ => run.evaluate(),
    };
    let d = run.diverged.as_ref();
    json!({
        "label": run.side.label(),
        "step": run.step,
        "lr": m.lr,
        "train_loss": m.train_loss,
        "train_acc": m.train_acc,
        "id_loss": m.id_loss,
        "id_acc": m.id_acc,
        "ood_loss": m.ood_loss,
        "ood_acc": m.ood_acc,
        "ood_gap": m.id_acc - m.ood_acc,
        "grad_norm": m.grad_norm,
        "diverged": d.is_some(),
        "diverged_step": d.map(|d| d.step),
        "diverged_reason": d.map(|d| d.reason.clone()),
    })
}

/// A side's part of `metricsJson` while its metrics at step 0 are owed
/// (`Sandbox::start_logs`): the same fields, the numbers null ("–" on the page).
fn pending_metrics(run: &Run) -> Value {
    json!({
        "label": run.side.label(),
        "step": run.step,
        "lr": run.current_lr(),
        "train_loss": null, "train_acc": null, "id_loss": null, "id_acc": null,
        "ood_loss": null, "ood_acc": null, "ood_gap": null, "grad_norm": null,
        "diverged": false, "diverged_step": null, "diverged_reason": null,
    })
}

/// Parses a settings query (`dataset=spirals&rho=0.2`) into a config; bad
/// settings fall back to their defaults and are returned as errors.
fn parse_settings(query: &str) -> (RunConfig, Vec<ConfigError>) {
    let pairs = parse_query(query);
    config_from_settings(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// What `metricsJson`'s text depends on: both sides' steps, the settings
/// revision, the extras' version (a side's other solutions), and which side
/// still owes its step-0 metrics.
type MetricsKey = (usize, usize, u32, u32, [bool; 2]);

/// One [`Slicer`] per kind of time-sliced work.
#[derive(Default)]
struct Slicers {
    training: Slicer,
    landscape_start: Slicer,
    landscape: Slicer,
    sharpness: Slicer,
}

/// Milliseconds from `performance.now()` (or `Date.now()` where there is no window).
struct Clock(Option<web_sys::Performance>);

impl Clock {
    fn new() -> Self {
        Clock(crate::web::performance())
    }

    fn now(&self) -> f64 {
        match &self.0 {
            Some(p) => p.now(),
            None => js_sys::Date::now(),
        }
    }
}
