//! `flatminima train`: run both sides and write the run record.

use std::path::PathBuf;

use clap::Args;
use flatminima::pair::Pair;
use flatminima::record::RunRecord;

use super::{write_file, ConfigArgs, Failure};

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Where to write the run record (JSON). Without it, only a summary is printed.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: TrainArgs) -> Result<(), Failure> {
    let config = args.config.load()?;
    let steps = config.training.steps;
    let mut pair = Pair::new(config).map_err(|e| Failure::bad_input(e.to_string()))?;
    pair.train(steps);
    for run in pair.sides() {
        let last = run.history.last().expect("a run logs its first point when created");
        let status = match &run.diverged {
            Some(d) => format!("diverged at step {}: {}", d.step, d.reason),
            None => {
                format!("train loss {:.4}, ID acc {:.3}, OOD acc {:.3}", last.train_loss, last.id_acc, last.ood_acc)
            }
        };
        println!("{:<22} step {:>7}  {status}", run.side.label(), run.step);
    }
    if let Some(path) = &args.out {
        let record = RunRecord::of(&pair);
        let json = serde_json::to_string(&record).expect("records serialise");
        write_file(path, &json)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
