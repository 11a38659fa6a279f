//! Flat `name=value` settings: the vocabulary shared by the element's
//! attributes, the page's URL and the CLI's overrides.
//!
//! A [`RunConfig`] is a tree; a blog author writes `<flatminima-sandbox
//! dataset="spirals" rho="0.2">` and a student shares `?dataset=spirals&rho=0.2`.
//! Both go through [`config_from_settings`]: every known name is parsed on its
//! own, and a bad value produces a [`ConfigError`] naming the setting while
//! that one setting falls back to its default. The rest of the config still applies.

use crate::averaging::Averaging;
use crate::config::{Budget, LrScaling, RunConfig, SideConfig, DEFAULT_LR, DEFAULT_RHO};
use crate::data::{DatasetKind, ShiftKind};
use crate::switch::Switch;
use serde::Serialize;

use crate::error::{check_count, ConfigError};
use crate::optim::OptimizerConfig;
use crate::sam::SamConfig;
use crate::schedule::Schedule;

/// One setting, declared once: the element's attribute, the page's URL key,
/// the CLI's `--set` name, the page's control (label, group, kind of control,
/// range or options) and the README's attribute table all come from it, and
/// its parser reads the range from here (tests check the declaration against
/// what the parser accepts).
#[derive(Debug, Serialize)]
pub struct SettingSpec {
    /// The name `--set` takes and the page uses, e.g. `"noise"`.
    pub name: &'static str,
    /// The control's label in the page.
    pub label: &'static str,
    /// The group of controls the setting appears under.
    pub group: Group,
    /// What values it takes and which control offers them.
    pub kind: Kind,
    /// The default value, written as `--set` would take it.
    pub default: &'static str,
    /// What it means and what it takes (the README's table, the CLI, a tooltip).
    pub help: &'static str,
    /// A line shown under the page's control, if any.
    pub note: &'static str,
}

/// The page's groups of controls, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// The 2D dataset and its size.
    Data,
    /// The distribution shift that makes the OOD test set.
    Shift,
    /// The network's shape and loss.
    Model,
    /// The two sides' optimisers, SAM and schedules.
    Optimisers,
    /// Batch size, steps and logging, shared by both sides.
    Training,
}

impl Group {
    /// Every group, in page order.
    pub const ALL: [Group; 5] = [Group::Data, Group::Shift, Group::Model, Group::Optimisers, Group::Training];

    /// The heading shown above the group on the page.
    pub fn title(self) -> &'static str {
        match self {
            Group::Data => "Data",
            Group::Shift => "Distribution shift (OOD test set)",
            Group::Model => "Model",
            Group::Optimisers => "Optimisers",
            Group::Training => "Training",
        }
    }
}

/// What values a setting takes, and how the page offers them.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    /// One of a list: (value, label) pairs.
    Choice {
        /// (value, label) pairs: the value as `--set` takes it, the label as the page shows it.
        options: &'static [(&'static str, &'static str)],
    },
    /// A number in `[min, max]` (`(min, max]` with `min_exclusive`); `integer`s only if set.
    Number {
        /// Smallest allowed value (excluded if `min_exclusive`).
        min: f64,
        /// Largest allowed value, included.
        max: f64,
        /// Whether `min` itself is rejected, e.g. a learning rate of 0.
        min_exclusive: bool,
        /// Whether only whole numbers are accepted.
        integer: bool,
        /// How the page offers the number.
        control: Control,
    },
    /// Free text with its own parser (hidden widths).
    Text {
        /// Example text shown in the empty field.
        placeholder: &'static str,
    },
}

/// The page's control for a number.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// A number field.
    Field,
    /// A linear slider; `live` ones apply while dragged (they change nothing that restarts a run).
    Slider {
        /// Increment between slider positions.
        step: f64,
        /// Whether changes apply while dragging, without restarting the run.
        live: bool,
    },
    /// A number field with a slider over 10^from .. 10^to.
    LogSlider {
        /// Base-10 exponent of the slider's lower end.
        from: i32,
        /// Base-10 exponent of the slider's upper end.
        to: i32,
    },
}

const fn field(min: f64, max: f64, integer: bool) -> Kind {
    Kind::Number { min, max, min_exclusive: false, integer, control: Control::Field }
}

const fn slider(min: f64, max: f64, step: f64, live: bool) -> Kind {
    Kind::Number { min, max, min_exclusive: false, integer: false, control: Control::Slider { step, live } }
}

const OPTIMIZERS: &[(&str, &str)] = &[("sgd", "SGD"), ("adam", "Adam"), ("adamw", "AdamW"), ("rmsprop", "RMSprop")];
const SIDE_OPTIMIZERS: &[(&str, &str)] =
    &[("", "same"), ("sgd", "SGD"), ("adam", "Adam"), ("adamw", "AdamW"), ("rmsprop", "RMSprop")];
const WRAPPERS: &[(&str, &str)] = &[("plain", "plain"), ("sam", "SAM"), ("asam", "ASAM")];

