//! The GPU kernels (crates/backend/src/gpu) against the f64 CPU core, natively on whatever
//! Vulkan adapter exists (lavapipe in CI: `make test` installs mesa-vulkan-drivers).
//! Without any adapter each test prints a notice and passes, except under CI=true,
//! where it fails (tests/support/adapter.rs).
//!
//! Tolerances (the GPU computes in f32, the core in f64):
//! - probabilities and mean losses: |gpu - cpu| <= 1e-4 * |cpu| + 1e-6;
//! - accuracies: at most 2 points of the set may flip (near-ties of the top logits);
//! - 100 training steps: every parameter within 3e-4 * (1 + |cpu|), training and OOD
//!   losses within 3e-4 relative (f32 rounding compounds over the steps; measured on
//!   lavapipe: <= 3e-5, the worst case being ReLU with SAM).

// Native only: in the browser the same kernels run through WebGPU (tests/gpu_browser.rs).
#![cfg(not(target_arch = "wasm32"))]

use std::sync::{Arc, OnceLock};

use flatminima::activation::Activation;
use flatminima::config::{SideConfig, TrainingConfig};
use flatminima::data::{make_splits, DataConfig, Dataset, DatasetKind, ShiftConfig, Splits};
use flatminima::gpu::{block_on, GpuContext, GpuError, GpuModel, Grid2d, Replica, ReplicaTrainer};
use flatminima::model::{Mlp, ModelConfig, Workspace};
use flatminima::optim::OptimizerConfig;
use flatminima::rng::Rng;
use flatminima::sam::SamConfig;
use flatminima::schedule::Schedule;
use flatminima::train::{predict_proba, Run};

#[path = "support/adapter.rs"]
mod adapter;

/// One device for the whole file (opening lavapipe and compiling the kernels is the slow part).
fn gpu() -> Option<&'static GpuContext> {
    static CONTEXT: OnceLock<Option<GpuContext>> = OnceLock::new();
    CONTEXT.get_or_init(|| adapter::device("GPU tests", block_on(GpuContext::new()), GpuContext::description)).as_ref()
}

fn mlp(hidden: &[usize], activation: Activation, classes: usize, label_smoothing: f64) -> Mlp {
    Mlp::new(2, &ModelConfig { hidden: hidden.to_vec(), activation, label_smoothing, dropout: vec![] }, classes)
}

/// Shapes from a linear model to the largest supported one, with 2 to 8 classes.
fn shapes() -> Vec<(Vec<usize>, usize)> {
    vec![
        (vec![], 2),
        (vec![5], 3),
        (vec![16, 16], 2),
        (vec![3, 64, 7], 8),
        (vec![4, 3, 5, 2, 6, 3], 4),
        (vec![64, 64, 64, 64, 64, 64], 2),
    ]
}

fn params(mlp: &Mlp, seed: u64, scale: f64) -> Vec<f64> {
    mlp.init_params(&mut Rng::new(seed)).iter().map(|p| p * scale).collect()
}

fn random_dataset(n: usize, classes: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    Dataset {
        points: (0..n).map(|_| [1.5 * rng.normal(), 1.5 * rng.normal()]).collect(),
        labels: (0..n).map(|_| rng.below(classes)).collect(),
        classes,
    }
}

#[track_caller]
fn assert_close(gpu: f32, cpu: f64, rel: f64, abs: f64, what: &str) -> f64 {
    let err = (gpu as f64 - cpu).abs();
    assert!(err <= rel * cpu.abs() + abs, "{what}: gpu {gpu} vs cpu {cpu} (error {err:e})");
    err / (cpu.abs() + abs / rel)
}

