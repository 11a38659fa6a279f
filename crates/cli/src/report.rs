//! Text for the terminal: the config summary and the side-by-side table.

use std::time::Duration;

use flatminima_core::config::{RunConfig, SideConfig};
use flatminima_core::data::{describe, DatasetKind};
use flatminima_core::metrics::MetricPoint;
use flatminima_core::model::Mlp;
use flatminima_core::record::{RunRecord, SideRecord};
use serde_json::Value;

/// What was run, one aspect per line: data, shift, model, training, the two sides.
pub fn config_summary(config: &RunConfig) -> String {
    let data = &config.data;
    let mut dataset = data.dataset.name().to_string();
    match data.dataset {
        DatasetKind::Blobs => dataset += &format!(" ({} classes)", data.classes),
        DatasetKind::Spurious => {
            dataset += &format!(" (x2 agrees with the label {}% of the time)", 100.0 * data.spurious_agreement)
        }
        _ => {}
    }
    let train_points = match &config.train_points {
        Some(points) => format!("{} pinned train", points.len()),
        None => format!("{} train", data.n_train),
    };
    let mlp = Mlp::new(2, &config.model, config.classes());
    let widths: Vec<String> = std::iter::once(2)
        .chain(config.model.hidden.iter().copied())
        .chain([mlp.classes])
        .map(|w| w.to_string())
        .collect();
    let mut model = format!("{} {}, {} parameters", widths.join("-"), config.model.activation.name(), mlp.num_params());
    if config.init.is_some() {
        model += " (pinned init)";
    }
    if config.model.label_smoothing > 0.0 {
        model += &format!(", label smoothing {}", config.model.label_smoothing);
    }
    let t = &config.training;
    let lines = [
        (
            "data",
            format!(
                "{dataset}: {train_points} / {} ID test / {} OOD test points, noise {}, seed {}",
                data.n_test, data.n_test, data.noise, config.seed
            ),
        ),
        (
            "shift",
            format!("{} at severity {}: {}", config.shift.kind.name(), config.shift.severity, describe(&config.shift)),
        ),
        ("model", model),
        ("training", format!("{} steps of batch {}, metrics every {} steps", t.steps, t.batch_size, t.log_every)),
        ("left", side_summary(config, &config.left)),
        ("right", side_summary(config, &config.right)),
    ];
    lines.iter().map(|(key, value)| format!("{key:<9} {value}\n")).collect()
}

/// "SGD: lr=0.1 momentum=0.9 ...; schedule constant": every hyperparameter, so nothing is hidden.
fn side_summary(config: &RunConfig, side: &SideConfig) -> String {
    let params = |value: Value| match value {
        // lr first, then the rest alphabetically (serde_json's map order).
        Value::Object(map) => {
            let lr = map.get_key_value("lr");
            lr.into_iter()
                .chain(map.iter().filter(|(k, _)| *k != "kind" && *k != "lr"))
                .map(|(k, v)| format!(" {k}={v}"))
                .collect()
        }
        _ => String::new(),
    };
    let optimizer = params(serde_json::to_value(&side.optimizer).unwrap_or_default());
    let schedule = serde_json::to_value(&side.schedule).unwrap_or_default();
    let kind = schedule.get("kind").and_then(Value::as_str).unwrap_or("?").to_string();
    let mut out = format!("{}:{optimizer}; schedule {kind}{}", side.label(), params(schedule));
    let plan = config.plan(side);
    if plan.batch_size != config.training.batch_size.min(config.n_train()) || plan.steps != config.training.steps {
        out += &format!("; {} steps of batch {}", plan.steps, plan.batch_size);
    }
    if plan.lr_factor != 1.0 {
        out += &format!(" (lr x {} by linear scaling)", plan.lr_factor);
    }
    if let Some(a) = &side.average {
        out += &format!("; keeps {}", serde_json::to_string(a).unwrap_or_default());
    }
    out
}