/// Every setting, in the order the page shows them.
pub static SETTINGS: &[SettingSpec] = &[
    SettingSpec {
        name: "dataset",
        label: "Dataset",
        group: Group::Data,
        kind: Kind::Choice {
            options: &[
                ("moons", "Two moons"),
                ("circles", "Circles"),
                ("xor", "XOR"),
                ("spirals", "Spirals"),
                ("blobs", "Blobs (K classes)"),
                ("spurious", "Spurious feature"),
            ],
        },
        default: "moons",
        help: "the 2D data set",
        note: "",
    },
    SettingSpec {
        name: "noise",
        label: "Noise",
        group: Group::Data,
        kind: slider(0.0, 1.0, 0.01, false),
        default: "0.1",
        help: "input noise (standard deviation)",
        note: "",
    },
    SettingSpec {
        name: "points",
        label: "Training points",
        group: Group::Data,
        kind: field(4.0, 5000.0, true),
        default: "200",
        help: "training points",
        note: "",
    },
    SettingSpec {
        name: "classes",
        label: "Classes (blobs)",
        group: Group::Data,
        kind: field(2.0, 8.0, true),
        default: "2",
        help: "classes of the blobs data set",
        note: "",
    },
    SettingSpec {
        name: "label-noise",
        label: "Label noise",
        group: Group::Data,
        kind: slider(0.0, crate::data::label_noise::MAX_LABEL_NOISE, 0.01, false),
        default: "0",
        help: "fraction of training labels flipped (seeded; the test sets stay clean)",
        note: "",
    },
    SettingSpec {
        name: "shift",
        label: "Shift",
        group: Group::Shift,
        kind: Kind::Choice {
            options: &[
                ("none", "None"),
                ("translate", "Translate"),
                ("rotate", "Rotate"),
                ("scale", "Scale"),
                ("noise", "Extra noise"),
                ("class_prior", "Class prior"),
                ("spurious_flip", "Spurious flip (spurious data)"),
            ],
        },
        default: "rotate",
        help: "how the OOD test set differs from the training data",
        note: "",
    },
    SettingSpec {
        name: "severity",
        label: "Severity",
        group: Group::Shift,
        kind: slider(0.0, 1.0, 0.05, true),
        default: "0.5",
        help: "how strong the shift is",
        note: "Moves the OOD points at once; training goes on.",
    },
    SettingSpec {
        name: "hidden",
        label: "Hidden layers",
        group: Group::Model,
        kind: Kind::Text { placeholder: "16,16" },
        default: "16,16",
        help: "hidden widths, e.g. `16,16`: 0-6 layers of 1-64 units (`0` for none)",
        note: "Widths, e.g. 16,16 (0 = none)",
    },
    SettingSpec {
        name: "activation",
        label: "Activation",
        group: Group::Model,
        kind: Kind::Choice { options: &[("tanh", "tanh"), ("relu", "ReLU"), ("gelu", "GELU"), ("sigmoid", "sigmoid")] },
        default: "tanh",
        help: "the hidden layers' activation",
        note: "",
    },
    SettingSpec {
        name: "label-smoothing",
        label: "Label smoothing",
        group: Group::Model,
        kind: slider(0.0, 0.99, 0.01, false),
        default: "0",
        help: "label smoothing of the cross-entropy (torch's definition)",
        note: "",
    },
    SettingSpec {
        name: "dropout",
        label: "Dropout",
        group: Group::Model,
        kind: Kind::Text { placeholder: "0.2" },
        default: "0",
        help: "dropout probability after each hidden layer during training (inverted, as torch.nn.Dropout; off at evaluation): one value for all layers or one per layer, e.g. `0.1,0.3`, each 0..0.9",
        note: "e.g. 0.2, or 0.1,0.3 per layer",
    },
    SettingSpec {
        name: "optimizer",
        label: "Base optimiser",
        group: Group::Optimisers,
        kind: Kind::Choice { options: OPTIMIZERS },
        default: "sgd",
        help: "base optimiser of both sides",
        note: "Both sides",
    },
    SettingSpec {
        name: "left",
        label: "Left wrapper",
        group: Group::Optimisers,
        kind: Kind::Choice { options: WRAPPERS },
        default: "plain",
        help: "the left side's wrapper around its base optimiser",
        note: "",
    },
    SettingSpec {
        name: "right",
        label: "Right wrapper",
        group: Group::Optimisers,
        kind: Kind::Choice { options: WRAPPERS },
        default: "sam",
        help: "the right side's wrapper around its base optimiser",
        note: "",
    },
    SettingSpec {
        name: "left-optimizer",
        label: "Left base",
        group: Group::Optimisers,
        kind: Kind::Choice { options: SIDE_OPTIMIZERS },
        default: "",
        help: "the left side's own base optimiser (empty: `optimizer`)",
        note: "",
    },
    SettingSpec {
        name: "right-optimizer",
        label: "Right base",
        group: Group::Optimisers,
        kind: Kind::Choice { options: SIDE_OPTIMIZERS },
        default: "",
        help: "the right side's own base optimiser (empty: `optimizer`)",
        note: "",
    },
    SettingSpec {
        name: "rho",
        label: "SAM radius ρ",
        group: Group::Optimisers,
        kind: Kind::Number {
            min: 0.0,
            max: 10.0,
            min_exclusive: false,
            integer: false,
            control: Control::LogSlider { from: -3, to: 1 },
        },
        default: "0.2",
        help: "SAM's radius (SAM takes at most 5, ASAM 10)",
        note: "",
    },
    SettingSpec {
        name: "lr",
        label: "Learning rate",
        group: Group::Optimisers,
        kind: Kind::Number {
            min: 0.0,
            max: 100.0,
            min_exclusive: true,
            integer: false,
            control: Control::LogSlider { from: -4, to: 2 },
        },
        default: "0.1",
        help: "learning rate",
        note: "",
    },
    SettingSpec {
        name: "momentum",
        label: "Momentum",
        group: Group::Optimisers,
        kind: slider(0.0, 0.999, 0.001, false),
        default: "0.9",
        help: "SGD and RMSprop momentum",
        note: "",
    },
    SettingSpec {
        name: "weight-decay",
        label: "Weight decay",
        group: Group::Optimisers,
        kind: field(0.0, 1.0, false),
        default: "0",
        help: "weight decay (AdamW's default is 0.01)",
        note: "",
    },
    SettingSpec {
        name: "schedule",
        label: "LR schedule",
        group: Group::Optimisers,
        kind: Kind::Choice {
            options: &[
                ("constant", "constant"),
                ("cosine", "cosine"),
                ("step", "step (÷10 twice)"),
                ("warmup", "warm-up"),
            ],
        },
        default: "constant",
        help: "learning-rate schedule over the run's steps",
        note: "",
    },
    SettingSpec {
        name: "switch-at",
        label: "Switch at step",
        group: Group::Optimisers,
        kind: field(0.0, 10_000_000.0, true),
        default: "0",
        help: "switch optimiser at this step (0: never); the base optimiser keeps its state when only the wrapper changes, a new base starts fresh",
        note: "0 = never",
    },
    SettingSpec {
        name: "switch-side",
        label: "Switching side",
        group: Group::Optimisers,
        kind: Kind::Choice { options: &[("left", "left"), ("right", "right"), ("both", "both")] },
        default: "left",
        help: "which side switches at `switch-at`",
        note: "",
    },
    SettingSpec {
        name: "switch-to",
        label: "Switch to",
        group: Group::Optimisers,
        kind: Kind::Choice {
            options: &[
                ("sam", "SAM (same base)"),
                ("asam", "ASAM (same base)"),
                ("plain", "plain (same base)"),
                ("sgd", "SGD base"),
                ("adam", "Adam base"),
                ("adamw", "AdamW base"),
                ("rmsprop", "RMSprop base"),
            ],
        },
        default: "sam",
        help: "what the switching side trains with from `switch-at` on: a wrapper over its base (with `rho`), or another base under its wrapper",
        note: "",
    },
    SettingSpec {
        name: "batch-size",
        label: "Batch size",
        group: Group::Training,
        kind: field(1.0, 5000.0, true),
        default: "32",
        help: "minibatch size (at most the training points)",
        note: "",
    },
    SettingSpec {
        name: "steps",
        label: "Steps",
        group: Group::Training,
        kind: field(1.0, 10_000_000.0, true),
        default: "3000",
        help: "optimiser steps to train",
        note: "",
    },
    SettingSpec {
        name: "seed",
        label: "Seed",
        group: Group::Training,
        kind: field(0.0, u64::MAX as f64, true),
        default: "1",
        help: "random seed: data, initial weights and batch order",
        note: "",
    },
    SettingSpec {
        name: "left-batch-size",
        label: "Left batch size",
        group: Group::Training,
        kind: field(0.0, 5000.0, true),
        default: "0",
        help: "the left side's own batch size (0: `batch-size`)",
        note: "0 = batch-size",
    },
    SettingSpec {
        name: "right-batch-size",
        label: "Right batch size",
        group: Group::Training,
        kind: field(0.0, 5000.0, true),
        default: "0",
        help: "the right side's own batch size (0: `batch-size`)",
        note: "0 = batch-size",
    },
    SettingSpec {
        name: "budget",
        label: "Budget",
        group: Group::Training,
        kind: Kind::Choice { options: &[("same_steps", "same steps"), ("same_epochs", "same epochs")] },
        default: "same_steps",
        help: "steps of a side with its own batch size: `steps` each, or as many epochs as `steps` of `batch-size` make",
        note: "",
    },
    SettingSpec {
        name: "lr-scaling",
        label: "LR scaling",
        group: Group::Training,
        kind: Kind::Choice { options: &[("none", "none"), ("linear", "linear (Goyal et al.)")] },
        default: "none",
        help: "learning rate of a side with its own batch size b: as set, or times b / `batch-size` (Goyal et al. 2017)",
        note: "",
    },
    SettingSpec {
        name: "left-steps",
        label: "Left steps",
        group: Group::Training,
        kind: field(0.0, 10_000_000.0, true),
        default: "0",
        help: "the left side's own number of steps (0: from `steps` and `budget`)",
        note: "0 = from the budget",
    },
    SettingSpec {
        name: "right-steps",
        label: "Right steps",
        group: Group::Training,
        kind: field(0.0, 10_000_000.0, true),
        default: "0",
        help: "the right side's own number of steps (0: from `steps` and `budget`)",
        note: "0 = from the budget",
    },
    SettingSpec {
        name: "average",
        label: "Weight average",
        group: Group::Training,
        kind: Kind::Choice { options: &[("none", "none"), ("swa", "SWA"), ("ema", "EMA")] },
        default: "none",
        help: "keep a running average of each side's weights as an extra solution: SWA (uniform, torch.optim.swa_utils) or EMA",
        note: "",
    },
    SettingSpec {
        name: "average-start",
        label: "SWA start",
        group: Group::Training,
        kind: field(0.0, 10_000_000.0, true),
        default: "0",
        help: "the step after which SWA starts averaging (0: three quarters of the side's steps)",
        note: "0 = at 3/4 of the steps",
    },
    SettingSpec {
        name: "average-every",
        label: "SWA every",
        group: Group::Training,
        kind: field(1.0, 1_000_000.0, true),
        default: "1",
        help: "steps between two parameter vectors SWA averages",
        note: "",
    },
    SettingSpec {
        name: "ema-decay",
        label: "EMA decay",
        group: Group::Training,
        kind: field(0.0, 0.999999, false),
        default: "0.99",
        help: "EMA's decay: avg = decay avg + (1 - decay) w after every step",
        note: "",
    },
];

