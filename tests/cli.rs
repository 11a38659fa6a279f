//! The command-line tool, run as a user would: files in, files and tables out.

use std::process::{Command, Output};

fn flatminima(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flatminima")).args(args).output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("flatminima-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn train_writes_a_record_that_replays_exactly() {
    let dir = temp_dir("train");
    let record_path = dir.join("run.json");
    let o = flatminima(&["train", "--set", "steps=200", "--out", record_path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
    let left = &record["left"]["final_params"];
    let right = &record["right"]["final_params"];
    assert_eq!(left.as_array().unwrap().len(), 354, "2-16-16-2 has 16*3 + 16*17 + 2*17 = 354 parameters");
    assert_ne!(left, right, "SGD and SAM end in different places");
    assert_eq!(record["data"]["train"]["labels"].as_array().unwrap().len(), 200);
    assert!(record["left"]["history"].as_array().unwrap().len() > 10);

    // The record's config (with `init` pinned) replays to the same final parameters.
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, record["config"].to_string()).unwrap();
    let replay_path = dir.join("replay.json");
    let o = flatminima(&["train", "--config", config_path.to_str().unwrap(), "--out", replay_path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let replay: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&replay_path).unwrap()).unwrap();
    assert_eq!(&replay["left"]["final_params"], left);
    assert_eq!(&replay["right"]["final_params"], right);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn compare_prints_both_sides() {
    let o = flatminima(&["compare", "--set", "steps=100", "--set", "dataset=xor"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for needle in ["SGD", "SAM(rho=0.1)+SGD", "OOD acc", "dataset xor", "rotated by 45 degrees"] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn config_prints_a_valid_default_config_that_can_be_piped_back() {
    let o = flatminima(&["config"]);
    assert!(o.status.success());
    let config = flatminima::config::RunConfig::from_json(&stdout(&o)).unwrap();
    assert_eq!(config, flatminima::config::RunConfig::default());
}

#[test]
fn bad_input_names_the_field_and_exits_2_without_panicking() {
    let dir = temp_dir("bad");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["train".into(), "--set".into(), "rho=abc".into()], "rho"),
        (vec!["train".into(), "--set".into(), "colour=red".into()], "colour"),
        (vec!["train".into(), "--set".into(), "rho".into()], "NAME=VALUE"),
        (vec!["train".into(), "--config".into(), dir.join("missing.json").display().to_string()], "missing.json"),
        (
            vec![
                "compare".into(),
                "--config".into(),
                write(&dir, "lr.json", r#"{"left":{"optimizer":{"kind":"sgd","lr":500}}}"#),
            ],
            "left.optimizer.lr",
        ),
        (vec!["train".into(), "--config".into(), write(&dir, "typo.json", r#"{"shift":{"severty":1}}"#)], "severty"),
        (vec!["train".into(), "--config".into(), write(&dir, "syntax.json", "{\"seed\": 1,,}")], "line 1"),
        (vec!["train".into(), "--frobnicate".into()], "frobnicate"),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = flatminima(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: message does not name {needle:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(dir).ok();
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}