/// Final metrics of both sides as a table, one column per side.
pub fn comparison_table(record: &RunRecord) -> String {
    let sides = record.sides();
    let metric = |f: fn(&MetricPoint) -> String| sides.map(|s| s.latest_metrics().map_or("-".to_string(), f));
    let mut rows: Vec<(String, [String; 2])> = vec![
        ("step", sides.map(|s| s.step.to_string())),
        ("train loss", metric(|m| loss(m.train_loss))),
        ("train acc", metric(|m| percent(m.train_acc))),
        ("ID loss", metric(|m| loss(m.id_loss))),
        ("ID acc", metric(|m| percent(m.id_acc))),
        ("OOD loss", metric(|m| loss(m.ood_loss))),
        ("OOD acc", metric(|m| percent(m.ood_acc))),
        ("OOD gap (ID - OOD acc)", metric(|m| format!("{:.1} pts", 100.0 * (m.id_acc - m.ood_acc)))),
        ("grad norm", metric(|m| loss(m.grad_norm))),
        ("diverged", sides.map(|s| s.diverged.as_ref().map_or("no".to_string(), |d| format!("at step {}", d.step)))),
    ]
    .into_iter()
    .map(|(name, values)| (name.to_string(), values))
    .collect();
    // The weight averages (SWA / EMA), an extra solution per side.
    if sides.iter().any(|s| s.average.is_some()) {
        let kind = sides.iter().find_map(|s| s.average.as_ref()).map_or("average", |a| a.kind.as_str());
        let average = |f: fn(&MetricPoint) -> String| {
            sides.map(|s| s.average.as_ref().and_then(|a| a.metrics.as_ref()).map_or("-".to_string(), f))
        };
        rows.push((
            format!("{kind}: weights averaged"),
            sides.map(|s| s.average.as_ref().map_or("-".to_string(), |a| a.n_averaged.to_string())),
        ));
        rows.push((format!("{kind}: train acc"), average(|m| percent(m.train_acc))));
        rows.push((format!("{kind}: ID acc"), average(|m| percent(m.id_acc))));
        rows.push((format!("{kind}: OOD loss"), average(|m| loss(m.ood_loss))));
        rows.push((format!("{kind}: OOD acc"), average(|m| percent(m.ood_acc))));
    }
    let name_width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let width = |i: usize| rows.iter().map(|(_, v)| v[i].len()).chain([sides[i].label.len()]).max().unwrap_or(0);
    let (w0, w1) = (width(0), width(1));
    let mut out = format!("{:name_width$}  {:>w0$}  {:>w1$}\n", "", sides[0].label, sides[1].label);
    for (name, [a, b]) in &rows {
        out += &format!("{name:name_width$}  {a:>w0$}  {b:>w1$}\n");
    }
    for side in sides {
        out += &divergence_note(side);
    }
    out
}

/// One line per side with the headline numbers, for `train`'s summary.
pub fn short_summary(record: &RunRecord, elapsed: Duration) -> String {
    let width = record.sides().iter().map(|s| s.label.len()).max().unwrap_or(0);
    // Each side's own steps when they differ (a side's batch size, budget or steps).
    let config = &record.config;
    let planned = [&config.left, &config.right].map(|s| config.plan(s).steps);
    let steps = if planned[0] == planned[1] {
        format!("{} steps", planned[0])
    } else {
        format!("{} and {} steps", planned[0], planned[1])
    };
    let mut out = format!(
        "trained {} and {} for {steps} in {:.2} s (OOD: {})\n",
        record.left.label,
        record.right.label,
        elapsed.as_secs_f64(),
        describe(&record.config.shift)
    );
    for side in record.sides() {
        let numbers = side.latest_metrics().map_or("no finite metrics".to_string(), |m| {
            format!(
                "train acc {:>6}  ID acc {:>6}  OOD acc {:>6}  OOD gap {:>5.1} pts",
                percent(m.train_acc),
                percent(m.id_acc),
                percent(m.ood_acc),
                100.0 * (m.id_acc - m.ood_acc)
            )
        });
        out += &format!("  {:width$}  {numbers}\n", side.label);
    }
    for side in record.sides() {
        out += &divergence_note(side);
    }
    out
}

fn divergence_note(side: &SideRecord) -> String {
    let Some(d) = &side.diverged else { return String::new() };
    let from = match (&side.final_metrics, side.history.last()) {
        (None, Some(last)) => format!(" Its metrics are from step {}, the last finite point.", last.step),
        _ => String::new(),
    };
    format!("{} diverged at step {}: {}.{from}\n", side.label, d.step, d.reason)
}

fn loss(x: f64) -> String {
    if x.abs() >= 1000.0 {
        format!("{x:.3e}")
    } else {
        format!("{x:.4}")
    }
}

fn percent(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}
