//! The run config: everything that determines a run, as one JSON document.
//!
//! Two runs with equal configs produce bit-identical results on every platform.
//! A config may pin the initial parameters and the exact training points, so a
//! run can be replayed anywhere, including in another framework.

use serde::{Deserialize, Serialize};

use crate::averaging::Averaging;
use crate::data::{make_splits, DataConfig, Dataset, ShiftConfig, Splits};
use crate::error::{check_count, ConfigError};
use crate::model::{Mlp, ModelConfig};
use crate::optim::OptimizerConfig;
use crate::sam::SamConfig;
use crate::schedule::Schedule;
use crate::switch::Switch;

/// Everything that determines a paired run. Missing JSON fields take their
/// defaults; unknown fields are an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Seeds the data, the initial parameters and the batch order.
    pub seed: u64,
    /// Which 2D dataset to generate and how many points.
    pub data: DataConfig,
    /// The distribution shift applied to make the OOD test set.
    pub shift: ShiftConfig,
    /// The MLP's hidden layers, activation and label smoothing.
    pub model: ModelConfig,
    /// Batch size, step count and logging interval, shared by both sides.
    pub training: TrainingConfig,
    /// The two sides of the comparison. They share data, initial parameters
    /// and batch order: only the optimiser differs.
    pub left: SideConfig,
    /// The right-hand side (SAM by default).
    pub right: SideConfig,
    /// Optional: the initial flat parameter vector (PyTorch nn.Linear layout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<Vec<f64>>,
    /// Optional: the exact training points, replacing the generated ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_points: Option<Dataset>,
    /// Optional: the exact OOD test points (a student's own), replacing the
    /// shifted set; the shift then no longer changes the OOD set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ood_points: Option<Dataset>,
}

/// Training settings shared by both sides of the pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// Minibatch size, 1..=n_train (n_train is full-batch gradient descent).
    pub batch_size: usize,
    /// How many optimiser steps the CLI runs (the page runs until paused or this many).
    pub steps: usize,
    /// Evaluate train/ID/OOD metrics every this many steps.
    pub log_every: usize,
    /// How many steps a side with its own batch size trains (see [`Budget`]).
    #[serde(default, skip_serializing_if = "is_default")]
    pub budget: Budget,
    /// Whether a side with its own batch size scales its learning rate (see [`LrScaling`]).
    #[serde(default, skip_serializing_if = "is_default")]
    pub lr_scaling: LrScaling,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            batch_size: 32,
            steps: 3000,
            log_every: 10,
            budget: Budget::SameSteps,
            lr_scaling: LrScaling::None,
        }
    }
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// The training budget of a side whose batch size differs from
/// `training.batch_size` (the large-batch comparisons of Keskar et al. 2017
/// and Hoffer et al. 2017). A side's own `steps` overrides it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// Every side trains `training.steps` steps (a larger batch sees more examples).
    #[default]
    SameSteps,
    /// Every side sees the data as many times: `training.steps` steps of
    /// `training.batch_size` make E = steps / ceil(n / batch_size) epochs, and a
    /// side with batch b trains round(E ceil(n / b)) steps (at least 1).
    SameEpochs,
}

/// Learning-rate scaling of a side whose batch size differs from `training.batch_size`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrScaling {
    /// The configured learning rate, whatever the batch size.
    #[default]
    None,
    /// Goyal et al. 2017's linear scaling rule: lr x b / training.batch_size
    /// (the base optimiser's lr, and a switch's).
    Linear,
}

/// What a side actually trains with, after its own batch size, the budget and
/// the learning-rate scaling: see [`RunConfig::plan`].
#[derive(Clone, Debug, PartialEq)]
pub struct SidePlan {
    /// The side's config with its learning rates scaled.
    pub side: SideConfig,
    /// Its minibatch size.
    pub batch_size: usize,
    /// How many steps it trains.
    pub steps: usize,
    /// The factor its learning rates were multiplied by (1 without scaling).
    pub lr_factor: f64,
}

/// One side of the pair: a base optimiser, optionally wrapped in SAM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideConfig {
    /// The base optimiser (SGD, momentum, Adam, ...) and its learning rate.
    pub optimizer: OptimizerConfig,
    /// SAM settings; `None` means the plain base optimiser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sam: Option<SamConfig>,
    /// How the learning rate changes per step (constant by default).
    #[serde(default)]
    pub schedule: Schedule,
    /// Optional: a running average of the parameters (SWA or EMA), kept as an
    /// extra solution of this side; training itself is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average: Option<Averaging>,
    /// Optional: switch to another optimiser (or wrapper) at a given step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<Switch>,
    /// Optional: this side's own batch size instead of `training.batch_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Optional: this side's own number of steps instead of the one `training.budget` gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
}

