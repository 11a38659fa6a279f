//! `flatminima study` as a grid study, run as a user would: shards merged equal
//! the unsharded run byte for byte, the CSV has a row per run and evaluation,
//! and bad input is refused with exit code 2 and a message naming it.
#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;
use std::process::{Command, Output};

fn flatminima(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flatminima")).args(args).output().expect("the binary runs")
}

fn scratch(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-study-{}-{name}", std::process::id()))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const GRID: [&str; 14] = [
    "study",
    "--set",
    "points=40",
    "--set",
    "steps=20",
    "--set",
    "hidden=4",
    "--vary",
    "lr=0.05,0.2",
    "--vary",
    "severity=0.3,0.6",
    "--data-seeds",
    "3",
    "--seeds",
];

#[test]
fn shards_merged_equal_the_unsharded_study_byte_for_byte() {
    let run = |extra: &[&str], out: &PathBuf| {
        let mut args = GRID.to_vec();
        args.push("2");
        args.extend(extra);
        args.extend(["--out", out.to_str().unwrap()]);
        let o = flatminima(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        o
    };
    let whole = scratch("whole.json");
    let csv = scratch("whole.csv");
    let o = run(&["--csv", csv.to_str().unwrap(), "--threads", "1"], &whole);
    let text = String::from_utf8_lossy(&o.stdout);
    for expected in [
        "2 cells x 3 data draws x 2 seeds = 12 pairs",
        "verdict (rotate 0.3)",
        "Kendall tau-b",
        "granulated",
        "wall clock, one thread",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    // Units spread over threads: the same study, byte for byte.
    let threaded = scratch("threaded.json");
    let o = run(&["--threads", "3"], &threaded);
    assert!(String::from_utf8_lossy(&o.stdout).contains("wall clock, 3 threads"));
    assert_eq!(std::fs::read(&threaded).unwrap(), std::fs::read(&whole).unwrap(), "3 threads != one");
    let shards: Vec<PathBuf> = (0..4).map(|i| scratch(&format!("shard{i}.json"))).collect();
    for (i, path) in shards.iter().enumerate() {
        let o = run(&["--shard", &format!("{i}/4")], path);
        assert!(String::from_utf8_lossy(&o.stdout).contains("merge all shards"));
    }
    let merged = scratch("merged.json");
    let mut args = vec!["study", "--merge"];
    args.extend(shards.iter().rev().map(|p| p.to_str().unwrap()));
    args.extend(["--out", merged.to_str().unwrap()]);
    let o = flatminima(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&merged).unwrap(), std::fs::read(&whole).unwrap(), "merged != unsharded");

    // 24 runs x 2 severities, plus the header; the axis is a column.
    let csv = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 48);
    assert!(lines[0].starts_with("cell,lr,draw,data_seed,seed_index,seed,side,label,shift,severity,"), "{}", lines[0]);
    assert!(lines[1].starts_with("0,0.05,0,1,0,1,left,SGD,rotate,0.3,20,"), "{}", lines[1]);

    // A missing shard is named.
    let o = flatminima(&["study", "--merge", shards[0].to_str().unwrap(), shards[2].to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("shard 1/4 is missing"), "{}", stderr(&o));
}

#[test]
fn a_grid_file_is_the_same_as_its_vary_flags() {
    let file = scratch("axes.grid");
    std::fs::write(&file, "# two axes\nlr=0.05,0.2\nhidden=3x3,4  # widths joined by x\n").unwrap();
    let common = ["study", "--set", "points=40", "--set", "steps=5", "--data-seeds", "2"];
    let run = |extra: &[&str]| {
        let mut args = common.to_vec();
        args.extend(extra);
        args.extend(["--out", "-"]);
        let o = flatminima(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        o.stdout
    };
    let from_file = run(&["--grid", file.to_str().unwrap()]);
    let from_flags = run(&["--vary", "lr=0.05,0.2", "--vary", "hidden=3x3,4"]);
    assert_eq!(from_file, from_flags);
    let json: serde_json::Value = serde_json::from_slice(&from_file).unwrap();
    assert_eq!(json["cells"].as_array().unwrap().len(), 4);
    assert_eq!(json["cells"][0]["settings"][1], serde_json::json!(["hidden", "3,3"]));
}

#[test]
fn bad_grid_input_is_refused_with_exit_code_2() {
    let grid_file = scratch("bad.grid");
    std::fs::write(&grid_file, "lr=0.1,0.2\n# a comment\nrho\n").unwrap();
    for (args, expected) in [
        (vec!["study", "--vary", "lr=0.1,fast"], "lr=fast: must be a number"),
        (vec!["study", "--vary", "lr"], "expected NAME=V1,V2"),
        (vec!["study", "--vary", "seed=1,2"], "--data-seeds"),
        (vec!["study", "--shard", "2/2", "--out", "x.json"], "0 <= I < N"),
        (vec!["study", "--shard", "0/2"], "--shard needs --out"),
        (vec!["study", "--data-seeds", "0"], "--data-seeds"),
        (vec!["study", "--until-train-loss", "-1"], "until-train-loss: must be a positive number"),
        (vec!["study", "--grid", grid_file.to_str().unwrap()], "bad.grid:3: expected NAME=V1,V2"),
        (vec!["study", "--merge", "/nonexistent/shard.json"], "cannot read shard"),
        (vec!["study", "--merge", "a.json", "--set", "lr=0.2"], "--merge takes the shard files"),
        (vec!["study", "--data-seeds", "2", "--threads", "0"], "--threads"),
        (vec!["study", "--threads", "2"], "--threads is for grid studies"),
    ] {
        let o = flatminima(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{args:?}: {}", stderr(&o));
    }
}

/// `--measures fast` is the page's study panel's (lambda_max by Lanczos, the
/// exact trace from the Hessian's diagonal), recorded in the spec; the default
/// is the dense spectrum. The training and the loss-based measures are the same.
#[test]
fn fast_measures_are_recorded_and_agree_with_the_dense_spectrum() {
    let run = |extra: &[&str], name: &str| {
        let out = scratch(name);
        let mut args = GRID.to_vec();
        args.push("1");
        args.extend(extra);
        args.extend(["--out", out.to_str().unwrap()]);
        let o = flatminima(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&out).unwrap()).unwrap()
    };
    let (exact, fast) = (run(&[], "exact.json"), run(&["--measures", "fast"], "fast.json"));
    assert_eq!(fast["spec"]["sharpness"]["lanczos_steps"], 20);
    assert_eq!(fast["spec"]["sharpness"]["exact_trace"], true);
    assert_eq!(fast["spec"]["sharpness"]["spectrum"], false);
    assert!(exact["spec"]["sharpness"].get("lanczos_steps").is_none(), "the default's JSON is unchanged");
    let runs = |v: &serde_json::Value| v["runs"].as_array().unwrap().clone();
    for (e, f) in runs(&exact).iter().zip(&runs(&fast)) {
        assert_eq!((&e["train_loss"], &e["rho_sharpness"]), (&f["train_loss"], &f["rho_sharpness"]));
        assert_eq!((e["trace_exact"].as_bool(), f["trace_exact"].as_bool()), (Some(true), Some(true)));
        let close = |k: &str| {
            let (a, b) = (e[k].as_f64().unwrap(), f[k].as_f64().unwrap());
            assert!((a - b).abs() <= 1e-9 * a.abs().max(1e-12), "{k}: {a} vs {b}");
        };
        close("lambda_max");
        close("trace");
    }
    let o = flatminima(&["study", "--measures", "slow"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
