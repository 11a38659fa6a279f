//! `flatminima config`: print a complete config to start from, or the
//! settings that `--set` understands.

use clap::Args;
use flatminima_core::settings::SETTINGS;

use super::{print_stdout, ConfigArgs, Failure};

#[derive(Args)]
pub struct ConfigCommandArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// List the settings `--set` accepts (name, meaning, default) instead
    #[arg(long)]
    pub settings: bool,
}

pub fn run(args: ConfigCommandArgs) -> Result<(), Failure> {
    if args.settings {
        let width = SETTINGS.iter().map(|s| s.name.len()).max().unwrap_or(0);
        let lines: String = SETTINGS
            .iter()
            .map(|s| {
                let default = if s.default.is_empty() { String::new() } else { format!(" (default {})", s.default) };
                format!("{:width$}  {}{default}\n", s.name, s.describe())
            })
            .collect();
        return print_stdout(&lines);
    }
    let config = args.config.load()?;
    print_stdout(&(config.to_json_pretty() + "\n"))
}
