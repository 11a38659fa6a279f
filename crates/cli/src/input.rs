//! Where a subcommand's config comes from: `--config FILE` (`-` for stdin; a
//! run record works too), or the default config; then `--set name=value`
//! settings on top.

use std::path::PathBuf;

use clap::Args;
use flatminima_core::config::RunConfig;
use flatminima_core::error::ConfigError;
use flatminima_core::record::{RunRecord, RECORD_FORMAT};
use flatminima_core::settings::apply_settings;

use super::Failure;

#[derive(Args, Clone, Debug)]
pub struct ConfigArgs {
    /// Run config (JSON), or a run record whose config to replay; `-` reads standard input.
    /// Without it: the default config (`flatminima config` prints it)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Change a setting on top of the config, e.g. `--set steps=200 --set rho=0.2`; repeatable.
    /// Names as in the page's URL (`flatminima config --settings` lists them)
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_setting)]
    pub set: Vec<(String, String)>,
}

fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, e.g. rho=0.2, got `{text}`")),
    }
}

impl ConfigArgs {
    /// The effective config, validated. Every problem is a bad-input failure
    /// naming the file (or `--set`), the field and what is allowed.
    pub fn load(&self) -> Result<RunConfig, Failure> {
        let (base, source) = match &self.config {
            None => (RunConfig::default(), "default config".to_string()),
            Some(path) => {
                let stdin = path.as_os_str() == "-";
                let source = if stdin { "<stdin>".to_string() } else { path.display().to_string() };
                let text =
                    if stdin { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(path) }
                        .map_err(|e| Failure::bad_input(format!("cannot read config file `{source}`: {e}")))?;
                let config = parse(&text).map_err(|e| Failure::bad_input(located(&source, &e)))?;
                (config, source)
            }
        };
        if self.set.is_empty() {
            return Ok(base);
        }
        let settings = self.set.iter().map(|(name, value)| (name.as_str(), value.as_str()));
        apply_settings(&base, settings).map_err(|errors| {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| match self.set.iter().any(|(name, _)| *name == e.field) {
                    true => format!("--set {}: {}", e.field, e.message),
                    false => located(&format!("{source} with --set"), e),
                })
                .collect();
            Failure::bad_input(lines.join("\n"))
        })
    }
}

/// A config, or a run record (whose config is replayed).
fn parse(text: &str) -> Result<RunConfig, ConfigError> {
    #[derive(serde::Deserialize)]
    struct Peek {
        format: Option<String>,
    }
    match serde_json::from_str::<Peek>(text) {
        Ok(Peek { format: Some(format) }) if format == RECORD_FORMAT => RunRecord::from_json(text).map(|r| r.config),
        _ => RunConfig::from_json(text),
    }
}

/// "FILE: field: message", or "FILE: message" when serde already says where.
fn located(source: &str, e: &ConfigError) -> String {
    match e.field.as_str() {
        "config" | "record" => format!("{source}: {}", e.message),
        field => format!("{source}: {field}: {}", e.message),
    }
}
