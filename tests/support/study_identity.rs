#![allow(dead_code)] // each test crate uses part of it
//! The grid study that `tests/study_grid.rs` (native) and `tests/web.rs`
//! (wasm, through the page's `Sandbox`) both run on the reference net (2-16-16-2, where the dense Hessian takes the big-matrix code paths): the same spec must give the
//! same JSON, byte for byte (`tests/data/study_grid_identity.json`). Small
//! enough to run in a second in a debug build; both stopping rules' code runs
//! (the matched-loss rule, with a target some runs miss).

/// The page's settings (a URL query) and the study panel's inputs.
pub const QUERY: &str = "points=64&hidden=16,16&steps=40&batch-size=16&seed=3";
pub const AXES: &str = "lr=0.05,0.3";
pub const DATA_SEEDS: usize = 2;
pub const SEEDS: usize = 2;
pub const UNTIL_TRAIN_LOSS: f64 = 0.26;
pub const CHECK_EVERY: usize = 10;

pub const FIXTURE: &str = include_str!("../data/study_grid_identity.json");
