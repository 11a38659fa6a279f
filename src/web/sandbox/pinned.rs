//! What a run can carry besides its settings: initial weights, training
//! points and OOD test points pinned from outside (an imported run record, or
//! points a student placed by hand), and the numbers the worker writes a run record from
//! (`flatminima train --out`'s JSON; the worker assembles it, so that the page's
//! module needs no serialiser for it: tests/e2e/export.test.mjs checks the page's
//! record against one the CLI wrote).
//!
//! Pins outlive settings changes: a student who imported a run or drew their own
//! data can change the learning rate and keep the data. Initial weights are kept
//! only while the network's shape fits them. `clearPinned` drops both.

use wasm_bindgen::prelude::*;

use crate::config::RunConfig;
use crate::data::Dataset;
use crate::error::ConfigError;
use crate::metrics::MetricPoint;
use crate::model::Mlp;

use super::Sandbox;

/// Initial parameters, training points and OOD test points that replace the generated ones.
#[derive(Clone, Debug, Default)]
pub struct Pins {
    init: Option<Vec<f64>>,
    train: Option<Dataset>,
    ood: Option<Dataset>,
}

impl Pins {
    /// `config` with the pins applied where they fit; a pin that does not fit is
    /// left out and reported in `errors`.
    pub fn apply(&self, mut config: RunConfig, errors: &mut Vec<ConfigError>) -> RunConfig {
        if let Some(init) = &self.init {
            let n = Mlp::new(2, &config.model, config.classes()).num_params();
            if init.len() == n {
                config.init = Some(init.clone());
            } else {
                errors.push(ConfigError::new(
                    "init",
                    format!(
                        "the pinned initial weights ({}) do not fit this network ({n}); drawn from the seed",
                        init.len()
                    ),
                ));
            }
        }
        if let Some(train) = &self.train {
            let mut pinned = config.clone();
            pinned.train_points = Some(Dataset { classes: config.classes(), ..train.clone() });
            // A few points of one's own are fewer than a batch: train on all of them at once.
            let n = train.len().max(1);
            if pinned.training.batch_size > n {
                errors.push(ConfigError::new(
                    "batch-size",
                    format!("{} is more than the {n} training points; batches of {n}", pinned.training.batch_size),
                ));
                pinned.training.batch_size = n;
            }
            for side in [&mut pinned.left, &mut pinned.right] {
                if side.batch_size.is_some_and(|b| b > n) {
                    side.batch_size = Some(n);
                }
            }
            match pinned.validate() {
                Ok(()) => config = pinned,
                Err(e) => errors.push(ConfigError::new("train_points", format!("{e}; the generated points are used"))),
            }
        }
        if let Some(ood) = &self.ood {
            let mut pinned = config.clone();
            pinned.ood_points = Some(Dataset { classes: config.classes(), ..ood.clone() });
            match pinned.validate() {
                Ok(()) => config = pinned,
                Err(e) => errors.push(ConfigError::new("ood_points", format!("{e}; the shifted set is used"))),
            }
        }
        config
    }
}

#[wasm_bindgen]
impl Sandbox {
    /// Restarts both runs from `settings_query` with pinned initial weights
    /// (`init`, empty: drawn from the seed), training points (`points` as x, y
    /// pairs and their `labels`; empty: generated) and OOD test points
    /// (`ood_points`, `ood_labels`; empty: the shifted set), as the element's
    /// settings revision `revision`. Returns the problems as "setting: message"
    /// lines ("" when all fitted).
    #[wasm_bindgen(js_name = loadPinned)]
    // Flat typed arrays cross the wasm boundary without a (de)serialiser in the module.
    #[allow(clippy::too_many_arguments)]
    pub fn load_pinned(
        &mut self,
        settings_query: &str,
        init: &[f64],
        points: &[f64],
        labels: &[u32],
        ood_points: &[f64],
        ood_labels: &[u32],
        revision: u32,
    ) -> String {
        let mut problems = Vec::new();
        let mut dataset = |name: &str, points: &[f64], labels: &[u32]| {
            if points.len() != 2 * labels.len() {
                problems.push(format!("{name}: {} coordinates for {} labels", points.len(), labels.len()));
                return None;
            }
            (!labels.is_empty()).then(|| Dataset {
                points: points.chunks_exact(2).map(|p| [p[0], p[1]]).collect(),
                labels: labels.iter().map(|&l| l as usize).collect(),
                classes: 0, // set from the config by `Pins::apply`
            })
        };
        let train = dataset("train_points", points, labels);
        let ood = dataset("ood_points", ood_points, ood_labels);
        self.pins = Pins { init: (!init.is_empty()).then(|| init.to_vec()), train, ood };
        let (config, mut errors) = super::parse_settings(settings_query);
        let config = self.pins.apply(config, &mut errors);
        problems.extend(errors.iter().map(|e| e.to_string()));
        self.errors = errors;
        self.rebuild(config, revision);
        problems.join("\n")
    }

    /// Drops the pinned weights and points; the runs restart from the settings
    /// alone, as the element's settings revision `revision`.
    #[wasm_bindgen(js_name = clearPinned)]
    pub fn clear_pinned(&mut self, revision: u32) {
        self.pins = Pins::default();
        let mut config = self.pair().config.clone();
        (config.init, config.train_points, config.ood_points) = (None, None, None);
        self.rebuild(config, revision);
    }

