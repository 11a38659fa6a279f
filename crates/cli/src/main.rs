//! The `flatminima` command: train SGD and SAM side by side from a JSON config,
//! probe the solutions, run studies. This crate is the only code that touches
//! files and the terminal; the work is done by `flatminima-core` and
//! `flatminima-backend`.
//!
//! This file holds the argument tree, the failure type and the exit codes.
//! Each subcommand lives in its own file with an `Args` struct and a `run` fn;
//! [`ConfigArgs`] (in `input.rs`) is how any of them gets its config.
//!
//! Exit codes: 0 success (a diverged run is a result, not a failure); 1 the
//! work failed or its result could not be written; 2 bad input: flags,
//! config, settings, an unreadable config file.

mod backend;
mod compare;
mod config;
mod ensemble;
mod input;
mod landscape;
mod report;
mod rescale;
mod sharpness;
mod study;
mod study_grid;
mod train;

use std::io::Write;
use std::path::Path;

use clap::{Parser, Subcommand};
use flatminima_core::config::RunConfig;
use flatminima_core::pair::Pair;

use input::ConfigArgs;

#[derive(Parser)]
#[command(
    name = "flatminima",
    version,
    about = "Train tiny MLPs side by side (SGD vs SAM) on shifted 2D data and compare how they generalise"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// To add a subcommand: a file `crates/cli/src/NAME.rs` with its `Args` and `run`,
/// a `mod` line above, a variant here and an arm in [`run`].
#[derive(Subcommand)]
enum Command {
    /// Train both sides for training.steps and write a run record (config, initial and final
    /// parameters, datasets, metrics)
    Train(train::TrainArgs),
    /// Train both sides and print their metrics side by side
    Compare(compare::CompareArgs),
    /// Print a complete config as JSON (the default, or --config FILE with --set applied)
    Config(config::ConfigCommandArgs),
    /// Loss slices through both solutions (1D curves, 2D surfaces, trajectories) as JSON and PNG.
    Landscape(landscape::LandscapeArgs),
    /// Every sharpness measure (lambda_max, trace, epsilon/rho/adaptive/average sharpness) for both sides, as JSON.
    Sharpness(sharpness::SharpnessArgs),
    /// Dinh et al.'s rescaling of both solutions (a ReLU layer times --alpha, the next divided by
    /// it): the function stays, lambda_max and the trace move, adaptive sharpness stays. JSON.
    Rescale(rescale::RescaleArgs),
    /// K members of each side (member i from seed + i) and their ensemble: the mean predicted
    /// probability's train / ID / OOD loss and accuracy beside the members' mean.
    Ensemble(ensemble::EnsembleArgs),
    /// Train R seeds of each side on the same data through the backend (--backend auto|gpu|cpu)
    /// and summarise their final train / ID / OOD metrics; --out writes every replica's. With
    /// --vary, --data-seeds, --seeds, --until-train-loss, --shard or --merge: a grid study over
    /// settings, data draws and seeds, with every run's sharpness, CIs over data draws and
    /// Kendall's tau between sharpness and OOD performance.
    Study(study::StudyArgs),
}

fn main() {
    std::process::exit(run());
}

/// Runs the command line and returns the process's exit code.
fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints usage errors itself; --help and --version are successes.
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Config(args) => config::run(args),
        Command::Landscape(args) => landscape::run(args),
        Command::Sharpness(args) => sharpness::run(args),
        Command::Rescale(args) => rescale::run(args),
        Command::Ensemble(args) => ensemble::run(args),
        Command::Study(args) => study::run(args),
    };
    match result {
        Ok(()) => 0,
        Err(f) => {
            for line in f.message.lines() {
                eprintln!("error: {line}");
            }
            f.code
        }
    }
}

/// A failure with its exit code; each line of the message is printed as `error: ...`.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    /// Something the user can fix in the flags, the config or the settings (exit code 2).
    pub fn bad_input(message: impl Into<String>) -> Self {
        Failure { code: 2, message: message.into() }
    }

    /// A file that could not be written (exit code 1).
    pub fn io(path: &Path, e: std::io::Error) -> Self {
        Failure { code: 1, message: format!("{}: {e}", path.display()) }
    }
}

/// Builds the pair from a validated config and trains each side for its steps
/// (`training.steps`, or the side's own budget: `RunConfig::plan`).
pub fn train_pair(config: RunConfig) -> Result<Pair, Failure> {
    let mut pair = Pair::new(config).map_err(|e| Failure::bad_input(format!("{}: {}", e.field, e.message)))?;
    pair.train_to_budget();
    Ok(pair)
}

/// Writes `text` to `path`, creating parent folders.
pub fn write_file(path: &Path, text: &str) -> Result<(), Failure> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Failure::io(parent, e))?;
    }
    std::fs::write(path, text).map_err(|e| Failure::io(path, e))
}

/// Writes to standard output. A closed pipe (`flatminima compare | head`) is
/// not worth a message, and `print!` would panic on it.
pub fn print_stdout(text: &str) -> Result<(), Failure> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure { code: 1, message: format!("cannot write to standard output: {e}") })
        }
        _ => Ok(()),
    }
}