impl SettingSpec {
    /// The setting called `name`, if there is one.
    pub fn find(name: &str) -> Option<&'static SettingSpec> {
        SETTINGS.iter().find(|s| s.name == name)
    }

    /// The values it takes, as the README's table and the CLI say it: `a, b or c`, `0..1`, `(0, 100]`.
    pub fn values(&self) -> String {
        match &self.kind {
            Kind::Choice { options } => {
                let values: Vec<&str> = options.iter().map(|(v, _)| *v).filter(|v| !v.is_empty()).collect();
                values.join(", ")
            }
            Kind::Number { min, max, min_exclusive: true, .. } => format!("({min}, {max}]"),
            Kind::Number { min, max, integer: true, .. } if *max >= u64::MAX as f64 => {
                format!("a whole number >= {min}")
            }
            Kind::Number { min, max, .. } => format!("{min}..{max}"),
            Kind::Text { .. } => String::new(),
        }
    }

    /// What it means and the values it takes, in one line: `learning rate: (0, 100]`.
    pub fn describe(&self) -> String {
        match self.values() {
            values if values.is_empty() => self.help.to_string(),
            values => format!("{}: {values}", self.help),
        }
    }

    /// A number within the declared range (the message names the range).
    fn number(&self, v: &str) -> Result<f64, String> {
        let Kind::Number { min, max, min_exclusive, integer, .. } = self.kind else {
            unreachable!("{} is not a number setting", self.name)
        };
        let what = if integer { "a whole number" } else { "a number" };
        let range = if min_exclusive { format!("({min}, {max}]") } else { format!("[{min}, {max}]") };
        let x: f64 = v.parse().map_err(|_| format!("must be {what} in {range}, got `{v}`"))?;
        let inside = if min_exclusive { x > min } else { x >= min } && x <= max;
        if !inside || (integer && x.fract() != 0.0) {
            return Err(format!("must be {what} in {range}, got {v}"));
        }
        Ok(x)
    }

    /// A whole number within the declared range.
    fn count(&self, v: &str) -> Result<usize, String> {
        let x = self.number(v)?;
        Ok(x as usize)
    }
}

/// Builds a config from settings. Unknown names and bad values are reported
/// (and ignored: the default stays); the config returned is always valid.
pub fn config_from_settings<'a>(
    settings: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (RunConfig, Vec<ConfigError>) {
    // One copy of the long body below, whatever iterator each caller has
    // (each instance would cost the page's wasm module ~5 KB).
    config_from_pairs(settings.into_iter().collect())
}

