//! The knobs of issue 12, each checked against its definition: dropout (torch's
//! inverted dropout), weight averaging (torch.optim.swa_utils), optimiser switches,
//! per-side batch sizes and steps, edge-of-stability thresholds, ensembles.
//! The references here are torch's documented formulas, by hand or in a few lines,
//! applied to what a run does (the masks it draws, the steps it averages);
//! tests/pytorch_knobs.rs checks those formulas against torch itself.

use flatminima::dropout::Masks;
use flatminima::model::Workspace;
use flatminima::optim::Optimizer;
use flatminima::pair::Pair;
use flatminima::sam::ascent_direction;
use flatminima::settings::config_from_settings;

fn pair(settings: &[(&str, &str)]) -> Pair {
    let (config, errors) = config_from_settings(settings.iter().copied());
    assert!(errors.is_empty(), "{settings:?}: {errors:?}");
    Pair::new(config).unwrap()
}

#[test]
fn dropout_zero_is_bit_identical_to_no_dropout() {
    let mut plain = pair(&[("steps", "50")]);
    let mut config = plain.config.clone();
    config.model.dropout = vec![0.0, 0.0];
    let mut zero = Pair::new(config).unwrap();
    plain.train(50);
    zero.train(50);
    for (a, b) in plain.sides().iter().zip(zero.sides()) {
        assert_eq!(a.params, b.params);
        assert_eq!(a.history.points, b.history.points);
    }
}

#[test]
fn a_dropout_step_is_sgd_and_sam_with_one_mask_drawn_from_the_seeded_stream() {
    // Full batch (so the batch is known), plain SGD left, SAM right, dropout 0.3 / 0.1.
    let p = pair(&[("dropout", "0.3,0.1"), ("batch-size", "200"), ("momentum", "0"), ("activation", "relu")]);
    let (mlp, w0) = (p.left.mlp.clone(), p.initial_params.clone());
    let train = &p.splits.train;
    let mut masks = Masks::new(&mlp, train.len(), p.config.seed);
    // The batch order shuffles, but a full batch's mean loss does not depend on the order...
    // except through the masks, which follow the rows: rebuild the shuffled order as the run does.
    let mut order = flatminima::train::BatchOrder::new(p.config.seed, train.len(), train.len());
    let rows = order.next_batch().to_vec();
    let x: Vec<f64> = rows.iter().flat_map(|&i| train.points[i]).collect();
    let y: Vec<usize> = rows.iter().map(|&i| train.labels[i]).collect();
    let m = masks.draw(&mlp, rows.len()).to_vec();
    let mut ws = Workspace::new();
    let mut g = vec![0.0; w0.len()];
    mlp.loss_and_grad_dropout(&w0, &x, &y, &m, &mut g, &mut ws);

    let mut left = p.clone();
    left.train(1);
    let mut expected = w0.clone();
    Optimizer::new(p.config.left.optimizer.clone(), w0.len()).step(&mut expected, &g, 0.1);
    assert_eq!(left.left.params, expected, "SGD with the stream's first mask");

    // SAM: e from the masked gradient, then the gradient at w + e with the same mask.
    let sam = p.config.right.sam.clone().unwrap();
    let mut e = vec![0.0; w0.len()];
    ascent_direction(&sam, &w0, &g, &mut e);
    let shifted: Vec<f64> = w0.iter().zip(&e).map(|(w, e)| w + e).collect();
    let mut g2 = vec![0.0; w0.len()];
    mlp.loss_and_grad_dropout(&shifted, &x, &y, &m, &mut g2, &mut ws);
    let mut expected = w0.clone();
    Optimizer::new(p.config.right.optimizer.clone(), w0.len()).step(&mut expected, &g2, 0.1);
    assert_eq!(left.right.params, expected, "SAM's two gradients share the mask");
    assert_ne!(left.left.params, left.right.params);
}