/// The default left side: SGD with momentum 0.9 at the default learning rate, no SAM, constant schedule.
impl Default for SideConfig {
    fn default() -> Self {
        SideConfig {
            optimizer: OptimizerConfig::sgd_momentum(DEFAULT_LR),
            sam: None,
            schedule: Schedule::Constant,
            average: None,
            switch: None,
            batch_size: None,
            steps: None,
        }
    }
}

impl SideConfig {
    /// A short name for legends and tables, e.g. "SGD" or "SAM(rho=0.05)+SGD";
    /// with a switch "SGD, then SAM(rho=0.2)+SGD from step 500".
    pub fn label(&self) -> String {
        let base = self.optimizer.display_name();
        let label = match &self.sam {
            Some(s) => format!("{}(rho={})+{base}", if s.adaptive { "ASAM" } else { "SAM" }, s.rho),
            None => base.to_string(),
        };
        match &self.switch {
            Some(switch) => format!("{label}, then {}", switch.describe(&self.optimizer)),
            None => label,
        }
    }

    /// Checks the optimiser, SAM, schedule, averaging and switch settings,
    /// naming the bad field (batch size and steps are checked by [`RunConfig::validate`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.optimizer.validate().map_err(|e| e.within("optimizer"))?;
        if let Some(sam) = &self.sam {
            sam.validate().map_err(|e| e.within("sam"))?;
        }
        self.schedule.validate().map_err(|e| e.within("schedule"))?;
        if let Some(average) = &self.average {
            average.validate().map_err(|e| e.within("average"))?;
        }
        if let Some(switch) = &self.switch {
            switch.validate().map_err(|e| e.within("switch"))?;
        }
        if let Some(steps) = self.steps {
            check_count("steps", steps, 1, 10_000_000)?;
        }
        Ok(())
    }
}

/// The sandbox's default SAM radius, chosen by measurement on the default
/// preset (moons, rotated 45 degrees) with
/// `flatminima study --backend cpu --set rho=R --replicas 20 --steps S`:
/// SAM's OOD loss ends below SGD's in 20/20/13 of 20 seeds after 300/1000/3000
/// steps with rho = 0.2, against 19/18/7 with rho = 0.1, whose boundary is hard
/// to tell from SGD's. (Its OOD *accuracy* is higher in only 3 of 20 at 3000
/// steps: the page shows that too.) Much larger radii slow training on spirals.
pub const DEFAULT_RHO: f64 = 0.2;
/// The default learning rate of both sides (SGD with momentum 0.9).
pub const DEFAULT_LR: f64 = 0.1;

impl Default for RunConfig {
    fn default() -> Self {
        let sgd = SideConfig::default();
        let sam = SideConfig { sam: Some(SamConfig { rho: DEFAULT_RHO, adaptive: false }), ..sgd.clone() };
        RunConfig {
            seed: 1,
            data: DataConfig::default(),
            shift: ShiftConfig::default(),
            model: ModelConfig::default(),
            training: TrainingConfig::default(),
            left: sgd,
            right: sam,
            init: None,
            train_points: None,
            ood_points: None,
        }
    }
}

impl RunConfig {
    /// Parses and validates a config; errors name the offending field's path.
    pub fn from_json(text: &str) -> Result<RunConfig, ConfigError> {
        let config: RunConfig = from_json_with_path(text)?;
        config.validate()?;
        Ok(config)
    }

