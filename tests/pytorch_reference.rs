//! Our model, loss, backprop, optimisers and SAM against PyTorch, step by step.
//!
//! tests/data/torch_reference.json was written by scripts/torch_reference.py with
//! torch (float64): each case gives an initial flat parameter vector, 12 training
//! points, an optimiser (maybe SAM/ASAM as in davda54/sam) and the parameters
//! after each of 5 full-batch steps. We replay the case and compare.

use flatminima::activation::Activation;
use flatminima::config::{RunConfig, SideConfig, TrainingConfig};
use flatminima::data::{DataConfig, Dataset, DatasetKind};
use flatminima::model::ModelConfig;
use flatminima::optim::OptimizerConfig;
use flatminima::pair::Pair;
use flatminima::sam::SamConfig;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    torch_version: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    activation: Activation,
    hidden: Vec<usize>,
    classes: usize,
    #[serde(default)]
    label_smoothing: f64,
    optimizer: OptimizerConfig,
    sam: Option<SamConfig>,
    init: Vec<f64>,
    points: Vec<[f64; 2]>,
    labels: Vec<usize>,
    trajectory: Vec<Vec<f64>>,
}

#[test]
fn every_case_follows_pytorch_step_by_step() {
    let reference: Reference = serde_json::from_str(include_str!("data/torch_reference.json")).unwrap();
    assert!(reference.cases.len() >= 13, "torch {}", reference.torch_version);
    for case in reference.cases {
        let n = case.points.len();
        let side = SideConfig { optimizer: case.optimizer.clone(), sam: case.sam.clone(), ..Default::default() };
        let config = RunConfig {
            data: DataConfig { dataset: DatasetKind::Blobs, classes: case.classes, ..Default::default() },
            model: ModelConfig {
                hidden: case.hidden.clone(),
                activation: case.activation,
                label_smoothing: case.label_smoothing,
                dropout: vec![],
            },
            training: TrainingConfig {
                batch_size: n,
                steps: case.trajectory.len(),
                log_every: 1,
                ..Default::default()
            },
            init: Some(case.init.clone()),
            train_points: Some(Dataset {
                points: case.points.clone(),
                labels: case.labels.clone(),
                classes: case.classes,
            }),
            left: side.clone(),
            right: side,
            ..Default::default()
        };
        let mut pair = Pair::new(config).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        for (step, expected) in case.trajectory.iter().enumerate() {
            pair.left.step();
            let worst =
                pair.left.params.iter().zip(expected).map(|(a, b)| (a - b).abs() / (1.0 + b.abs())).fold(0.0, f64::max);
            assert!(worst < 1e-10, "{} step {}: differs from torch by {worst:e}", case.name, step + 1);
        }
    }
}