#[test]
fn dropout_is_off_at_evaluation() {
    let mut p = pair(&[("dropout", "0.5"), ("steps", "20")]);
    p.train(20);
    let run = &mut p.left;
    let s = run.splits.clone();
    let mut ws = Workspace::new();
    let (loss, acc) = run.mlp.evaluate(&run.params, s.train.flat_points(), &s.train.labels, &mut ws);
    let point = run.evaluate();
    assert_eq!((point.train_loss, point.train_acc), (loss, acc), "metrics are the undropped network's");
    assert_eq!(run.evaluate(), point, "evaluation draws no masks");
    // Runs with dropout are reproducible.
    let mut again = pair(&[("dropout", "0.5"), ("steps", "20")]);
    again.train(20);
    assert_eq!(again.left.params, p.left.params);
}

fn mean_of(vectors: &[&Vec<f64>]) -> Vec<f64> {
    let mut out = vec![0.0; vectors[0].len()];
    for v in vectors {
        for (o, x) in out.iter_mut().zip(v.iter()) {
            *o += x;
        }
    }
    out.iter().map(|o| o / vectors.len() as f64).collect()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn swa_is_the_mean_of_the_parameters_after_its_steps() {
    let mut p = pair(&[("average", "swa"), ("average-start", "10"), ("average-every", "5"), ("steps", "40")]);
    p.left.record_checkpoints(1, 1000);
    p.train(40);
    let c = &p.left.checkpoints;
    let averaged: Vec<&Vec<f64>> =
        c.steps.iter().zip(&c.params).filter(|(s, _)| **s >= 10 && (**s - 10) % 5 == 0).map(|(_, w)| w).collect();
    assert_eq!(averaged.len(), 7, "steps 10, 15, ..., 40");
    let average = p.left.average.as_ref().unwrap();
    assert_eq!(average.n_averaged, 7);
    let d = max_diff(average.solution().unwrap(), &mean_of(&averaged));
    assert!(d < 1e-14, "SWA differs from the uniform mean by {d}");
    // Training itself is unchanged by keeping an average.
    let mut plain = pair(&[("steps", "40")]);
    plain.train(40);
    assert_eq!(plain.left.params, p.left.params);
    // Its metrics are those of the averaged parameters.
    let expected = p.left.evaluate_params(&average.params.clone());
    assert_eq!(p.left.average_metrics().unwrap(), expected);
    assert_ne!(expected.train_loss, p.left.evaluate().train_loss);
}

#[test]
fn ema_follows_its_recurrence_from_the_first_step() {
    let mut p = pair(&[("average", "ema"), ("ema-decay", "0.9"), ("steps", "30")]);
    p.right.record_checkpoints(1, 1000);
    p.train(30);
    let c = &p.right.checkpoints;
    // torch: optimizer.step(); ema.update_parameters(model): the first update (after step 1) copies.
    let mut expected = c.params[1].clone();
    for w in &c.params[2..] {
        for (e, x) in expected.iter_mut().zip(w) {
            *e = 0.9 * *e + 0.1 * x;
        }
    }
    let average = p.right.average.as_ref().unwrap();
    assert_eq!(average.n_averaged, 30);
    let d = max_diff(&average.params, &expected);
    assert!(d < 1e-14, "EMA differs from decay avg + (1 - decay) w by {d}");
}

#[test]
fn a_switch_to_sam_keeps_the_base_state_and_a_new_base_starts_fresh() {
    use flatminima::optim::OptimizerConfig;
    // SGD with momentum, then SAM over the same SGD from step 15.
    let mut switched = pair(&[("switch-at", "15"), ("right", "plain"), ("steps", "30")]);
    assert_eq!(switched.left.side.label(), "SGD, then SAM(rho=0.2)+SGD from step 15");
    switched.train(30);
    let mut by_hand = pair(&[("right", "plain"), ("steps", "30")]);
    by_hand.left.train(15);
    by_hand.left.sam = switched.config.left.switch.as_ref().unwrap().sam.clone(); // same optimizer object: state kept
    by_hand.left.train(15);
    by_hand.right.train(30);
    assert!(switched.left.params == by_hand.left.params, "SGD then SAM over the same SGD");
    assert!(switched.right.params == by_hand.right.params, "the other side does not switch");
    assert_eq!(switched.left.optimizer.steps, 30, "one optimiser all along");

    // SGD to Adam at step 15: a fresh Adam (empty moments, bias correction from step 1).
    let mut switched = pair(&[("switch-at", "15"), ("switch-to", "adam"), ("lr", "0.01"), ("steps", "30")]);
    switched.train(30);
    let mut by_hand = pair(&[("lr", "0.01"), ("steps", "30")]);
    by_hand.left.train(15);
    let adam = OptimizerConfig::with_kind("adam", 0.01).unwrap();
    by_hand.left.optimizer = Optimizer::new(adam, by_hand.left.params.len());
    by_hand.left.train(15);
    assert!(switched.left.params == by_hand.left.params, "SGD then a fresh Adam");
    assert_eq!(switched.left.optimizer.steps, 15);
    assert_eq!(switched.left.optimizer.config.kind(), "adam");
}

#[test]
fn per_side_batch_sizes_train_the_budgeted_steps_at_the_scaled_lr() {
    // 200 points; the reference batch of 32 makes 7 steps an epoch, so 70 steps are 10 epochs.
    let base = [("steps", "70"), ("right-batch-size", "200"), ("left-batch-size", "4")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut s = base.to_vec();
        s.extend_from_slice(extra);
        pair(&s)
    };
    let p = with(&[]);
    assert_eq!((p.left.steps_budget, p.right.steps_budget), (70, 70), "same steps");
    assert_eq!((p.left.current_lr(), p.right.current_lr()), (0.1, 0.1));
    // Same epochs: 10 epochs of 50 batches of 4 and of 1 batch of 200.
    let mut p = with(&[("budget", "same_epochs")]);
    assert_eq!((p.left.steps_budget, p.right.steps_budget), (500, 10));
    p.train_to_budget();
    assert_eq!((p.left.step, p.right.step), (500, 10));
    // Goyal et al.: lr x b / 32.
    let p = with(&[("budget", "same_epochs"), ("lr-scaling", "linear")]);
    assert!((p.left.current_lr() - 0.1 * 4.0 / 32.0).abs() < 1e-15);
    assert!((p.right.current_lr() - 0.1 * 200.0 / 32.0).abs() < 1e-15);
    // A side's own steps win over the budget; a full batch is the same every step (no shuffle effect).
    let mut p = with(&[("right-steps", "3"), ("budget", "same_epochs")]);
    assert_eq!(p.right.steps_budget, 3);
    p.right.train(1);
    let first = p.right.last_batch_loss;
    let mut check = pair(&[("batch-size", "200")]);
    check.right.train(1);
    assert_eq!(first, check.right.last_batch_loss, "batch 200 of 200 points is the full batch");
}

#[test]
fn adams_preconditioner_is_the_one_its_step_divides_by() {
    use flatminima::optim::OptimizerConfig;
    // Cohen et al. 2022: Adam's step is lr P^-1 m, m the (uncorrected) first moment.
    let adam = OptimizerConfig::Adam { lr: 0.01, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0 };
    let mut opt = Optimizer::new(adam, 3);
    let mut w = [0.5, -1.0, 2.0];
    let mut m = [0.0; 3];
    for g in [[0.3, -2.0, 1e-3], [0.1, 0.5, -0.2], [-0.4, 1.0, 0.0]] {
        let before = w;
        opt.step(&mut w, &g, 0.01);
        let p = opt.preconditioner().unwrap();
        for i in 0..3 {
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            let expected = before[i] - 0.01 * m[i] / p[i];
            assert!((w[i] - expected).abs() < 1e-15, "{} vs {expected}", w[i]);
        }
    }
    assert!(Optimizer::new(OptimizerConfig::sgd_momentum(0.1), 3).preconditioner().is_none());
}
