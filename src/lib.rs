//! flatminima: train tiny MLPs side by side (SGD vs SAM) on shifted 2D data
//! and measure whether the flatter minimum is the more robust one.
//!
//! The core modules are plain Rust (no web dependencies) and work on one flat
//! parameter vector; see ARCHITECTURE.md for the map.

// Every public item says what it is (`make lint` runs clippy with -D warnings).
#![warn(missing_docs)]

pub mod activation;
pub mod backend;
pub mod config;
pub mod data;
pub mod error;
pub mod gpu;
pub mod hessian;
pub mod kendall;
pub mod landscape;
pub mod live_landscape;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod nan_as_null;
pub mod optim;
pub mod pair;
pub mod record;
pub mod rng;
pub mod sam;
pub mod schedule;
pub mod settings;
pub mod sharpness;
pub mod sharpness_tracker;
pub mod stats;
pub mod study;
pub mod study_grid;
pub mod study_stats;
pub mod train;

/// The browser layer: the only code that touches web-sys/js-sys.
#[cfg(target_arch = "wasm32")]
pub mod web;
