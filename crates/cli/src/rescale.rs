//! `flatminima rescale`: Dinh et al.'s (2017) reparametrisation of both
//! solutions: one ReLU layer times alpha, the next layer's weights divided by
//! alpha. The function stays (to rounding); lambda_max, the trace and the other
//! plain measures move; adaptive sharpness stays. Prints both, as JSON.

use std::path::PathBuf;

use clap::Args;
use flatminima_core::record::RunRecord;
use flatminima_core::sharpness::{compare_rescaled, RescaleComparison, SharpnessSettings};
use serde::Serialize;

use super::sharpness::load_record;
use super::{print_stdout, train_pair, write_file, ConfigArgs, Failure};

#[derive(Args)]
pub struct RescaleArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// A run record from `flatminima train --out`: rescale its final parameters instead of training.
    #[arg(long, value_name = "FILE")]
    pub run: Option<PathBuf>,
    /// The layer multiplied by alpha, counted from 0 (the first hidden layer); the next layer's
    /// weights are divided by alpha. Any layer but the output layer.
    #[arg(long, default_value_t = 0)]
    pub layer: usize,
    /// The factor (> 0).
    #[arg(long, default_value_t = 10.0)]
    pub alpha: f64,
    /// The page's budget (256 points, 20 power iterations, no dense spectrum) instead of the thorough one.
    #[arg(long)]
    pub quick: bool,
    /// Also write the run record with both sides' final parameters rescaled (JSON), for
    /// `landscape --run` or `sharpness --run`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Serialize)]
struct SideRescale {
    label: String,
    /// after / before, for the measures the rescaling is about.
    lambda_max_ratio: f64,
    trace_ratio: f64,
    adaptive_sharpness_ratio: f64,
    #[serde(flatten)]
    comparison: RescaleComparison,
}

pub fn run(args: RescaleArgs) -> Result<(), Failure> {
    let mut pair = match &args.run {
        Some(path) => load_record(path)?.0,
        None => train_pair(args.config.load()?)?,
    };
    let settings = SharpnessSettings {
        seed: pair.config.seed,
        ..if args.quick { SharpnessSettings::quick() } else { SharpnessSettings::default() }
    };
    let mut sides = Vec::new();
    for run in pair.sides_mut() {
        let (rescaled, comparison) =
            compare_rescaled(&run.mlp, &run.params, &run.splits.train, args.layer, args.alpha, &settings)
                .map_err(|e| Failure::bad_input(format!("cannot rescale: {e}")))?;
        let (b, a) = (&comparison.before, &comparison.after);
        sides.push(SideRescale {
            label: run.side.label(),
            lambda_max_ratio: a.lambda_max / b.lambda_max,
            trace_ratio: a.trace / b.trace,
            adaptive_sharpness_ratio: a.adaptive_sharpness / b.adaptive_sharpness,
            comparison,
        });
        run.params = rescaled;
    }
    if let Some(path) = &args.out {
        write_file(path, &(RunRecord::of(&pair).to_json() + "\n"))?;
        eprintln!("wrote {}", path.display());
    }
    let json = serde_json::json!({ "left": sides[0], "right": sides[1] });
    print_stdout(&(serde_json::to_string_pretty(&json).expect("reports serialise") + "\n"))
}
