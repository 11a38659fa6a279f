//! The backend layer (crates/backend/src/): the CPU and GPU backends agree, and every
//! GPU failure falls back to the CPU with a notice. GPU tests run on whatever
//! Vulkan adapter exists (lavapipe here); without one they print a notice and pass
//! (fail under CI=true: tests/support/adapter.rs).
//!
//! Tolerances (the GPU computes in f32, the CPU in f64), as in tests/gpu.rs:
//! - probabilities and surface losses: |gpu - cpu| <= 1e-4 * |cpu| + 1e-6;
//! - replicas after 100 steps: final losses within 3e-4 relative (+1e-6), accuracies
//!   within 2 points of the set (near-ties of the top logits may flip).

#![cfg(not(target_arch = "wasm32"))]

use std::sync::{Arc, OnceLock};

use flatminima::activation::Activation;
use flatminima::backend::{Backend, BackendChoice, CpuBackend, GpuBackend, Grid2d, ModelRef, Replica, ReplicaMetrics};
use flatminima::config::{RunConfig, SideConfig};
use flatminima::data::{make_splits, DataConfig, ShiftConfig, Splits};
use flatminima::gpu::block_on;
use flatminima::landscape::{subset, Grid, Plane, Split, SurfaceJob};
use flatminima::model::{Mlp, ModelConfig, Workspace};
use flatminima::optim::OptimizerConfig;
use flatminima::pair::Pair;
use flatminima::rng::Rng;
use flatminima::sam::SamConfig;
use flatminima::schedule::Schedule;
use flatminima::train::predict_proba;

#[path = "support/adapter.rs"]
mod adapter;

/// One GPU backend for the whole file, or None (with a printed reason) where there is no adapter.
fn gpu_backend() -> Option<GpuBackend> {
    static GPU: OnceLock<Option<GpuBackend>> = OnceLock::new();
    let gpu =
        GPU.get_or_init(|| adapter::device("GPU backend tests", block_on(GpuBackend::open()), GpuBackend::description));
    gpu.clone()
}

/// [`gpu_backend`] as a `Backend`: a fresh one each time, with its own notices
/// and fallback state over the shared device.
fn gpu() -> Option<Backend> {
    gpu_backend().map(Backend::gpu)
}

fn mlp(hidden: &[usize], activation: Activation, classes: usize) -> Mlp {
    Mlp::new(2, &ModelConfig { hidden: hidden.to_vec(), activation, label_smoothing: 0.0, dropout: vec![] }, classes)
}

#[track_caller]
fn assert_close(gpu: f64, cpu: f64, rel: f64, abs: f64, what: &str) {
    let err = (gpu - cpu).abs();
    assert!(err <= rel * cpu.abs() + abs, "{what}: gpu {gpu} vs cpu {cpu} (error {err:e})");
}

#[test]
fn boundary_grids_agree_including_odd_sizes() {
    let Some(gpu) = gpu() else { return };
    let nets = [mlp(&[16, 16], Activation::Tanh, 2), mlp(&[5, 3], Activation::Relu, 3), mlp(&[], Activation::Gelu, 4)];
    let params: Vec<Vec<f64>> = nets.iter().enumerate().map(|(i, m)| m.init_params(&mut Rng::new(i as u64))).collect();
    let models: Vec<ModelRef> = nets.iter().zip(&params).map(|(mlp, params)| ModelRef { mlp, params }).collect();
    for grid in [
        Grid2d { x_range: (-2.5, 2.0), y_range: (-1.5, 3.0), nx: 13, ny: 11 },
        Grid2d::cell_centres(-3.0, 3.0, 7),
        Grid2d::square(0.0, 1.0, 1),
    ] {
        let on_gpu = block_on(gpu.boundary_grid(&models, &grid));
        let on_cpu = block_on(Backend::cpu().boundary_grid(&models, &grid));
        assert_eq!(on_gpu.len(), on_cpu.len());
        assert_eq!(on_cpu.len(), grid.len() * (2 + 3 + 4));
        for (g, c) in on_gpu.iter().zip(&on_cpu) {
            assert_close(*g as f64, *c as f64, 1e-4, 1e-6, &format!("{grid:?}"));
        }
        // The CPU backend is the core's predict_proba, narrowed to f32.
        let mut core = vec![0.0; grid.len() * 2];
        predict_proba(&nets[0], &params[0], &grid.points().into_flattened(), &mut core, &mut Workspace::new());
        assert!(core.iter().zip(&on_cpu).all(|(a, b)| *a as f32 == *b));
    }
    assert_eq!((gpu.name(), gpu.last_call_backend()), ("gpu", "gpu"));
    assert!(gpu.take_notices().is_empty());
}

