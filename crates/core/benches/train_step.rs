//! Training-step and decision-boundary benchmarks for the reference network
//! 2-16-16-2 tanh (the default config), batch 32.
//!
//! `cargo bench -p flatminima-core --bench train_step` runs in well under two minutes on two
//! cores: every benchmark uses short warm-up and measurement times, which is
//! plenty for steps that take microseconds.
//!
//! - `train_step/sgd`, `train_step/sam`: one optimiser step (minibatch
//!   gather, forward, backward, update; SAM adds a second forward/backward).
//!   Throughput is in examples/s (32 per step); SAM/SGD time is the cost ratio.
//! - `decision_boundary/both_sides_128x128`: class probabilities of both runs
//!   over a 128x128 grid, what the page recomputes to redraw the heatmaps.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flatminima_core::config::RunConfig;
use flatminima_core::model::Workspace;
use flatminima_core::pair::Pair;
use flatminima_core::train::predict_proba;

const BATCH: usize = 32;
const GRID: usize = 128;

/// The default pair (left SGD momentum 0.9, right SAM over the same SGD),
/// with metric logging pushed out of reach so that a step is only a step.
fn reference_pair() -> Pair {
    let mut config = RunConfig::default();
    config.training.batch_size = BATCH;
    config.training.log_every = 1_000_000;
    let pair = Pair::new(config).expect("the default config is valid");
    assert_eq!(pair.left.mlp.num_params(), 354, "not the 2-16-16-2 reference network");
    pair
}

fn train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    let mut pair = reference_pair();
    // Start from trained weights, where the run spends nearly all of its steps.
    pair.train(500);
    let Pair { mut left, mut right, .. } = pair;
    group.bench_function("sgd", |b| b.iter(|| left.step()));
    group.bench_function("sam", |b| b.iter(|| right.step()));
    // Dropout 0.2 after both hidden layers: the masks drawn every step (one uniform per unit and row).
    let mut config = reference_pair().config;
    config.model.dropout = vec![0.2];
    let mut dropped = Pair::new(config).expect("valid");
    dropped.train(500);
    group.bench_function("sgd_dropout", |b| b.iter(|| dropped.left.step()));
    group.bench_function("sam_dropout", |b| b.iter(|| dropped.right.step()));
    group.finish();
    assert!(left.diverged.is_none() && right.diverged.is_none(), "a benchmark run diverged");
    assert!(dropped.left.diverged.is_none() && dropped.right.diverged.is_none(), "a dropout run diverged");
}

/// Cell centres of a `GRID x GRID` grid over [-3, 3]^2, row-major `n x 2`.
fn grid_points() -> Vec<f64> {
    let cell = 6.0 / GRID as f64;
    let mut points = Vec::with_capacity(GRID * GRID * 2);
    for row in 0..GRID {
        for col in 0..GRID {
            points.push(-3.0 + (col as f64 + 0.5) * cell);
            points.push(3.0 - (row as f64 + 0.5) * cell);
        }
    }
    points
}

fn decision_boundary(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision_boundary");
    group.throughput(Throughput::Elements(2 * (GRID * GRID) as u64));
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3)).sample_size(30);
    let mut pair = reference_pair();
    pair.train(500);
    let points = grid_points();
    let mut out = vec![0.0; GRID * GRID * pair.left.mlp.classes];
    let mut ws = Workspace::new();
    group.bench_function("both_sides_128x128", |b| {
        b.iter(|| {
            for run in pair.sides() {
                predict_proba(&run.mlp, &run.params, black_box(&points), &mut out, &mut ws);
                black_box(&out);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, train_step, decision_boundary);
criterion_main!(benches);
