//! The landscape and sharpness views of a [`Sandbox`]: the work done a
//! little per frame (surfaces, slices, sharpness measures) and the drawing.

use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use web_sys::HtmlCanvasElement;

use crate::job::{Job, Stop};
use crate::landscape::{log10_range, DirectionKind, Split};
use crate::live_landscape::LiveLandscape;
use crate::sharpness_tracker::{
    side_edge_of_stability, spectrum_fits, stability_thresholds, Curvature, SharpnessTracker, PAGE_MAX_SPECTRUM_PARAMS,
};
use crate::train::Run;

use super::super::landscape_view::{self, Dash, LandscapePainter, LineSeries1d, SurfacePicture};
use super::super::palette;
use super::super::sharpness_view;
use super::Sandbox;

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
            self.landscape_start = None;
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
        let clock = &self.clock;
        let begin = clock.now();
        let left = || budget_ms - (clock.now() - begin);
        loop {
            let steps = [self.pair().left.step, self.pair().right.step];
            let current = self.landscape_shown.as_ref().is_some_and(|l| l.steps() == steps);
            if self.landscape_pending.is_none() {
                if current {
                    return 1.0;
                }
                // Hessian directions: the Lanczos products first, one at a time (a
                // 6 x 64 net's 80 would otherwise stall the page for most of a second).
                let pair = self.slot.as_ref().expect("a sandbox always holds a pair");
                let settings = self.landscape_settings;
                let start = self.landscape_start.get_or_insert_with(|| LiveLandscape::start(pair, settings));
                if self.slicers.landscape_start.work_for(start, &mut (), left(), &mut || clock.now()) != Stop::Done {
                    return 0.0;
                }
                let mut next = self.landscape_start.take().expect("just advanced").finish();
                next.surfaces_elsewhere = self.gpu.is_some();
                self.landscape_pending = Some(next);
                self.offload.new_landscape();
            }
            let job = self.landscape_pending.as_mut().expect("just ensured");
            // A cell is ~0.1 ms for the reference net but ~20 ms for a 6 x 64 one.
            match self.slicers.landscape.work_for(job, &mut (), left(), &mut || clock.now()) {
                // Shown from now on; if training moved on meanwhile, the loop starts the next one.
                Stop::Done => self.landscape_shown = self.landscape_pending.take(),
                // Waiting: the rest is the surfaces, which the GPU module computes.
                Stop::Waiting | Stop::OutOfTime => return job.progress(),
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
            "progress": match (&self.landscape_start, &self.landscape_pending) {
                (Some(_), _) => 0.0, // the next landscape's Hessian planes are being found
                (None, pending) => pending.as_ref().map_or(1.0, |p| p.progress()),
            },
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
    /// Returns which canvases were drawn ([`DREW_FIRST`] | [`DREW_SECOND`]): one
    /// whose picture has not changed is left as it is.
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
    ) -> Result<u32, JsValue> {
        if self.landscape_painter.is_none() {
            self.landscape_painter = Some(LandscapePainter::new()?);
        }
        let Some(l) = self.landscape_shown.as_ref().or(self.landscape_pending.as_ref()) else { return Ok(0) };
        let i = (side as usize).min(1);
        let split = if split == "ood" { Split::Ood } else { Split::Train };
        let Some(log_range) = l.surface_log_range(split) else { return Ok(0) };
        let pic = SurfacePicture {
            surface: l.sides[i].surface(),
            split,
            log_range,
            trajectory: Some(&l.sides[i].trajectory),
            scale,
        };
        // What the pictures show; the page redraws a few times a second, and a
        // complete landscape (or the 3D view of one) rarely changes in between.
        let content =
            (self.revision, l.steps(), l.settings.kind as u8, l.progress().to_bits(), split as u8, scale.to_bits());
        let painter = self.landscape_painter.as_ref().expect("just set");
        let mut drew = 0;
        if self.drawn.is_new(contour, &content) {
            painter.draw_contour(contour, &pic)?;
            drew |= DREW_FIRST;
        }
        // The 3D view waits for a complete surface: a half-built one only misleads.
        if l.sides[i].surface.is_done() && self.drawn.is_new(surface3d, &(content, yaw.to_bits(), pitch.to_bits())) {
            landscape_view::draw_surface_3d(surface3d, &pic, yaw, pitch)?;
            drew |= DREW_SECOND;
        }
        Ok(drew)
    }

    /// One side's 1D slice along the plane's first direction: train (solid),
    /// ID (dashed) and OOD (dotted) loss, on the y range both sides share.
    #[wasm_bindgen(js_name = drawSlice)]
    pub fn draw_slice(&self, side: u32, canvas: &HtmlCanvasElement, scale: f64) -> Result<(), JsValue> {
        let Some(l) = self.landscape() else { return Ok(()) };
        let i = (side as usize).min(1);
        let shared = log10_range(
            l.sides.iter().map(|s| s.slice.surface()).flat_map(|s| Split::ALL.map(|x| s.values(x))).flatten(),
        );
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
        let pair = self.slot.as_ref().expect("a sandbox always holds a pair");
        let runs = [&pair.left, &pair.right];
        let mut work =
            Measuring { trackers: &mut self.trackers, runs, heavy, turn: &mut self.sharpness_turn, finished: false };
        let clock = &self.clock;
        self.slicers.sharpness.work_for(&mut work, &mut (), budget_ms, &mut || clock.now());
        let mut finished = work.finished;
        if heavy {
            if let Some(i) = (0..2).find(|&i| self.trackers[i].spectrum_stale(runs[i])) {
                self.trackers[i].compute_spectrum(runs[i]);
                finished = true;
            }
        }
        if finished {
            self.metrics_cache = None; // the metrics show the measurements
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
    /// and the Hessian spectra of both sides on `spectrum`. Returns which were
    /// drawn ([`DREW_FIRST`] | [`DREW_SECOND`]), as `drawSurface` does.
    #[wasm_bindgen(js_name = drawSharpness)]
    pub fn draw_sharpness(
        &mut self,
        lambda: &HtmlCanvasElement,
        spectrum: &HtmlCanvasElement,
        scale: f64,
    ) -> Result<u32, JsValue> {
        // Only a finished measurement or spectrum (or new runs) changes these.
        let content = (self.revision, self.sharpness_shown(), scale.to_bits());
        let pair = self.slot.as_ref().expect("a sandbox always holds a pair");
        let [a, b] = &self.trackers;
        let mut drew = 0;
        if self.drawn.is_new(lambda, &content) {
            let live = [pair.left.live_side(), pair.right.live_side()];
            sharpness_view::draw_lambda_max(lambda, [a, b], [&live[0], &live[1]], scale)?;
            drew |= DREW_FIRST;
        }
        if self.drawn.is_new(spectrum, &content) {
            drew |= DREW_SECOND;
            let params = pair.left.mlp.num_params();
            let note = (!spectrum_fits(params)).then(|| {
                format!("no dense spectrum for {params} parameters (the page stops at {PAGE_MAX_SPECTRUM_PARAMS})")
            });
            sharpness_view::draw_spectrum(
                spectrum,
                [a.spectrum.as_ref(), b.spectrum.as_ref()],
                note.as_deref(),
                scale,
            )?;
        }
        Ok(drew)
    }
}

/// Bits of what `drawSurface` and `drawSharpness` return: the first canvas
/// was drawn, the second was. The page's worker sends only drawn pictures.
pub const DREW_FIRST: u32 = 1;
pub const DREW_SECOND: u32 = 2;

/// The newest sharpness measurement of a side for `metrics()`, or null before the first.
pub(super) fn sharpness_metrics(tracker: &SharpnessTracker, side: &crate::config::SideConfig) -> Value {
    let Some(p) = tracker.latest() else { return Value::Null };
    let r = &p.report;
    let thresholds: serde_json::Map<String, Value> =
        stability_thresholds(side, p.lr).into_iter().map(|(k, v)| (k, json!(v))).collect();
    // The optimiser's own threshold from the core, when it bounds the lambda_max shown here
    // (not Adam's, which bounds the preconditioned sharpness; none for RMSprop).
    let edge = side_edge_of_stability(&side.optimizer, side.sam.is_some(), p.lr)
        .filter(|e| e.curvature == Curvature::LambdaMax);
    json!({
        "step": p.step,
        "points": r.points,
        "lambda_max": r.lambda_max,
        "trace": r.trace,
        "eps_sharpness": r.eps_sharpness,
        "rho_sharpness": r.rho_sharpness,
        "adaptive_sharpness": r.adaptive_sharpness,
        "average_sharpness": r.average_sharpness,
        "edge_of_stability": edge.as_ref().map(|e| e.value),
        "edge_of_stability_label": edge.as_ref().map(|e| format!("{}: {}", e.label, e.source)),
        "thresholds": thresholds,
        "spectrum_step": tracker.spectrum.as_ref().map(|s| s.step),
        "spectrum_max": tracker.spectrum.as_ref().and_then(|s| s.eigenvalues.first().copied()),
        "spectrum_min": tracker.spectrum.as_ref().and_then(|s| s.eigenvalues.last().copied()),
    })
}

/// Which sharpness measurements the sharpness pictures show: per side, the
/// number kept, the newest one's step and the dense spectrum's step (`usize::MAX`:
/// none). A measurement is only ever added at a later step than the newest, so
/// with the runs' revision this names the trackers' content (no counter of its own).
pub(super) type SharpnessShown = [[usize; 3]; 2];

impl Sandbox {
    /// What the sharpness trackers hold now (see [`SharpnessShown`]).
    pub(super) fn sharpness_shown(&self) -> SharpnessShown {
        let step = |s: Option<usize>| s.unwrap_or(usize::MAX);
        self.trackers
            .each_ref()
            .map(|t| [t.history.len(), step(t.latest().map(|p| p.step)), step(t.spectrum.as_ref().map(|s| s.step))])
    }
}

/// Remembers what each canvas last showed, so an unchanged picture is not
/// drawn again. A canvas counts as changed when its size changes (resizing
/// clears it).
#[derive(Default)]
pub(super) struct DrawnPictures(Vec<(HtmlCanvasElement, u64)>);

impl DrawnPictures {
    /// Whether `canvas` needs drawing for `content`; records it as drawn.
    pub(super) fn is_new(&mut self, canvas: &HtmlCanvasElement, content: &impl std::hash::Hash) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (content, canvas.width(), canvas.height()).hash(&mut h);
        let key = h.finish();
        match self.0.iter_mut().find(|(c, _)| c == canvas) {
            Some((_, k)) if *k == key => false,
            Some((_, k)) => {
                *k = key;
                true
            }
            None => {
                self.0.push((canvas.clone(), key));
                true
            }
        }
    }
}

/// Both sides' sharpness trackers as one [`Job`]: a piece is one piece of the
/// next side with work (alternating), until neither has any.
struct Measuring<'a> {
    trackers: &'a mut [SharpnessTracker; 2],
    runs: [&'a Run; 2],
    heavy: bool,
    /// Whose turn it is; kept by the sandbox so that the sides alternate across calls.
    turn: &'a mut usize,
    /// Whether a measurement finished (something new to draw).
    finished: bool,
}

impl Job for Measuring<'_> {
    fn advance(&mut self, _: &mut ()) -> bool {
        let busy = [0, 1].map(|i| self.trackers[i].has_work(self.runs[i], self.heavy));
        if busy[0] || busy[1] {
            let i = if busy[*self.turn] { *self.turn } else { 1 - *self.turn };
            *self.turn = 1 - i;
            self.finished |= self.trackers[i].advance(self.runs[i], self.heavy);
        }
        self.is_done()
    }

    /// Trackers measure again as training goes on: there is no fraction of a whole.
    fn progress(&self) -> f64 {
        if self.is_done() {
            1.0
        } else {
            0.0
        }
    }

    fn is_done(&self) -> bool {
        (0..2).all(|i| !self.trackers[i].has_work(self.runs[i], self.heavy))
    }
}
