//! `flatminima study`: many seeds of both sides of a config, trained through the
//! backend (R replicas per side), so that "SAM generalises better under this
//! shift" becomes a distribution instead of one run.
//!
//! The replicas and their seeds are those of [`flatminima_core::study::Study`].
//! Any grid flag (`--vary`, `--data-seeds`, ...) makes it a grid study instead:
//! see `study_grid.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use flatminima_backend::gpu::block_on;
use flatminima_backend::{Backend, Replica, ReplicaMetrics};
use flatminima_core::config::SideConfig;
use flatminima_core::data::Splits;
use flatminima_core::model::Mlp;
use flatminima_core::pair::Pair;
use flatminima_core::study::{Paired, SideSummary, Spread, Study};
use serde::Serialize;

use super::backend::{report_notices, BackendArgs};
use super::report::config_summary;
use super::study_grid::GridArgs;
use super::{print_stdout, write_file, ConfigArgs, Failure};

#[derive(Args)]
pub struct StudyArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Replicas (seeds) per side [default: 64]; in a grid study, the same as --seeds
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub replicas: Option<u32>,
    /// Optimiser steps per replica [default: the config's training.steps]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub steps: Option<u64>,
    /// Write every replica's final metrics (JSON) to FILE; `-` writes them to standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// The grid study's flags (any of them makes this a grid study, trained on the CPU)
    #[command(flatten)]
    pub grid: GridArgs,
}

/// One replica's seed and final metrics.
#[derive(Serialize)]
struct ReplicaResult {
    seed: u64,
    #[serde(flatten)]
    metrics: ReplicaMetrics,
}

#[derive(Serialize)]
struct SideStudy {
    #[serde(flatten)]
    summary: SideSummary,
    /// "gpu" or "cpu": what trained this side (a GPU failure falls back per side).
    backend: &'static str,
    seconds: f64,
    replicas: Vec<ReplicaResult>,
}

#[derive(Serialize)]
struct Output {
    config: flatminima_core::config::RunConfig,
    replicas: usize,
    steps: usize,
    backend_notices: Vec<String>,
    left: SideStudy,
    right: SideStudy,
}

pub fn run(args: StudyArgs) -> Result<(), Failure> {
    if args.grid.is_grid() {
        return super::study_grid::run(args);
    }
    if args.grid.threads.is_some() {
        return Err(Failure::bad_input(
            "--threads is for grid studies (with --vary, --data-seeds, --seeds, ...); a study of seeds trains on --backend",
        ));
    }
    let mut config = args.config.load()?;
    let steps = args.steps.map_or(config.training.steps, |s| s as usize);
    config.training.steps = steps;
    let r = args.replicas.unwrap_or(64) as usize;
    // Pair::new validates the config and draws the data (with pinned training points) as compare does.
    let pair = Pair::new(config).map_err(|e| Failure::bad_input(e.to_string()))?;
    let study = Study::new(&pair, r, steps);
    let (config, mlp) = (pair.config.clone(), study.mlp());
    let splits = study.splits.clone();
    let (backend, mut backend_notices) = args.backend.open(&mlp);
    let seeds = &study.seeds;
    let train_side = |side: usize| {
        study_side(&backend, &mlp, &splits, study.batch_size, &study.sides[side], &study.replicas(side), steps)
    };
    let left = train_side(0);
    let right = train_side(1);
    backend_notices.extend(report_notices(&backend));

    let mut text = config_summary(&config);
    text += &format!("study     {r} replicas per side (seeds {}..={}), {steps} steps each\n\n", seeds[0], seeds[r - 1]);
    text += &table(&left, &right);
    let output = Output { config, replicas: r, steps, backend_notices, left, right };
    match &args.out {
        None => print_stdout(&text),
        Some(path) if path.as_os_str() == "-" => {
            eprint!("{text}");
            print_stdout(&(serde_json::to_string(&output).expect("results serialise") + "\n"))
        }
        Some(path) => {
            write_file(path, &(serde_json::to_string_pretty(&output).expect("results serialise") + "\n"))?;
            print_stdout(&format!("{text}wrote {}\n", path.display()))
        }
    }
}

fn study_side(
    backend: &Backend,
    mlp: &Mlp,
    splits: &Arc<Splits>,
    batch_size: usize,
    side: &SideConfig,
    replicas: &[Replica],
    steps: usize,
) -> SideStudy {
    let start = Instant::now();
    let metrics = block_on(backend.train_replicas(mlp, splits, batch_size, replicas, steps));
    let seconds = start.elapsed().as_secs_f64();
    // Not backend.name(): a call the GPU refused (e.g. Adam) was done on the CPU.
    let used = backend.last_call_backend();
    SideStudy {
        summary: SideSummary::new(side.label(), &metrics),
        backend: used,
        seconds,
        replicas: replicas.iter().zip(metrics).map(|(r, metrics)| ReplicaResult { seed: r.seed, metrics }).collect(),
    }
}

/// One row per side: OOD accuracy mean / min / max, ID accuracy and train loss means,
/// divergences, time and backend; then how the pairs compare replica by replica.
fn table(left: &SideStudy, right: &SideStudy) -> String {
    let pct = |s: Option<Spread>, f: fn(Spread) -> f64| s.map_or("-".into(), |s| format!("{:.1}%", 100.0 * f(s)));
    let rows: Vec<[String; 9]> = [left, right]
        .iter()
        .map(|s| {
            let m = &s.summary;
            [
                m.label.clone(),
                pct(m.ood_acc, |s| s.mean),
                pct(m.ood_acc, |s| s.min),
                pct(m.ood_acc, |s| s.max),
                pct(m.id_acc, |s| s.mean),
                m.train_loss.map_or("-".into(), |t| format!("{:.4}", t.mean)),
                format!("{}/{}", m.diverged, s.replicas.len()),
                format!("{:.2} s", s.seconds),
                s.backend.to_string(),
            ]
        })
        .collect();
    let header =
        ["side", "OOD acc mean", "min", "max", "ID acc mean", "train loss mean", "diverged", "time", "backend"]
            .map(String::from);
    let widths: Vec<usize> =
        (0..9).map(|c| rows.iter().chain([&header]).map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let line = |r: &[String; 9]| {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (v, w))| if c == 0 { format!("{v:<w$}") } else { format!("{v:>w$}") })
            .collect();
        cells.join("  ") + "\n"
    };
    let mut out = line(&header);
    for row in &rows {
        out += &line(row);
    }
    let metrics = |s: &SideStudy| s.replicas.iter().map(|r| r.metrics).collect::<Vec<_>>();
    if let Some(p) = Paired::of(&metrics(left), &metrics(right)) {
        out += &format!(
            "paired (same seed): right - left OOD acc {:+.1} pts on average; right higher in {}, lower in {} of {}\n",
            100.0 * p.mean_ood_acc_difference,
            p.right_higher,
            p.right_lower,
            p.pairs
        );
    }
    out
}
