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
use crate::live_landscape::{LandscapeStart, LiveLandscape, LiveSettings};
use crate::metrics::MetricPoint;
use crate::pair::Pair;
use crate::settings::{config_from_settings, parse_query, settings_from_config, to_query, SETTINGS};
use crate::sharpness_tracker::SharpnessTracker;
use crate::train::Run;

use super::boundary::{BoundaryPainter, PanelOptions, PlotRect};
use super::curves::{self, CurveInput};
use super::field::Field;

mod offload;
mod views;
use super::landscape_view::LandscapePainter;

/// Each chunk of training aims at this many milliseconds, so a frame's
/// budget is overshot by at most about this much.
const CHUNK_TARGET_MS: f64 = 0.5;
const MAX_CHUNK: usize = 1 << 14;
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
    /// Bumped whenever the runs or their data are replaced, so caches keyed on
    /// the step count notice.
    generation: u32,
    fields: [Field; 2],
    /// (step, generation) each field was last computed for.
    fields_at: [Option<(usize, u32)>; 2],
    /// (step, generation) of each side's field being computed on the CPU, if any.
    field_job: [Option<(usize, u32)>; 2],
    painter: Option<BoundaryPainter>,
    /// Where the last panel drawn of each side put its view.
    plot_rects: [PlotRect; 2],
    /// Steps per chunk, adapted to the measured step time.
    chunk: usize,
    /// Steps at which the OOD set was changed in place.
    shift_marks: Vec<usize>,
    metrics_cache: Option<((usize, usize, u32, u32), String)>,
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
    /// Sharpness over training, per side; `sharpness_version` counts finished measurements.
    trackers: [SharpnessTracker; 2],
    sharpness_version: u32,
    /// Alternates the sides' sharpness work.
    sharpness_turn: usize,
    /// Set while the page's GPU module computes boundaries, surfaces and
    /// studies (see `offload.rs`): the adapter's description.
    gpu: Option<String>,
    offload: offload::Offload,
    /// A study trained on the CPU, a little per frame.
    study: Option<offload::CpuStudy>,
}

#[wasm_bindgen]
impl Sandbox {
    /// Builds a sandbox from settings given as a URL query (`dataset=spirals&rho=0.2`:
    /// the element's attribute names, as `URLSearchParams` writes them; the
    /// format of `settingsQuery`). Bad settings fall back to their defaults and
    /// are listed by [`Sandbox::errors_json`]; this never fails.
    #[wasm_bindgen(js_name = fromSettings)]
    pub fn from_settings(settings_query: &str) -> Sandbox {
        super::install_panic_hook();
        let (config, errors) = parse_settings(settings_query);
        let pair = new_pair(config);
        let trackers = new_trackers(&pair.config);
        Sandbox {
            slot: Some(pair),
            errors,
            generation: 0,
            fields: [Field::new(), Field::new()],
            fields_at: [None, None],
            field_job: [None, None],
            painter: None,
            plot_rects: [PlotRect::default(); 2],
            chunk: 1,
            shift_marks: Vec::new(),
            metrics_cache: None,
            clock: Clock::new(),
            landscape_settings: LiveSettings::default(),
            landscape_shown: None,
            landscape_pending: None,
            landscape_start: None,
            landscape_painter: None,
            drawn: views::DrawnPictures::default(),
            trackers,
            sharpness_version: 0,
            sharpness_turn: 0,
            gpu: None,
            offload: offload::Offload::default(),
            study: None,
        }
    }

    /// The problems with the last settings, as `[{"setting", "message"}]`.
    #[wasm_bindgen(js_name = errorsJson)]
    pub fn errors_json(&self) -> String {
        let list: Vec<Value> = self.errors.iter().map(|e| json!({"setting": e.field, "message": e.message})).collect();
        Value::Array(list).to_string()
    }

