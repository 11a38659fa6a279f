//! Benchmark exports for `www/bench.html` (driven by `scripts/bench-browser.mjs`):
//! raw training throughput, without metric evaluation or drawing, timed inside wasm.
//!
//! Not part of the element's API; the page never calls these.

use wasm_bindgen::prelude::*;

use crate::pair::Pair;
use crate::settings::config_from_settings;

/// Milliseconds from `performance.now()` (falls back to `Date.now()` outside a window).
fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or_else(js_sys::Date::now, |p| p.now())
}

/// Builds the pair described by `settings_json` (a JSON object of setting names to
/// strings, e.g. `{"batch-size": "32", "hidden": "16,16"}`; `{}` or `""` is the
/// default config), trains `side` (`"left"` or `"right"`) for `warmup` untimed
/// steps, then for `steps` timed steps, and returns the elapsed milliseconds of
/// the timed part. Metrics are logged only once, at step 0.
///
/// Errors (thrown in JS) on unknown or invalid settings, an unknown side, or a
/// run that diverges (its remaining steps would be no-ops and the figure a lie).
#[wasm_bindgen(js_name = benchTrain)]
pub fn bench_train(settings_json: &str, side: &str, warmup: u32, steps: u32) -> Result<f64, JsError> {
    let text = if settings_json.trim().is_empty() { "{}" } else { settings_json };
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_str(text).map_err(|e| JsError::new(&format!("settings_json: {e}")))?;
    let (mut config, errors) = config_from_settings(map.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if let Some(e) = errors.first() {
        return Err(JsError::new(&format!("{}: {}", e.field, e.message)));
    }
    config.training.log_every = 1_000_000;
    let mut pair = Pair::new(config).map_err(|e| JsError::new(&format!("{}: {}", e.field, e.message)))?;
    let run = match side {
        "left" => &mut pair.left,
        "right" => &mut pair.right,
        _ => return Err(JsError::new("side must be \"left\" or \"right\"")),
    };
    run.train(warmup as usize);
    let start = now_ms();
    run.train(steps as usize);
    let elapsed = now_ms() - start;
    if let Some(d) = &run.diverged {
        return Err(JsError::new(&format!("the {side} run diverged at step {}: {}", d.step, d.reason)));
    }
    Ok(elapsed)
}

/// The label of each side for `settings_json` (same format as [`bench_train`]),
/// so the benchmark prints what it measured: `["SGD(...)", "SAM(rho=..)+SGD(...)"]`.
#[wasm_bindgen(js_name = benchLabels)]
pub fn bench_labels(settings_json: &str) -> Result<Vec<String>, JsError> {
    let text = if settings_json.trim().is_empty() { "{}" } else { settings_json };
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_str(text).map_err(|e| JsError::new(&format!("settings_json: {e}")))?;
    let (config, _) = config_from_settings(map.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Ok(vec![config.left.label(), config.right.label()])
}

/// The landscape and sharpness figures of issue 3, timed inside wasm on the
/// reference network (the default SGD side trained for 1000 steps, with 512
/// training and 1000 test points), as criterion times them natively
/// (benches/landscape.rs). Returns JSON with milliseconds:
/// `{hvp_512, lambda_max_512, power_iterations, dense_and_spectrum_512,
/// surface_51x51_1000, surface_rows_ms_max}`; each is the median of `repeats`
/// runs (the surface: one run, done a row at a time as the page does it, with
/// the slowest row reported: what one frame would wait for at most).
#[wasm_bindgen(js_name = benchLandscape)]
pub fn bench_landscape(repeats: u32) -> String {
    use crate::config::RunConfig;
    use crate::hessian::{power_iteration, spectrum, HessianOperator};
    use crate::landscape::{Grid, Plane, Split, SurfaceJob};
    use crate::rng::Rng;

    let mut config = RunConfig::default();
    config.data.n_train = 512;
    config.data.n_test = 1000;
    config.training.log_every = 1_000_000;
    let mut pair = Pair::new(config).expect("valid config");
    pair.left.train(1000);
    let run = &pair.left;
    let train = &run.splits.train;
    let (x, y) = (train.flat_points(), &train.labels[..]);
    let repeats = repeats.max(1) as usize;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let time = |f: &mut dyn FnMut()| {
        let t = now_ms();
        f();
        now_ms() - t
    };
    let mut op = HessianOperator::new(&run.mlp, &run.params, x, y);
    let v: Vec<f64> = (0..op.num_params()).map(|i| ((i * 7919) % 13) as f64 - 6.0).collect();
    let mut out = vec![0.0; v.len()];
    let hvp = median((0..repeats * 20).map(|_| time(&mut || op.hvp(&v, &mut out))).collect());
    let mut iterations = 0;
    let lambda = median(
        (0..repeats)
            .map(|_| {
                time(&mut || {
                    let mut op = HessianOperator::new(&run.mlp, &run.params, x, y);
                    iterations = power_iteration(&mut op, &mut Rng::new(1), 100, 1e-3).iterations;
                })
            })
            .collect(),
    );
    let dense = median(
        (0..repeats)
            .map(|_| {
                time(&mut || {
                    let mut op = HessianOperator::new(&run.mlp, &run.params, x, y);
                    spectrum(&op.dense());
                })
            })
            .collect(),
    );
    let plane = Plane::random(&run.mlp, &run.params, 1);
    let mut job = SurfaceJob::new(&run.mlp, run.splits.clone(), plane, Grid::default(), &[Split::Ood]);
    let mut slowest_row: f64 = 0.0;
    let surface = time(&mut || {
        while !job.is_done() {
            let t = now_ms();
            job.next_rows(1);
            slowest_row = slowest_row.max(now_ms() - t);
        }
    });
    serde_json::json!({
        "hvp_512": hvp,
        "lambda_max_512": lambda,
        "power_iterations": iterations,
        "dense_and_spectrum_512": dense,
        "surface_51x51_1000": surface,
        "surface_rows_ms_max": slowest_row,
        "params": run.mlp.num_params(),
    })
    .to_string()
}
