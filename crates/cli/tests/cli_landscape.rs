//! `flatminima landscape`, `flatminima sharpness` and `flatminima rescale`, run as a user would.
#![cfg(not(target_arch = "wasm32"))]

use std::process::{Command, Output};

use flatminima_core::config::RunConfig;
use flatminima_core::landscape::{curve, default_t, DirectionKind, Line};
use flatminima_core::pair::Pair;
use serde_json::Value;

fn flatminima(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flatminima")).args(args).output().expect("the binary runs")
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("flatminima-cli-landscape-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn landscape_writes_json_and_pictures_with_the_libraries_directions() {
    let dir = temp_dir("run");
    // The CPU backend: the checks below compare with the f64 core bit for bit.
    let o = flatminima(&[
        "landscape",
        "--set",
        "steps=150",
        "--grid",
        "5",
        "--backend",
        "cpu",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in ["interpolation", "left_curves", "right_curves", "left_random", "right_hessian", "left_pca"] {
        let png = std::fs::read(dir.join(format!("{name}.png"))).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{name}.png");
    }
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("landscape.json")).unwrap()).unwrap();
    let kinds: Vec<&str> =
        json["left"]["surfaces"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["random", "hessian", "pca"]);
    // The interpolation's endpoints are the centres of each side's surfaces (the solutions).
    let interp = numbers(&json["interpolation"]["train"]);
    let centre = |side: &str| numbers(&json[side]["surfaces"][0]["train"])[12];
    assert_eq!(interp[10], centre("left"));
    assert_eq!(interp[30], centre("right"));
    // The random slice is the library's (the browser's) for this seed, value for value.
    let mut config = RunConfig::default();
    config.training.steps = 150;
    let mut pair = Pair::new(config).unwrap();
    pair.train(150);
    let run = &pair.left;
    let expected =
        curve(&run.mlp, &run.splits, &Line::random(&run.mlp, &run.params, 1), &default_t(DirectionKind::Random));
    assert_eq!(numbers(&json["left"]["curves"][0]["ood"]), expected.ood);
    // The SAM side's trajectory carries its ascent points; SGD's has none.
    assert!(!json["right"]["trajectories"][2]["perturbed"].as_array().unwrap().is_empty());
    assert!(json["left"]["trajectories"][2]["perturbed"].as_array().unwrap().is_empty());
}

#[test]
fn sharpness_and_landscape_read_a_run_record() {
    let dir = temp_dir("record");
    let record = dir.join("run.json");
    let o = flatminima(&["train", "--set", "steps=120", "--out", record.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = flatminima(&["sharpness", "--run", record.to_str().unwrap(), "--quick"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: Value = serde_json::from_slice(&o.stdout).unwrap();
    for side in ["left", "right"] {
        for field in
            ["lambda_max", "trace", "eps_sharpness", "rho_sharpness", "adaptive_sharpness", "average_sharpness"]
        {
            assert!(json[side][field].as_f64().unwrap().is_finite(), "{side}.{field}");
        }
        assert_eq!(json[side]["step"], 120);
        // The page's thresholds: SGD momentum 0.9 at lr 0.1 -> (2 + 1.8) / 0.1, with its source.
        let edge = &json[side]["edge_of_stability"];
        assert!((edge["value"].as_f64().unwrap() - 38.0).abs() < 1e-12, "{edge}");
        assert!(edge["source"].as_str().unwrap().contains("Cohen et al. 2021"), "{edge}");
        assert_eq!(edge["curvature"], "lambda_max");
        assert!(json[side]["thresholds"]["2/lr"].is_null(), "2/lr is plain GD's, not momentum's");
        assert!(json[side]["preconditioned_lambda_max"].is_null());
    }
    assert_eq!(json["right"]["label"], "SAM(rho=0.2)+SGD");
    let out = dir.join("landscape");
    let o =
        flatminima(&["landscape", "--run", record.to_str().unwrap(), "--grid", "3", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(out.join("landscape.json")).unwrap()).unwrap();
    assert!(json["note"].is_null(), "the record replays exactly, so the trajectory is there: {}", json["note"]);
    let o = flatminima(&["sharpness", "--run", dir.join("missing.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn rescale_keeps_the_function_and_adaptive_sharpness_and_moves_lambda_max() {
    let dir = temp_dir("rescale");
    let record = dir.join("run.json");
    let o = flatminima(&["train", "--set", "steps=150", "--set", "activation=relu", "--out", record.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.join("rescaled.json");
    let r = record.to_str().unwrap();
    let o = flatminima(&[
        "rescale",
        "--run",
        r,
        "--layer",
        "0",
        "--alpha",
        "10",
        "--quick",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: Value = serde_json::from_slice(&o.stdout).unwrap();
    for side in ["left", "right"] {
        let s = &json[side];
        assert!(s["max_logit_change"].as_f64().unwrap() <= 1e-12, "{side}: {}", s["max_logit_change"]);
        let ratio = s["adaptive_sharpness_ratio"].as_f64().unwrap();
        assert!((ratio - 1.0).abs() < 1e-9, "{side}: adaptive sharpness moved by {ratio}");
        let lambda = s["lambda_max_ratio"].as_f64().unwrap();
        assert!(!(0.5..2.0).contains(&lambda), "{side}: lambda_max ratio {lambda}");
        assert_eq!(s["before"]["loss"], s["after"]["loss"]);
    }
    // The written record holds the rescaled solutions: same accuracies, other parameters.
    let before = flatminima_core::record::RunRecord::from_json(&std::fs::read_to_string(&record).unwrap()).unwrap();
    let after = flatminima_core::record::RunRecord::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let (b, a) = (before.left.final_metrics.unwrap(), after.left.final_metrics.unwrap());
    assert_eq!((b.train_acc, b.id_acc, b.ood_acc), (a.train_acc, a.id_acc, a.ood_acc));
    assert!((b.ood_loss - a.ood_loss).abs() < 1e-12);
    assert_ne!(before.left.final_params, after.left.final_params);
    // A tanh net cannot be rescaled: a clear message, exit code 2.
    let o = flatminima(&["rescale", "--set", "steps=10", "--quick"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("only for ReLU"), "{}", String::from_utf8_lossy(&o.stderr));
}