    /// The config as indented JSON, ready to save or share.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config always serialises")
    }

    /// Every field checked, with the field's dotted path in the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.data.validate().map_err(|e| e.within("data"))?;
        self.shift.validate(&self.data).map_err(|e| e.within("shift"))?;
        let hidden = &self.model.hidden;
        check_count("model.hidden (number of layers)", hidden.len(), 0, 6)?;
        for (i, &w) in hidden.iter().enumerate() {
            check_count(&format!("model.hidden[{i}]"), w, 1, 64)?;
        }
        crate::error::check_range("model.label_smoothing", self.model.label_smoothing, 0.0, 0.99)?;
        crate::dropout::validate(&self.model.dropout, hidden.len())
            .map_err(|e| ConfigError::new(format!("model.dropout{}", e.field), e.message))?;
        let n_train = self.n_train();
        check_count("training.batch_size", self.training.batch_size, 1, n_train)
            .map_err(|e| ConfigError::new(e.field, format!("{} (n_train = {n_train})", e.message)))?;
        check_count("training.steps", self.training.steps, 1, 10_000_000)?;
        check_count("training.log_every", self.training.log_every, 1, 1_000_000)?;
        self.left.validate().map_err(|e| e.within("left"))?;
        self.right.validate().map_err(|e| e.within("right"))?;
        for (side, name) in [(&self.left, "left"), (&self.right, "right")] {
            if let Some(b) = side.batch_size {
                check_count(&format!("{name}.batch_size"), b, 1, n_train)
                    .map_err(|e| ConfigError::new(e.field, format!("{} (n_train = {n_train})", e.message)))?;
            }
            // The scaled learning rate must still be a valid one.
            let plan = self.plan(side);
            plan.side.optimizer.validate().map_err(|e| {
                ConfigError::new(
                    format!("{name}.optimizer.{}", e.field),
                    format!("{} after linear lr scaling by {}", e.message, plan.lr_factor),
                )
            })?;
        }
        let classes = self.classes();
        if let Some(init) = &self.init {
            let expected = Mlp::new(2, &self.model, classes).num_params();
            if init.len() != expected {
                return Err(ConfigError::new(
                    "init",
                    format!("has {} numbers but the model has {expected} parameters", init.len()),
                ));
            }
            if let Some(i) = init.iter().position(|v| !v.is_finite()) {
                return Err(ConfigError::new(format!("init[{i}]"), "must be a finite number"));
            }
        }
        for (name, points) in [("train_points", &self.train_points), ("ood_points", &self.ood_points)] {
            if let Some(points) = points {
                check_points(name, points, classes)?;
            }
        }
        Ok(())
    }

    /// The train / ID / OOD sets of this config: drawn from the seed, with the
    /// pinned training and OOD points (if any) in place of the drawn ones.
    pub fn splits(&self) -> Splits {
        let mut splits = make_splits(&self.data, &self.shift, self.seed);
        if let Some(points) = &self.train_points {
            splits.train = points.clone();
        }
        if let Some(points) = &self.ood_points {
            splits.ood_test = points.clone();
        }
        splits
    }

    /// The number of training points (the pinned ones, if any).
    pub fn n_train(&self) -> usize {
        self.train_points.as_ref().map_or(self.data.n_train, Dataset::len)
    }

    /// What `side` trains with: its own batch size or `training.batch_size`;
    /// its own steps, or those `training.budget` gives it; its learning rates
    /// scaled by `training.lr_scaling`. A side with the shared batch size
    /// trains `training.steps` steps at its configured learning rate.
    pub fn plan(&self, side: &SideConfig) -> SidePlan {
        let t = &self.training;
        let n = self.n_train().max(1);
        let reference = t.batch_size.clamp(1, n);
        let batch_size = side.batch_size.unwrap_or(reference).clamp(1, n);
        let budget_steps = match t.budget {
            Budget::SameSteps => t.steps,
            Budget::SameEpochs => {
                let epochs = t.steps as f64 / n.div_ceil(reference) as f64;
                ((epochs * n.div_ceil(batch_size) as f64).round() as usize).max(1)
            }
        };
        let lr_factor = match t.lr_scaling {
            LrScaling::None => 1.0,
            LrScaling::Linear => batch_size as f64 / reference as f64,
        };
        let mut side = side.clone();
        if lr_factor != 1.0 {
            side.optimizer.set_lr(side.optimizer.lr() * lr_factor);
            if let Some(o) = side.switch.as_mut().and_then(|s| s.optimizer.as_mut()) {
                o.set_lr(o.lr() * lr_factor);
            }
        }
        SidePlan { steps: side.steps.unwrap_or(budget_steps), side, batch_size, lr_factor }
    }

    /// Number of classes of the configured dataset.
    pub fn classes(&self) -> usize {
        if self.data.dataset == crate::data::DatasetKind::Blobs {
            self.data.classes
        } else {
            2
        }
    }
}

/// Parses JSON into `T`; a type error names the field's dotted path as well as
/// serde_json's line and column (`model.hidden: invalid type: string "wide",
/// expected a sequence at line 1 column 25`). Syntax errors, where
/// no field is involved, keep the field "config" and serde's position.
fn from_json_with_path<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    let whole = |e: serde_json::Error| ConfigError::new("config", format!("invalid JSON config: {e}"));
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        match path.as_str() {
            "" | "." => whole(e.into_inner()),
            _ => ConfigError::new(path, e.into_inner().to_string()),
        }
    })?;
    de.end().map_err(whole)?; // trailing characters after the document
    Ok(value)
}

