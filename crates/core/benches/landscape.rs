//! Hessian, sharpness and landscape benchmarks for the reference network
//! 2-16-16-2 tanh (354 parameters) at trained weights (1000 steps of the default
//! SGD side). `cargo bench -p flatminima-core --bench landscape` takes about a minute.
//!
//! - `hessian/hvp_512`: one exact Hessian-vector product over 512 points.
//! - `hessian/lambda_max_512`: build the operator (one forward/backward pass) and run
//!   power iteration as PyHessian does (<= 100 products, relative change 1e-3). Target < 20 ms.
//! - `hessian/top2_lanczos_512`: the top two eigenpairs (40 Lanczos steps).
//! - `hessian/dense_512`, `hessian/spectrum_354`, `hessian/dense_and_spectrum_512`:
//!   the dense Hessian, its eigenvalues, both. Target for both < 150 ms.
//! - `sharpness/quick_256`, `sharpness/default_512`: a whole report with the page's
//!   and the CLI's settings.
//! - `landscape/surface_51x51_1000`: a 51 x 51 surface over 1000 points (one set). Target < 1 s.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use flatminima_core::config::RunConfig;
use flatminima_core::hessian::{power_iteration, spectrum, top_eigenpairs, HessianOperator};
use flatminima_core::landscape::{Grid, Plane, Split, SurfaceJob};
use flatminima_core::pair::Pair;
use flatminima_core::rng::Rng;
use flatminima_core::sharpness::{measure, SharpnessSettings};

/// The default SGD side trained for 1000 steps, with 512 training and 1000 test points.
fn trained_run() -> flatminima_core::train::Run {
    let mut config = RunConfig::default();
    config.data.n_train = 512;
    config.data.n_test = 1000;
    config.training.log_every = 1_000_000;
    let mut pair = Pair::new(config).expect("valid config");
    assert_eq!(pair.left.mlp.num_params(), 354, "not the 2-16-16-2 reference network");
    pair.left.train(1000);
    pair.left
}

fn hessian(c: &mut Criterion) {
    let run = trained_run();
    let train = &run.splits.train;
    let (x, y) = (train.flat_points(), &train.labels[..]);
    let mut op = HessianOperator::new(&run.mlp, &run.params, x, y);
    let v: Vec<f64> = (0..op.num_params()).map(|i| ((i * 7919) % 13) as f64 - 6.0).collect();
    let mut out = vec![0.0; v.len()];
    let mut group = c.benchmark_group("hessian");
    group.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2)).sample_size(20);
    group.bench_function("hvp_512", |b| b.iter(|| op.hvp(black_box(&v), &mut out)));
    group.bench_function("lambda_max_512", |b| {
        b.iter(|| {
            let mut op = HessianOperator::new(&run.mlp, &run.params, x, y);
            power_iteration(&mut op, &mut Rng::new(1), 100, 1e-3).value
        })
    });
    group.bench_function("top2_lanczos_512", |b| b.iter(|| top_eigenpairs(&mut op, 2, 40, &mut Rng::new(1)).values));
    group.bench_function("dense_512", |b| b.iter(|| op.dense()));
    let h = op.dense();
    group.bench_function("spectrum_354", |b| b.iter(|| spectrum(black_box(&h))));
    group.bench_function("dense_and_spectrum_512", |b| {
        b.iter(|| {
            let mut op = HessianOperator::new(&run.mlp, &run.params, x, y);
            spectrum(&op.dense())
        })
    });
    group.finish();
    let iterations = power_iteration(&mut op, &mut Rng::new(1), 100, 1e-3).iterations;
    eprintln!("(power iteration took {iterations} products at these weights)");
}

fn sharpness(c: &mut Criterion) {
    let run = trained_run();
    let mut group = c.benchmark_group("sharpness");
    group.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(3)).sample_size(10);
    let quick = SharpnessSettings::quick();
    group.bench_function("quick_256", |b| b.iter(|| measure(&run.mlp, &run.params, &run.splits.train, &quick)));
    let full = SharpnessSettings::default();
    group.bench_function("default_512", |b| b.iter(|| measure(&run.mlp, &run.params, &run.splits.train, &full)));
    group.finish();
}

fn landscape(c: &mut Criterion) {
    let run = trained_run();
    assert_eq!(run.splits.ood_test.len(), 1000);
    let plane = Plane::random(&run.mlp, &run.params, 1);
    let mut group = c.benchmark_group("landscape");
    group.warm_up_time(Duration::from_millis(100)).measurement_time(Duration::from_secs(5)).sample_size(10);
    group.bench_function("surface_51x51_1000", |b| {
        b.iter(|| SurfaceJob::new(&run.mlp, run.splits.clone(), plane.clone(), Grid::default(), &[Split::Ood]).finish())
    });
    group.finish();
}

criterion_group!(benches, hessian, sharpness, landscape);
criterion_main!(benches);