#[test]
fn boundary_grid_matches_predict_proba_for_every_shape_and_activation() {
    let Some(ctx) = gpu() else { return };
    // 13 x 11 = 143 points: not a multiple of the workgroup size.
    let grid = Grid2d { x_range: (-2.5, 2.0), y_range: (-1.5, 3.0), nx: 13, ny: 11 };
    let points: Vec<f64> = grid.points().into_flattened();
    let mut worst: f64 = 0.0;
    for activation in Activation::ALL {
        let nets: Vec<(Mlp, Vec<f64>)> = shapes()
            .into_iter()
            .enumerate()
            // scale 3 pushes the logits (and tanh/sigmoid) into saturation
            .map(|(i, (h, k))| {
                let m = mlp(&h, activation, k, 0.0);
                let p = params(&m, i as u64, if i % 2 == 0 { 3.0 } else { 1.0 });
                (m, p)
            })
            .collect();
        let models: Vec<GpuModel> = nets.iter().map(|(mlp, params)| GpuModel { mlp, params }).collect();
        let probs = block_on(ctx.boundary_grid(&models, &grid)).unwrap();
        let mut offset = 0;
        for (mlp, params) in &nets {
            let mut cpu = vec![0.0; grid.len() * mlp.classes];
            predict_proba(mlp, params, &points, &mut cpu, &mut Workspace::new());
            for (g, c) in probs[offset..offset + cpu.len()].iter().zip(&cpu) {
                worst = worst.max(assert_close(*g, *c, 1e-4, 1e-6, &format!("{activation:?} {:?}", mlp.layers.len())));
            }
            offset += cpu.len();
        }
        assert_eq!(offset, probs.len());
    }
    eprintln!("boundary: worst relative error {worst:e}");
}

#[test]
fn reused_buffers_never_return_an_earlier_calls_results() {
    let Some(ctx) = gpu() else { return };
    // The same sizes call after call, as a live page asks: outputs and readback
    // buffers come from the context's pool, so a stale value would show here.
    let grid = Grid2d::cell_centres(-3.0, 3.0, 37);
    let points: Vec<f64> = grid.points().into_flattened();
    let m = mlp(&[16, 16], Activation::Tanh, 2, 0.0);
    let sides: Vec<Vec<f64>> = (0..4).map(|seed| params(&m, seed, 2.0)).collect();
    let mut first = Vec::new();
    for round in 0..3 {
        for pair in sides.chunks(2) {
            let models: Vec<GpuModel> = pair.iter().map(|params| GpuModel { mlp: &m, params }).collect();
            let probs = block_on(ctx.boundary_grid(&models, &grid)).unwrap();
            for (side, params) in pair.iter().enumerate() {
                let mut cpu = vec![0.0; grid.len() * 2];
                predict_proba(&m, params, &points, &mut cpu, &mut Workspace::new());
                let gpu = &probs[side * cpu.len()..(side + 1) * cpu.len()];
                for (g, c) in gpu.iter().zip(&cpu) {
                    assert_close(*g, *c, 1e-4, 1e-6, &format!("round {round}"));
                }
            }
            if round == 0 {
                first.push(probs);
            } else {
                assert!(first.contains(&probs), "round {round}: a repeated boundary changed");
            }
        }
    }
    // Surfaces of two different centres over the same coordinates reuse the vectors buffer.
    let data = random_dataset(50, 2, 8);
    let coords = Grid2d::square(-1.0, 1.0, 9).points();
    let (d1, d2) = (params(&m, 10, 1.0), params(&m, 11, 1.0));
    for w in &sides {
        let gpu = block_on(ctx.surface(&m, w, &d1, &d2, &coords, &data)).unwrap();
        for (i, (loss, _)) in cpu_surface(&m, w, &d1, &d2, &coords, &data).iter().enumerate() {
            assert_close(gpu.loss[i], *loss, 1e-4, 1e-6, &format!("surface vector {i}"));
        }
    }
}

#[test]
fn predict_proba_at_listed_points_matches_the_core() {
    let Some(ctx) = gpu() else { return };
    let m = mlp(&[7, 9], Activation::Gelu, 3, 0.0);
    let p = params(&m, 4, 1.0);
    let points: Vec<f64> = random_dataset(37, 3, 9).flat_points().to_vec();
    let probs = block_on(ctx.predict_proba(&[GpuModel { mlp: &m, params: &p }], &points)).unwrap();
    let mut cpu = vec![0.0; 37 * 3];
    predict_proba(&m, &p, &points, &mut cpu, &mut Workspace::new());
    for (g, c) in probs.iter().zip(&cpu) {
        assert_close(*g, *c, 1e-4, 1e-6, "listed points");
    }
}