fn trained_pair(steps: usize) -> Pair {
    let mut config = RunConfig::default();
    config.data.n_train = 120;
    config.data.n_test = 90;
    config.training.steps = steps;
    let mut pair = Pair::new(config).unwrap();
    pair.train(steps);
    pair
}

#[test]
fn surfaces_agree_and_the_cpu_backend_is_the_surface_job() {
    let pair = trained_pair(60);
    let run = &pair.right;
    let plane = Plane::random(&run.mlp, &run.params, 1);
    // 7 x 5 cells: odd and not square.
    let grid = Grid { alphas: flatminima::landscape::linspace(-1.0, 1.0, 7), betas: vec![-0.5, 0.0, 0.25, 0.5, 1.0] };
    let ood = subset(&run.splits.ood_test, 50, 3, Split::Ood);
    let sets = [(Split::Train, &run.splits.train), (Split::Ood, &ood)];
    let on_cpu = block_on(Backend::cpu().surface(&run.mlp, &plane, &grid, &sets));
    let mut splits = (*run.splits).clone();
    splits.ood_test = ood.clone();
    let job = SurfaceJob::new(&run.mlp, Arc::new(splits), plane.clone(), grid.clone(), &[Split::Train, Split::Ood]);
    assert_eq!(on_cpu, job.finish(), "the CPU backend is SurfaceJob, bit for bit");
    assert!(on_cpu.id.is_none());
    let Some(gpu) = gpu() else { return };
    let on_gpu = block_on(gpu.surface(&run.mlp, &plane, &grid, &sets));
    assert_eq!((&on_gpu.alphas, &on_gpu.betas, on_gpu.kind), (&on_cpu.alphas, &on_cpu.betas, on_cpu.kind));
    assert!(on_gpu.id.is_none());
    for split in [Split::Train, Split::Ood] {
        let (g, c) = (on_gpu.values(split).unwrap(), on_cpu.values(split).unwrap());
        assert_eq!(g.len(), 35);
        for (i, (g, c)) in g.iter().zip(c).enumerate() {
            assert_close(*g, *c, 1e-4, 1e-6, &format!("{split:?} cell {i}"));
        }
    }
    assert!(gpu.take_notices().is_empty());
}

/// Six seeds of one side of the default config (SGD with momentum, or SAM over it).
fn replicas(mlp: &Mlp, side: &SideConfig) -> Vec<Replica> {
    (0..6u64)
        .map(|seed| Replica { side: side.clone(), init: mlp.init_params(&mut Rng::derive(seed, "init")), seed })
        .collect()
}

fn small_splits() -> Arc<Splits> {
    // 100 points in batches of 32: every epoch ends with a short batch.
    let data = DataConfig { n_train: 100, n_test: 100, ..Default::default() };
    Arc::new(make_splits(&data, &ShiftConfig::default(), 5))
}

#[track_caller]
fn assert_replicas_close(gpu: &[ReplicaMetrics], cpu: &[ReplicaMetrics], what: &str) {
    assert_eq!(gpu.len(), cpu.len());
    for (i, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        let what = format!("{what} replica {i}");
        for (g, c) in [(g.train_loss, c.train_loss), (g.id_loss, c.id_loss), (g.ood_loss, c.ood_loss)] {
            assert_close(g, c, 3e-4, 1e-6, &what);
        }
        for (g, c) in [(g.train_acc, c.train_acc), (g.id_acc, c.id_acc), (g.ood_acc, c.ood_acc)] {
            assert_close(g, c, 0.0, 2.0 / 100.0 + 1e-9, &what);
        }
        assert_eq!(g.diverged, c.diverged, "{what}");
    }
}