    /// Applies new settings (same format as `fromSettings`). Only the shift
    /// changed: the OOD test set is redrawn in place and training goes on.
    /// Anything else changed: both runs restart. Returns whether they restarted.
    pub fn reconfigure(&mut self, settings_query: &str) -> bool {
        let (config, errors) = parse_settings(settings_query);
        self.errors = errors;
        let current = &self.pair().config;
        if config == *current {
            return false;
        }
        let only_shift = RunConfig { shift: current.shift.clone(), ..config.clone() } == *current;
        if only_shift {
            self.set_shift(config.shift);
            false
        } else {
            self.rebuild(config);
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

    /// The time-budgeted loop of `trainFor` and `stepFor`.
    fn advance_for(&mut self, max_steps: u32, budget_ms: f64, stop_at_limit: bool) -> u32 {
        let start = self.clock.now();
        let mut done = 0;
        while done < max_steps as usize && !(stop_at_limit && self.finished()) {
            let n = self.chunk.min(max_steps as usize - done);
            let t0 = self.clock.now();
            let taken = self.advance(n, stop_at_limit);
            if taken == 0 {
                break;
            }
            done += taken;
            let t1 = self.clock.now();
            let took = t1 - t0;
            if took < CHUNK_TARGET_MS / 2.0 {
                self.chunk = (self.chunk * 2).min(MAX_CHUNK);
            } else if took > CHUNK_TARGET_MS * 2.0 {
                self.chunk = (self.chunk / 2).max(1);
            }
            if t1 - start >= budget_ms {
                break;
            }
        }
        done as u32
    }

    /// Exactly `n` more steps on each side that has not diverged, even past
    /// the configured number of steps. Returns the steps taken.
    pub fn step(&mut self, n: u32) -> u32 {
        self.advance(n as usize, false) as u32
    }

    /// Both runs back to step 0 (same data, same initial parameters).
    pub fn reset(&mut self) {
        self.rebuild(self.pair().config.clone());
    }

    /// Both sides reached the configured steps or diverged.
    pub fn finished(&self) -> bool {
        let limit = self.pair().config.training.steps;
        self.pair().sides().iter().all(|r| r.diverged.is_some() || r.step >= limit)
    }

    /// The larger of the two sides' step counts.
    #[wasm_bindgen(js_name = currentStep)]
    pub fn current_step(&self) -> u32 {
        self.pair().left.step.max(self.pair().right.step) as u32
    }

    /// Metrics at the current parameters, as JSON:
    /// `{backend, step, steps, finished, shift, classes, left: {...}, right: {...}}`;
    /// each side has `label, step, lr, train_loss, train_acc, id_loss, id_acc,
    /// ood_loss, ood_acc, ood_gap, grad_norm, diverged, diverged_step, diverged_reason`.
    /// A diverged side reports its last finite metrics.
    #[wasm_bindgen(js_name = metricsJson)]
    pub fn metrics_json(&mut self) -> String {
        let key = (self.pair().left.step, self.pair().right.step, self.generation, self.sharpness_version);
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
        });
        let pair = self.slot.as_mut().expect("a sandbox always holds a pair");
        for (i, (name, run)) in [("left", &mut pair.left), ("right", &mut pair.right)].into_iter().enumerate() {
            out[name] = side_metrics(run);
            out[name]["sharpness"] = views::sharpness_metrics(&self.trackers[i], &run.side);
        }
        let text = out.to_string();
        self.metrics_cache = Some((key, text.clone()));
        text
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
        let painter = self.painter.as_ref().expect("just set");
        let splits = &self.slot.as_ref().expect("a sandbox always holds a pair").splits;
        let options = PanelOptions { show_train: true, show_ood, scale };
        self.plot_rects[i] = painter.draw(canvas, &self.fields[i], &splits.train, &splits.ood_test, &options)?;
        Ok(self.fields[i].in_progress())
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

/// A pair that keeps parameter snapshots for trajectories and PCA planes.
fn new_pair(config: RunConfig) -> Pair {
    let mut pair = Pair::new(config).expect("config_from_settings returns valid configs");
    pair.record_checkpoints(CHECKPOINT_EVERY, CHECKPOINTS);
    pair
}

/// Rust-side access for tests and other Rust code.
impl Sandbox {
    pub fn pair(&self) -> &Pair {
        self.slot.as_ref().expect("a sandbox always holds a pair")
    }

    fn pair_mut(&mut self) -> &mut Pair {
        self.slot.as_mut().expect("a sandbox always holds a pair")
    }

    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    pub fn field(&self, side: usize) -> &Field {
        &self.fields[side.min(1)]
    }

    /// Advances each side that has not diverged by up to `n` steps; with
    /// `respect_limit`, not beyond the configured number of steps.
    fn advance(&mut self, n: usize, respect_limit: bool) -> usize {
        let limit = self.pair().config.training.steps;
        let mut most = 0;
        for run in self.pair_mut().sides_mut() {
            let n = if respect_limit { n.min(limit.saturating_sub(run.step)) } else { n };
            let before = run.step;
            run.train(n);
            most = most.max(run.step - before);
        }
        most
    }

    fn rebuild(&mut self, config: RunConfig) {
        // Drop the old runs first: the new ones then reuse their memory, and
        // the wasm heap stays the same size across any number of resets.
        self.slot = None;
        self.landscape_shown = None;
        self.landscape_pending = None;
        self.landscape_start = None;
        self.trackers = new_trackers(&config);
        self.slot = Some(new_pair(config));
        self.generation = self.generation.wrapping_add(1);
        self.shift_marks.clear();
        self.chunk = 1;
    }

    /// Swaps in the OOD test set of `shift`. Train and ID sets come from their
    /// own random streams, so they stay exactly as they were.
    fn set_shift(&mut self, shift: ShiftConfig) {
        let pair = self.pair_mut();
        let ood_test = make_splits(&pair.config.data, &shift, pair.config.seed).ood_test;
        let old = &pair.splits;
        let splits = Arc::new(Splits { train: old.train.clone(), id_test: old.id_test.clone(), ood_test });
        for run in pair.sides_mut() {
            run.splits = splits.clone();
        }
        pair.splits = splits;
        pair.config.shift = shift;
        // The OOD surfaces were computed on the old OOD set.
        self.landscape_shown = None;
        self.landscape_pending = None;
        self.landscape_start = None;
        self.generation = self.generation.wrapping_add(1);
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
        let key = Some((run.step, self.generation));
        // With the GPU on, its fields (a frame or so behind) are drawn; the CPU
        // computes one only where there is none for these runs yet.
        let gpu_field = self.gpu.is_some() && self.fields_at[i].is_some_and(|(_, g)| g == self.generation);
        let field = &mut self.fields[i];
        let stale_job = self.field_job[i].is_some_and(|(_, g)| g != self.generation);
        if !field.in_progress() || stale_job {
            if self.fields_at[i] == key || gpu_field {
                return;
            }
            field.begin(run);
            self.field_job[i] = key;
        }
        if field.advance() {
            self.fields_at[i] = self.field_job[i].take();
        }
    }
}

fn side_metrics(run: &mut Run) -> Value {
    let m: MetricPoint = match (&run.diverged, run.history.last()) {
        (Some(_), Some(last)) => *last,
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

/// Parses a settings query (`dataset=spirals&rho=0.2`) into a config; bad
/// settings fall back to their defaults and are returned as errors.
fn parse_settings(query: &str) -> (RunConfig, Vec<ConfigError>) {
    let pairs = parse_query(query);
    config_from_settings(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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
