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
