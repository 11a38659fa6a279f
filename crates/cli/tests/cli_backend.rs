//! `--backend auto|gpu|cpu` and `flatminima study`, run as a user would. The GPU
//! cases pass on machines without any adapter too (there the notice is checked instead),
//! except under CI=true, where a missing adapter fails (tests/support/adapter.rs at the workspace root).
#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

#[path = "../../../tests/support/adapter.rs"]
mod adapter;

fn flatminima(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flatminima"));
    command.args(args).env_remove("FLATMINIMA_NO_GPU");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-backend-{}-{name}", std::process::id()))
}

fn read_json(path: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The backend line on stderr ("backend: gpu: ..." or "backend: cpu: ...").
fn active(o: &Output) -> String {
    let err = stderr(o);
    let line = err.lines().find(|l| l.starts_with("backend: ")).unwrap_or_else(|| panic!("no backend line: {err}"));
    line["backend: ".len()..].split(':').next().unwrap().to_string()
}

const STUDY: [&str; 7] = ["study", "--set", "points=60", "--replicas", "3", "--steps", "40"];

#[test]
fn a_bogus_backend_is_refused_with_the_allowed_values() {
    for command in ["study", "landscape"] {
        let o = flatminima(&[command, "--backend", "bogus", "--out", "x"], &[]);
        assert_eq!(o.status.code(), Some(2), "{command}");
        let err = stderr(&o);
        assert!(err.contains("--backend") && err.contains("auto, gpu, cpu") && err.contains("bogus"), "{err}");
    }
}

#[test]
fn study_on_the_cpu_writes_every_replica() {
    let out = scratch("cpu.json");
    let mut args = STUDY.to_vec();
    args.extend(["--backend", "cpu", "--out", out.to_str().unwrap()]);
    let o = flatminima(&args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(active(&o), "cpu");
    let table = String::from_utf8_lossy(&o.stdout);
    for expected in ["OOD acc mean", "3 replicas per side", "SAM(rho=0.2)+SGD", "paired (same seed)", "wrote"] {
        assert!(table.contains(expected), "{expected}: {table}");
    }
    let json = read_json(&out);
    assert_eq!((json["replicas"].as_u64(), json["steps"].as_u64()), (Some(3), Some(40)));
    assert_eq!(json["config"]["training"]["steps"], 40);
    for side in ["left", "right"] {
        let replicas = json[side]["replicas"].as_array().unwrap();
        assert_eq!(replicas.len(), 3);
        let seeds: Vec<u64> = replicas.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
        assert_eq!(seeds, [1, 2, 3]);
        for r in replicas {
            for field in ["train_loss", "train_acc", "id_loss", "id_acc", "ood_loss", "ood_acc"] {
                assert!(r[field].as_f64().unwrap().is_finite(), "{side} {field}");
            }
            assert_eq!(r["diverged"], false);
        }
        assert_eq!(json[side]["backend"], "cpu");
        assert!(json[side]["ood_acc"]["mean"].as_f64().is_some());
    }
}

/// Replica 0 is compare's own pair: same seed, same data, same init, same batches.
#[test]
fn replica_zero_is_the_compare_pair() {
    let o = flatminima(&["study", "--set", "steps=30", "--replicas", "1", "--backend", "cpu", "--out", "-"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = flatminima(&["train", "--set", "steps=30", "--out", "-"], &[]);
    let record: Value = serde_json::from_slice(&o.stdout).unwrap();
    for side in ["left", "right"] {
        let metrics = &record[side]["final_metrics"];
        let replica = &json[side]["replicas"][0];
        for field in ["train_loss", "id_acc", "ood_loss", "ood_acc"] {
            assert_eq!(replica[field], metrics[field], "{side} {field}");
        }
    }
}

#[test]
fn study_on_the_gpu_agrees_with_the_cpu_or_says_why_not() {
    let (cpu_out, gpu_out) = (scratch("a.json"), scratch("b.json"));
    for (backend, out) in [("cpu", &cpu_out), ("gpu", &gpu_out)] {
        let mut args = STUDY.to_vec();
        args.extend(["--backend", backend, "--out", out.to_str().unwrap()]);
        let o = flatminima(&args, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        if backend == "gpu" && active(&o) == "cpu" {
            let err = stderr(&o);
            assert!(err.contains("notice: the GPU backend was requested but"), "{err}");
            adapter::no_adapter("GPU half of `flatminima study --backend gpu`", &err);
            return;
        }
        assert_eq!(active(&o), backend);
    }
    let (cpu, gpu) = (read_json(&cpu_out), read_json(&gpu_out));
    for side in ["left", "right"] {
        assert_eq!(gpu[side]["backend"], "gpu");
        for (c, g) in cpu[side]["replicas"].as_array().unwrap().iter().zip(gpu[side]["replicas"].as_array().unwrap()) {
            let (c, g) = (c["ood_loss"].as_f64().unwrap(), g["ood_loss"].as_f64().unwrap());
            assert!((c - g).abs() <= 3e-4 * c.abs() + 1e-6, "{side}: cpu {c} gpu {g}");
        }
    }
}

#[test]
fn a_hidden_gpu_falls_back_with_a_notice() {
    let mut args = STUDY.to_vec();
    args.extend(["--backend", "gpu"]);
    let o = flatminima(&args, &[("FLATMINIMA_NO_GPU", "1")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(active(&o), "cpu");
    let err = stderr(&o);
    assert!(err.contains("notice: the GPU backend was requested but FLATMINIMA_NO_GPU is set"), "{err}");
}

#[test]
fn a_side_the_gpu_cannot_train_is_trained_on_the_cpu_and_labelled_so() {
    let out = scratch("adam.json");
    let mut args = STUDY.to_vec();
    args.extend(["--set", "left-optimizer=adam", "--backend", "gpu", "--out", out.to_str().unwrap()]);
    let o = flatminima(&args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json = read_json(&out);
    assert_eq!(json["left"]["backend"], "cpu", "Adam is CPU-only in the replica kernels");
    assert_eq!(json["right"]["backend"].as_str(), Some(active(&o).as_str()));
    if active(&o) == "gpu" {
        let err = stderr(&o);
        assert!(err.contains("notice: replica training:") && err.contains("Adam"), "{err}");
        assert_eq!(json["backend_notices"].as_array().unwrap().len(), 1);
    } else {
        adapter::no_adapter("GPU half of `flatminima study --backend gpu` with Adam on one side", &stderr(&o));
    }
}

#[test]
fn study_refuses_bad_input_with_exit_code_2() {
    for (args, expected) in [
        (vec!["study", "--replicas", "0"], "--replicas"),
        (vec!["study", "--steps", "0"], "--steps"),
        (vec!["study", "--set", "lr=500"], "lr"),
        (vec!["study", "--replicas", "many"], "--replicas"),
    ] {
        let o = flatminima(&args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(expected), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn landscape_surfaces_through_either_backend_agree() {
    let dirs = [scratch("land-cpu"), scratch("land-gpu")];
    let mut used = vec![];
    for (backend, dir) in ["cpu", "gpu"].iter().zip(&dirs) {
        let o = flatminima(
            &["landscape", "--set", "steps=60", "--grid", "5", "--backend", backend, "--out", dir.to_str().unwrap()],
            &[],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        used.push(active(&o));
    }
    let [cpu, gpu] = dirs.map(|d| read_json(&d.join("landscape.json")));
    assert_eq!(cpu["backend"], "cpu");
    assert_eq!(gpu["backend"].as_str(), Some(used[1].as_str()));
    if used[1] == "cpu" {
        adapter::no_adapter("GPU half of `flatminima landscape --backend gpu`", &gpu["backend_notices"]);
        assert!(!gpu["backend_notices"].as_array().unwrap().is_empty());
        return;
    }
    for side in ["left", "right"] {
        for (c, g) in cpu[side]["surfaces"].as_array().unwrap().iter().zip(gpu[side]["surfaces"].as_array().unwrap()) {
            for split in ["train", "ood"] {
                for (c, g) in c[split].as_array().unwrap().iter().zip(g[split].as_array().unwrap()) {
                    let (c, g) = (c.as_f64().unwrap(), g.as_f64().unwrap());
                    assert!((c - g).abs() <= 1e-4 * c.abs() + 1e-6, "{side} {split}: cpu {c} gpu {g}");
                }
            }
        }
    }
}
