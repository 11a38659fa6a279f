//! Whole-run properties of the core: SAM by hand, rho = 0, determinism, divergence.

use flatminima::config::{RunConfig, SideConfig};
use flatminima::data::Dataset;
use flatminima::model::ModelConfig;
use flatminima::optim::OptimizerConfig;
use flatminima::pair::Pair;
use flatminima::sam::SamConfig;
use flatminima::schedule::Schedule;

fn plain_sgd(lr: f64) -> SideConfig {
    SideConfig {
        optimizer: OptimizerConfig::Sgd { lr, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false },
        sam: None,
        schedule: Schedule::Constant,
        ..Default::default()
    }
}

/// A linear 2-class model (no hidden layer), zero init, one training point x = (1, 0), y = 0.
fn one_point_config(right: SideConfig) -> RunConfig {
    RunConfig {
        model: ModelConfig { hidden: vec![], ..Default::default() },
        init: Some(vec![0.0; 6]),
        train_points: Some(Dataset { points: vec![[1.0, 0.0]], labels: vec![0], classes: 2 }),
        training: flatminima::config::TrainingConfig { batch_size: 1, steps: 1, log_every: 1, ..Default::default() },
        left: plain_sgd(1.0),
        right,
        ..Default::default()
    }
}

#[test]
fn sam_step_matches_a_hand_computed_example() {
    // At w = 0: logits (0, 0), p = (1/2, 1/2), dL/dlogits = (-1/2, 1/2).
    // Flat layout [W00, W01, W10, W11, b0, b1]: g = (-1/2, 0, 1/2, 0, -1/2, 1/2), ||g|| = 1.
    // SAM rho = 0.1: e = 0.1 g, so at w + e the logits are (-0.1, 0.1) and
    // p0 = 1 / (1 + e^0.2); g' = (p0 - 1) * (1, 0, -1, 0, 1, -1). SGD lr 1: w = -g'.
    let mut sam_side = plain_sgd(1.0);
    sam_side.sam = Some(SamConfig { rho: 0.1, adaptive: false });
    let mut pair = Pair::new(one_point_config(sam_side)).unwrap();
    pair.train(1);
    let sgd_expected = [0.5, 0.0, -0.5, 0.0, 0.5, -0.5];
    for (a, b) in pair.left.params.iter().zip(sgd_expected) {
        assert!((a - b).abs() < 1e-15, "SGD side {:?}", pair.left.params);
    }
    let p0 = 1.0 / (1.0 + 0.2f64.exp());
    let q = 1.0 - p0;
    let sam_expected = [q, 0.0, -q, 0.0, q, -q];
    for (a, b) in pair.right.params.iter().zip(sam_expected) {
        assert!((a - b).abs() < 1e-12, "SAM side {:?} vs {sam_expected:?}", pair.right.params);
    }
    // SAM's ascent step is recorded: e = 0.1 g
    assert!((pair.right.epsilon[0] + 0.05).abs() < 1e-12);
}

#[test]
fn sam_with_rho_zero_is_exactly_the_base_optimiser() {
    for base in ["sgd", "adam", "adamw", "rmsprop"] {
        let mut config = RunConfig::default();
        config.training.steps = 150;
        config.left.optimizer = OptimizerConfig::with_kind(base, 0.01).unwrap();
        config.right = config.left.clone();
        config.right.sam = Some(SamConfig { rho: 0.0, adaptive: false });
        let mut pair = Pair::new(config.clone()).unwrap();
        pair.train(150);
        assert_eq!(pair.left.params, pair.right.params, "{base}: rho = 0 changed the trajectory");
        assert_eq!(pair.left.history.points, pair.right.history.points);
        // and adaptive SAM with rho = 0 too
        config.right.sam = Some(SamConfig { rho: 0.0, adaptive: true });
        let mut pair = Pair::new(config).unwrap();
        pair.train(150);
        assert_eq!(pair.left.params, pair.right.params, "{base}: ASAM rho = 0 changed the trajectory");
    }
}

#[test]
fn same_seed_gives_identical_runs_and_another_seed_does_not() {
    let config = RunConfig::default();
    let mut a = Pair::new(config.clone()).unwrap();
    let mut b = Pair::new(config.clone()).unwrap();
    a.train(100);
    b.train(100);
    assert_eq!(a.left.params, b.left.params);
    assert_eq!(a.right.params, b.right.params);
    assert_eq!(a.right.history.points, b.right.history.points);
    let mut c = Pair::new(RunConfig { seed: 2, ..config }).unwrap();
    c.train(100);
    assert_ne!(a.left.params, c.left.params);
}

#[test]
fn both_sides_start_from_the_same_point_and_sam_moves_differently() {
    let mut pair = Pair::new(RunConfig::default()).unwrap();
    assert_eq!(pair.left.params, pair.right.params);
    pair.train(200);
    assert_ne!(pair.left.params, pair.right.params);
    for run in pair.sides() {
        let last = run.history.last().unwrap();
        assert!(last.train_loss < 0.6, "{}: train loss {}", run.side.label(), last.train_loss);
        assert!(run.diverged.is_none());
    }
}

#[test]
fn an_absurd_learning_rate_diverges_cleanly() {
    let mut config = RunConfig::default();
    config.left.optimizer.set_lr(100.0);
    let mut pair = Pair::new(config).unwrap();
    pair.train(500);
    let d = pair.left.diverged.as_ref().expect("lr 100 with momentum must diverge");
    assert!(d.step > 0 && d.step <= 500);
    assert!(d.reason.contains("learning rate"), "{}", d.reason);
    assert!(pair.left.history.points.iter().all(|p| p.is_finite()), "no NaN reaches the history");
    let stopped_at = pair.left.step;
    pair.train(10);
    assert_eq!(pair.left.step, stopped_at, "a diverged run stays stopped");
    assert!(pair.right.diverged.is_none(), "the other side is unaffected");
}

#[test]
fn full_batch_is_gradient_descent_on_the_whole_set() {
    let mut config = RunConfig::default();
    config.training.batch_size = config.data.n_train;
    config.left = plain_sgd(0.5);
    let mut pair = Pair::new(config).unwrap();
    let before = pair.left.evaluate().train_loss;
    pair.left.train(1);
    // One GD step with a small enough lr lowers the full training loss.
    assert!(pair.left.evaluate().train_loss < before);
}