/// [`config_from_settings`] on the settings collected.
fn config_from_pairs(settings: Vec<(&str, &str)>) -> (RunConfig, Vec<ConfigError>) {
    let mut values: Vec<(&str, &str)> = Vec::new();
    let mut errors = Vec::new();
    for (name, value) in settings {
        if SETTINGS.iter().any(|s| s.name == name) {
            values.retain(|(n, _)| *n != name); // the last one wins, like a URL's query
            values.push((name, value.trim()));
        } else {
            errors.push(ConfigError::new(name, format!("unknown setting; known ones: {}", names())));
        }
    }
    let get = |name: &str| values.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).filter(|v| !v.is_empty());
    let mut config = RunConfig::default();

    // Each setting applies on its own; a failure keeps the default for that setting.
    let mut apply = |name: &str, f: &mut dyn FnMut(&str, &SettingSpec) -> Result<(), String>| {
        if let Some(v) = get(name) {
            let spec = SettingSpec::find(name).expect("every applied setting is declared");
            if let Err(message) = f(v, spec) {
                errors.push(ConfigError::new(name, format!("{message}; using the default {}", default_of(name))));
            }
        }
    };
    let (mut base, mut left_base, mut right_base) = ("sgd".to_string(), None::<String>, None::<String>);
    let (mut left_wrap, mut right_wrap) = ("plain".to_string(), "sam".to_string());
    let (mut lr, mut rho, mut momentum, mut weight_decay) = (DEFAULT_LR, DEFAULT_RHO, 0.9, 0.0);
    let mut schedule_name = "constant".to_string();
    let (mut switch_at, mut switch_side, mut switch_to) = (0usize, "left".to_string(), "sam".to_string());
    let (mut side_batch, mut side_steps) = ([0usize; 2], [0usize; 2]);
    let (mut average, mut average_start, mut average_every, mut ema_decay) = ("none".to_string(), 0, 1, 0.99);

    apply("dataset", &mut |v, _| {
        config.data.dataset = v.parse::<DatasetKind>().map_err(|e| e.message)?;
        Ok(())
    });
    apply("noise", &mut |v, spec| {
        config.data.noise = spec.number(v)?;
        Ok(())
    });
    apply("points", &mut |v, spec| {
        config.data.n_train = spec.count(v)?;
        Ok(())
    });
    apply("classes", &mut |v, spec| {
        config.data.classes = spec.count(v)?;
        Ok(())
    });
    apply("shift", &mut |v, _| {
        config.shift.kind = v.parse::<ShiftKind>().map_err(|e| e.message)?;
        Ok(())
    });
    apply("severity", &mut |v, spec| {
        config.shift.severity = spec.number(v)?;
        Ok(())
    });
    apply("hidden", &mut |v, _| {
        config.model.hidden = hidden(v)?;
        Ok(())
    });
    apply("activation", &mut |v, _| {
        config.model.activation = v.parse()?;
        Ok(())
    });
    apply("label-smoothing", &mut |v, spec| {
        config.model.label_smoothing = spec.number(v)?;
        Ok(())
    });
    apply("dropout", &mut |v, _| {
        config.model.dropout = dropout(v)?;
        Ok(())
    });
    apply("label-noise", &mut |v, spec| {
        config.data.label_noise = spec.number(v)?;
        Ok(())
    });
    apply("optimizer", &mut |v, _| {
        base = optimizer_kind(v)?;
        Ok(())
    });
    apply("left-optimizer", &mut |v, _| {
        left_base = Some(optimizer_kind(v)?);
        Ok(())
    });
    apply("right-optimizer", &mut |v, _| {
        right_base = Some(optimizer_kind(v)?);
        Ok(())
    });
    apply("left", &mut |v, _| {
        left_wrap = wrapper(v)?;
        Ok(())
    });
    apply("right", &mut |v, _| {
        right_wrap = wrapper(v)?;
        Ok(())
    });
    apply("lr", &mut |v, spec| {
        lr = spec.number(v)?;
        Ok(())
    });
    apply("rho", &mut |v, spec| {
        rho = spec.number(v)?;
        Ok(())
    });
    apply("momentum", &mut |v, spec| {
        momentum = spec.number(v)?;
        Ok(())
    });
    apply("weight-decay", &mut |v, spec| {
        weight_decay = spec.number(v)?;
        Ok(())
    });
    apply("schedule", &mut |v, spec| {
        if let Kind::Choice { options } = spec.kind {
            if options.iter().any(|(o, _)| *o == v) {
                schedule_name = v.to_string();
                return Ok(());
            }
        }
        Err(format!("unknown schedule `{v}` (expected {})", spec.values()))
    });
    apply("steps", &mut |v, spec| {
        config.training.steps = spec.count(v)?;
        Ok(())
    });
    apply("batch-size", &mut |v, spec| {
        config.training.batch_size = spec.count(v)?;
        Ok(())
    });
    apply("seed", &mut |v, _| {
        config.seed = v.parse::<u64>().map_err(|_| format!("must be a whole number >= 0, got `{v}`"))?;
        Ok(())
    });
    apply("switch-at", &mut |v, spec| {
        switch_at = spec.count(v)?;
        Ok(())
    });
    apply("switch-side", &mut |v, spec| {
        switch_side = choice(spec, v)?;
        Ok(())
    });
    apply("switch-to", &mut |v, spec| {
        switch_to = choice(spec, v)?;
        Ok(())
    });
    for (i, which) in ["left", "right"].into_iter().enumerate() {
        apply(&format!("{which}-batch-size"), &mut |v, spec| {
            side_batch[i] = spec.count(v)?;
            Ok(())
        });
        apply(&format!("{which}-steps"), &mut |v, spec| {
            side_steps[i] = spec.count(v)?;
            Ok(())
        });
    }
    apply("budget", &mut |v, spec| {
        config.training.budget = match choice(spec, v)?.as_str() {
            "same_epochs" => Budget::SameEpochs,
            _ => Budget::SameSteps,
        };
        Ok(())
    });
    apply("lr-scaling", &mut |v, spec| {
        config.training.lr_scaling = if choice(spec, v)? == "linear" { LrScaling::Linear } else { LrScaling::None };
        Ok(())
    });
    apply("average", &mut |v, spec| {
        average = choice(spec, v)?;
        Ok(())
    });
    apply("average-start", &mut |v, spec| {
        average_start = spec.count(v)?;
        Ok(())
    });
    apply("average-every", &mut |v, spec| {
        average_every = spec.count(v)?;
        Ok(())
    });
    apply("ema-decay", &mut |v, spec| {
        ema_decay = spec.number(v)?;
        Ok(())
    });

    let schedule = match schedule_name.as_str() {
        "cosine" => Schedule::Cosine { t_max: config.training.steps, eta_min: 0.0 },
        "step" => Schedule::Step { step_size: (config.training.steps / 3).max(1), gamma: 0.1 },
        "warmup" => Schedule::Warmup { steps: (config.training.steps / 10).max(1), start_factor: 0.1 },
        _ => Schedule::Constant,
    };
    let side = |base: &str, wrap: &str| {
        let mut optimizer = OptimizerConfig::with_kind(base, lr).expect("kind was checked");
        match &mut optimizer {
            OptimizerConfig::Sgd { momentum: m, weight_decay: wd, .. } => (*m, *wd) = (momentum, weight_decay),
            OptimizerConfig::Rmsprop { momentum: m, weight_decay: wd, .. } => {
                // RMSprop's default is no momentum: only an explicit setting adds it.
                *m = if get("momentum").is_some() { momentum } else { 0.0 };
                *wd = weight_decay;
            }
            OptimizerConfig::Adam { weight_decay: wd, .. } => *wd = weight_decay,
            OptimizerConfig::AdamW { weight_decay: wd, .. } => {
                if get("weight-decay").is_some() {
                    *wd = weight_decay
                }
            }
        }
        let sam = match wrap {
            "sam" => Some(SamConfig { rho, adaptive: false }),
            "asam" => Some(SamConfig { rho, adaptive: true }),
            _ => None,
        };
        SideConfig { optimizer, sam, schedule: schedule.clone(), ..Default::default() }
    };
    config.left = side(left_base.as_deref().unwrap_or(&base), &left_wrap);
    config.right = side(right_base.as_deref().unwrap_or(&base), &right_wrap);
    let bases = [left_base.as_deref().unwrap_or(&base), right_base.as_deref().unwrap_or(&base)];
    let wraps = [left_wrap.as_str(), right_wrap.as_str()];
    for (i, s) in [&mut config.left, &mut config.right].into_iter().enumerate() {
        s.batch_size = (side_batch[i] > 0).then_some(side_batch[i]);
        s.steps = (side_steps[i] > 0).then_some(side_steps[i]);
        let switches = switch_side == "both" || switch_side == ["left", "right"][i];
        if switch_at > 0 && switches {
            // A wrapper keeps the side's base; a base keeps the side's wrapper.
            let (new_base, new_wrap) = match switch_to.as_str() {
                "sam" | "asam" | "plain" => (bases[i], switch_to.as_str()),
                kind => (kind, wraps[i]),
            };
            let target = side(new_base, new_wrap);
            let optimizer = (new_base != bases[i]).then_some(target.optimizer);
            s.switch = Some(Switch { at: switch_at, optimizer, sam: target.sam });
        }
    }
    let steps = config.training.steps;
    for s in [&mut config.left, &mut config.right] {
        s.average = match average.as_str() {
            "swa" => {
                let start = if average_start == 0 { swa_auto_start(s.steps.unwrap_or(steps)) } else { average_start };
                Some(Averaging::Swa { start, every: average_every })
            }
            "ema" => Some(Averaging::Ema { decay: ema_decay }),
            _ => None,
        };
    }

    // Cross-field rules (batch size vs points, spurious_flip vs dataset, rho
    // for SAM): fall back one field at a time until the config is valid.
    for _ in 0..8 {
        let Err(e) = config.validate() else { break };
        let name = fall_back(&mut config, &e);
        errors.push(ConfigError::new(name, format!("{}; using the default {}", e.message, default_of(name))));
    }
    if config.validate().is_err() {
        config = RunConfig::default();
    }
    (config, errors)
}

/// Resets the setting responsible for a cross-field error; returns its name.
fn fall_back(config: &mut RunConfig, e: &ConfigError) -> &'static str {
    let defaults = RunConfig::default();
    let f = e.field.as_str();
    if f == "training.batch_size" {
        config.training.batch_size = defaults.training.batch_size.min(config.data.n_train);
        "batch-size"
    } else if f.contains(".switch") {
        config.left.switch = None;
        config.right.switch = None;
        "switch-at"
    } else if f.contains(".average") {
        config.left.average = None;
        config.right.average = None;
        "average"
    } else if f == "left.batch_size" || f == "right.batch_size" {
        let which = if f.starts_with("left") { &mut config.left } else { &mut config.right };
        which.batch_size = None;
        if f.starts_with("left") {
            "left-batch-size"
        } else {
            "right-batch-size"
        }
    } else if f.contains(".optimizer") && config.training.lr_scaling != LrScaling::None {
        // A learning rate that linear scaling pushed out of range.
        config.training.lr_scaling = LrScaling::None;
        "lr-scaling"
    } else if f.starts_with("model.dropout") {
        config.model.dropout = defaults.model.dropout;
        "dropout"
    } else if f.starts_with("shift") {
        config.shift = defaults.shift;
        "shift"
    } else if f.ends_with("sam.rho") {
        for side in [&mut config.left, &mut config.right] {
            if let Some(s) = &mut side.sam {
                s.rho = DEFAULT_RHO;
            }
        }
        "rho"
    } else if f.starts_with("data") {
        config.data = defaults.data;
        "dataset"
    } else {
        *config = defaults;
        "seed"
    }
}

