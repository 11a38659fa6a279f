//! The run record: what a finished (or stopped) pair of runs produced, as one
//! JSON document that tools can read back.
//!
//! `flatminima train --out run.json` writes one; `landscape --run` and
//! `sharpness --run` read one back instead of training again. A record holds
//! the config (with `init` pinned), the shared initial parameters and
//! datasets, and for each side its final parameters, metrics and history.
//! Feeding `config` back into [`Pair::new`] and training `step` steps
//! reproduces `final_params` bit for bit; so does pinning `data.train` as
//! `config.train_points` (JSON numbers round-trip exactly: serde_json's
//! `float_roundtrip` feature).

use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::data::Splits;
use crate::error::ConfigError;
use crate::metrics::MetricPoint;
use crate::pair::Pair;
use crate::settings::{settings_from_config, to_query};
use crate::train::{Divergence, Run};

/// The value of [`RunRecord::format`], so a tool can tell a record from a config.
pub const RECORD_FORMAT: &str = "flatminima-run-record";
/// Bumped when a field changes meaning or disappears (adding fields does not).
pub const RECORD_VERSION: u32 = 1;

/// Everything about a finished pair in one JSON document: the config, the
/// data, and each side's results, so it can be replayed or analysed later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Always [`RECORD_FORMAT`].
    pub format: String,
    /// [`RECORD_VERSION`] of the writer.
    pub version: u32,
    /// The program that wrote it, e.g. "flatminima 0.1.0".
    pub generator: String,
    /// The complete config of the pair (after any `--set`), with `init`
    /// filled in, so replaying it needs nothing else.
    pub config: RunConfig,
    /// The config as settings (a URL query, as the page's address bar and the
    /// element's attributes write them), so the page can import the record
    /// without parsing a config. Empty in records written before it existed.
    #[serde(default)]
    pub settings: String,
    /// The flat parameter vector both sides started from (PyTorch nn.Linear layout).
    pub initial_params: Vec<f64>,
    /// Results of the left side.
    pub left: SideRecord,
    /// Results of the right side.
    pub right: SideRecord,
    /// The train, in-distribution test and shifted (OOD) test sets.
    pub data: Splits,
}

/// One side of the pair at the time the record was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SideRecord {
    /// e.g. "SGD" or "SAM(rho=0.2)+SGD".
    pub label: String,
    /// Optimiser steps taken (fewer than `training.steps` if the run diverged).
    pub step: usize,
    /// When and why the run diverged; `null` if it did not.
    pub diverged: Option<Divergence>,
    /// Train/ID/OOD metrics at `final_params`; `null` when they are not finite
    /// (after a divergence: the last finite point is then the end of `history`).
    pub final_metrics: Option<MetricPoint>,
    /// The flat parameter vector after `step` steps. A diverged run's numbers
    /// may be non-finite; they are written as the strings "NaN", "Infinity"
    /// and "-Infinity", since JSON has no such numbers.
    #[serde(with = "maybe_finite")]
    pub final_params: Vec<f64>,
    /// The logged metric points, oldest first (every `training.log_every`
    /// steps, thinned to every second point when the run is very long).
    pub history: Vec<MetricPoint>,
    /// The side's weight average (SWA / EMA) at the end, if it keeps one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average: Option<AverageRecord>,
}

/// A side's running weight average as an extra solution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AverageRecord {
    /// "SWA" or "EMA".
    pub kind: String,
    /// How many parameter vectors entered the average.
    pub n_averaged: u64,
    /// Train/ID/OOD metrics of the averaged parameters (`null` when not finite).
    pub metrics: Option<MetricPoint>,
    /// The averaged flat parameter vector.
    #[serde(with = "maybe_finite")]
    pub params: Vec<f64>,
}

