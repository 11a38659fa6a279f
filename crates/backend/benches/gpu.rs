//! CPU (f64 core) vs GPU (crates/backend/src/gpu kernels, f32) on the workloads the GPU path
//! exists for. Reference network: 2-16-16-2 tanh (354 parameters).
//!
//! - `boundary/{cpu,gpu}_{128,512}`: class probabilities of both sides of a pair
//!   over a 128x128 / 512x512 grid (GPU: including upload and readback).
//! - `surface_51x51/{cpu,gpu}`: mean loss at w + a d1 + b d2 over 1000 points for
//!   51x51 (a, b). The CPU measures 51x3 of them: compare the throughput lines
//!   (grid points per second).
//! - `replicas_256/{cpu,gpu_sgd,gpu_sam}`: 256 replicas, batch 32 of 256 points.
//!   Throughput is in replica-steps per second; the GPU runs 1000 steps per
//!   iteration on a hardware adapter (25 on a software one like lavapipe), the
//!   CPU 4 (each `Run` steps on its own).
//!
//! `cargo test` runs every benchmark once (criterion's test mode); there the
//! sizes shrink (see [`full_size`]) so that `make test` stays quick.
//!
//! Without any GPU adapter the GPU benchmarks are skipped with a notice (under
//! CI=true they fail: tests/support/adapter.rs). On
//! lavapipe (or SwiftShader) the "GPU" is a CPU emulation: its numbers say
//! nothing about real GPUs.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use flatminima_backend::gpu::{block_on, GpuContext, GpuModel, Grid2d, Replica, ReplicaTrainer};
use flatminima_core::activation::Activation;
use flatminima_core::config::{SideConfig, TrainingConfig};
use flatminima_core::data::{make_splits, DataConfig, ShiftConfig};
use flatminima_core::model::{Mlp, ModelConfig, Workspace};
use flatminima_core::optim::OptimizerConfig;
use flatminima_core::rng::Rng;
use flatminima_core::sam::SamConfig;
use flatminima_core::schedule::Schedule;
use flatminima_core::train::{predict_proba, Run};

#[path = "../../../tests/support/adapter.rs"]
mod adapter;

const REPLICAS: usize = 256;

/// True under `cargo bench` (which passes `--bench`), false in `cargo test`'s single pass.
fn full_size() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// `n` when benchmarking, `small` when only testing that the benchmark runs.
fn size(n: usize, small: usize) -> usize {
    if full_size() {
        n
    } else {
        small
    }
}

fn reference_mlp() -> Mlp {
    Mlp::new(
        2,
        &ModelConfig { hidden: vec![16, 16], activation: Activation::Tanh, label_smoothing: 0.0, dropout: vec![] },
        2,
    )
}

/// Under CI=true a missing adapter fails (`cargo test --all-targets` runs this file once).
fn gpu() -> Option<GpuContext> {
    let describe = |ctx: &GpuContext| {
        let kind = if ctx.is_software() { " (software: a CPU emulation, not a GPU)" } else { "" };
        format!("{}{kind}", ctx.description())
    };
    adapter::device("GPU benchmarks", block_on(GpuContext::new()), describe)
}

fn quick<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    group
}

fn boundary(c: &mut Criterion, ctx: Option<&GpuContext>) {
    let mlp = reference_mlp();
    let sides = [mlp.init_params(&mut Rng::new(1)), mlp.init_params(&mut Rng::new(2))];
    let mut group = quick(c, "boundary");
    for n in [size(128, 16), size(512, 32)] {
        let grid = Grid2d::cell_centres(-3.0, 3.0, n);
        group.throughput(Throughput::Elements(2 * grid.len() as u64));
        let points: Vec<f64> = grid.points().into_flattened();
        let mut out = vec![0.0; grid.len() * 2];
        let mut ws = Workspace::new();
        group.bench_function(format!("cpu_{n}"), |b| {
            b.iter(|| {
                for params in &sides {
                    predict_proba(&mlp, params, &points, &mut out, &mut ws);
                }
                black_box(&out);
            })
        });
        if let Some(ctx) = ctx {
            let models: Vec<GpuModel> = sides.iter().map(|params| GpuModel { mlp: &mlp, params }).collect();
            group.bench_function(format!("gpu_{n}"), |b| {
                b.iter(|| block_on(ctx.boundary_grid(&models, &grid)).unwrap())
            });
        }
    }
    group.finish();
}

