//! Flat `name=value` settings: the vocabulary shared by the element's
//! attributes, the page's URL and the CLI's overrides.
//!
//! A [`RunConfig`] is a tree; a blog author writes `<flatminima-sandbox
//! dataset="spirals" rho="0.2">` and a student shares `?dataset=spirals&rho=0.2`.
//! Both go through [`config_from_settings`]: every known name is parsed on its
//! own, and a bad value produces a [`ConfigError`] naming the setting while
//! that one setting falls back to its default. The rest of the config still applies.

use crate::config::{RunConfig, SideConfig, DEFAULT_LR, DEFAULT_RHO};
use crate::data::{DatasetKind, ShiftKind};
use crate::error::{check_count, check_range, ConfigError};
use crate::optim::OptimizerConfig;
use crate::sam::SamConfig;
use crate::schedule::Schedule;

/// One setting: its name (attribute / URL key), what it means and its default.
pub struct SettingSpec {
    pub name: &'static str,
    pub help: &'static str,
    pub default: &'static str,
}

/// Every setting, in the order the page shows them.
pub const SETTINGS: &[SettingSpec] = &[
    SettingSpec { name: "dataset", help: "moons, circles, xor, spirals, blobs or spurious", default: "moons" },
    SettingSpec { name: "noise", help: "input noise std, 0..1", default: "0.1" },
    SettingSpec { name: "points", help: "training points, 4..5000", default: "200" },
    SettingSpec { name: "classes", help: "classes for blobs, 2..8", default: "2" },
    SettingSpec {
        name: "shift",
        help: "none, translate, rotate, scale, noise, class_prior or spurious_flip",
        default: "rotate",
    },
    SettingSpec { name: "severity", help: "shift severity, 0..1", default: "0.5" },
    SettingSpec { name: "hidden", help: "hidden widths, e.g. 16,16 (0-6 layers of 1-64)", default: "16,16" },
    SettingSpec { name: "activation", help: "tanh, relu, gelu or sigmoid", default: "tanh" },
    SettingSpec {
        name: "optimizer",
        help: "base optimiser of both sides: sgd, adam, adamw or rmsprop",
        default: "sgd",
    },
    SettingSpec { name: "left-optimizer", help: "override the left side's base optimiser", default: "" },
    SettingSpec { name: "right-optimizer", help: "override the right side's base optimiser", default: "" },
    SettingSpec { name: "left", help: "left side's wrapper: plain, sam or asam", default: "plain" },
    SettingSpec { name: "right", help: "right side's wrapper: plain, sam or asam", default: "sam" },
    SettingSpec { name: "rho", help: "SAM radius, 0..5 (ASAM 0..10)", default: "0.2" },
    SettingSpec { name: "lr", help: "learning rate, (0, 100]", default: "0.1" },
    SettingSpec { name: "momentum", help: "SGD/RMSprop momentum, 0..0.999", default: "0.9" },
    SettingSpec { name: "weight-decay", help: "weight decay, 0..1", default: "0" },
    SettingSpec { name: "schedule", help: "constant, cosine, step or warmup", default: "constant" },
    SettingSpec { name: "batch-size", help: "minibatch size, 1..points", default: "32" },
    SettingSpec { name: "steps", help: "steps to train, 1..10000000", default: "3000" },
    SettingSpec { name: "seed", help: "random seed (data, init, batches), a whole number", default: "1" },
    SettingSpec { name: "label-smoothing", help: "0..0.99", default: "0" },
    SettingSpec { name: "label-noise", help: "fraction of training labels flipped, 0..0.5", default: "0" },
];