#[test]
fn replica_runs_of_100_steps_agree_for_sgd_and_sam() {
    let config = RunConfig::default();
    let m = mlp(&config.model.hidden, config.model.activation, 2);
    let splits = small_splits();
    let Some(gpu) = gpu() else { return };
    for side in [&config.left, &config.right] {
        let reps = replicas(&m, side);
        let on_gpu = block_on(gpu.train_replicas(&m, &splits, 32, &reps, 100));
        let on_cpu = block_on(Backend::cpu().train_replicas(&m, &splits, 32, &reps, 100));
        assert_replicas_close(&on_gpu, &on_cpu, &side.label());
        assert!(on_cpu.iter().all(|r| !r.diverged && r.train_acc > 0.8), "{on_cpu:?}");
    }
    assert!(gpu.take_notices().is_empty());
}

#[test]
fn cpu_replicas_are_independent_runs() {
    let config = RunConfig::default();
    let m = mlp(&config.model.hidden, config.model.activation, 2);
    let splits = small_splits();
    let reps = replicas(&m, &config.right);
    let all = CpuBackend.train_replicas(&m, &splits, 32, &reps, 30);
    let one = CpuBackend.train_replicas(&m, &splits, 32, &reps[3..4], 30);
    assert_eq!(all[3], one[0], "a replica does not depend on the others");
    assert_ne!(all[2], all[3], "replicas differ by seed");
    assert!(block_on(Backend::cpu().train_replicas(&m, &splits, 32, &[], 30)).is_empty());
}

#[test]
fn choices_parse_with_a_message_listing_the_allowed_values() {
    assert_eq!("auto".parse(), Ok(BackendChoice::Auto));
    assert_eq!("gpu".parse(), Ok(BackendChoice::Gpu));
    assert_eq!("cpu".parse(), Ok(BackendChoice::Cpu));
    let e = "cuda".parse::<BackendChoice>().unwrap_err();
    assert_eq!(e.to_string(), "`backend`: must be one of auto, gpu, cpu; got `cuda`");
}

#[test]
fn cpu_choice_is_the_cpu_without_a_notice() {
    let (backend, notice) = block_on(Backend::select(BackendChoice::Cpu));
    assert_eq!((backend.name(), notice), ("cpu", None));
}

#[test]
fn forced_gpu_with_an_unsupported_shape_falls_back_with_a_notice() {
    // The config limits (0-6 hidden layers of 1-64 units) fit the kernels; the core allows more.
    let deep = mlp(&[4; 7], Activation::Tanh, 2);
    let wide = mlp(&[65], Activation::Tanh, 2);
    for (net, why) in [(&deep, "7 hidden layers"), (&wide, "width 65")] {
        let (backend, notice) = block_on(Backend::select_for(BackendChoice::Gpu, net));
        assert_eq!(backend.name(), "cpu");
        let notice = notice.expect("a notice");
        assert!(notice.contains("requested") && notice.contains(why) && notice.contains("using the CPU"), "{notice}");
        let (backend, notice) = block_on(Backend::select_for(BackendChoice::Auto, net));
        assert_eq!(backend.name(), "cpu");
        assert!(notice.unwrap().starts_with("auto:"));
    }
}

#[test]
fn forced_gpu_uses_any_adapter_or_says_there_is_none() {
    let (backend, notice) = block_on(Backend::select(BackendChoice::Gpu));
    match backend.name() {
        "gpu" => assert_eq!(notice, None),
        _ => {
            let notice = notice.expect("a notice");
            adapter::no_adapter("forced GPU backend", &notice);
            assert!(notice.contains("no GPU adapter") || notice.contains("FLATMINIMA_NO_GPU"), "{notice}");
        }
    }
}

