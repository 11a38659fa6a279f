//! Where a grid study's time goes, per run of the reference net (2-16-16-2
//! tanh, 256 training points, 1000 steps, the default preset): training one
//! side, evaluating it, and each per-run measure of `study_grid` on the
//! trained parameters (`study_sharpness()`'s budget: 256 points, 20 power
//! iterations, 8 Hutchinson samples, 3 ascent steps, 8 Gaussian samples).
//! No timing is asserted: these are figures for the README.
//!
//! `cargo bench -p flatminima-core --bench study` (about a minute on two cores).
//!
//! - `study_run/train_sgd_1000`, `train_sam_1000`: one replica trained 1000 steps.
//! - `study_run/evaluate`: train, ID and OOD loss and accuracy of one run.
//! - `study_measure/*`: the Hessian operator's set-up (a forward and backward
//!   pass over the points), lambda_max by power iteration and by 20 Lanczos
//!   steps, the trace by Hutchinson and exactly from the Hessian's diagonal,
//!   the dense Hessian and its eigenvalues, and the four loss-based sharpness
//!   measures.
//! - `study_unit/*`: one (cell, draw) unit of one seed (both sides trained
//!   and measured) with the CLI's default measures (the dense spectrum) and
//!   with the page's (`fast_study_sharpness`), and a unit's set-up (data).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use flatminima_core::config::RunConfig;
use flatminima_core::data::ood_test_set;
use flatminima_core::hessian::{hutchinson_trace, power_iteration, spectrum, top_eigenpairs, HessianOperator};
use flatminima_core::pair::Pair;
use flatminima_core::rng::Rng;
use flatminima_core::settings::apply_settings;
use flatminima_core::sharpness::{
    adaptive_sharpness, average_sharpness, eps_sharpness, rho_sharpness, sample_rows, Objective,
};
use flatminima_core::study::{ReplicaRun, Study};
use flatminima_core::study_grid::{fast_study_sharpness, study_sharpness, Grid, GridSpec, UnitJob};

const STEPS: usize = 1000;

/// The default preset as the study target runs it: 256 training points, 1000 steps.
fn bench_config() -> RunConfig {
    apply_settings(&RunConfig::default(), [("points", "256"), ("steps", "1000")]).expect("valid settings")
}

fn study_run(c: &mut Criterion) {
    let pair = Pair::new(bench_config()).expect("the default config is valid");
    let study = Study::new(&pair, 1, STEPS);
    let mlp = study.mlp();
    assert_eq!(mlp.num_params(), 354, "not the reference network");
    let mut group = c.benchmark_group("study_run");
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    for (side, name) in [(0, "train_sgd_1000"), (1, "train_sam_1000")] {
        let replica = study.replica(&mlp, side, 0);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut run = ReplicaRun::new(&replica, &mlp, &study.splits, study.batch_size);
                run.train(STEPS);
                black_box(run.step())
            })
        });
    }
    let mut run = ReplicaRun::new(&study.replica(&mlp, 1, 0), &mlp, &study.splits, study.batch_size);
    run.train(STEPS);
    let ood = ood_test_set(&pair.config.data, &pair.config.shift, pair.config.seed);
    group.bench_function("evaluate", |b| {
        b.iter(|| {
            let r = run.run_mut();
            let splits = r.splits.clone();
            black_box((r.evaluate_on(&splits.train), r.evaluate_on(&splits.id_test), r.evaluate_on(&ood)))
        })
    });
    group.finish();

    let s = study_sharpness();
    let r = run.run_mut();
    let (x, y) = sample_rows(&r.splits.train, s.max_points, 0);
    let w = r.params.clone();
    let mut group = c.benchmark_group("study_measure");
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    group.bench_function("hessian_operator", |b| b.iter(|| black_box(HessianOperator::new(&mlp, &w, &x, &y))));
    let mut op = HessianOperator::new(&mlp, &w, &x, &y);
    group.bench_function("lambda_max_power_20", |b| {
        b.iter(|| black_box(power_iteration(&mut op, &mut Rng::new(1), s.power_iterations, s.power_tolerance)))
    });
    group.bench_function("trace_hutchinson_8", |b| {
        b.iter(|| black_box(hutchinson_trace(&mut op, s.hutchinson_samples, &mut Rng::new(2))))
    });
    group.bench_function("lambda_max_lanczos_20", |b| {
        b.iter(|| black_box(top_eigenpairs(&mut op, 1, 20, &mut Rng::new(1)).values[0]))
    });
    group.bench_function("trace_exact_diagonal", |b| b.iter(|| black_box(op.exact_trace())));
    group.bench_function("dense_hessian", |b| b.iter(|| black_box(op.dense())));
    let h = op.dense();
    group.bench_function("dense_spectrum", |b| b.iter(|| black_box(spectrum(&h))));
    let mut f = Objective::new(&mlp, &x, &y);
    group.bench_function("eps_sharpness", |b| {
        b.iter(|| black_box(eps_sharpness(&mut f, &w, s.keskar_eps, s.ascent_steps, &mut Rng::new(3))))
    });
    group.bench_function("rho_sharpness", |b| {
        b.iter(|| black_box(rho_sharpness(&mut f, &w, s.rho, s.ascent_steps, &mut Rng::new(4))))
    });
    group.bench_function("adaptive_sharpness", |b| {
        b.iter(|| black_box(adaptive_sharpness(&mut f, &w, s.adaptive_rho, s.ascent_steps, &mut Rng::new(5))))
    });
    group.bench_function("average_sharpness", |b| {
        b.iter(|| black_box(average_sharpness(&mut f, &w, s.average_sigma, s.average_samples, &mut Rng::new(6))))
    });
    group.finish();

    let mut group = c.benchmark_group("study_unit");
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(3));
    for (sharpness, name) in
        [(study_sharpness(), "pair_dense_spectrum"), (fast_study_sharpness(), "pair_page_measures")]
    {
        let mut spec = GridSpec::new(bench_config(), 1, 1);
        spec.sharpness = sharpness;
        let grid = Grid::new(spec).expect("valid");
        group.bench_function(name, |b| b.iter(|| black_box(grid.run_unit(0))));
    }
    let grid = Grid::new(GridSpec::new(bench_config(), 1, 1)).expect("valid");
    group.bench_function("unit_setup", |b| b.iter(|| black_box(UnitJob::new(&grid, 0))));
    group.finish();
}

criterion_group!(benches, study_run);
criterion_main!(benches);
