//! Benchmark exports for `www/bench.html` (driven by `scripts/bench-browser.mjs`):
//! raw training throughput, without metric evaluation or drawing, timed inside wasm.
//!
//! Not part of the element's API; the page never calls these.

use wasm_bindgen::prelude::*;

use super::now_ms;
use crate::pair::Pair;
use crate::settings::config_from_settings;

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
/// (crates/core/benches/landscape.rs). Returns JSON with milliseconds:
/// `{hvp_512, lambda_max_512, power_iterations, dense_and_spectrum_512,
/// surface_51x51_1000, surface_rows_ms_max}`; each is the median of `repeats`
/// runs (the surface: one run, done a row at a time as the page does it, with
/// the slowest row reported: what one frame would wait for at most).
#[wasm_bindgen(js_name = benchLandscape)]
pub fn bench_landscape(repeats: u32) -> String {
    use crate::config::RunConfig;
    use crate::hessian::{power_iteration, spectrum, HessianOperator};
    use crate::job::Job;
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
        while !Job::is_done(&job) {
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

/// The GPU kernels timed through the browser's WebGPU (issue 4's figures; in
/// headless Chromium that is SwiftShader, a CPU emulation): both sides'
/// 128x128 and 512x512 decision boundaries, a 51x51 loss surface over 1000
/// points, and 256 replicas of the reference network training on 256 points
/// (25 steps on a software adapter, 1000 on a real GPU). Each figure is the
/// median of `repeats` runs in ms, readback included. Rejects (in JS) when
/// there is no adapter.
#[wasm_bindgen(js_name = benchGpu)]
pub async fn bench_gpu(repeats: u32) -> Result<String, JsError> {
    use std::sync::Arc;

    use crate::config::{RunConfig, SideConfig};
    use crate::data::{make_splits, DataConfig, ShiftConfig};
    use crate::gpu::{GpuContext, GpuModel, Grid2d, Replica, ReplicaTrainer};
    use crate::optim::OptimizerConfig;
    use crate::rng::Rng;
    use crate::sam::SamConfig;
    use crate::schedule::Schedule;

    let err = |e: crate::gpu::GpuError| JsError::new(&e.to_string());
    let ctx = GpuContext::new().await.map_err(err)?;
    let pair = Pair::new(RunConfig::default()).expect("the default config is valid");
    let mlp = &pair.left.mlp;
    let sides = [mlp.init_params(&mut Rng::new(1)), mlp.init_params(&mut Rng::new(2))];
    let models: Vec<GpuModel> = sides.iter().map(|params| GpuModel { mlp, params }).collect();
    let repeats = repeats.max(1) as usize;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };

    let mut boundary = Vec::new();
    for n in [128, 512] {
        let grid = Grid2d::cell_centres(-3.0, 3.0, n);
        let mut times = Vec::new();
        for _ in 0..repeats {
            let t = now_ms();
            ctx.boundary_grid(&models, &grid).await.map_err(err)?;
            times.push(now_ms() - t);
        }
        boundary.push(median(times));
    }

    let data = make_splits(&DataConfig { n_train: 1000, ..Default::default() }, &ShiftConfig::default(), 1).train;
    let mut rng = Rng::new(2);
    let d1: Vec<f64> = sides[0].iter().map(|_| rng.normal()).collect();
    let d2: Vec<f64> = sides[0].iter().map(|_| rng.normal()).collect();
    let coords = Grid2d::square(-1.0, 1.0, 51).points();
    let mut times = Vec::new();
    for _ in 0..repeats {
        let t = now_ms();
        ctx.surface(mlp, &sides[0], &d1, &d2, &coords, &data).await.map_err(err)?;
        times.push(now_ms() - t);
    }
    let surface = median(times);

    let splits = Arc::new(make_splits(&DataConfig { n_train: 256, ..Default::default() }, &ShiftConfig::default(), 1));
    let steps = if ctx.is_software() { 25 } else { 1000 };
    let mut replicas_ms = Vec::new();
    for sam in [false, true] {
        let configs: Vec<Replica> = (0..256)
            .map(|i| Replica {
                side: SideConfig {
                    optimizer: OptimizerConfig::sgd_momentum(0.1),
                    sam: sam.then_some(SamConfig { rho: crate::config::DEFAULT_RHO, adaptive: false }),
                    schedule: Schedule::Constant,
                    ..Default::default()
                },
                init: mlp.init_params(&mut Rng::new(i as u64)),
                seed: i as u64,
            })
            .collect();
        let mut trainer = ReplicaTrainer::new(&ctx, mlp, &splits.train, 32, &configs).map_err(err)?;
        let t = now_ms();
        trainer.train(steps).await.map_err(err)?;
        // Reading the metrics waits for the steps to finish.
        trainer.metrics().await.map_err(err)?;
        replicas_ms.push(now_ms() - t);
    }
    Ok(serde_json::json!({
        "adapter": ctx.description(),
        "software": ctx.is_software(),
        "boundary_128_ms": boundary[0],
        "boundary_512_ms": boundary[1],
        "surface_51x51_1000_ms": surface,
        "replicas": 256,
        "replica_steps": steps,
        "replicas_sgd_ms": replicas_ms[0],
        "replicas_sam_ms": replicas_ms[1],
    })
    .to_string())
}