#[test]
fn gpu_failures_in_a_call_fall_back_to_the_cpu_for_that_call() {
    let Some(gpu) = gpu() else { return };
    // Adam is CPU-only in the replica kernels: the whole call is computed on the CPU.
    let m = mlp(&[8], Activation::Tanh, 2);
    let adam = SideConfig {
        optimizer: OptimizerConfig::with_kind("adam", 0.01).unwrap(),
        sam: None,
        schedule: Schedule::Constant,
        ..Default::default()
    };
    let splits = small_splits();
    let reps = replicas(&m, &adam);
    let on_gpu_backend = block_on(gpu.train_replicas(&m, &splits, 16, &reps, 20));
    assert_eq!(on_gpu_backend, CpuBackend.train_replicas(&m, &splits, 16, &reps, 20));
    assert_eq!(gpu.last_call_backend(), "cpu");
    let notices = gpu.take_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("replica training") && notices[0].contains("Adam"), "{notices:?}");
    // Dropout and a switch of optimiser are CPU-only too (the kernels train without them).
    let mut dropped = m.clone();
    dropped.dropout = vec![0.3];
    let sgd = SideConfig { optimizer: OptimizerConfig::sgd_momentum(0.1), ..Default::default() };
    let reps = replicas(&dropped, &sgd);
    let on_gpu_backend = block_on(gpu.train_replicas(&dropped, &splits, 16, &reps, 20));
    assert_eq!(on_gpu_backend, CpuBackend.train_replicas(&dropped, &splits, 16, &reps, 20));
    assert_eq!(gpu.last_call_backend(), "cpu");
    let notices = gpu.take_notices();
    assert!(notices.len() == 1 && notices[0].contains("dropout"), "{notices:?}");
    let switching = SideConfig {
        switch: Some(flatminima::switch::Switch {
            at: 5,
            optimizer: None,
            sam: Some(SamConfig { rho: 0.1, adaptive: false }),
        }),
        ..sgd
    };
    let reps = replicas(&m, &switching);
    let on_gpu_backend = block_on(gpu.train_replicas(&m, &splits, 16, &reps, 20));
    assert_eq!(on_gpu_backend, CpuBackend.train_replicas(&m, &splits, 16, &reps, 20));
    assert!(gpu.take_notices()[0].contains("switch"));
    // An unsupported shape in a surface: computed on the CPU, noted once however often it happens.
    let deep = mlp(&[3; 7], Activation::Tanh, 2);
    let params = deep.init_params(&mut Rng::new(1));
    let plane = Plane::random(&deep, &params, 1);
    let grid = Grid::square(3, -1.0, 1.0);
    let sets = [(Split::Train, &splits.train)];
    let first = block_on(gpu.surface(&deep, &plane, &grid, &sets));
    let again = block_on(gpu.surface(&deep, &plane, &grid, &sets));
    assert_eq!(first, block_on(Backend::cpu().surface(&deep, &plane, &grid, &sets)));
    assert_eq!(first, again);
    let notices = gpu.take_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("loss surface") && notices[0].contains("7 hidden layers"), "{notices:?}");
    // Refusals are per call: the backend stays on the GPU.
    assert_eq!(gpu.name(), "gpu");
}

