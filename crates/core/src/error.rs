//! The one error type for bad input: it names the offending field and says
//! what would be accepted, so the CLI, the page and the element can show it as is.

use std::fmt;

/// A problem with one setting or config field: which one, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the field, e.g. `left.optimizer.lr` or the attribute name `rho`.
    pub field: String,
    /// What is wrong and what is allowed, e.g. "must be in (0, 10], got -1".
    pub message: String,
}

impl ConfigError {
    /// An error for `field` (a dotted path or a setting name) with a message that says what is allowed.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { field: field.into(), message: message.into() }
    }

    /// Prefix the field path, used when a nested validator reports upwards.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() { parent.to_string() } else { format!("{parent}.{}", self.field) };
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Checks that a number is finite and within [lo, hi]; the message names both ends.
pub fn check_range(field: &str, value: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= lo && value <= hi {
        Ok(())
    } else {
        Err(ConfigError::new(field, format!("must be a number in [{lo}, {hi}], got {value}")))
    }
}

/// Same for integers.
pub fn check_count(field: &str, value: usize, lo: usize, hi: usize) -> Result<(), ConfigError> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(field, format!("must be an integer in [{lo}, {hi}], got {value}")))
    }
}
