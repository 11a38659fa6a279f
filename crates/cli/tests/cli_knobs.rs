//! The knobs of issue 12 through the command line: the weight average's rows
//! and measures, each optimiser's edge-of-stability label, ensembles
//! (the definitions themselves are checked in tests/knobs.rs at the workspace root).

#[test]
fn the_cli_reports_the_averages_metrics_and_sharpness() {
    let run = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_flatminima")).args(args).output().unwrap();
    let o = run(&["compare", "--set", "steps=60", "--set", "average=swa", "--set", "average-start=30"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("SWA: weights averaged") && out.contains("SWA: OOD acc"), "{out}");
    let line = out.lines().find(|l| l.starts_with("SWA: weights averaged")).unwrap();
    assert!(line.split_whitespace().filter(|w| *w == "31").count() == 2, "steps 30..60: {line}");
    let o = run(&["sharpness", "--quick", "--set", "steps=40", "--set", "average=ema"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["left"]["average"]["kind"], "EMA");
    assert_eq!(json["left"]["average"]["n_averaged"], 40);
    assert!(json["left"]["average"]["lambda_max"].as_f64().unwrap() > 0.0);
}

#[test]
fn the_cli_labels_each_optimisers_edge_of_stability() {
    let run = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_flatminima")).args(args).output().unwrap();
    let o = run(&[
        "sharpness",
        "--quick",
        "--set",
        "steps=60",
        "--set",
        "left-optimizer=adam",
        "--set",
        "lr=0.01",
        "--set",
        "right-optimizer=rmsprop",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let adam = &json["left"];
    assert!((adam["edge_of_stability"]["value"].as_f64().unwrap() - 3800.0).abs() < 1e-9, "38 / lr");
    assert_eq!(adam["edge_of_stability"]["curvature"], "preconditioned_lambda_max");
    assert!(adam["preconditioned_lambda_max"].as_f64().unwrap() > 0.0);
    assert!(adam["thresholds"].as_object().unwrap().is_empty(), "no line on the lambda_max chart");
    assert!(json["right"]["edge_of_stability"].is_null(), "RMSprop: no threshold");
}

#[test]
fn the_cli_trains_ensembles_of_both_sides() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("knobs-{}", std::process::id()));
    let out = dir.join("ensemble.json");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_flatminima"))
        .args(["ensemble", "--members", "3", "--set", "steps=40", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("SGD - 3 members") && text.contains("OOD acc"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(json["right"]["member_metrics"].as_array().unwrap().len(), 3);
    assert!(json["left"]["ood_acc"].as_f64().unwrap() > 0.0);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_flatminima"))
        .args(["ensemble", "--members", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("members: must be in [1, 64]"));
}