#[test]
fn losses_of_many_vectors_match_mlp_evaluate() {
    let Some(ctx) = gpu() else { return };
    for (i, activation) in Activation::ALL.into_iter().enumerate() {
        for (hidden, classes) in shapes() {
            let m = mlp(&hidden, activation, classes, [0.0, 0.1][i % 2]);
            // 101 points and 5 vectors: neither divides the workgroup size.
            let data = random_dataset(101, classes, i as u64);
            let vectors: Vec<Vec<f64>> = (0..5).map(|s| params(&m, 10 + s, 1.0 + s as f64)).collect();
            let refs: Vec<&[f64]> = vectors.iter().map(Vec::as_slice).collect();
            let gpu = block_on(ctx.losses(&m, &refs, &data)).unwrap();
            for (v, p) in vectors.iter().enumerate() {
                let (loss, acc) = m.evaluate(p, data.flat_points(), &data.labels, &mut Workspace::new());
                assert_close(gpu.loss[v], loss, 1e-4, 1e-6, &format!("loss {activation:?} {hidden:?}"));
                assert_close(gpu.accuracy[v], acc, 0.0, 2.0 / 101.0 + 1e-6, "accuracy");
            }
        }
    }
}

/// The CPU surface: evaluate at w + a d1 + b d2 in f64.
fn cpu_surface(m: &Mlp, w: &[f64], d1: &[f64], d2: &[f64], coords: &[[f64; 2]], data: &Dataset) -> Vec<(f64, f64)> {
    let mut ws = Workspace::new();
    coords
        .iter()
        .map(|&[a, b]| {
            let p: Vec<f64> = (0..w.len()).map(|i| w[i] + a * d1[i] + b * d2[i]).collect();
            m.evaluate(&p, data.flat_points(), &data.labels, &mut ws)
        })
        .collect()
}

#[test]
fn surface_matches_the_cpu_landscape() {
    let Some(ctx) = gpu() else { return };
    let m = mlp(&[16, 16], Activation::Tanh, 2, 0.05);
    let splits = make_splits(&DataConfig { n_train: 300, ..Default::default() }, &ShiftConfig::default(), 3);
    let w = params(&m, 1, 1.0);
    let mut rng = Rng::new(2);
    let d1: Vec<f64> = (0..w.len()).map(|_| rng.normal()).collect();
    let d2: Vec<f64> = (0..w.len()).map(|_| rng.normal()).collect();
    // 7 x 5 coordinates over [-1, 1]^2.
    let coords = Grid2d { x_range: (-1.0, 1.0), y_range: (-1.0, 1.0), nx: 7, ny: 5 }.points();
    let gpu = block_on(ctx.surface(&m, &w, &d1, &d2, &coords, &splits.train)).unwrap();
    let cpu = cpu_surface(&m, &w, &d1, &d2, &coords, &splits.train);
    for (i, (loss, acc)) in cpu.iter().enumerate() {
        assert_close(gpu.loss[i], *loss, 1e-4, 1e-6, "surface loss");
        assert_close(gpu.accuracy[i], *acc, 0.0, 2.0 / 300.0 + 1e-6, "surface accuracy");
    }
}

#[test]
fn surfaces_larger_than_one_dispatch_dimension_are_complete() {
    let Some(ctx) = gpu() else { return };
    // 260 x 260 = 67600 vectors > 65535 workgroups per dimension: the dispatch folds.
    let m = mlp(&[], Activation::Tanh, 2, 0.0);
    let data = random_dataset(3, 2, 5);
    let (w, d1, d2) = (params(&m, 1, 1.0), params(&m, 2, 1.0), params(&m, 3, 1.0));
    let coords = Grid2d::square(-2.0, 2.0, 260).points();
    let gpu = block_on(ctx.surface(&m, &w, &d1, &d2, &coords, &data)).unwrap();
    let cpu = cpu_surface(&m, &w, &d1, &d2, &coords, &data);
    assert_eq!(gpu.loss.len(), cpu.len());
    for (i, (loss, _)) in cpu.iter().enumerate() {
        assert_close(gpu.loss[i], *loss, 1e-4, 1e-6, &format!("vector {i}"));
    }
}

fn sgd(lr: f64, momentum: f64, dampening: f64, weight_decay: f64, nesterov: bool) -> OptimizerConfig {
    OptimizerConfig::Sgd { lr, momentum, dampening, weight_decay, nesterov }
}