/// Checks pinned points (`train_points` or `ood_points`): as many labels as
/// points, at least one, the config's classes, finite coordinates.
fn check_points(name: &str, points: &Dataset, classes: usize) -> Result<(), ConfigError> {
    if points.points.len() != points.labels.len() || points.is_empty() {
        return Err(ConfigError::new(name, "needs as many labels as points, and at least one"));
    }
    if points.classes != classes {
        return Err(ConfigError::new(
            format!("{name}.classes"),
            format!("is {} but the dataset has {classes} classes", points.classes),
        ));
    }
    if let Some(i) = points.labels.iter().position(|&y| y >= classes) {
        return Err(ConfigError::new(format!("{name}.labels[{i}]"), format!("must be < {classes}")));
    }
    if let Some(i) = points.points.iter().position(|p| !(p[0].is_finite() && p[1].is_finite())) {
        return Err(ConfigError::new(format!("{name}.points[{i}]"), "must be finite"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_round_trips_and_is_valid() {
        let c = RunConfig::default();
        c.validate().unwrap();
        assert_eq!(RunConfig::from_json(&c.to_json_pretty()).unwrap(), c);
        assert_eq!(RunConfig::from_json("{}").unwrap(), c, "every field has a default");
    }

    #[test]
    fn bad_fields_are_named() {
        let e = RunConfig::from_json(r#"{"left": {"optimizer": {"kind": "sgd", "lr": -1}}}"#).unwrap_err();
        assert_eq!(e.field, "left.optimizer.lr");
        assert!(e.message.contains("[0, 100]"), "{e}");
        let e = RunConfig::from_json(r#"{"training": {"batch_size": 0}}"#).unwrap_err();
        assert_eq!(e.field, "training.batch_size");
        let e = RunConfig::from_json(r#"{"model": {"hidden": [16, 65]}}"#).unwrap_err();
        assert_eq!(e.field, "model.hidden[1]");
        // A type error names its path, not just a line and column.
        let e = RunConfig::from_json(r#"{"model": {"hidden": "wide"}}"#).unwrap_err();
        assert_eq!(e.field, "model.hidden");
        assert!(e.message.contains(r#"string "wide""#) && e.message.contains("expected a sequence"), "{e}");
        let e = RunConfig::from_json(r#"{"left": {"optimizer": {"kind": "sgd", "lr": "fast"}}}"#).unwrap_err();
        // (The optimiser is an internally tagged enum: serde sees its fields only as a whole.)
        assert_eq!(e.field, "left.optimizer", "{e}");
        assert!(e.message.contains(r#"string "fast", expected f64"#), "{e}");
        let e = RunConfig::from_json(r#"{"model": {"hidden": [16, "x"]}}"#).unwrap_err();
        assert_eq!(e.field, "model.hidden[1]", "{e}");
        let e = RunConfig::from_json(r#"{"seed": 1} x"#).unwrap_err();
        assert_eq!(e.field, "config", "{e}");
        let e = RunConfig::from_json(r#"{"trainig": {}}"#).unwrap_err();
        assert!(e.message.contains("unknown field `trainig`"), "{e}");
        let e = RunConfig::from_json(r#"{"init": [1, 2]}"#).unwrap_err();
        assert_eq!(e.field, "init");
        let e = RunConfig::from_json(r#"{"right": {"optimizer": {"kind": "sgd", "lr": 0.1}, "sam": {"rho": 99}}}"#)
            .unwrap_err();
        assert_eq!(e.field, "right.sam.rho");
    }

    #[test]
    fn labels_name_the_optimisers() {
        let c = RunConfig::default();
        assert_eq!(c.left.label(), "SGD");
        assert_eq!(c.right.label(), "SAM(rho=0.2)+SGD");
    }

    #[test]
    fn ood_points_replace_the_shifted_set_and_bad_ones_are_named() {
        let ood = Dataset { points: vec![[0.5, -1.0], [2.0, 2.0]], labels: vec![1, 0], classes: 2 };
        let config = RunConfig { ood_points: Some(ood.clone()), ..RunConfig::default() };
        let splits = config.splits();
        assert_eq!(splits.ood_test, ood);
        // Train and ID sets stay the drawn ones.
        let drawn = RunConfig::default().splits();
        assert_eq!(splits.train, drawn.train);
        assert_eq!(splits.id_test, drawn.id_test);
        // Through JSON (a run record's config) and into a pair's runs.
        let back = RunConfig::from_json(&config.to_json_pretty()).unwrap();
        assert_eq!(back, config);
        let pair = crate::pair::Pair::new(back).unwrap();
        assert_eq!(pair.left.splits.ood_test, ood);
        // Without them the field is left out of the JSON, as before.
        assert!(!RunConfig::default().to_json_pretty().contains("ood_points"));
        let bad = RunConfig { ood_points: Some(Dataset { labels: vec![1, 5], ..ood }), ..RunConfig::default() };
        assert_eq!(bad.validate().unwrap_err().field, "ood_points.labels[1]");
    }
}
