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

/// Trains `run` for `steps` steps through `Run::step_piece`, cycling through
/// piece sizes (in rows of the batch) that do not divide it.
fn train_in_pieces(run: &mut flatminima::train::Run, steps: usize, sizes: &[usize]) {
    let mut k = 0;
    for _ in 0..steps {
        loop {
            let size = sizes[k % sizes.len()];
            k += 1;
            if run.step_piece(size) {
                break;
            }
            assert!(run.step_under_way(), "a step that is not complete is under way");
        }
        assert!(!run.step_under_way());
    }
}

#[test]
fn a_step_worked_in_pieces_of_rows_is_bit_identical_to_one_step() {
    // The page splits a big batch into pieces of rows; the sums of the gradient
    // and of the loss must still add their terms in the order of one call.
    let mut config = RunConfig::default();
    config.model.hidden = vec![12, 9];
    config.training.batch_size = 61;
    config.training.log_every = 3;
    let mut whole = Pair::new(config.clone()).unwrap();
    let mut pieces = Pair::new(config).unwrap();
    whole.train(40);
    train_in_pieces(&mut pieces.left, 40, &[1, 7, 60, 3, 61, 1000]);
    train_in_pieces(&mut pieces.right, 40, &[5, 2, 17]);
    assert!(whole.right.side.sam.is_some(), "the right side is SAM (two gradients a step)");
    for (a, b) in whole.sides().iter().zip(pieces.sides()) {
        let bits = |p: &[f64]| p.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a.params), bits(&b.params), "{}", a.side.label());
        assert_eq!(a.last_batch_loss.to_bits(), b.last_batch_loss.to_bits());
        assert_eq!(a.last_grad_norm.to_bits(), b.last_grad_norm.to_bits());
        assert_eq!(a.history.points, b.history.points);
        assert_eq!(bits(&a.epsilon), bits(&b.epsilon));
    }
}

#[test]
fn a_run_diverging_in_pieces_stops_at_the_same_step() {
    let mut config = RunConfig::default();
    config.left.optimizer.set_lr(100.0);
    let mut whole = Pair::new(config.clone()).unwrap();
    let mut pieces = Pair::new(config).unwrap();
    whole.left.train(300);
    train_in_pieces(&mut pieces.left, 300, &[3, 11]);
    let (a, b) =
        (whole.left.diverged.as_ref().unwrap(), pieces.left.diverged.as_ref().expect("diverges in pieces too"));
    assert_eq!((a.step, &a.reason), (b.step, &b.reason));
    assert!(pieces.left.step_piece(5), "a diverged run has nothing to do");
}

#[test]
fn metrics_evaluated_in_pieces_are_bit_identical_to_evaluate() {
    // Sets whose sizes are not multiples of the evaluation chunk (256 rows).
    let mut config = RunConfig::default();
    config.data.n_train = 700;
    config.data.n_test = 300;
    let mut pair = Pair::new(config).unwrap();
    pair.train(7);
    for min_rows in [1, 256, 300, 1000, 5000] {
        let mut eval = flatminima::train::Evaluation::default();
        let mut pieces = 0;
        let point = loop {
            pieces += 1;
            if let Some(p) = pair.right.evaluate_piece(&mut eval, min_rows) {
                break p;
            }
        };
        assert_eq!(point, pair.right.evaluate(), "pieces of at least {min_rows} rows");
        assert!(min_rows >= 1300 || pieces > 1, "{min_rows} rows a piece should take several pieces");
        let bits = [point.train_loss, point.id_loss, point.ood_loss].map(f64::to_bits);
        let whole = pair.right.evaluate();
        assert_eq!(bits, [whole.train_loss, whole.id_loss, whole.ood_loss].map(f64::to_bits));
    }
    // Begun at one step, finished at another: it starts again at the new step.
    let mut eval = flatminima::train::Evaluation::default();
    assert!(pair.left.evaluate_piece(&mut eval, 1).is_none());
    pair.left.train(1);
    let point = std::iter::repeat_with(|| pair.left.evaluate_piece(&mut eval, 256)).flatten().next().unwrap();
    assert_eq!(point, pair.left.evaluate());
}