impl RunRecord {
    /// Snapshots a pair as it is now (usually after training it).
    pub fn of(pair: &Pair) -> RunRecord {
        let mut config = pair.config.clone();
        config.init = Some(pair.initial_params.clone());
        let settings = settings_from_config(&pair.config);
        RunRecord {
            format: RECORD_FORMAT.to_string(),
            version: RECORD_VERSION,
            generator: format!("flatminima {}", env!("CARGO_PKG_VERSION")),
            config,
            settings: to_query(settings.iter().map(|(k, v)| (*k, v.as_str()))),
            initial_params: pair.initial_params.clone(),
            left: SideRecord::of(&pair.left),
            right: SideRecord::of(&pair.right),
            data: (*pair.splits).clone(),
        }
    }

    /// Both side records, left first.
    pub fn sides(&self) -> [&SideRecord; 2] {
        [&self.left, &self.right]
    }

    /// Compact JSON (a record is data, often hundreds of kilobytes).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a record always serialises")
    }

    /// Reads a record back and checks that its config is valid and that its
    /// parameter vectors fit the model.
    pub fn from_json(text: &str) -> Result<RunRecord, ConfigError> {
        let record: RunRecord =
            serde_json::from_str(text).map_err(|e| ConfigError::new("record", format!("invalid run record: {e}")))?;
        if record.format != RECORD_FORMAT {
            return Err(ConfigError::new("format", format!("must be `{RECORD_FORMAT}`, got `{}`", record.format)));
        }
        record.config.validate().map_err(|e| e.within("config"))?;
        let expected = crate::model::Mlp::new(2, &record.config.model, record.config.classes()).num_params();
        for (field, params) in [
            ("initial_params", &record.initial_params),
            ("left.final_params", &record.left.final_params),
            ("right.final_params", &record.right.final_params),
        ] {
            if params.len() != expected {
                return Err(ConfigError::new(
                    field,
                    format!("has {} numbers but the model has {expected} parameters", params.len()),
                ));
            }
        }
        Ok(record)
    }

    /// A pair rebuilt from the record, with each side's parameters set to its
    /// final ones (the optimiser state is not recorded: this is for probing the
    /// solutions, not for resuming training).
    pub fn to_pair(&self) -> Result<Pair, ConfigError> {
        let mut pair = Pair::new(self.config.clone())?;
        let n = pair.left.params.len();
        for (run, side) in [(&mut pair.left, &self.left), (&mut pair.right, &self.right)] {
            if side.final_params.len() != n {
                return Err(ConfigError::new(
                    "final_params",
                    format!("has {} numbers but the model has {n} parameters", side.final_params.len()),
                ));
            }
            run.params.clone_from(&side.final_params);
            run.step = side.step;
            // The weight average as recorded, so `sharpness --run` measures it too.
            if let (Some(average), Some(recorded)) = (&mut run.average, &side.average) {
                if recorded.params.len() == n {
                    average.params.clone_from(&recorded.params);
                    average.n_averaged = recorded.n_averaged;
                }
            }
        }
        Ok(pair)
    }
}

impl SideRecord {
    /// The record of one run, with its metrics evaluated now (the run itself is untouched).
    pub fn of(run: &Run) -> SideRecord {
        // `evaluate` needs scratch space; a clone keeps `run` untouched (it is small).
        let mut scratch = run.clone();
        let metrics = scratch.evaluate();
        let average = run.average.as_ref().and_then(|a| {
            let params = a.solution()?.to_vec();
            let metrics = scratch.evaluate_params(&params);
            Some(AverageRecord {
                kind: a.config.name().to_string(),
                n_averaged: a.n_averaged,
                metrics: metrics.is_finite().then_some(metrics),
                params,
            })
        });
        SideRecord {
            label: run.side.label(),
            step: run.step,
            diverged: run.diverged.clone(),
            final_metrics: metrics.is_finite().then_some(metrics),
            final_params: run.params.clone(),
            history: run.history.points.clone(),
            average,
        }
    }

    /// The final metrics, or the last finite logged point for a diverged run.
    pub fn latest_metrics(&self) -> Option<&MetricPoint> {
        self.final_metrics.as_ref().or(self.history.last())
    }
}