fn surface(c: &mut Criterion, ctx: Option<&GpuContext>) {
    let mlp = reference_mlp();
    let data = make_splits(&DataConfig { n_train: 1000, ..Default::default() }, &ShiftConfig::default(), 1).train;
    let w = mlp.init_params(&mut Rng::new(1));
    let mut rng = Rng::new(2);
    let d1: Vec<f64> = w.iter().map(|_| rng.normal()).collect();
    let d2: Vec<f64> = w.iter().map(|_| rng.normal()).collect();
    let coords = Grid2d::square(-1.0, 1.0, size(51, 5)).points();
    let mut group = quick(c, "surface_51x51");
    // The CPU evaluates 3 of the 51 rows (the full surface takes seconds per sample).
    let cpu_coords = &coords[..size(3 * 51, 5)];
    group.throughput(Throughput::Elements(cpu_coords.len() as u64));
    let mut ws = Workspace::new();
    let mut p = vec![0.0; w.len()];
    group.bench_function("cpu_3_rows", |b| {
        b.iter(|| {
            for &[a, bb] in cpu_coords {
                for i in 0..w.len() {
                    p[i] = w[i] + a * d1[i] + bb * d2[i];
                }
                black_box(mlp.evaluate(&p, data.flat_points(), &data.labels, &mut ws));
            }
        })
    });
    if let Some(ctx) = ctx {
        group.throughput(Throughput::Elements(coords.len() as u64));
        group.bench_function("gpu", |b| b.iter(|| block_on(ctx.surface(&mlp, &w, &d1, &d2, &coords, &data)).unwrap()));
    }
    group.finish();
}

fn replica_configs(mlp: &Mlp, sam: bool) -> Vec<Replica> {
    (0..REPLICAS)
        .map(|i| Replica {
            side: SideConfig {
                optimizer: OptimizerConfig::sgd_momentum(0.05 + 0.001 * i as f64),
                sam: sam.then_some(SamConfig { rho: 0.1, adaptive: false }),
                schedule: Schedule::Constant,
                ..Default::default()
            },
            init: mlp.init_params(&mut Rng::new(i as u64)),
            seed: i as u64,
        })
        .collect()
}

fn replicas(c: &mut Criterion, ctx: Option<&GpuContext>) {
    let mlp = reference_mlp();
    let splits = Arc::new(make_splits(&DataConfig { n_train: 256, ..Default::default() }, &ShiftConfig::default(), 1));
    let training = TrainingConfig { batch_size: 32, steps: 1000, log_every: 1_000_000, ..Default::default() };
    let mut group = quick(c, "replicas_256");
    let cpu_steps = 4;
    group.throughput(Throughput::Elements((REPLICAS * cpu_steps) as u64));
    let mut runs: Vec<Run> = replica_configs(&mlp, false)
        .into_iter()
        .map(|r| Run::new(r.side, mlp.clone(), splits.clone(), r.init, &training, r.seed))
        .collect();
    group.bench_function(format!("cpu_sgd_x{cpu_steps}_steps"), |b| {
        b.iter(|| runs.iter_mut().for_each(|run| run.train(cpu_steps)))
    });
    if let Some(ctx) = ctx {
        let steps = size(if ctx.is_software() { 25 } else { 1000 }, 2);
        group.throughput(Throughput::Elements((REPLICAS * steps) as u64));
        for (name, sam) in [("sgd", false), ("sam", true)] {
            let configs = replica_configs(&mlp, sam);
            let mut trainer = ReplicaTrainer::new(ctx, &mlp, &splits.train, training.batch_size, &configs).unwrap();
            group.bench_function(format!("gpu_{name}_x{steps}_steps"), |b| {
                b.iter(|| {
                    block_on(trainer.train(steps)).unwrap();
                    // Reading the metrics waits for the steps to finish.
                    block_on(trainer.metrics()).unwrap()
                })
            });
        }
    }
    group.finish();
}

fn all(c: &mut Criterion) {
    let ctx = gpu();
    boundary(c, ctx.as_ref());
    surface(c, ctx.as_ref());
    replicas(c, ctx.as_ref());
}

criterion_group!(benches, all);
criterion_main!(benches);