    /// What is pinned now: `[training points pinned (0: none), initial weights
    /// pinned (0/1), OOD test points pinned (0: none)]`.
    #[wasm_bindgen(js_name = pinned)]
    pub fn pinned(&self) -> Vec<u32> {
        let config = &self.pair().config;
        let count = |d: &Option<Dataset>| d.as_ref().map_or(0, |d| d.len() as u32);
        vec![count(&config.train_points), u32::from(config.init.is_some()), count(&config.ood_points)]
    }

    /// The parameters both sides started from (the run record's `initial_params`).
    #[wasm_bindgen(js_name = initialParams)]
    pub fn initial_params(&self) -> Vec<f64> {
        self.pair().initial_params.clone()
    }

    /// Side `side`'s parameters now (0 = left; the run record's `final_params`).
    #[wasm_bindgen(js_name = sideParams)]
    pub fn side_params(&self, side: u32) -> Vec<f64> {
        self.side(side).params.clone()
    }

    /// Side `side`'s logged metrics, [`METRIC_FIELDS`] numbers per point, oldest first.
    #[wasm_bindgen(js_name = sideHistory)]
    pub fn side_history(&self, side: u32) -> Vec<f64> {
        let run = self.side(side);
        run.history.points.iter().flat_map(metric_numbers).collect()
    }

    /// Side `side`'s metrics at its current parameters ([`METRIC_FIELDS`]
    /// numbers), or none when they are not finite (a diverged run).
    #[wasm_bindgen(js_name = sideFinalMetrics)]
    pub fn side_final_metrics(&self, side: u32) -> Vec<f64> {
        finite_numbers(self.side(side).clone().evaluate())
    }

    /// Side `side`'s weight average (SWA / EMA) as `[n_averaged, params...]`,
    /// or none when the side keeps no average or it has no weights yet.
    #[wasm_bindgen(js_name = sideAverage)]
    pub fn side_average(&self, side: u32) -> Vec<f64> {
        let run = self.side(side);
        let Some((a, params)) = run.average.as_ref().and_then(|a| Some((a, a.solution()?))) else { return Vec::new() };
        std::iter::once(a.n_averaged as f64).chain(params.iter().copied()).collect()
    }

    /// The name of side `side`'s weight average ("SWA", "EMA"), or "" when it keeps none.
    #[wasm_bindgen(js_name = sideAverageKind)]
    pub fn side_average_kind(&self, side: u32) -> String {
        let run = self.side(side);
        run.average.as_ref().map_or(String::new(), |a| a.config.name().to_string())
    }

    /// Side `side`'s metrics at its weight average ([`METRIC_FIELDS`] numbers), or
    /// none when there is no average or its metrics are not finite.
    #[wasm_bindgen(js_name = sideAverageMetrics)]
    pub fn side_average_metrics(&self, side: u32) -> Vec<f64> {
        let run = self.side(side);
        let Some(params) = run.average.as_ref().and_then(|a| a.solution()) else { return Vec::new() };
        finite_numbers(run.clone().evaluate_params(params))
    }

    /// The points of a data set (0 train, 1 in-distribution test, 2 OOD test) as x, y pairs.
    #[wasm_bindgen(js_name = splitPoints)]
    pub fn split_points(&self, split: u32) -> Vec<f64> {
        self.split(split).points.iter().flatten().copied().collect()
    }

    /// The labels of a data set (0 train, 1 in-distribution test, 2 OOD test).
    #[wasm_bindgen(js_name = splitLabels)]
    pub fn split_labels(&self, split: u32) -> Vec<u32> {
        self.split(split).labels.iter().map(|&l| l as u32).collect()
    }
}

/// The order of a metric point's numbers in `sideHistory` and `sideFinalMetrics`
/// (the fields of `MetricPoint`, as a run record names them).
const METRIC_FIELDS: [&str; 9] =
    ["step", "lr", "train_loss", "train_acc", "id_loss", "id_acc", "ood_loss", "ood_acc", "grad_norm"];

/// The names of the numbers of one metric point in `sideHistory` and `sideFinalMetrics`.
#[wasm_bindgen(js_name = metricFields)]
pub fn metric_fields() -> Vec<String> {
    METRIC_FIELDS.iter().map(|s| s.to_string()).collect()
}

/// `p`'s numbers, or none when they are not finite (a run record writes `null` then).
fn finite_numbers(p: MetricPoint) -> Vec<f64> {
    if p.is_finite() {
        metric_numbers(&p).to_vec()
    } else {
        Vec::new()
    }
}

fn metric_numbers(p: &MetricPoint) -> [f64; 9] {
    [p.step as f64, p.lr, p.train_loss, p.train_acc, p.id_loss, p.id_acc, p.ood_loss, p.ood_acc, p.grad_norm]
}

impl Sandbox {
    /// Side `side`'s run (0 = left, anything else the right).
    fn side(&self, side: u32) -> &crate::train::Run {
        self.pair().sides()[(side as usize).min(1)]
    }

    fn split(&self, split: u32) -> &Dataset {
        let s = &self.pair().splits;
        match split {
            0 => &s.train,
            1 => &s.id_test,
            _ => &s.ood_test,
        }
    }
}