/// The settings that describe `config`, omitting those at their default: the
/// page's URL query. Round-trips through [`config_from_settings`] for every
/// config the settings can express.
pub fn settings_from_config(config: &RunConfig) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let side_wrap = |s: &SideConfig| match &s.sam {
        None => "plain",
        Some(SamConfig { adaptive: false, .. }) => "sam",
        Some(_) => "asam",
    };
    let rho = [&config.left, &config.right].iter().find_map(|s| s.sam.as_ref().map(|s| s.rho)).unwrap_or(DEFAULT_RHO);
    let (momentum, weight_decay) = match config.left.optimizer {
        OptimizerConfig::Sgd { momentum, weight_decay, .. } => (momentum, weight_decay),
        OptimizerConfig::Rmsprop { momentum, weight_decay, .. } => (momentum, weight_decay),
        OptimizerConfig::Adam { weight_decay, .. } | OptimizerConfig::AdamW { weight_decay, .. } => (0.9, weight_decay),
    };
    let schedule = match config.left.schedule {
        Schedule::Constant => "constant",
        Schedule::Cosine { .. } => "cosine",
        Schedule::Step { .. } => "step",
        Schedule::Warmup { .. } => "warmup",
    };
    // The switch: one config for the sides that have it (the settings cannot say more).
    let switched = [&config.left, &config.right].map(|s| s.switch.as_ref());
    let switch_side = match switched {
        [Some(_), Some(_)] => "both",
        [None, Some(_)] => "right",
        _ => "left",
    };
    let (switch_at, switch_to) =
        match switched.iter().zip([&config.left, &config.right]).find_map(|(w, s)| w.zip(Some(s))) {
            Some((w, s)) => {
                let to = match &w.optimizer {
                    Some(o) if o.kind() != s.optimizer.kind() => o.kind(),
                    _ => match &w.sam {
                        None => "plain",
                        Some(SamConfig { adaptive: false, .. }) => "sam",
                        Some(_) => "asam",
                    },
                };
                (w.at.to_string(), to)
            }
            None => ("0".to_string(), "sam"),
        };
    let (average, average_start, average_every, ema_decay) = match &config.left.average {
        Some(Averaging::Swa { start, every }) => {
            let auto = *start == swa_auto_start(config.left.steps.unwrap_or(config.training.steps));
            ("swa", if auto { "0".to_string() } else { start.to_string() }, every.to_string(), "0.99".to_string())
        }
        Some(Averaging::Ema { decay }) => ("ema", "0".to_string(), "1".to_string(), decay.to_string()),
        None => ("none", "0".to_string(), "1".to_string(), "0.99".to_string()),
    };
    let budget = match config.training.budget {
        Budget::SameSteps => "same_steps",
        Budget::SameEpochs => "same_epochs",
    };
    let lr_scaling = match config.training.lr_scaling {
        LrScaling::None => "none",
        LrScaling::Linear => "linear",
    };
    let all: Vec<(&'static str, String)> = vec![
        ("dataset", config.data.dataset.name().to_string()),
        ("noise", config.data.noise.to_string()),
        ("points", config.data.n_train.to_string()),
        ("classes", config.data.classes.to_string()),
        ("shift", config.shift.kind.name().to_string()),
        ("severity", config.shift.severity.to_string()),
        ("hidden", config.model.hidden.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(",")),
        ("activation", config.model.activation.name().to_string()),
        ("optimizer", config.left.optimizer.kind().to_string()),
        ("right-optimizer", config.right.optimizer.kind().to_string()),
        ("left", side_wrap(&config.left).to_string()),
        ("right", side_wrap(&config.right).to_string()),
        ("rho", rho.to_string()),
        ("lr", config.left.optimizer.lr().to_string()),
        ("momentum", momentum.to_string()),
        ("weight-decay", weight_decay.to_string()),
        ("schedule", schedule.to_string()),
        ("batch-size", config.training.batch_size.to_string()),
        ("steps", config.training.steps.to_string()),
        ("seed", config.seed.to_string()),
        ("label-smoothing", config.model.label_smoothing.to_string()),
        ("label-noise", config.data.label_noise.to_string()),
        ("dropout", dropout_text(&config.model.dropout)),
        ("switch-at", switch_at),
        ("switch-side", switch_side.to_string()),
        ("switch-to", switch_to.to_string()),
        ("left-batch-size", config.left.batch_size.unwrap_or(0).to_string()),
        ("right-batch-size", config.right.batch_size.unwrap_or(0).to_string()),
        ("left-steps", config.left.steps.unwrap_or(0).to_string()),
        ("right-steps", config.right.steps.unwrap_or(0).to_string()),
        ("budget", budget.to_string()),
        ("lr-scaling", lr_scaling.to_string()),
        ("average", average.to_string()),
        ("average-start", average_start),
        ("average-every", average_every),
        ("ema-decay", ema_decay),
    ];
    for (name, value) in all {
        let is_default = match name {
            "right-optimizer" => value == config.left.optimizer.kind(),
            "weight-decay" if config.left.optimizer.kind() == "adamw" => value == "0.01",
            "momentum" if config.left.optimizer.kind() != "sgd" => true,
            _ => value == default_of(name),
        };
        if !is_default {
            out.push((name, value));
        }
    }
    out
}

