//! `flatminima compare`: run both sides and print them side by side.

use std::time::Instant;

use clap::Args;
use flatminima_core::record::RunRecord;

use super::report::{comparison_table, config_summary};
use super::{print_stdout, train_pair, ConfigArgs, Failure};

#[derive(Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub fn run(args: CompareArgs) -> Result<(), Failure> {
    let config = args.config.load()?;
    let summary = config_summary(&config);
    let start = Instant::now();
    let record = RunRecord::of(&train_pair(config)?);
    let seconds = start.elapsed().as_secs_f64();
    print_stdout(&format!("{summary}\n{}\n(trained in {seconds:.2} s)\n", comparison_table(&record)))
}
