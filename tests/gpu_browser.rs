//! The GPU kernels in a browser, through WebGPU (the wasm side of crates/backend/src/gpu: async
//! readback without blocking). Chromium exposes WebGPU headless only with
//! `--enable-unsafe-webgpu` (SwiftShader, which also wants `--enable-unsafe-swiftshader`):
//! `webdriver.json` at the crate root passes both to the Chrome that
//! wasm-bindgen-test-runner starts, so `make test` and
//!   cargo test --target wasm32-unknown-unknown --test gpu_browser
//! run these tests on SwiftShader. Without an adapter they print a notice and pass,
//! except when compiled with CI=true, where they fail (tests/support/adapter.rs).
//! Tolerances as in tests/gpu.rs.
#![cfg(target_arch = "wasm32")]

use std::sync::Arc;

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

use flatminima::activation::Activation;
use flatminima::config::{SideConfig, TrainingConfig};
use flatminima::data::{make_splits, DataConfig, ShiftConfig};
use flatminima::gpu::{GpuContext, GpuModel, Grid2d, Replica, ReplicaTrainer};
use flatminima::model::{Mlp, ModelConfig, Workspace};
use flatminima::optim::OptimizerConfig;
use flatminima::rng::Rng;
use flatminima::sam::SamConfig;
use flatminima::train::{predict_proba, Run};

#[path = "support/adapter.rs"]
mod adapter;

wasm_bindgen_test_configure!(run_in_browser);

async fn gpu() -> Option<GpuContext> {
    adapter::device("GPU browser tests", GpuContext::new().await, GpuContext::description)
}

fn close(gpu: f32, cpu: f64, rel: f64, abs: f64) -> bool {
    (gpu as f64 - cpu).abs() <= rel * cpu.abs() + abs
}

#[wasm_bindgen_test]
async fn boundary_and_surface_match_the_cpu() {
    let Some(ctx) = gpu().await else { return };
    let mlp = Mlp::new(
        2,
        &ModelConfig { hidden: vec![16, 16], activation: Activation::Gelu, label_smoothing: 0.1, dropout: vec![] },
        3,
    );
    let params = mlp.init_params(&mut Rng::new(1));
    let grid = Grid2d { x_range: (-2.0, 2.0), y_range: (-1.0, 1.5), nx: 21, ny: 9 };
    let probs = ctx.boundary_grid(&[GpuModel { mlp: &mlp, params: &params }], &grid).await.unwrap();
    let mut cpu = vec![0.0; grid.len() * 3];
    predict_proba(&mlp, &params, grid.points().as_flattened(), &mut cpu, &mut Workspace::new());
    assert!(probs.iter().zip(&cpu).all(|(g, c)| close(*g, *c, 1e-4, 1e-6)));

    let data = DataConfig { dataset: flatminima::data::DatasetKind::Blobs, classes: 3, ..Default::default() };
    let splits = make_splits(&data, &ShiftConfig::default(), 2);
    let mut rng = Rng::new(3);
    let d1: Vec<f64> = params.iter().map(|_| rng.normal()).collect();
    let d2: Vec<f64> = params.iter().map(|_| rng.normal()).collect();
    let coords = Grid2d::square(-0.5, 0.5, 5).points();
    let surface = ctx.surface(&mlp, &params, &d1, &d2, &coords, &splits.train).await.unwrap();
    for (i, [a, b]) in coords.iter().enumerate() {
        let p: Vec<f64> = (0..params.len()).map(|j| params[j] + a * d1[j] + b * d2[j]).collect();
        let (loss, _) = mlp.evaluate(&p, splits.train.flat_points(), &splits.train.labels, &mut Workspace::new());
        assert!(close(surface.loss[i], loss, 1e-4, 1e-6), "surface {i}: {} vs {loss}", surface.loss[i]);
    }
}

#[wasm_bindgen_test]
async fn replicas_follow_cpu_runs() {
    let Some(ctx) = gpu().await else { return };
    let mlp = Mlp::new(2, &ModelConfig::default(), 2);
    let splits = Arc::new(make_splits(&DataConfig { n_train: 100, ..Default::default() }, &ShiftConfig::default(), 4));
    let training = TrainingConfig { batch_size: 32, steps: 50, log_every: 1000, ..Default::default() };
    let sgd = SideConfig { optimizer: OptimizerConfig::sgd_momentum(0.1), ..Default::default() };
    let sam = SideConfig { sam: Some(SamConfig { rho: 0.1, adaptive: false }), ..sgd.clone() };
    let replicas: Vec<Replica> = [sgd, sam]
        .into_iter()
        .enumerate()
        .map(|(i, side)| Replica { side, init: mlp.init_params(&mut Rng::new(i as u64)), seed: 9 + i as u64 })
        .collect();
    let mut trainer = ReplicaTrainer::new(&ctx, &mlp, &splits.train, training.batch_size, &replicas).unwrap();
    // 7 steps per submission: training waits for the GPU between chunks (from the event loop here).
    trainer.set_chunk_steps(7);
    trainer.train(50).await.unwrap();
    let metrics = trainer.metrics().await.unwrap();
    for (i, r) in replicas.iter().enumerate() {
        let mut run = Run::new(r.side.clone(), mlp.clone(), splits.clone(), r.init.clone(), &training, r.seed);
        run.train(50);
        let cpu = run.evaluate().train_loss;
        assert!(close(metrics.loss[i], cpu, 3e-4, 1e-6), "replica {i}: {} vs {cpu}", metrics.loss[i]);
    }
}