/// A grid study trained on the GPU's replica kernels and measured on the CPU
/// (`GpuBackend::run_grid`) against the same study on the CPU: every run's
/// steps and flags equal, losses within f32 rounding of 80 steps, every
/// measure close; the Adam cell and the matched-loss rule fall back to the
/// CPU with a notice, and those runs are the CPU's bit for bit.
#[test]
fn a_grid_study_trained_on_the_gpu_agrees_with_the_cpu() {
    use flatminima::settings::apply_settings;
    use flatminima::study_grid::{fast_study_sharpness, parse_axes, GridSpec, StopRule};
    let Some(gpu) = gpu_backend() else { return };
    let base = apply_settings(
        &RunConfig::default(),
        [("points", "100"), ("hidden", "8,8"), ("steps", "80"), ("batch-size", "16"), ("seed", "4")],
    )
    .unwrap();
    let mut spec = GridSpec::new(base, 2, 2);
    spec.axes = parse_axes("lr=0.05,0.2; optimizer=sgd,adam").unwrap();
    spec.sharpness = fast_study_sharpness();
    let grid = flatminima::study_grid::Grid::new(spec.clone()).unwrap();
    let mut calls = 0;
    // Measured on two threads (each batch's units at once), the progress still counts every unit.
    let on_gpu = block_on(gpu.run_grid(&grid, 2, |done, all| {
        calls += 1;
        assert!(done <= all);
    }))
    .unwrap();
    let on_cpu = grid.run(None, |_, _| {});
    assert_eq!(calls, grid.units());
    // Units trained as one batch (each on its data draw) get the bits of units trained one by one.
    let batch = block_on(gpu.train_grid_units(&grid, 0, usize::MAX)).unwrap();
    assert_eq!(batch.len(), 2, "cell 0's two data draws (cell 1 is Adam's)");
    for (u, weights) in batch.iter().enumerate() {
        assert_eq!(weights, &block_on(gpu.train_grid_units(&grid, u, 1)).unwrap()[0], "unit {u}");
    }
    let refused = block_on(gpu.train_grid_units(&grid, 2, usize::MAX)).err();
    assert!(matches!(&refused, Some(flatminima::gpu::GpuError::Unsupported(m)) if m.contains("Adam")), "{refused:?}");
    // Across cells that differ in the learning rate only: one batch, the same bits.
    let lrs = GridSpec { axes: parse_axes("lr=0.05,0.2").unwrap(), ..spec.clone() };
    let lrs = flatminima::study_grid::Grid::new(lrs).unwrap();
    let batch = block_on(gpu.train_grid_units(&lrs, 0, usize::MAX)).unwrap();
    assert_eq!(batch.len(), lrs.units(), "both cells' draws in one batch");
    for (u, weights) in batch.iter().enumerate() {
        assert_eq!(weights, &block_on(gpu.train_grid_units(&lrs, u, 1)).unwrap()[0], "lr grid, unit {u}");
    }
    assert_eq!((on_gpu.gpu_units, on_gpu.units), (4, 8), "the SGD/SAM cells' units on the GPU");
    assert_eq!(on_gpu.notices.len(), 2, "{:?}", on_gpu.notices);
    assert!(on_gpu.notices.iter().all(|n| n.contains("optimizer=adam") && n.contains("Adam")), "{:?}", on_gpu.notices);
    let (g, c) = (&on_gpu.output.runs, &on_cpu.runs);
    assert_eq!(g.len(), c.len());
    for (g, c) in g.iter().zip(c) {
        let what = format!("cell {} draw {} seed {} side {}", c.cell, c.draw, c.seed_index, c.side);
        assert_eq!(
            (g.cell, g.draw, g.seed_index, g.side, g.steps, g.diverged),
            (c.cell, c.draw, c.seed_index, c.side, c.steps, c.diverged),
            "{what}"
        );
        if on_gpu.output.cells[c.cell].settings.iter().any(|(_, v)| v == "adam") {
            assert_eq!(serde_json::to_string(g).unwrap(), serde_json::to_string(c).unwrap(), "{what}: CPU fallback");
            continue;
        }
        assert!(!c.diverged && c.train_acc > 0.6, "{what}: a study that trains");
        for (gv, cv, name) in [
            (g.train_loss, c.train_loss, "train loss"),
            (g.id_loss, c.id_loss, "ID loss"),
            (g.ood[0].loss, c.ood[0].loss, "OOD loss"),
        ] {
            assert_close(gv, cv, 1e-3, 1e-6, &format!("{what}: {name}"));
        }
        for (gv, cv) in [(g.train_acc, c.train_acc), (g.id_acc, c.id_acc), (g.ood[0].acc, c.ood[0].acc)] {
            assert_close(gv, cv, 0.0, 0.03, &format!("{what}: accuracy"));
        }
        let (gs, cs) = (&g.sharpness, &c.sharpness);
        assert_close(g.param_norm, c.param_norm, 1e-4, 1e-6, &format!("{what}: norm"));
        assert_close(gs.lambda_max, cs.lambda_max, 1e-2, 1e-6, &format!("{what}: lambda_max"));
        assert_close(gs.trace, cs.trace, 1e-2, 1e-6, &format!("{what}: trace"));
        assert_close(gs.rho_sharpness, cs.rho_sharpness, 2e-2, 1e-6, &format!("{what}: rho-sharpness"));
    }
    // The matched-loss rule is the CPU's for every unit, with the notice (on three threads: one thread's bits).
    let matched = flatminima::study_grid::Grid::new(GridSpec {
        stop: StopRule::TrainLoss { target: 0.3, check_every: 10 },
        axes: vec![],
        ..spec
    })
    .unwrap();
    let out = block_on(gpu.run_grid(&matched, 3, |_, _| {})).unwrap();
    assert_eq!(out.gpu_units, 0);
    assert!(out.notices[0].contains("matched-loss"), "{:?}", out.notices);
    let cpu = matched.run(None, |_, _| {});
    assert_eq!(serde_json::to_string(&out.output).unwrap(), serde_json::to_string(&cpu).unwrap());
}