/// Applies settings on top of `base` (the CLI's `--set name=value`): each
/// setting overwrites the fields it stands for and every other field of `base`
/// stays as it is (`n_test`, `log_every`, a pinned `init`, a `nesterov` flag...).
///
/// Unlike [`config_from_settings`] nothing falls back to a default: an unknown
/// name, a bad value or a result that fails validation is an error. Values
/// that depend on other settings come from `base` unless those are given too:
/// `schedule=cosine` spans `base`'s steps, `optimizer=adam` keeps `base`'s
/// learning rate, `right=sam` uses `base`'s rho. A new optimiser kind starts
/// from that kind's defaults; giving the kind a side already has changes nothing.
pub fn apply_settings<'a>(
    base: &RunConfig,
    settings: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<RunConfig, Vec<ConfigError>> {
    let given: Vec<(&str, &str)> = settings.into_iter().collect();
    let is_given = |name: &str| given.iter().any(|(n, _)| *n == name);
    // The last value wins, as in config_from_settings; it parsed, so it is a number.
    let number =
        |name: &str| given.iter().rev().find(|(n, _)| *n == name).and_then(|(_, v)| v.trim().parse::<f64>().ok());

    // Parse the given settings after those describing `base`, so that the
    // dependent values above are `base`'s.
    let mut context = settings_from_config(base);
    if is_given("optimizer") {
        context.retain(|(n, _)| *n != "right-optimizer"); // "optimizer" means both sides
    }
    let all = context.iter().map(|(n, v)| (*n, v.as_str())).chain(given.iter().copied());
    let (parsed, errors) = config_from_settings(all);
    // Only what the user wrote is reported (a fallback elsewhere shows up in
    // the final validation instead), without the fallback's "using the default".
    let errors: Vec<ConfigError> = errors
        .into_iter()
        .filter(|e| is_given(&e.field))
        .map(|mut e| {
            if let Some(i) = e.message.find("; using the default") {
                e.message.truncate(i);
            }
            e
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut out = base.clone();
    for (name, _) in &given {
        match *name {
            "dataset" => out.data.dataset = parsed.data.dataset,
            "noise" => out.data.noise = parsed.data.noise,
            "points" => out.data.n_train = parsed.data.n_train,
            "classes" => out.data.classes = parsed.data.classes,
            "shift" => out.shift.kind = parsed.shift.kind,
            "severity" => out.shift.severity = parsed.shift.severity,
            "hidden" => out.model.hidden = parsed.model.hidden.clone(),
            "activation" => out.model.activation = parsed.model.activation,
            "label-smoothing" => out.model.label_smoothing = parsed.model.label_smoothing,
            "dropout" => out.model.dropout = parsed.model.dropout.clone(),
            "label-noise" => out.data.label_noise = parsed.data.label_noise,
            "batch-size" => out.training.batch_size = parsed.training.batch_size,
            "steps" => out.training.steps = parsed.training.steps,
            "seed" => out.seed = parsed.seed,
            "budget" => out.training.budget = parsed.training.budget,
            "lr-scaling" => out.training.lr_scaling = parsed.training.lr_scaling,
            "left-batch-size" => out.left.batch_size = parsed.left.batch_size,
            "right-batch-size" => out.right.batch_size = parsed.right.batch_size,
            "left-steps" => out.left.steps = parsed.left.steps,
            "right-steps" => out.right.steps = parsed.right.steps,
            "switch-at" | "switch-side" | "switch-to" => {
                out.left.switch = parsed.left.switch.clone();
                out.right.switch = parsed.right.switch.clone();
            }
            "average" | "average-start" | "average-every" | "ema-decay" => {
                out.left.average = parsed.left.average.clone();
                out.right.average = parsed.right.average.clone();
            }
            _ => {} // the side settings, below
        }
    }
    let sides = [(&mut out.left, &parsed.left, "left"), (&mut out.right, &parsed.right, "right")];
    for (side, new, which) in sides {
        let kind_given = is_given("optimizer") || is_given(&format!("{which}-optimizer"));
        if kind_given && side.optimizer.kind() != new.optimizer.kind() {
            side.optimizer = new.optimizer.clone();
        }
        if let Some(lr) = number("lr") {
            side.optimizer.set_lr(lr);
        }
        if let Some(value) = number("momentum") {
            if let OptimizerConfig::Sgd { momentum, .. } | OptimizerConfig::Rmsprop { momentum, .. } =
                &mut side.optimizer
            {
                *momentum = value;
            }
        }
        if let Some(value) = number("weight-decay") {
            match &mut side.optimizer {
                OptimizerConfig::Sgd { weight_decay, .. }
                | OptimizerConfig::Adam { weight_decay, .. }
                | OptimizerConfig::AdamW { weight_decay, .. }
                | OptimizerConfig::Rmsprop { weight_decay, .. } => *weight_decay = value,
            }
        }
        if is_given(which) {
            side.sam = new.sam.clone();
        }
        if let (Some(rho), Some(sam)) = (number("rho"), &mut side.sam) {
            sam.rho = rho;
        }
        if let Some(switch) = &mut side.switch {
            if let (Some(rho), Some(sam)) = (number("rho"), &mut switch.sam) {
                sam.rho = rho;
            }
            if let (Some(lr), Some(o)) = (number("lr"), &mut switch.optimizer) {
                o.set_lr(lr);
            }
        }
        if is_given("schedule") {
            side.schedule = new.schedule.clone();
        }
    }
    out.validate().map_err(|e| vec![e])?;
    Ok(out)
}

/// The README's table of the run's settings (`| name | meaning: values (default) |`),
/// one row a setting; a test checks that the README has exactly these rows.
pub fn markdown_rows() -> String {
    SETTINGS
        .iter()
        .map(|s| {
            let default = if s.default.is_empty() { String::new() } else { format!(" ({})", s.default) };
            format!("| `{}` | {}{default} |\n", s.name, s.describe())
        })
        .collect()
}

fn names() -> String {
    SETTINGS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

fn default_of(name: &str) -> &'static str {
    SETTINGS.iter().find(|s| s.name == name).map_or("", |s| s.default)
}

fn count(v: &str, lo: usize, hi: usize) -> Result<usize, String> {
    let x: usize = v.parse().map_err(|_| format!("must be a whole number in [{lo}, {hi}], got `{v}`"))?;
    check_count("", x, lo, hi).map(|_| x).map_err(|e| e.message)
}

fn hidden(v: &str) -> Result<Vec<usize>, String> {
    if v == "0" || v == "none" {
        return Ok(vec![]);
    }
    let widths = v.split(',').map(|w| count(w.trim(), 1, 64)).collect::<Result<Vec<_>, _>>()?;
    if widths.len() > 6 {
        return Err(format!("at most 6 hidden layers, got {}", widths.len()));
    }
    Ok(widths)
}

/// `0.2` (every hidden layer) or `0.1,0.3` (one per layer); all zeros is no dropout.
fn dropout(v: &str) -> Result<Vec<f64>, String> {
    let max = crate::dropout::MAX_DROPOUT;
    let rates = v
        .split(',')
        .map(|p| match p.trim().parse::<f64>() {
            Ok(x) if (0.0..=max).contains(&x) => Ok(x),
            _ => Err(format!("must be probabilities in [0, {max}], one or one per hidden layer, got `{v}`")),
        })
        .collect::<Result<Vec<f64>, String>>()?;
    Ok(if rates.iter().all(|&p| p == 0.0) { vec![] } else { rates })
}

/// The `dropout` setting's text for a config's list (`0` for none).
fn dropout_text(rates: &[f64]) -> String {
    if rates.is_empty() {
        return "0".to_string();
    }
    rates.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")
}

/// A value of a choice setting, checked against its declared options.
fn choice(spec: &SettingSpec, v: &str) -> Result<String, String> {
    match spec.kind {
        Kind::Choice { options } if options.iter().any(|(o, _)| *o == v) => Ok(v.to_string()),
        _ => Err(format!("unknown value `{v}` (expected {})", spec.values())),
    }
}

/// SWA's start when `average-start` is 0: after three quarters of the steps
/// (torch's swa_utils example starts at epoch 160 of 300; Izmailov et al. at 75%).
fn swa_auto_start(steps: usize) -> usize {
    (steps * 3 / 4).max(1)
}

fn optimizer_kind(v: &str) -> Result<String, String> {
    OptimizerConfig::with_kind(v, 0.1).map(|o| o.kind().to_string())
}

fn wrapper(v: &str) -> Result<String, String> {
    match v {
        "plain" | "none" | "sam" | "asam" => Ok(if v == "none" { "plain" } else { v }.to_string()),
        _ => Err(format!("must be plain, sam or asam, got `{v}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors that name `setting` when it is given `value` (with `context` settings too).
    fn errors_for(setting: &str, value: &str, context: &[(&str, &str)]) -> Vec<String> {
        let mut pairs = context.to_vec();
        pairs.push((setting, value));
        let (_, errors) = config_from_settings(pairs);
        errors.into_iter().filter(|e| e.field == setting).map(|e| e.message).collect()
    }

    #[test]
    fn the_declaration_matches_what_the_parser_accepts() {
        // Cross-field rules aside: a batch of 5000 needs 5000 points, a spurious flip the spurious data.
        for spec in SETTINGS {
            let context: &[(&str, &str)] = match spec.name {
                "points" => &[],
                "shift" => &[("dataset", "spurious")],
                "rho" => &[("right", "asam")],
                _ => &[("points", "5000")],
            };
            match &spec.kind {
                Kind::Choice { options } => {
                    for (value, _) in options.iter().filter(|(v, _)| !v.is_empty()) {
                        assert_eq!(
                            errors_for(spec.name, value, context),
                            Vec::<String>::new(),
                            "{}={value}",
                            spec.name
                        );
                    }
                    assert_eq!(errors_for(spec.name, "bogus", context).len(), 1, "{}=bogus is accepted", spec.name);
                }
                Kind::Number { min, max, min_exclusive, integer, .. } => {
                    let text = |x: f64| if *integer { format!("{}", x as u64) } else { x.to_string() };
                    let ok = |x: f64| errors_for(spec.name, &text(x), context).is_empty();
                    if spec.name != "seed" {
                        // (u64::MAX is not an f64, and a seed is parsed as a u64.)
                        assert!(ok(*max), "{}: its maximum {max} is rejected", spec.name);
                        assert!(!ok(max + 1.0), "{}: above its maximum is accepted", spec.name);
                    }
                    assert_eq!(ok(*min), !min_exclusive, "{}: minimum {min}", spec.name);
                    let below = if *integer { min - 1.0 } else { min - 0.5 };
                    if below >= 0.0 || !*integer {
                        assert!(!ok(below), "{}: {below}, below its minimum, is accepted", spec.name);
                    }
                    if *integer {
                        let fraction = (min + 0.5).to_string();
                        assert!(
                            !errors_for(spec.name, &fraction, context).is_empty(),
                            "{}: a fraction is accepted",
                            spec.name
                        );
                    }
                }
                Kind::Text { placeholder } => {
                    assert!(errors_for(spec.name, placeholder, context).is_empty(), "{}: its placeholder", spec.name);
                    assert_eq!(errors_for(spec.name, "wide", context).len(), 1, "{}=wide is accepted", spec.name);
                }
            }
            // The default is what the default config says.
            let (config, _) = config_from_settings([]);
            let current = settings_from_config(&config);
            assert!(
                current.iter().all(|(n, _)| *n != spec.name),
                "{} is not at its default in the default config",
                spec.name
            );
            assert!(
                errors_for(spec.name, spec.default, context).is_empty(),
                "{}: its default {:?}",
                spec.name,
                spec.default
            );
        }
    }

    #[test]
    fn every_group_has_settings_and_every_label_is_set() {
        for group in Group::ALL {
            assert!(SETTINGS.iter().any(|s| s.group == group), "{group:?} has no settings");
        }
        for spec in SETTINGS {
            assert!(!spec.label.is_empty() && !spec.help.is_empty(), "{} needs a label and help", spec.name);
        }
    }

    fn parse(pairs: &[(&str, &str)]) -> (RunConfig, Vec<ConfigError>) {
        config_from_settings(pairs.iter().copied())
    }

    #[test]
    fn no_settings_give_the_default_config() {
        let (config, errors) = parse(&[]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(config, RunConfig::default());
        assert!(settings_from_config(&config).is_empty());
        for spec in SETTINGS {
            if !spec.default.is_empty() {
                let (c, e) = parse(&[(spec.name, spec.default)]);
                assert!(e.is_empty(), "{}: {e:?}", spec.name);
                assert_eq!(c, RunConfig::default(), "default of {} is not the config's default", spec.name);
            }
        }
    }

    #[test]
    fn settings_apply_and_round_trip() {
        let pairs = [
            ("dataset", "spirals"),
            ("shift", "translate"),
            ("severity", "0.8"),
            ("optimizer", "adam"),
            ("right", "asam"),
            ("rho", "1.5"),
            ("lr", "0.01"),
            ("batch-size", "16"),
            ("seed", "42"),
            ("hidden", "8,8,8"),
            ("activation", "relu"),
            ("schedule", "cosine"),
            ("label-noise", "0.2"),
            ("dropout", "0.1,0.25,0"),
        ];
        let (config, errors) = parse(&pairs);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(config.data.dataset, DatasetKind::Spirals);
        assert_eq!(config.right.sam, Some(SamConfig { rho: 1.5, adaptive: true }));
        assert_eq!(config.left.optimizer.kind(), "adam");
        assert_eq!(config.seed, 42);
        assert_eq!(config.data.label_noise, 0.2);
        assert_eq!(config.model.dropout, [0.1, 0.25, 0.0]);
        let back = settings_from_config(&config);
        let (again, errors) = config_from_settings(back.iter().map(|(k, v)| (*k, v.as_str())));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(again, config);
    }

    #[test]
    fn bad_values_are_named_and_fall_back_one_by_one() {
        let (config, errors) =
            parse(&[("dataset", "moonz"), ("lr", "-3"), ("rho", "abc"), ("seed", "7"), ("colour", "red")]);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["colour", "dataset", "lr", "rho"]);
        assert!(errors[1].message.contains("moons"), "lists the valid names: {}", errors[1]);
        assert!(errors[2].message.contains("using the default 0.1"), "{}", errors[2]);
        assert_eq!(config.seed, 7, "good settings still apply");
        assert_eq!(config.data.dataset, DatasetKind::Moons);
        config.validate().unwrap();
    }

    #[test]
    fn applying_settings_to_the_default_equals_building_from_them() {
        let cases: &[&[(&str, &str)]] = &[
            &[],
            &[("steps", "200")],
            &[("dataset", "spirals"), ("optimizer", "adam"), ("right", "asam"), ("rho", "1.5"), ("lr", "0.01")],
            &[("schedule", "cosine"), ("steps", "500"), ("momentum", "0.5"), ("weight-decay", "0.001")],
            &[("left-optimizer", "rmsprop"), ("left", "sam"), ("right", "plain"), ("hidden", "8"), ("seed", "3")],
        ];
        for &pairs in cases {
            let applied = apply_settings(&RunConfig::default(), pairs.iter().copied()).unwrap();
            assert_eq!(applied, parse(pairs).0, "{pairs:?}");
        }
    }

    #[test]
    fn applied_settings_keep_the_rest_of_the_base() {
        let mut base = RunConfig::default();
        base.data.n_test = 1234;
        base.training.log_every = 7;
        base.left.optimizer =
            OptimizerConfig::Sgd { lr: 0.05, momentum: 0.8, dampening: 0.0, weight_decay: 0.0, nesterov: true };
        base.left.schedule = Schedule::Cosine { t_max: 3000, eta_min: 0.01 };
        let out = apply_settings(&base, [("steps", "200"), ("rho", "0.3")]).unwrap();
        assert_eq!((out.training.steps, out.data.n_test, out.training.log_every), (200, 1234, 7));
        assert_eq!(out.left, base.left, "no side setting touched the left side");
        assert_eq!(out.right.sam, Some(SamConfig { rho: 0.3, adaptive: false }));

        // A new optimiser kind keeps the side's lr; schedules span the base's steps.
        let out = apply_settings(&base, [("left-optimizer", "adam"), ("schedule", "cosine")]).unwrap();
        assert_eq!(out.left.optimizer.kind(), "adam");
        assert_eq!(out.left.optimizer.lr(), 0.05);
        assert_eq!(out.right.optimizer, base.right.optimizer);
        assert_eq!(out.right.schedule, Schedule::Cosine { t_max: 3000, eta_min: 0.0 });
        let out = apply_settings(&base, [("optimizer", "sgd"), ("lr", "0.2")]).unwrap();
        assert!(matches!(out.left.optimizer, OptimizerConfig::Sgd { lr: 0.2, momentum: 0.8, nesterov: true, .. }));
    }

    #[test]
    fn applied_settings_never_fall_back() {
        let base = RunConfig::default();
        let errors = apply_settings(&base, [("lr", "-1"), ("colour", "red"), ("steps", "200")]).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["colour", "lr"]);
        assert_eq!(errors[1].message, "must be a number in (0, 100], got -1");
        // A cross-field problem names the config field.
        let errors = apply_settings(&base, [("label-noise", "0.7")]).unwrap_err();
        assert_eq!(
            (errors[0].field.as_str(), errors[0].message.as_str()),
            ("label-noise", "must be a number in [0, 0.5], got 0.7")
        );
        let errors = apply_settings(&base, [("points", "10")]).unwrap_err();
        assert_eq!(errors[0].field, "training.batch_size");
        let errors = apply_settings(&base, [("shift", "spurious_flip")]).unwrap_err();
        assert_eq!(errors[0].field, "shift");
        // A pinned init that no longer fits the model.
        let pinned = RunConfig { init: Some(vec![0.0; 354]), ..RunConfig::default() };
        let errors = apply_settings(&pinned, [("hidden", "8")]).unwrap_err();
        assert_eq!(errors[0].field, "init");
    }

    #[test]
    fn the_knobs_settings_build_their_config_and_round_trip() {
        use crate::averaging::Averaging;
        let cases: &[&[(&str, &str)]] = &[
            &[("switch-at", "500"), ("right", "plain")],
            &[("switch-at", "40"), ("switch-side", "both"), ("switch-to", "adam"), ("right", "asam"), ("rho", "2")],
            &[("switch-at", "7"), ("switch-side", "right"), ("switch-to", "plain")],
            &[("left-batch-size", "200"), ("budget", "same_epochs"), ("lr-scaling", "linear"), ("lr", "0.01")],
            &[("right-batch-size", "4"), ("right-steps", "900"), ("left-steps", "100")],
            &[("average", "swa"), ("steps", "400")],
            &[("average", "swa"), ("average-start", "20"), ("average-every", "5")],
            &[("average", "ema"), ("ema-decay", "0.999")],
        ];
        for &pairs in cases {
            let (config, errors) = parse(pairs);
            assert!(errors.is_empty(), "{pairs:?}: {errors:?}");
            let back = settings_from_config(&config);
            let (again, errors) = config_from_settings(back.iter().map(|(k, v)| (*k, v.as_str())));
            assert!(errors.is_empty(), "{pairs:?}: {errors:?}");
            assert_eq!(again, config, "{pairs:?} -> {back:?}");
            assert_eq!(apply_settings(&RunConfig::default(), pairs.iter().copied()).unwrap(), config, "{pairs:?}");
        }
        // SGD -> SAM over the same SGD on the left at step 500: the base stays (state kept).
        let (c, _) = parse(cases[0]);
        let s = c.left.switch.unwrap();
        assert_eq!((s.at, s.optimizer, s.sam), (500, None, Some(SamConfig { rho: DEFAULT_RHO, adaptive: false })));
        assert!(c.right.switch.is_none());
        // Both sides to Adam, each keeping its wrapper.
        let (c, _) = parse(cases[1]);
        assert_eq!(c.left.switch.as_ref().unwrap().optimizer.as_ref().unwrap().kind(), "adam");
        assert_eq!(c.left.switch.as_ref().unwrap().sam, None);
        assert_eq!(c.right.switch.as_ref().unwrap().sam, Some(SamConfig { rho: 2.0, adaptive: true }));
        // SWA from 3/4 of the steps unless told.
        let (c, _) = parse(cases[5]);
        assert_eq!(c.left.average, Some(Averaging::Swa { start: 300, every: 1 }));
        let (c, _) = parse(cases[7]);
        assert_eq!(c.right.average, Some(Averaging::Ema { decay: 0.999 }));
    }

    #[test]
    fn bad_knob_settings_fall_back_one_by_one() {
        let (config, errors) = parse(&[("left-batch-size", "300"), ("switch-to", "lbfgs"), ("average", "polyak")]);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["switch-to", "average", "left-batch-size"], "{errors:?}");
        assert!(errors[2].message.contains("n_train = 200"), "{}", errors[2]);
        assert_eq!(config.left.batch_size, None);
        config.validate().unwrap();
        // Linear scaling to an lr above 100: the scaling falls back, named.
        let (config, errors) =
            parse(&[("lr", "90"), ("batch-size", "2"), ("left-batch-size", "200"), ("lr-scaling", "linear")]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "lr-scaling");
        assert!(errors[0].message.contains("after linear lr scaling by 100"), "{}", errors[0]);
        assert_eq!(config.training.lr_scaling, crate::config::LrScaling::None);
    }

    #[test]
    fn dropout_lists_must_fit_the_hidden_layers() {
        let (config, errors) = parse(&[("dropout", "0.5")]);
        assert!(errors.is_empty() && config.model.dropout == [0.5], "{errors:?}");
        let (config, errors) = parse(&[("dropout", "0.1,0.2,0.3")]);
        assert_eq!(errors.len(), 1, "3 rates for 2 hidden layers: {errors:?}");
        assert_eq!(errors[0].field, "dropout");
        assert!(errors[0].message.contains("2 hidden layers"), "{}", errors[0]);
        assert!(config.model.dropout.is_empty());
        let (_, errors) = parse(&[("dropout", "0.95")]);
        assert!(errors[0].message.contains("[0, 0.9]"), "{}", errors[0]);
        let errors = apply_settings(&RunConfig::default(), [("dropout", "0.1,0.2"), ("hidden", "8")]).unwrap_err();
        assert_eq!(errors[0].field, "dropout");
        assert!(errors[0].message.contains("1 hidden layers"), "{}", errors[0]);
    }

    #[test]
    fn cross_field_problems_fall_back_too() {
        let (config, errors) = parse(&[("points", "10"), ("batch-size", "64"), ("shift", "spurious_flip")]);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"batch-size") && fields.contains(&"shift"), "{errors:?}");
        assert_eq!(config.data.n_train, 10);
        assert!(config.training.batch_size <= 10);
        config.validate().unwrap();
        let (config, errors) = parse(&[("rho", "8")]);
        assert_eq!(errors.len(), 1, "rho 8 is only allowed for ASAM: {errors:?}");
        config.validate().unwrap();
    }
}

/// Characters a query value keeps as they are: what `encodeURIComponent`
/// keeps, plus the comma (`hidden=16,16` stays readable in a URL).
const QUERY_VALUE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b',');

