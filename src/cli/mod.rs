//! The command line: parse arguments, load configs, run a subcommand, report
//! errors. The only code in the crate that touches files and the terminal.
//!
//! Exit codes: 0 success, 1 the run itself failed (e.g. an I/O error while
//! writing results), 2 bad input (flags, config file, settings).

mod compare;
mod train;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use flatminima::config::RunConfig;
use flatminima::settings::config_from_settings;

#[derive(Parser)]
#[command(name = "flatminima", version, about = "Train tiny MLPs side by side (SGD vs SAM) on shifted 2D data")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train both sides and write a run record (config, initial and final parameters, data, metrics).
    Train(train::TrainArgs),
    /// Train both sides and print a side-by-side table.
    Compare(compare::CompareArgs),
    /// Print the default config as JSON: a complete, valid starting point.
    Config,
}

/// How a subcommand gets its config: a JSON file (or stdin) plus `--set` overrides.
#[derive(Args, Clone, Debug)]
pub struct ConfigArgs {
    /// Run config (JSON); `-` reads standard input. Without it, the default config.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override settings by name, e.g. `--set rho=0.2 --set dataset=spirals` (names as in the page's URL).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
}

/// A failure with its exit code; the message is printed as `error: ...`.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Failure { code: 2, message: message.into() }
    }
    pub fn io(path: &Path, e: std::io::Error) -> Self {
        Failure { code: 1, message: format!("{}: {e}", path.display()) }
    }
}

pub fn run() -> i32 {
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
        Command::Config => {
            println!("{}", RunConfig::default().to_json_pretty());
            Ok(())
        }
    };
    match result {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("error: {}", f.message);
            f.code
        }
    }
}

impl ConfigArgs {
    /// Reads and validates the config, then applies `--set` overrides; any
    /// problem is a bad-input failure naming the field.
    pub fn load(&self) -> Result<RunConfig, Failure> {
        let mut config = match &self.config {
            None => RunConfig::default(),
            Some(path) => {
                let text = if path.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin())
                        .map_err(|e| Failure::bad_input(format!("reading the config from stdin: {e}")))?
                } else {
                    std::fs::read_to_string(path)
                        .map_err(|e| Failure::bad_input(format!("cannot read config {}: {e}", path.display())))?
                };
                RunConfig::from_json(&text).map_err(|e| Failure::bad_input(format!("{} {e}", path.display())))?
            }
        };
        if !self.set.is_empty() {
            config = apply_settings(config, &self.set)?;
        }
        Ok(config)
    }
}

/// Applies `name=value` overrides on top of a config. Unlike the page (which
/// falls back and carries on), the CLI refuses bad settings: a script should fail loudly.
fn apply_settings(base: RunConfig, set: &[String]) -> Result<RunConfig, Failure> {
    let mut pairs = Vec::new();
    for item in set {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| Failure::bad_input(format!("--set `{item}`: expected NAME=VALUE, e.g. rho=0.2")))?;
        pairs.push((name.trim(), value.trim()));
    }
    // Start from the file's config expressed as settings, then override.
    let current = flatminima::settings::settings_from_config(&base);
    let merged = current.iter().map(|(k, v)| (*k, v.as_str())).chain(pairs.iter().copied());
    let (mut config, errors) = config_from_settings(merged);
    if let Some(e) = errors.first() {
        // The page falls back to defaults; the CLI refuses, so drop the fallback note.
        let message = e.message.split("; using the default").next().unwrap_or(&e.message);
        return Err(Failure::bad_input(format!("--set {}: {message}", e.field)));
    }
    // Settings cover the common knobs; keep everything else from the file.
    config.data.n_test = base.data.n_test;
    config.data.spurious_agreement = base.data.spurious_agreement;
    config.training.log_every = base.training.log_every;
    config.init = base.init;
    config.train_points = base.train_points;
    config.validate().map_err(|e| Failure::bad_input(e.to_string()))?;
    Ok(config)
}

/// Writes `text` to `path`, creating parent folders.
pub fn write_file(path: &Path, text: &str) -> Result<(), Failure> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Failure::io(parent, e))?;
    }
    std::fs::write(path, text).map_err(|e| Failure::io(path, e))
}
