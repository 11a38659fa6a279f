//! `flatminima sharpness`: every sharpness measure for both sides, as JSON.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use flatminima_core::hessian::MAX_DENSE_PARAMS;
use flatminima_core::hessian::{preconditioned_lambda_max, HessianOperator};
use flatminima_core::pair::Pair;
use flatminima_core::record::RunRecord;
use flatminima_core::rng::Rng;
use flatminima_core::sharpness::sample_rows;
use flatminima_core::sharpness::{measure, SharpnessReport, SharpnessSettings};
use flatminima_core::sharpness_tracker::{side_edge_of_stability, stability_thresholds, Curvature, EdgeOfStability};
use serde::Serialize;

use super::{print_stdout, train_pair, ConfigArgs, Failure};

#[derive(Args)]
pub struct SharpnessArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// A run record from `flatminima train --out`: measure its final parameters instead of training.
    #[arg(long, value_name = "FILE")]
    pub run: Option<PathBuf>,
    /// The page's budget (256 points, 20 power iterations, no dense spectrum) instead of the thorough one.
    #[arg(long)]
    pub quick: bool,
}

#[derive(Serialize)]
struct SideSharpness {
    label: String,
    step: usize,
    /// The edge-of-stability threshold of this side's optimiser at its current lr, with its
    /// formula, source and the curvature it bounds (`sharpness_tracker::edge_of_stability`);
    /// null where no source gives one (RMSprop).
    edge_of_stability: Option<EdgeOfStability>,
    /// The thresholds the page draws on its lambda_max chart, by formula (none for Adam, whose
    /// threshold bounds the preconditioned sharpness, nor for RMSprop).
    thresholds: BTreeMap<String, f64>,
    /// For Adam and AdamW: lambda_max(P^-1 H) with the optimiser's preconditioner P, the
    /// quantity Adam's threshold bounds. Null for other optimisers, and for a `--run` record
    /// (which holds no optimiser state).
    preconditioned_lambda_max: Option<f64>,
    #[serde(flatten)]
    report: SharpnessReport,
    /// The same measures at the side's weight average (SWA / EMA), if it keeps one.
    #[serde(skip_serializing_if = "Option::is_none")]
    average: Option<AverageSharpness>,
}

#[derive(Serialize)]
struct AverageSharpness {
    kind: String,
    n_averaged: u64,
    #[serde(flatten)]
    report: SharpnessReport,
}

pub fn run(args: SharpnessArgs) -> Result<(), Failure> {
    let pair = match &args.run {
        Some(path) => load_record(path)?.0,
        None => train_pair(args.config.load()?)?,
    };
    let settings = SharpnessSettings {
        seed: pair.config.seed,
        ..if args.quick { SharpnessSettings::quick() } else { SharpnessSettings::default() }
    };
    let sides: Vec<SideSharpness> = pair
        .sides()
        .iter()
        .map(|run| {
            // The optimiser in use now (after any switch).
            let (optimizer, sam) = (&run.optimizer.config, run.sam.is_some());
            let edge = side_edge_of_stability(optimizer, sam, run.current_lr());
            let live = run.live_side();
            let preconditioned =
                edge.as_ref().filter(|e| e.curvature == Curvature::PreconditionedLambdaMax).and_then(|_| {
                    let p = run.optimizer.preconditioner()?;
                    let (x, y) = sample_rows(&run.splits.train, settings.max_points, settings.seed);
                    let mut op = HessianOperator::new(&run.mlp, &run.params, &x, &y);
                    let mut rng = Rng::derive(settings.seed, "preconditioned-lambda-max");
                    Some(preconditioned_lambda_max(
                        &mut op,
                        &p,
                        &mut rng,
                        settings.power_iterations,
                        settings.power_tolerance,
                    ))
                });
            SideSharpness {
                label: run.side.label(),
                step: run.step,
                edge_of_stability: edge,
                thresholds: stability_thresholds(&live, run.current_lr()).into_iter().collect(),
                preconditioned_lambda_max: preconditioned,
                report: measure(&run.mlp, &run.params, &run.splits.train, &settings),
                average: run.average.as_ref().and_then(|a| {
                    Some(AverageSharpness {
                        kind: a.config.name().to_string(),
                        n_averaged: a.n_averaged,
                        report: measure(&run.mlp, a.solution()?, &run.splits.train, &settings),
                    })
                }),
            }
        })
        .collect();
    if settings.spectrum && sides.iter().any(|s| s.report.spectrum.is_none()) {
        let params = pair.left.mlp.num_params();
        eprintln!(
            "notice: no dense Hessian spectrum: the network has {params} parameters, more than the \
             {MAX_DENSE_PARAMS} a dense Hessian is built for (P^2 memory, P^3 time)"
        );
    }
    let json = serde_json::json!({ "left": sides[0], "right": sides[1] });
    print_stdout(&(serde_json::to_string_pretty(&json).expect("reports serialise") + "\n"))
}

/// Reads a run record and rebuilds its pair at the final parameters.
pub fn load_record(path: &std::path::Path) -> Result<(Pair, RunRecord), Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::bad_input(format!("cannot read run record {}: {e}", path.display())))?;
    let record: RunRecord = serde_json::from_str(&text)
        .map_err(|e| Failure::bad_input(format!("{}: not a run record: {e}", path.display())))?;
    let pair = record.to_pair().map_err(|e| Failure::bad_input(format!("{} {e}", path.display())))?;
    Ok((pair, record))
}
