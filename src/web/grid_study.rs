//! The study panel's grid study (`crate::study_grid`): settings as axes over
//! the page's current settings, K data draws x S seeds, fixed steps (the
//! page's) or the matched-loss rule, trained and measured on the CPU a
//! bounded piece at a time (`GridJob`, then the statistics' `StatsJob`), so
//! that no worker task runs long and pause, cancel and new settings still take
//! effect between pieces. The answer is the CLI's study JSON, byte for byte
//! (`tests/web.rs` against the native fixture). Plain Rust: `study_page.rs`
//! exports it to the worker (feature `study-page`); tests call it directly.

use crate::settings::{config_from_settings, parse_query};
use crate::study_grid::{Grid, GridJob, GridSpec, StopRule, PAGE_MAX_PAIRS};
use crate::study_stats::StatsJob;

/// Training steps per piece: about 2 ms of SAM on the reference net in wasm.
pub const STEPS_PER_PIECE: usize = 64;

/// A grid study under way in the page.
pub struct PageGrid {
    job: GridJob,
    stats: Option<StatsJob>,
    /// The finished study's JSON.
    output: Option<String>,
    /// The longest piece so far (ms): how long a message may wait behind one.
    longest_piece_ms: f64,
}

impl PageGrid {
    /// A grid study of the settings in `settings_query` (the page's, as a URL
    /// query: the sandbox's `settingsQuery`): `axes` as `lr=0.01,0.1;
    /// batch-size=8,32` (empty: none), `data_seeds` draws x `seeds` seeds, the
    /// settings' steps, and with a finite `until_train_loss` the matched-loss
    /// rule (checked every `check_every` steps). Errors name what is wrong.
    pub fn new(
        settings_query: &str,
        axes: &str,
        data_seeds: usize,
        seeds: usize,
        until_train_loss: f64,
        check_every: usize,
    ) -> Result<PageGrid, String> {
        let pairs = parse_query(settings_query);
        let (base, errors) = config_from_settings(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(e) = errors.first() {
            return Err(e.to_string());
        }
        let stop = if until_train_loss.is_nan() {
            StopRule::Steps
        } else {
            StopRule::TrainLoss { target: until_train_loss, check_every }
        };
        let spec = GridSpec::with_axes(base, axes, data_seeds, seeds, stop).map_err(|e| e.to_string())?;
        let grid = Grid::new(spec).map_err(|e| e.to_string())?;
        if grid.pairs() > PAGE_MAX_PAIRS {
            return Err(format!(
                "grid: {} pairs (cells x data draws x seeds) is more than the page's {PAGE_MAX_PAIRS}; use the CLI \
                 (flatminima study --vary ...) for bigger grids",
                grid.pairs()
            ));
        }
        Ok(PageGrid { job: GridJob::new(grid, None), stats: None, output: None, longest_piece_ms: 0.0 })
    }

    /// Works for about `budget_ms` (pieces of at most [`STEPS_PER_PIECE`]
    /// training steps, one evaluation, one sharpness piece or one bootstrap
    /// resample); returns the progress in [0, 1]. `now` reads a clock in ms.
    pub fn advance(&mut self, budget_ms: f64, now: impl Fn() -> f64) -> f64 {
        let start = now();
        while self.output.is_none() {
            let t0 = now();
            if !self.job.is_done() {
                self.job.advance(STEPS_PER_PIECE);
            } else {
                let (job, runs) = (&self.job, self.job.runs());
                let stats = self.stats.get_or_insert_with(|| StatsJob::new(job.grid(), runs));
                if stats.advance(job.grid(), runs) {
                    let stats = self.stats.take().expect("just advanced").finish();
                    let value = serde_json::to_value(self.job.output_with(stats)).expect("plain data serialises");
                    self.output = Some(value.to_string());
                }
            }
            let t1 = now();
            self.longest_piece_ms = self.longest_piece_ms.max(t1 - t0);
            if t1 - start >= budget_ms {
                break;
            }
        }
        self.progress()
    }

    /// Fraction done: training and measuring, then the statistics (a few percent).
    pub fn progress(&self) -> f64 {
        match (&self.output, &self.stats) {
            (Some(_), _) => 1.0,
            (None, Some(stats)) => 0.97 + 0.03 * stats.progress().min(0.99),
            (None, None) => 0.97 * self.job.progress(),
        }
    }

    /// `[runs done, runs in all, longest piece so far in ms]`.
    pub fn counts(&self) -> Vec<f64> {
        let (done, all) = self.job.counts();
        vec![done as f64, all as f64, self.longest_piece_ms]
    }

    /// The finished study as JSON (`flatminima study`'s output: spec, cells,
    /// evaluations, runs, stats), or None while it runs.
    pub fn result_json(&self) -> Option<&str> {
        self.output.as_deref()
    }
}