/// Serde for `Vec<f64>` that may hold NaN or infinities: JSON numbers when
/// finite, else the strings "NaN", "Infinity", "-Infinity" (serde_json would
/// write `null`, which cannot be read back as a number).
mod maybe_finite {
    use serde::de::Error as _;
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(values.len()))?;
        for &v in values {
            match v {
                v if v.is_finite() => seq.serialize_element(&v)?,
                v if v.is_nan() => seq.serialize_element("NaN")?,
                v if v > 0.0 => seq.serialize_element("Infinity")?,
                _ => seq.serialize_element("-Infinity")?,
            }
        }
        seq.end()
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Finite(f64),
        Named(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
        Vec::<Number>::deserialize(deserializer)?
            .into_iter()
            .map(|n| match n {
                Number::Finite(v) => Ok(v),
                Number::Named(name) => match name.as_str() {
                    "NaN" => Ok(f64::NAN),
                    "Infinity" => Ok(f64::INFINITY),
                    "-Infinity" => Ok(f64::NEG_INFINITY),
                    other => {
                        Err(D::Error::custom(format!("expected a number, \"NaN\" or \"Infinity\", got \"{other}\"")))
                    }
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_config() -> RunConfig {
        let mut config = RunConfig::default();
        config.training.steps = 60;
        config
    }

    fn trained(config: RunConfig) -> Pair {
        let mut pair = Pair::new(config).unwrap();
        pair.train(pair.config.training.steps);
        pair
    }

    #[test]
    fn a_record_round_trips_through_json_exactly() {
        let record = RunRecord::of(&trained(small_config()));
        let back = RunRecord::from_json(&record.to_json()).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.left.step, 60);
        assert_ne!(back.left.final_params, back.right.final_params);
        assert!(back.left.final_metrics.is_some() && back.left.diverged.is_none());
    }

    #[test]
    fn replaying_the_config_or_the_pinned_inputs_gives_the_same_params() {
        let record = RunRecord::from_json(&RunRecord::of(&trained(small_config())).to_json()).unwrap();
        let replay = trained(record.config.clone());
        assert_eq!(replay.right.params, record.right.final_params);
        // Pinned inputs go through JSON too: every number must come back exactly.
        assert_eq!(record.config.init.as_ref(), Some(&record.initial_params));
        let mut pinned = record.config.clone();
        pinned.train_points = Some(record.data.train.clone());
        let pinned = trained(RunConfig::from_json(&pinned.to_json_pretty()).unwrap());
        assert_eq!(pinned.left.params, record.left.final_params);
        assert_eq!(pinned.right.params, record.right.final_params);
    }

    #[test]
    fn a_diverged_run_still_writes_a_readable_record() {
        let mut config = small_config();
        config.left.optimizer.set_lr(100.0);
        config.right.optimizer.set_lr(100.0);
        let record = RunRecord::of(&trained(config));
        assert!(record.left.diverged.is_some());
        let json = record.to_json();
        let back = RunRecord::from_json(&json).unwrap();
        assert_eq!(back.left.diverged, record.left.diverged);
        for (a, b) in back.left.final_params.iter().zip(&record.left.final_params) {
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
        }
    }

    #[test]
    fn non_finite_numbers_are_named() {
        #[derive(Serialize, Deserialize)]
        struct V(#[serde(with = "maybe_finite")] Vec<f64>);
        let json = serde_json::to_string(&V(vec![1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY])).unwrap();
        assert_eq!(json, r#"[1.5,"NaN","Infinity","-Infinity"]"#);
        let V(back) = serde_json::from_str(&json).unwrap();
        assert!(back[0] == 1.5 && back[1].is_nan() && back[2] == f64::INFINITY && back[3] == f64::NEG_INFINITY);
        assert!(serde_json::from_str::<V>(r#"["nan"]"#).is_err());
    }

    #[test]
    fn to_pair_restores_the_final_params() {
        let record = RunRecord::of(&trained(small_config()));
        let pair = record.to_pair().unwrap();
        assert_eq!(pair.left.params, record.left.final_params);
        assert_eq!((pair.right.params.as_slice(), pair.right.step), (record.right.final_params.as_slice(), 60));
    }

    #[test]
    fn a_config_is_not_a_record() {
        let e = RunRecord::from_json(&RunConfig::default().to_json_pretty()).unwrap_err();
        assert_eq!(e.field, "record");
    }
}
