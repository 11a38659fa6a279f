//! The flatminima core: train tiny MLPs side by side (SGD vs SAM) on shifted 2D
//! data and measure whether the flatter minimum is the more robust one.
//!
//! Plain Rust with no web and no GPU dependencies; every model is one flat
//! parameter vector (PyTorch `nn.Linear` layout) that everything which perturbs
//! or probes a model works on. The GPU kernels and the CPU/GPU chooser live in
//! `flatminima-backend`, the browser layer in `flatminima`, the command line in
//! `flatminima-cli`. See ARCHITECTURE.md for the map.

// Every public item says what it is (`make lint` runs clippy with -D warnings).
#![warn(missing_docs)]

pub mod activation;
pub mod averaging;
pub mod config;
pub mod cpu;
pub mod data;
pub mod dropout;
pub mod ensemble;
pub mod error;
pub mod grid2d;
pub mod grid_net;
pub mod hessian;
pub mod job;
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
pub mod requests;
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
pub mod switch;
pub mod train;
