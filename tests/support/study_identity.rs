#![allow(dead_code)] // each test crate uses part of it
//! The grid study that `tests/study_grid.rs` (native) and `tests/web.rs`
//! (wasm, through the page's `Sandbox`) both run on the reference net (2-16-16-2, where the dense Hessian takes the big-matrix code paths): the same spec must give the
//! same JSON, byte for byte (`tests/data/study_grid_identity.json` with the
//! page's measures, `study_grid_identity_exact.json` with the dense spectrum's). Small
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
pub const FIXTURE_EXACT: &str = include_str!("../data/study_grid_identity_exact.json");

/// The spec: the page's measures (`fast_study_sharpness`, what the study panel
/// runs), or with `exact` the CLI's default (the dense spectrum).
pub fn spec(exact: bool) -> flatminima::study_grid::GridSpec {
    use flatminima::study_grid::{fast_study_sharpness, GridSpec, StopRule};
    let pairs = flatminima::settings::parse_query(QUERY);
    let (base, errors) =
        flatminima::settings::config_from_settings(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert!(errors.is_empty(), "{errors:?}");
    let stop = StopRule::TrainLoss { target: UNTIL_TRAIN_LOSS, check_every: CHECK_EVERY };
    let mut spec = GridSpec::with_axes(base, AXES, DATA_SEEDS, SEEDS, stop).unwrap();
    if !exact {
        spec.sharpness = fast_study_sharpness();
    }
    spec
}
