//! `flatminima train`: run both sides and keep everything in a run record.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use flatminima_core::record::RunRecord;

use super::report::short_summary;
use super::{print_stdout, train_pair, write_file, ConfigArgs, Failure};

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// Write the run record (JSON) to FILE; `-` writes it to standard output.
    /// Without it, only a summary is printed
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: TrainArgs) -> Result<(), Failure> {
    let config = args.config.load()?;
    let start = Instant::now();
    let pair = train_pair(config)?;
    let record = RunRecord::of(&pair);
    let summary = short_summary(&record, start.elapsed());
    match args.out {
        None => print_stdout(&summary),
        Some(path) if path.as_os_str() == "-" => {
            // The record owns stdout; the summary goes to stderr.
            eprint!("{summary}");
            print_stdout(&(record.to_json() + "\n"))
        }
        Some(path) => {
            write_file(&path, &(record.to_json() + "\n"))?;
            print_stdout(&format!("{summary}wrote {}\n", path.display()))
        }
    }
}