/// Five replicas with different seeds, inits and hyperparameters; with `sam`
/// some use SAM (and one ASAM) and the rest plain SGD, in the same trainer.
fn replicas(m: &Mlp, sam: bool) -> Vec<Replica> {
    let sides = [
        (sgd(0.1, 0.9, 0.0, 0.0, false), Schedule::Constant, Some(0.1)),
        (sgd(0.05, 0.0, 0.0, 0.0, false), Schedule::Step { step_size: 30, gamma: 0.5 }, None),
        (sgd(0.2, 0.5, 0.1, 1e-3, false), Schedule::Cosine { t_max: 80, eta_min: 0.01 }, Some(0.05)),
        (sgd(0.1, 0.9, 0.0, 1e-4, true), Schedule::Warmup { steps: 20, start_factor: 0.2 }, Some(0.2)),
        (sgd(0.3, 0.8, 0.0, 0.0, false), Schedule::Constant, Some(0.5)),
    ];
    sides
        .into_iter()
        .enumerate()
        .map(|(i, (optimizer, schedule, rho))| {
            let sam = if sam { rho.map(|rho| SamConfig { rho, adaptive: i == 4 }) } else { None };
            Replica {
                side: SideConfig { optimizer, sam, schedule, ..Default::default() },
                init: params(m, 100 + i as u64, 1.0),
                seed: 7 + i as u64,
            }
        })
        .collect()
}

fn check_training(hidden: &[usize], activation: Activation, dataset: DatasetKind, classes: usize, sam: bool) {
    let Some(ctx) = gpu() else { return };
    let m = mlp(hidden, activation, classes, if classes > 2 { 0.1 } else { 0.0 });
    // 100 points in batches of 32: every epoch ends with a short batch of 4.
    let data = DataConfig { dataset, n_train: 100, n_test: 50, classes, ..Default::default() };
    let splits: Arc<Splits> = Arc::new(make_splits(&data, &ShiftConfig::default(), 11));
    let training = TrainingConfig { batch_size: 32, steps: 100, log_every: 1000, ..Default::default() };
    let reps = replicas(&m, sam);
    let mut trainer = ReplicaTrainer::new(ctx, &m, &splits.train, training.batch_size, &reps).unwrap();
    // 7 steps per submission: the checkpoints below cut chunks at uneven places.
    trainer.set_chunk_steps(7);
    let mut runs: Vec<Run> = reps
        .iter()
        .map(|r| Run::new(r.side.clone(), m.clone(), splits.clone(), r.init.clone(), &training, r.seed))
        .collect();
    let what = format!("{activation:?} {hidden:?} sam={sam}");
    let mut worst: f64 = 0.0;
    // Checkpoints at uneven step counts: the plan is uploaded chunk by chunk.
    for steps in [1, 24, 50, 25] {
        block_on(trainer.train(steps)).unwrap();
        runs.iter_mut().for_each(|run| run.train(steps));
        let metrics = block_on(trainer.metrics()).unwrap();
        for (i, run) in runs.iter_mut().enumerate() {
            assert!(run.diverged.is_none(), "{what}: CPU replica {i} diverged");
            let cpu = run.evaluate();
            worst = worst.max(assert_close(metrics.loss[i], cpu.train_loss, 3e-4, 1e-6, &what));
            assert_close(metrics.accuracy[i], cpu.train_acc, 0.0, 2.0 / 100.0 + 1e-6, &what);
        }
    }
    assert_eq!(trainer.steps(), 100);
    let params = block_on(trainer.params()).unwrap();
    let mut worst_param: f64 = 0.0;
    for (i, run) in runs.iter().enumerate() {
        for (g, c) in params[i].iter().zip(&run.params) {
            let err = (g - c).abs() / (1.0 + c.abs());
            assert!(err <= 3e-4, "{what}: replica {i} parameter {g} vs {c}");
            worst_param = worst_param.max(err);
        }
    }
    let ood = block_on(trainer.evaluate(&splits.ood_test)).unwrap();
    for (i, run) in runs.iter_mut().enumerate() {
        assert_close(ood.loss[i], run.evaluate().ood_loss, 3e-4, 1e-6, "ood loss");
    }
    eprintln!("{what}: worst over 100 steps: loss {worst:e} relative, parameter {worst_param:e}");
}

#[test]
fn sgd_replicas_follow_cpu_runs_for_100_steps() {
    check_training(&[16, 16], Activation::Tanh, DatasetKind::Moons, 2, false);
    check_training(&[8], Activation::Relu, DatasetKind::Blobs, 3, false);
    check_training(&[6, 5, 4], Activation::Gelu, DatasetKind::Circles, 2, false);
    check_training(&[], Activation::Sigmoid, DatasetKind::Blobs, 4, false);
}

