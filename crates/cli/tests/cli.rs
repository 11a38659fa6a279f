//! The `flatminima` binary end to end: records, replay, tables, error handling.
//! Runs are kept short with `--set steps=200`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use flatminima_core::config::RunConfig;
use flatminima_core::record::RunRecord;

/// Runs the binary with `args`, feeding `stdin` to it.
fn flatminima(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flatminima"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path in Cargo's scratch folder for integration tests, unique per test.
fn scratch(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}-{name}", std::process::id()))
}

/// `train --out FILE` with extra args; returns the record read back.
fn train_record(name: &str, args: &[&str]) -> RunRecord {
    let out = scratch(name);
    let mut all = vec!["train", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let output = flatminima(&all, "");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("wrote"), "{}", text(&output.stdout));
    RunRecord::from_json(&std::fs::read_to_string(out).unwrap()).unwrap()
}

/// A bad-input run: exit code 2, a message, and no panic.
fn assert_input_error(output: &Output) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn train_writes_a_complete_record() {
    let record = train_record("record", &["--set", "steps=200"]);
    assert_eq!(record.config.training.steps, 200, "the record holds the effective config");
    assert_eq!((record.left.step, record.right.step), (200, 200));
    assert_eq!((record.left.label.as_str(), record.right.label.as_str()), ("SGD", "SAM(rho=0.2)+SGD"));
    assert_ne!(record.left.final_params, record.right.final_params, "SGD and SAM should end apart");
    assert_ne!(record.left.final_params, record.initial_params);
    assert_eq!(record.data.train.len(), 200);
    assert_eq!(record.data.ood_test.len(), 500);
    assert_eq!(record.left.history.first().map(|p| p.step), Some(0));
    assert_eq!(record.left.history.last().map(|p| p.step), Some(200));
    assert!(record.left.final_metrics.is_some() && record.left.diverged.is_none());
}

#[test]
fn a_record_replays_to_identical_params() {
    let record = train_record("original", &["--set", "steps=200", "--set", "dataset=spirals", "--set", "rho=0.3"]);
    // Its config alone (seed-derived data and init)...
    let config = scratch("replay-config.json");
    std::fs::write(&config, record.config.to_json_pretty()).unwrap();
    let replay = train_record("replay", &["--config", config.to_str().unwrap()]);
    assert_eq!(replay.left.final_params, record.left.final_params);
    assert_eq!(replay.right.final_params, record.right.final_params);
    // ...the record itself as the config...
    let record_file = scratch("original");
    let again = train_record("again", &["--config", record_file.to_str().unwrap()]);
    assert_eq!(again.right.final_params, record.right.final_params);
    // ...and with the training points pinned too (exact JSON numbers; `init` already is).
    let mut pinned = record.config.clone();
    pinned.train_points = Some(record.data.train.clone());
    std::fs::write(&config, pinned.to_json_pretty()).unwrap();
    let pinned = train_record("pinned", &["--config", config.to_str().unwrap()]);
    assert_eq!(pinned.left.final_params, record.left.final_params);
    assert_eq!(pinned.right.final_params, record.right.final_params);
}

#[test]
fn compare_prints_both_sides_and_the_setup() {
    let output = flatminima(&["compare", "--set", "steps=200", "--set", "shift=translate"], "");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    for expected in
        ["SGD", "SAM(rho=0.2)+SGD", "OOD acc", "OOD gap", "grad norm", "diverged", "translated by", "2-16-16-2"]
    {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
}

#[test]
fn config_prints_the_default_and_applies_settings() {
    let output = flatminima(&["config"], "");
    assert!(output.status.success());
    assert_eq!(RunConfig::from_json(&text(&output.stdout)).unwrap(), RunConfig::default());
    // A config read from stdin, with a setting on top, comes back as a whole.
    let output = flatminima(&["config", "--config", "-", "--set", "lr=0.05"], r#"{"data": {"n_test": 321}}"#);
    let config = RunConfig::from_json(&text(&output.stdout)).unwrap();
    assert_eq!((config.data.n_test, config.left.optimizer.lr(), config.right.optimizer.lr()), (321, 0.05, 0.05));
    let output = flatminima(&["config", "--settings"], "");
    assert!(text(&output.stdout).contains("rho"));
}

#[test]
fn bad_input_names_the_field_and_exits_with_2_without_panicking() {
    let missing = scratch("missing.json");
    // (args, stdin, what the message must say)
    let cases: &[(&[&str], &str, &[&str])] = &[
        (
            &["train", "--config", "-"],
            r#"{"left": {"optimizer": {"kind": "sgd", "lr": -1}}}"#,
            &["<stdin>: left.optimizer.lr: must be a number in [0, 100], got -1"],
        ),
        (&["compare", "--config", "-"], r#"{"shift": {"severty": 1}}"#, &["unknown field `severty`", "line 1 column"]),
        (&["train", "--config", "-"], "{\n  \"seed\": 1,,\n}", &["line 2 column"]),
        (&["train", "--config", missing.to_str().unwrap()], "", &[missing.to_str().unwrap()]),
        (
            &["train", "--set", "colour=red", "--set", "lr=-3"],
            "",
            &["--set colour: unknown setting", "--set lr: must be a number in (0, 100], got -3"],
        ),
        (&["train", "--set", "rho=abc"], "", &["--set rho: must be a number"]),
        // A setting that makes the config invalid names the config field.
        (&["train", "--set", "points=10"], "", &["training.batch_size", "[1, 10]"]),
        (&["compare", "--set", "steps"], "", &["NAME=VALUE"]),
        (&["train", "--frobnicate"], "", &["frobnicate"]),
    ];
    for &(args, stdin, needles) in cases {
        let stderr = assert_input_error(&flatminima(args, stdin));
        for needle in needles {
            assert!(stderr.contains(needle), "{args:?}: message does not say {needle:?}: {stderr}");
        }
    }
}

#[test]
fn a_diverging_run_is_a_result_not_an_error() {
    let output = flatminima(&["train", "--out", "-", "--set", "lr=50", "--set", "steps=200"], "");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("diverged at step"), "{}", text(&output.stderr));
    let record = RunRecord::from_json(&text(&output.stdout)).unwrap();
    assert!(record.left.diverged.is_some());
}
