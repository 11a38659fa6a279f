//! `flatminima sharpness`: every sharpness measure for both sides, as JSON.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use flatminima::hessian::MAX_DENSE_PARAMS;
use flatminima::pair::Pair;
use flatminima::record::RunRecord;
use flatminima::sharpness::{measure, SharpnessReport, SharpnessSettings};
use flatminima::sharpness_tracker::stability_thresholds;
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
    /// The edge-of-stability reference for lambda_max that applies to this side's optimiser
    /// (Cohen et al. 2021): (2 + 2 beta) / lr for SGD with heavy-ball momentum beta, the
    /// Nesterov one for Nesterov, 2 / lr otherwise; the same thresholds as the page's.
    edge_of_stability: f64,
    /// Every threshold by name ("2/lr", "(2+2β)/lr", ...), as the page's `thresholds`.
    thresholds: BTreeMap<String, f64>,
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
            let thresholds = stability_thresholds(&run.side, run.current_lr());
            SideSharpness {
                label: run.side.label(),
                step: run.step,
                // The last threshold is the optimiser's own (momentum's, where there is one).
                edge_of_stability: thresholds.last().expect("2/lr is always there").1,
                thresholds: thresholds.into_iter().collect(),
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