/// Settings as a URL query without the `?`: `dataset=spirals&rho=0.2`.
pub fn to_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let encoded: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={}", percent_encoding::utf8_percent_encode(v, QUERY_VALUE)))
        .collect();
    encoded.join("&")
}

/// (name, value) pairs of a URL query (`application/x-www-form-urlencoded`, as
/// `URLSearchParams` writes it; a leading `?` is ignored). Never fails: a
/// name without `=` has the value "", which the setting then reports.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    let query = query.trim().trim_start_matches('?');
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

#[cfg(test)]
mod query_tests {
    use super::*;

    #[test]
    fn queries_round_trip_and_read_what_browsers_write() {
        let q = to_query([("hidden", "16,16"), ("left", "sgd lr=0.1&x"), ("dataset", "moons")]);
        assert_eq!(q, "hidden=16,16&left=sgd%20lr%3D0.1%26x&dataset=moons");
        let back = parse_query(&q);
        assert_eq!(back[1], ("left".to_string(), "sgd lr=0.1&x".to_string()));
        // URLSearchParams writes spaces as + and commas as %2C.
        assert_eq!(
            parse_query("?hidden=16%2C16&left=sgd+lr%3D0.1"),
            [("hidden".to_string(), "16,16".to_string()), ("left".to_string(), "sgd lr=0.1".to_string())]
        );
        assert_eq!(parse_query("rho"), [("rho".to_string(), String::new())]);
        assert!(parse_query("").is_empty());
    }
}