#[test]
fn sam_replicas_follow_cpu_runs_for_100_steps() {
    check_training(&[16, 16], Activation::Tanh, DatasetKind::Moons, 2, true);
    check_training(&[8], Activation::Relu, DatasetKind::Blobs, 3, true);
    check_training(&[6, 5, 4], Activation::Gelu, DatasetKind::Circles, 2, true);
    check_training(&[3, 4, 3, 2, 3, 2], Activation::Sigmoid, DatasetKind::Xor, 2, true);
}

/// One trainer over two training sets (a grid study's data draws, `on_sets`)
/// gives every replica the bits of a trainer over its set alone: the sets'
/// rows are only renumbered. Sets of 100 and 70 points (short last batches at
/// different steps), SGD and SAM replicas, steps cut into uneven chunks.
#[test]
fn replicas_on_several_training_sets_train_as_on_their_own() {
    let Some(ctx) = gpu() else { return };
    let m = mlp(&[8, 8], Activation::Tanh, 2, 0.0);
    let set = |n_train, seed| {
        let data = DataConfig { dataset: DatasetKind::Moons, n_train, n_test: 10, ..Default::default() };
        make_splits(&data, &ShiftConfig::default(), seed).train
    };
    let (a, b) = (set(100, 3), set(70, 4));
    // The same replicas on both sets: only the data differ.
    let (ra, rb) = (replicas(&m, true), replicas(&m, true));
    let trained = |sets: &[(&Dataset, &[Replica])]| {
        let mut trainer = ReplicaTrainer::on_sets(ctx, &m, sets, 32).unwrap();
        trainer.set_chunk_steps(13);
        block_on(trainer.train(60)).unwrap();
        block_on(trainer.params()).unwrap()
    };
    let together = trained(&[(&a, &ra), (&b, &rb)]);
    let alone = [trained(&[(&a, &ra)]), trained(&[(&b, &rb)])].concat();
    assert_eq!(together.len(), ra.len() + rb.len());
    assert_eq!(together, alone, "the same bits on several sets as on each alone");
    assert_ne!(together[0], together[ra.len()], "the sets' replicas differ");
    // Metrics over several sets would mean nothing: refused, with the way out.
    let trainer = ReplicaTrainer::on_sets(ctx, &m, &[(&a, &ra), (&b, &rb)], 32).unwrap();
    let err = block_on(trainer.metrics()).err();
    assert!(matches!(&err, Some(GpuError::Unsupported(m)) if m.contains("2 training sets")), "{err:?}");
    // Sets that give batches of different sizes cannot share the batch plan, in either order.
    let small = set(20, 5);
    for sets in [[(&a, &ra[..]), (&small, &rb[..])], [(&small, &rb[..]), (&a, &ra[..])]] {
        let err = ReplicaTrainer::on_sets(ctx, &m, &sets, 32).err();
        assert!(matches!(&err, Some(GpuError::Unsupported(m)) if m.contains("batches of different sizes")), "{err:?}");
    }
}

#[test]
fn unsupported_work_is_refused_with_a_reason() {
    let Some(ctx) = gpu() else { return };
    let wide = mlp(&[65], Activation::Tanh, 2, 0.0);
    let p = vec![0.0; wide.num_params()];
    let err = block_on(ctx.boundary_grid(&[GpuModel { mlp: &wide, params: &p }], &Grid2d::square(0.0, 1.0, 4)));
    assert!(matches!(err, Err(GpuError::Unsupported(_))), "{err:?}");
    let m = mlp(&[4], Activation::Tanh, 2, 0.0);
    let adam = Replica {
        side: SideConfig {
            optimizer: OptimizerConfig::with_kind("adam", 0.01).unwrap(),
            sam: None,
            schedule: Schedule::Constant,
            ..Default::default()
        },
        init: params(&m, 0, 1.0),
        seed: 0,
    };
    let err = ReplicaTrainer::new(ctx, &m, &random_dataset(10, 2, 0), 4, &[adam]).err();
    assert!(matches!(&err, Some(GpuError::Unsupported(m)) if m.contains("Adam")), "{err:?}");
    ctx.check().expect("refusals leave the device usable");
}
