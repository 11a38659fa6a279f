//! The object the page holds: a [`Pair`] of runs plus everything needed to
//! train it in time slices and draw it.

use std::sync::Arc;

use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use web_sys::HtmlCanvasElement;

use crate::config::RunConfig;
use crate::data::{describe, make_splits, ShiftConfig, Splits};
use crate::error::ConfigError;
use crate::landscape::{DirectionKind, Split};
use crate::live_landscape::{LiveLandscape, LiveSettings};
use crate::metrics::MetricPoint;
use crate::pair::Pair;
use crate::settings::{config_from_settings, settings_from_config, SETTINGS};
use crate::sharpness_tracker::{stability_thresholds, SharpnessTracker};
use crate::train::Run;

use super::boundary::{BoundaryPainter, PanelOptions, PlotRect};
use super::curves::{self, CurveInput};
use super::field::Field;
use super::landscape_view::{self, Dash, LandscapePainter, LineSeries1d, SurfacePicture};
use super::palette;
use super::sharpness_view;

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
    landscape_painter: Option<LandscapePainter>,
    /// Sharpness over training, per side; `sharpness_version` counts finished measurements.
    trackers: [SharpnessTracker; 2],
    sharpness_version: u32,
    /// Alternates the sides' sharpness work.
    sharpness_turn: usize,
}