/// Builds a config from settings. Unknown names and bad values are reported
/// (and ignored: the default stays); the config returned is always valid.
pub fn config_from_settings<'a>(
    settings: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (RunConfig, Vec<ConfigError>) {
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
    let mut apply = |name: &str, f: &mut dyn FnMut(&str) -> Result<(), String>| {
        if let Some(v) = get(name) {
            if let Err(message) = f(v) {
                errors.push(ConfigError::new(name, format!("{message}; using the default {}", default_of(name))));
            }
        }
    };
    let (mut base, mut left_base, mut right_base) = ("sgd".to_string(), None::<String>, None::<String>);
    let (mut left_wrap, mut right_wrap) = ("plain".to_string(), "sam".to_string());
    let (mut lr, mut rho, mut momentum, mut weight_decay) = (DEFAULT_LR, DEFAULT_RHO, 0.9, 0.0);
    let mut schedule_name = "constant".to_string();

    apply("dataset", &mut |v| {
        config.data.dataset = v.parse::<DatasetKind>().map_err(|e| e.message)?;
        Ok(())
    });
    apply("noise", &mut |v| {
        config.data.noise = number(v, 0.0, 1.0)?;
        Ok(())
    });
    apply("points", &mut |v| {
        config.data.n_train = count(v, 4, 5000)?;
        Ok(())
    });
    apply("classes", &mut |v| {
        config.data.classes = count(v, 2, 8)?;
        Ok(())
    });
    apply("shift", &mut |v| {
        config.shift.kind = v.parse::<ShiftKind>().map_err(|e| e.message)?;
        Ok(())
    });
    apply("severity", &mut |v| {
        config.shift.severity = number(v, 0.0, 1.0)?;
        Ok(())
    });
    apply("hidden", &mut |v| {
        config.model.hidden = hidden(v)?;
        Ok(())
    });
    apply("activation", &mut |v| {
        config.model.activation = v.parse()?;
        Ok(())
    });
    apply("label-smoothing", &mut |v| {
        config.model.label_smoothing = number(v, 0.0, 0.99)?;
        Ok(())
    });
    apply("label-noise", &mut |v| {
        config.data.label_noise = number(v, 0.0, crate::data::label_noise::MAX_LABEL_NOISE)?;
        Ok(())
    });
    apply("optimizer", &mut |v| {
        base = optimizer_kind(v)?;
        Ok(())
    });
    apply("left-optimizer", &mut |v| {
        left_base = Some(optimizer_kind(v)?);
        Ok(())
    });
    apply("right-optimizer", &mut |v| {
        right_base = Some(optimizer_kind(v)?);
        Ok(())
    });
    apply("left", &mut |v| {
        left_wrap = wrapper(v)?;
        Ok(())
    });
    apply("right", &mut |v| {
        right_wrap = wrapper(v)?;
        Ok(())
    });
    apply("lr", &mut |v| {
        lr = number(v, 0.0, 100.0)?;
        if lr == 0.0 {
            return Err("must be > 0".into());
        }
        Ok(())
    });
    apply("rho", &mut |v| {
        rho = number(v, 0.0, 10.0)?;
        Ok(())
    });
    apply("momentum", &mut |v| {
        momentum = number(v, 0.0, 0.999)?;
        Ok(())
    });
    apply("weight-decay", &mut |v| {
        weight_decay = number(v, 0.0, 1.0)?;
        Ok(())
    });
    apply("schedule", &mut |v| {
        if ["constant", "cosine", "step", "warmup"].contains(&v) {
            schedule_name = v.to_string();
            Ok(())
        } else {
            Err(format!("unknown schedule `{v}` (expected constant, cosine, step or warmup)"))
        }
    });
    apply("steps", &mut |v| {
        config.training.steps = count(v, 1, 10_000_000)?;
        Ok(())
    });
    apply("batch-size", &mut |v| {
        config.training.batch_size = count(v, 1, 5000)?;
        Ok(())
    });
    apply("seed", &mut |v| {
        config.seed = v.parse::<u64>().map_err(|_| format!("must be a whole number >= 0, got `{v}`"))?;
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
        SideConfig { optimizer, sam, schedule: schedule.clone() }
    };
    config.left = side(left_base.as_deref().unwrap_or(&base), &left_wrap);
    config.right = side(right_base.as_deref().unwrap_or(&base), &right_wrap);

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
            "label-noise" => out.data.label_noise = parsed.data.label_noise,
            "batch-size" => out.training.batch_size = parsed.training.batch_size,
            "steps" => out.training.steps = parsed.training.steps,
            "seed" => out.seed = parsed.seed,
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
        if is_given("schedule") {
            side.schedule = new.schedule.clone();
        }
    }
    out.validate().map_err(|e| vec![e])?;
    Ok(out)
}

fn names() -> String {
    SETTINGS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

fn default_of(name: &str) -> &'static str {
    SETTINGS.iter().find(|s| s.name == name).map_or("", |s| s.default)
}

fn number(v: &str, lo: f64, hi: f64) -> Result<f64, String> {
    let x: f64 = v.parse().map_err(|_| format!("must be a number in [{lo}, {hi}], got `{v}`"))?;
    check_range("", x, lo, hi).map(|_| x).map_err(|e| e.message)
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
        ];
        let (config, errors) = parse(&pairs);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(config.data.dataset, DatasetKind::Spirals);
        assert_eq!(config.right.sam, Some(SamConfig { rho: 1.5, adaptive: true }));
        assert_eq!(config.left.optimizer.kind(), "adam");
        assert_eq!(config.seed, 42);
        assert_eq!(config.data.label_noise, 0.2);
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
        assert_eq!(errors[1].message, "must be a number in [0, 100], got -1");
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
