//! Dropout and weight averaging against PyTorch (float64).
//!
//! tests/data/torch_knobs.json was written by scripts/torch_knobs_reference.py with
//! torch: for dropout, torch's own inverted-dropout masks (`F.dropout` in training
//! mode after each hidden activation), the loss and gradient of one batch through
//! them, one SGD step and one SAM step (davda54/sam, the same mask for both
//! gradients); for averaging, `torch.optim.swa_utils.AveragedModel` (SWA, and EMA
//! with `get_ema_multi_avg_fn`) over an SGD-with-momentum trajectory. tests/knobs.rs
//! checks that a run takes exactly these steps with the masks it draws; here the
//! steps themselves are checked against torch.

use flatminima::activation::Activation;
use flatminima::averaging::Averaging;
use flatminima::config::{RunConfig, SideConfig, TrainingConfig};
use flatminima::data::{DataConfig, Dataset, DatasetKind};
use flatminima::model::{Mlp, ModelConfig, Workspace};
use flatminima::optim::{Optimizer, OptimizerConfig};
use flatminima::pair::Pair;
use flatminima::sam::{ascent_direction, SamConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    torch_version: String,
    dropout: Vec<DropoutCase>,
    averaging: Vec<AveragingCase>,
}

#[derive(Deserialize)]
struct DropoutCase {
    name: String,
    activation: Activation,
    hidden: Vec<usize>,
    dropout: Vec<f64>,
    lr: f64,
    rho: f64,
    init: Vec<f64>,
    points: Vec<[f64; 2]>,
    labels: Vec<usize>,
    masks: Vec<Vec<f64>>,
    loss: f64,
    grad: Vec<f64>,
    after_sgd: Vec<f64>,
    after_sam: Vec<f64>,
}

#[derive(Deserialize)]
struct AveragingCase {
    name: String,
    activation: Activation,
    hidden: Vec<usize>,
    steps: usize,
    average: Averaging,
    init: Vec<f64>,
    points: Vec<[f64; 2]>,
    labels: Vec<usize>,
    n_averaged: u64,
    averaged: Vec<f64>,
    #[serde(rename = "final")]
    final_params: Vec<f64>,
}

fn reference() -> Reference {
    serde_json::from_str(include_str!("data/torch_knobs.json")).unwrap()
}

/// The largest difference relative to 1 + |torch's value|.
fn worst(ours: &[f64], torch: &[f64]) -> f64 {
    assert_eq!(ours.len(), torch.len());
    ours.iter().zip(torch).map(|(a, b)| (a - b).abs() / (1.0 + b.abs())).fold(0.0, f64::max)
}

fn sgd(lr: f64) -> OptimizerConfig {
    OptimizerConfig::Sgd { lr, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false }
}

#[test]
fn dropout_with_torchs_masks_gives_torchs_loss_gradient_sgd_and_sam_steps() {
    let reference = reference();
    assert_eq!(reference.dropout.len(), 3, "torch {}", reference.torch_version);
    for case in &reference.dropout {
        let config = ModelConfig {
            hidden: case.hidden.clone(),
            activation: case.activation,
            label_smoothing: 0.0,
            dropout: case.dropout.clone(),
        };
        let mlp = Mlp::new(2, &config, 3);
        assert_eq!(mlp.num_params(), case.init.len(), "{}", case.name);
        let x: Vec<f64> = case.points.iter().flatten().copied().collect();
        // torch's masks hold only 0 and 1 / (1 - p): the inverted dropout our masks use.
        for (mask, &p) in case.masks.iter().zip(&case.dropout) {
            assert!(mask.iter().all(|&m| m == 0.0 || (m - 1.0 / (1.0 - p)).abs() < 1e-15), "{}", case.name);
        }
        let mut ws = Workspace::new();
        let mut g = vec![0.0; case.init.len()];
        let loss = mlp.loss_and_grad_dropout(&case.init, &x, &case.labels, &case.masks, &mut g, &mut ws);
        assert!(
            (loss - case.loss).abs() < 1e-13 * (1.0 + case.loss),
            "{}: loss {loss} vs torch {}",
            case.name,
            case.loss
        );
        let d = worst(&g, &case.grad);
        assert!(d < 1e-12, "{}: gradient differs from torch's by {d:e}", case.name);

        let mut after_sgd = case.init.clone();
        Optimizer::new(sgd(case.lr), after_sgd.len()).step(&mut after_sgd, &g, case.lr);
        let d = worst(&after_sgd, &case.after_sgd);
        assert!(d < 1e-12, "{}: SGD step differs from torch's by {d:e}", case.name);

        // SAM: the ascent from the masked gradient, the descent gradient at w + e with the same mask.
        let sam = SamConfig { rho: case.rho, adaptive: false };
        let mut e = vec![0.0; g.len()];
        ascent_direction(&sam, &case.init, &g, &mut e);
        let shifted: Vec<f64> = case.init.iter().zip(&e).map(|(w, e)| w + e).collect();
        let mut g2 = vec![0.0; g.len()];
        mlp.loss_and_grad_dropout(&shifted, &x, &case.labels, &case.masks, &mut g2, &mut ws);
        let mut after_sam = case.init.clone();
        Optimizer::new(sgd(case.lr), after_sam.len()).step(&mut after_sam, &g2, case.lr);
        let d = worst(&after_sam, &case.after_sam);
        assert!(d < 1e-12, "{}: SAM step differs from torch's by {d:e}", case.name);
        assert!(worst(&after_sam, &after_sgd) > 1e-6, "{}: SAM must differ from SGD here", case.name);
    }
}

#[test]
fn swa_and_ema_equal_torchs_averaged_model() {
    let reference = reference();
    assert_eq!(reference.averaging.len(), 3, "torch {}", reference.torch_version);
    for case in &reference.averaging {
        let n = case.points.len();
        let side = SideConfig {
            optimizer: OptimizerConfig::Sgd {
                lr: 0.1,
                momentum: 0.9,
                dampening: 0.0,
                weight_decay: 0.0,
                nesterov: false,
            },
            sam: None,
            average: Some(case.average.clone()),
            ..Default::default()
        };
        let config = RunConfig {
            data: DataConfig { dataset: DatasetKind::Blobs, classes: 3, ..Default::default() },
            model: ModelConfig {
                hidden: case.hidden.clone(),
                activation: case.activation,
                label_smoothing: 0.0,
                dropout: vec![],
            },
            training: TrainingConfig { batch_size: n, steps: case.steps, log_every: 1, ..Default::default() },
            init: Some(case.init.clone()),
            train_points: Some(Dataset { points: case.points.clone(), labels: case.labels.clone(), classes: 3 }),
            left: side.clone(),
            right: side,
            ..Default::default()
        };
        let mut pair = Pair::new(config).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        for _ in 0..case.steps {
            pair.left.step();
        }
        let d = worst(&pair.left.params, &case.final_params);
        assert!(d < 1e-10, "{}: the trajectory differs from torch's by {d:e}", case.name);
        let average = pair.left.average.as_ref().expect("an average is kept");
        assert_eq!(average.n_averaged, case.n_averaged, "{}", case.name);
        let d = worst(average.solution().unwrap(), &case.averaged);
        assert!(d < 1e-10, "{}: the average differs from torch's AveragedModel by {d:e}", case.name);
    }
}