#[wasm_bindgen]
impl Sandbox {
    /// Builds a sandbox from settings given as a JSON object of `name: value`
    /// pairs (the attribute names of the element; values may be strings or
    /// numbers). Bad settings fall back to their defaults and are listed by
    /// [`Sandbox::errors_json`]; this never fails.
    #[wasm_bindgen(js_name = fromSettings)]
    pub fn from_settings(settings_json: &str) -> Sandbox {
        super::install_panic_hook();
        let (config, errors) = parse_settings(settings_json);
        let pair = new_pair(config);
        let trackers = new_trackers(&pair.config);
        Sandbox {
            slot: Some(pair),
            errors,
            generation: 0,
            fields: [Field::new(), Field::new()],
            fields_at: [None, None],
            painter: None,
            plot_rects: [PlotRect::default(); 2],
            chunk: 1,
            shift_marks: Vec::new(),
            metrics_cache: None,
            clock: Clock::new(),
            landscape_settings: LiveSettings::default(),
            landscape_shown: None,
            landscape_pending: None,
            landscape_painter: None,
            trackers,
            sharpness_version: 0,
            sharpness_turn: 0,
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
    pub fn reconfigure(&mut self, settings_json: &str) -> bool {
        let (config, errors) = parse_settings(settings_json);
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
        let start = self.clock.now();
        let mut done = 0;
        while done < max_steps as usize && !self.finished() {
            let n = self.chunk.min(max_steps as usize - done);
            let t0 = self.clock.now();
            done += self.advance(n, true);
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
            "backend": "cpu",
            "step": self.current_step(),
            "steps": config.training.steps,
            "finished": self.finished(),
            "classes": config.classes(),
            "shift": describe(&config.shift),
        });
        let pair = self.slot.as_mut().expect("a sandbox always holds a pair");
        for (i, (name, run)) in [("left", &mut pair.left), ("right", &mut pair.right)].into_iter().enumerate() {
            out[name] = side_metrics(run);
            out[name]["sharpness"] = sharpness_metrics(&self.trackers[i], &run.side);
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
        pairs.iter().map(|(k, v)| format!("{k}={}", url_encode(v))).collect::<Vec<_>>().join("&")
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
    /// `scale` is the device pixel ratio the canvas was sized with.
    #[wasm_bindgen(js_name = drawBoundary)]
    pub fn draw_boundary(
        &mut self,
        side: u32,
        canvas: &HtmlCanvasElement,
        show_ood: bool,
        scale: f64,
    ) -> Result<(), JsValue> {
        let i = (side as usize).min(1);
        self.update_field(i);
        if self.painter.is_none() {
            self.painter = Some(BoundaryPainter::new()?);
        }
        let painter = self.painter.as_ref().expect("just set");
        let splits = &self.slot.as_ref().expect("a sandbox always holds a pair").splits;
        let options = PanelOptions { show_train: true, show_ood, scale };
        self.plot_rects[i] = painter.draw(canvas, &self.fields[i], &splits.train, &splits.ood_test, &options)?;
        Ok(())
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

    /// The training points as `[x0, y0, x1, y1, ...]` and their labels, for
    /// tests and tooltips.
    #[wasm_bindgen(js_name = trainPoints)]
    pub fn train_points(&self) -> Vec<f64> {
        self.pair().splits.train.flat_points().to_vec()
    }

    #[wasm_bindgen(js_name = trainLabels)]
    pub fn train_labels(&self) -> Vec<u32> {
        self.pair().splits.train.labels.iter().map(|&l| l as u32).collect()
    }

    /// The full run config as JSON (the CLI's format: a run can be replayed
    /// with `flatminima train --config`).
    #[wasm_bindgen(js_name = configJson)]
    pub fn config_json(&self) -> String {
        self.pair().config.to_json_pretty()
    }
}

/// The landscape and sharpness views.
#[wasm_bindgen]
impl Sandbox {
    /// Chooses the landscape's directions (`random`, `hessian` or `pca`), grid
    /// points per axis (3..=101) and points per set (0 = all). Anything that
    /// changed cancels the work under way. Returns "" or a message naming the
    /// bad value (the old setting is kept for it).
    #[wasm_bindgen(js_name = landscapeConfigure)]
    pub fn landscape_configure(&mut self, kind: &str, grid: u32, points: u32) -> String {
        let mut problems = Vec::new();
        let mut next = self.landscape_settings;
        match kind {
            "random" => next.kind = DirectionKind::Random,
            "hessian" => next.kind = DirectionKind::Hessian,
            "pca" => next.kind = DirectionKind::Pca,
            other => problems.push(format!("directions: expected random, hessian or pca, got \"{other}\"")),
        }
        if (3..=101).contains(&grid) {
            next.grid = grid as usize;
        } else {
            problems.push(format!("grid: expected 3..=101 points per axis, got {grid}"));
        }
        next.max_points = points as usize;
        if next != self.landscape_settings {
            self.landscape_settings = next;
            self.landscape_shown = None;
            self.landscape_pending = None;
        }
        problems.join("; ")
    }

    /// Works on the landscape for about `budget_ms` (at least a few cells).
    /// When the last complete landscape no longer shows the current parameters
    /// (training went on), a new one is started; the old one stays on screen
    /// until it is done. Returns the progress of the one being computed: 1 only
    /// when the landscape on screen is the current one, so the page knows when
    /// to stop asking.
    #[wasm_bindgen(js_name = landscapeAdvance)]
    pub fn landscape_advance(&mut self, budget_ms: f64) -> f64 {
        let start = self.clock.now();
        loop {
            let steps = [self.pair().left.step, self.pair().right.step];
            let current = self.landscape_shown.as_ref().is_some_and(|l| l.steps() == steps);
            if self.landscape_pending.is_none() {
                if current {
                    return 1.0;
                }
                self.landscape_pending = Some(LiveLandscape::new(self.pair(), self.landscape_settings));
            }
            let job = self.landscape_pending.as_mut().expect("just ensured");
            // A few cells at a time (at least once), then look at the clock (a cell is ~0.1 ms here).
            job.advance(4);
            if job.is_done() {
                // Shown from now on; if training moved on meanwhile, the loop starts the next one.
                self.landscape_shown = self.landscape_pending.take();
            } else if self.clock.now() - start >= budget_ms {
                return job.progress();
            }
        }
    }

    /// The landscape to draw: the last complete one, else the one in progress.
    fn landscape(&self) -> Option<&LiveLandscape> {
        self.landscape_shown.as_ref().or(self.landscape_pending.as_ref())
    }

    /// What the landscape view shows, as JSON: `{kind, note, progress, steps,
    /// grid, left, right}`; each side has its plane's eigenvalues or explained
    /// variance, the loss at the solution and the mean rise over the surface
    /// (train and OOD), and, with `full`, every surface and slice value.
    #[wasm_bindgen(js_name = landscapeJson)]
    pub fn landscape_json(&self, full: bool) -> String {
        let Some(l) = self.landscape() else { return "null".into() };
        let side = |i: usize| {
            let s = &l.sides[i];
            let surface = s.surface();
            let mut out = json!({
                "kind": surface.kind,
                "step": s.step,
                "eigenvalues": surface.eigenvalues,
                "explained_variance": surface.explained_variance,
                "off_plane": s.trajectory.off_plane.last(),
            });
            for split in [Split::Train, Split::Ood] {
                let values = surface.values(split).unwrap_or(&[]);
                let (cols, rows) = (surface.alphas.len(), surface.betas.len());
                let centre = values.get((rows / 2) * cols + cols / 2).copied().filter(|v| v.is_finite());
                let done: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
                let mean = (!done.is_empty()).then(|| done.iter().sum::<f64>() / done.len() as f64);
                out[split.name()] = json!({
                    "at_solution": centre,
                    "mean_rise": mean.zip(centre).map(|(m, c)| m - c),
                });
            }
            if full {
                out["surface"] = serde_json::to_value(surface).unwrap_or(Value::Null);
                out["slice"] = serde_json::to_value(s.slice.surface()).unwrap_or(Value::Null);
                out["trajectory"] = serde_json::to_value(&s.trajectory).unwrap_or(Value::Null);
            }
            out
        };
        let mut out = json!({
            "kind": l.settings.kind,
            "grid": l.settings.grid,
            "points": l.settings.max_points,
            "note": l.note,
            "progress": self.landscape_pending.as_ref().map_or(1.0, |p| p.progress()),
            "complete": self.landscape_shown.is_some(),
            "steps": l.steps(),
            "left": side(0),
            "right": side(1),
        });
        if full {
            out["interpolation"] = serde_json::to_value(l.interpolation.surface()).unwrap_or(Value::Null);
        }
        out.to_string()
    }

    /// One side's surface (`split` "train" or "ood") as a heatmap with
    /// contours and the trajectory, and the same surface in 3D seen from
    /// `yaw`, `pitch` (radians). Either canvas may be 0 x 0 to skip it.
    #[wasm_bindgen(js_name = drawSurface)]
    #[allow(clippy::too_many_arguments)]
    pub fn draw_surface(
        &mut self,
        side: u32,
        contour: &HtmlCanvasElement,
        surface3d: &HtmlCanvasElement,
        split: &str,
        yaw: f64,
        pitch: f64,
        scale: f64,
    ) -> Result<(), JsValue> {
        if self.landscape_painter.is_none() {
            self.landscape_painter = Some(LandscapePainter::new()?);
        }
        let Some(l) = self.landscape() else { return Ok(()) };
        let i = (side as usize).min(1);
        let split = if split == "ood" { Split::Ood } else { Split::Train };
        let Some(log_range) = l.surface_log_range(split) else { return Ok(()) };
        let pic = SurfacePicture {
            surface: l.sides[i].surface(),
            split,
            log_range,
            trajectory: Some(&l.sides[i].trajectory),
            scale,
        };
        let painter = self.landscape_painter.as_ref().expect("just set");
        painter.draw_contour(contour, &pic)?;
        // The 3D view waits for a complete surface: a half-built one only misleads.
        if l.sides[i].surface.is_done() {
            landscape_view::draw_surface_3d(surface3d, &pic, yaw, pitch)?;
        }
        Ok(())
    }

    /// One side's 1D slice along the plane's first direction: train (solid),
    /// ID (dashed) and OOD (dotted) loss, on the y range both sides share.
    #[wasm_bindgen(js_name = drawSlice)]
    pub fn draw_slice(&self, side: u32, canvas: &HtmlCanvasElement, scale: f64) -> Result<(), JsValue> {
        let Some(l) = self.landscape() else { return Ok(()) };
        let i = (side as usize).min(1);
        let shared =
            log_bounds(l.sides.iter().map(|s| s.slice.surface()).flat_map(|s| Split::ALL.map(|x| s.values(x))));
        let surface = l.sides[i].slice.surface();
        let lines: Vec<LineSeries1d> = Split::ALL
            .iter()
            .filter_map(|&split| {
                surface.values(split).map(|y| LineSeries1d {
                    x: &surface.alphas,
                    y,
                    colour: palette::SIDE[i],
                    dash: Dash::of(split),
                })
            })
            .collect();
        landscape_view::draw_lines(canvas, &lines, "distance along d1", &[0.0], shared, scale)
    }

    /// The loss on the straight line from the left solution (t = 0) to the
    /// right one (t = 1), t in [-0.5, 1.5]: train solid, ID dashed, OOD dotted.
    #[wasm_bindgen(js_name = drawInterpolation)]
    pub fn draw_interpolation(&self, canvas: &HtmlCanvasElement, scale: f64) -> Result<(), JsValue> {
        let Some(l) = self.landscape() else { return Ok(()) };
        let surface = l.interpolation.surface();
        let lines: Vec<LineSeries1d> = Split::ALL
            .iter()
            .filter_map(|&split| {
                surface.values(split).map(|y| LineSeries1d {
                    x: &surface.alphas,
                    y,
                    colour: [70, 70, 70],
                    dash: Dash::of(split),
                })
            })
            .collect();
        landscape_view::draw_lines(canvas, &lines, "t (0 = left solution, 1 = right)", &[0.0, 1.0], None, scale)
    }

    /// Sharpness work for about `budget_ms` (at least one unit: one measure of
    /// one side). With `heavy` (the page is paused) the current step is
    /// measured even between scheduled measurements, and a stale dense
    /// spectrum is recomputed (tens of ms). Returns whether a measurement
    /// or spectrum finished (something new to draw).
    #[wasm_bindgen(js_name = sharpnessAdvance)]
    pub fn sharpness_advance(&mut self, budget_ms: f64, heavy: bool) -> bool {
        let start = self.clock.now();
        let mut finished = false;
        let pair = self.slot.as_ref().expect("a sandbox always holds a pair");
        let runs = [&pair.left, &pair.right];
        loop {
            let busy = [0, 1].map(|i| self.trackers[i].has_work(runs[i], heavy));
            if !busy[0] && !busy[1] {
                break;
            }
            let i = if busy[self.sharpness_turn] { self.sharpness_turn } else { 1 - self.sharpness_turn };
            self.sharpness_turn = 1 - i;
            finished |= self.trackers[i].advance(runs[i], heavy);
            if self.clock.now() - start >= budget_ms {
                break;
            }
        }
        if heavy {
            if let Some(i) = (0..2).find(|&i| self.trackers[i].spectrum_stale(runs[i])) {
                self.trackers[i].compute_spectrum(runs[i]);
                finished = true;
            }
        }
        if finished {
            self.sharpness_version = self.sharpness_version.wrapping_add(1);
        }
        finished
    }

    /// Sharpness work is waiting: a measurement is due or under way, or (with
    /// `heavy`) a spectrum is stale.
    #[wasm_bindgen(js_name = sharpnessBusy)]
    pub fn sharpness_busy(&self, heavy: bool) -> bool {
        let pair = self.pair();
        [&pair.left, &pair.right]
            .iter()
            .zip(&self.trackers)
            .any(|(run, t)| t.has_work(run, heavy) || (heavy && t.spectrum_stale(run)))
    }

    /// lambda_max over training (with the edge-of-stability lines) on `lambda`,
    /// and the Hessian spectra of both sides on `spectrum`.
    #[wasm_bindgen(js_name = drawSharpness)]
    pub fn draw_sharpness(
        &self,
        lambda: &HtmlCanvasElement,
        spectrum: &HtmlCanvasElement,
        scale: f64,
    ) -> Result<(), JsValue> {
        let pair = self.pair();
        let [a, b] = &self.trackers;
        sharpness_view::draw_lambda_max(lambda, [a, b], [&pair.left.side, &pair.right.side], scale)?;
        sharpness_view::draw_spectrum(spectrum, [a.spectrum.as_ref(), b.spectrum.as_ref()], scale)
    }
}

/// log10 (min, max) of the finite positive values, if there are any.
fn log_bounds<'a>(values: impl Iterator<Item = Option<&'a [f64]>>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .flatten()
        .flatten()
        .filter(|v| v.is_finite() && **v > 0.0)
        .map(|v| v.log10())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    (lo.is_finite() && hi > lo).then_some((lo, hi))
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

/// The newest sharpness measurement of a side for `metrics()`, or null before the first.
fn sharpness_metrics(tracker: &SharpnessTracker, side: &crate::config::SideConfig) -> Value {
    let Some(p) = tracker.latest() else { return Value::Null };
    let r = &p.report;
    let thresholds: serde_json::Map<String, Value> =
        stability_thresholds(side, p.lr).into_iter().map(|(k, v)| (k, json!(v))).collect();
    json!({
        "step": p.step,
        "points": r.points,
        "lambda_max": r.lambda_max,
        "trace": r.trace,
        "eps_sharpness": r.eps_sharpness,
        "rho_sharpness": r.rho_sharpness,
        "adaptive_sharpness": r.adaptive_sharpness,
        "average_sharpness": r.average_sharpness,
        "edge_of_stability": 2.0 / p.lr,
        "thresholds": thresholds,
        "spectrum_step": tracker.spectrum.as_ref().map(|s| s.step),
        "spectrum_max": tracker.spectrum.as_ref().and_then(|s| s.eigenvalues.first().copied()),
        "spectrum_min": tracker.spectrum.as_ref().and_then(|s| s.eigenvalues.last().copied()),
    })
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
        self.generation = self.generation.wrapping_add(1);
        let step = self.current_step() as usize;
        if step > 0 && self.shift_marks.last() != Some(&step) {
            self.shift_marks.push(step);
        }
    }

    fn update_field(&mut self, i: usize) {
        let pair = self.slot.as_ref().expect("a sandbox always holds a pair");
        let run = if i == 0 { &pair.left } else { &pair.right };
        let key = Some((run.step, self.generation));
        if self.fields_at[i] != key {
            self.fields[i].update(run);
            self.fields_at[i] = key;
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

/// Parses `{"name": value, ...}` into a config; JSON that is not such an
/// object is itself reported as an error, and the defaults are used.
fn parse_settings(settings_json: &str) -> (RunConfig, Vec<ConfigError>) {
    let object = match serde_json::from_str::<Value>(settings_json) {
        Ok(Value::Object(map)) => map,
        Ok(_) | Err(_) => {
            let e = ConfigError::new("settings", "expected a JSON object of name: value pairs; using the defaults");
            return (RunConfig::default(), vec![e]);
        }
    };
    let pairs: Vec<(String, String)> = object
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::Null => None,
            Value::String(s) => Some((k, s)),
            other => Some((k, other.to_string())),
        })
        .collect();
    config_from_settings(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// Percent-encodes a setting value for a URL query; commas stay readable.
fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Milliseconds from `performance.now()` (or `Date.now()` where there is no window).
struct Clock(Option<web_sys::Performance>);

impl Clock {
    fn new() -> Self {
        Clock(web_sys::window().and_then(|w| w.performance()))
    }

    fn now(&self) -> f64 {
        match &self.0 {
            Some(p) => p.now(),
            None => js_sys::Date::now(),
        }
    }
}
