#![allow(dead_code)] // each test crate uses part of it
//! The golden-run fixture shared by `tests/golden.rs` (native) and
//! `tests/web.rs` (wasm in a browser): a few small configs, trained for
//! [`STEPS`] steps, with their final parameters and last metrics stored as
//! the bit patterns of the f64s. Equal bits on both targets show that the
//! core computes the same numbers in wasm as natively (it uses libm for every
//! transcendental function, so nothing depends on the platform's math library).

use flatminima::config::RunConfig;
use flatminima::metrics::MetricPoint;
use flatminima::pair::Pair;
use flatminima::settings::config_from_settings;
use flatminima::train::Run;
use serde_json::{json, Value};

pub const STEPS: usize = 200;

/// The cases, as settings: the page's default run, and one that exercises
/// GELU, Adam, ASAM, a schedule, label smoothing and more than two classes.
pub const CASES: &[(&str, &[(&str, &str)])] = &[
    ("default-sgd-vs-sam", &[("points", "64"), ("hidden", "8,8"), ("batch-size", "16"), ("seed", "7")]),
    (
        "blobs-adam-vs-asam",
        &[
            ("dataset", "blobs"),
            ("classes", "3"),
            ("points", "60"),
            ("shift", "translate"),
            ("severity", "0.7"),
            ("hidden", "6,5"),
            ("activation", "gelu"),
            ("optimizer", "adam"),
            ("right", "asam"),
            ("rho", "0.5"),
            ("lr", "0.02"),
            ("schedule", "cosine"),
            ("steps", "300"),
            ("batch-size", "12"),
            ("label-smoothing", "0.1"),
            ("seed", "3"),
        ],
    ),
];

pub fn case_config(settings: &[(&str, &str)]) -> RunConfig {
    let (config, errors) = config_from_settings(settings.iter().copied());
    assert!(errors.is_empty(), "golden settings must be valid: {errors:?}");
    config
}

/// Trains `config` for [`STEPS`] steps and records the result.
pub fn run_case(config: &RunConfig) -> Value {
    let mut pair = Pair::new(config.clone()).expect("golden configs are valid");
    pair.train(STEPS);
    json!({ "left": record_side(&pair.left), "right": record_side(&pair.right) })
}

fn bits(values: &[f64]) -> Vec<String> {
    values.iter().map(|v| format!("{:016x}", v.to_bits())).collect()
}

fn metric_values(m: &MetricPoint) -> Vec<f64> {
    vec![m.lr, m.train_loss, m.train_acc, m.id_loss, m.id_acc, m.ood_loss, m.ood_acc, m.grad_norm]
}

fn record_side(run: &Run) -> Value {
    let last = run.history.last().expect("a run logs step 0");
    json!({
        "label": run.side.label(),
        "step": run.step,
        "diverged": run.diverged.is_some(),
        "history_len": run.history.points.len(),
        "last_metrics_step": last.step,
        // Readable copies; the comparison uses the *_bits fields only.
        "last_metrics": { "lr": last.lr, "train_loss": last.train_loss, "train_acc": last.train_acc,
                          "id_loss": last.id_loss, "id_acc": last.id_acc, "ood_loss": last.ood_loss,
                          "ood_acc": last.ood_acc, "grad_norm": last.grad_norm },
        "last_metrics_bits": bits(&metric_values(last)),
        "history_train_loss_bits": bits(&run.history.points.iter().map(|m| m.train_loss).collect::<Vec<_>>()),
        "params": run.params,
        "params_bits": bits(&run.params),
    })
}

/// The whole fixture, freshly computed.
pub fn fixture() -> Value {
    let cases: Vec<Value> = CASES
        .iter()
        .map(|(name, settings)| {
            let config = case_config(settings);
            let result = run_case(&config);
            json!({ "name": name, "steps": STEPS, "config": config, "result": result })
        })
        .collect();
    json!({
        "about": "Written by `FLATMINIMA_BLESS=1 cargo test --test golden`; compared bit for bit natively (tests/golden.rs) and in wasm (tests/web.rs). *_bits are f64 bit patterns in hex.",
        "cases": cases,
    })
}

/// Re-runs every case of a stored fixture from its stored config and lists
/// every field whose bits differ (empty = identical).
pub fn compare_with(stored: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for case in stored["cases"].as_array().expect("fixture has cases") {
        let name = case["name"].as_str().unwrap_or("?");
        let config: RunConfig = serde_json::from_value(case["config"].clone()).expect("stored config parses");
        let actual = run_case(&config);
        for side in ["left", "right"] {
            let (want, got) = (&case["result"][side], &actual[side]);
            for key in ["step", "diverged", "history_len", "last_metrics_step", "label"] {
                if want[key] != got[key] {
                    problems.push(format!("{name}.{side}.{key}: stored {} but got {}", want[key], got[key]));
                }
            }
            for key in ["last_metrics_bits", "history_train_loss_bits", "params_bits"] {
                let (w, g) = (want[key].as_array(), got[key].as_array());
                match (w, g) {
                    (Some(w), Some(g)) if w.len() == g.len() => {
                        let diffs: Vec<usize> = (0..w.len()).filter(|&i| w[i] != g[i]).collect();
                        if let Some(&i) = diffs.first() {
                            problems.push(format!(
                                "{name}.{side}.{key}: {} of {} differ, first at [{i}]: stored {} got {}",
                                diffs.len(),
                                w.len(),
                                w[i],
                                g[i]
                            ));
                        }
                    }
                    _ => problems.push(format!("{name}.{side}.{key}: lengths differ")),
                }
            }
        }
    }
    problems
}
