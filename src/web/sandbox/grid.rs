//! The study panel's grid study (`crate::study_grid`): settings as axes over
//! the page's current run, K data draws x S seeds, fixed steps (the page's)
//! or the matched-loss rule, trained and measured on the CPU in the worker a
//! bounded piece at a time (`GridJob`, then the statistics' `StatsJob`), so
//! that no worker task runs long and pause, cancel and new settings still
//! take effect between pieces. The answer is the CLI's study JSON, byte for
//! byte (`tests/web.rs` against the native fixture).

use wasm_bindgen::prelude::*;

use crate::study_grid::{Grid, GridJob, GridSpec, StopRule, PAGE_MAX_PAIRS};
use crate::study_stats::StatsJob;

use super::{offload::to_json, Sandbox};

/// Training steps per piece: about 2 ms of SAM on the reference net in wasm.
const STEPS_PER_PIECE: usize = 64;

/// A grid study under way in the page.
pub(super) struct PageGrid {
    job: GridJob,
    stats: Option<StatsJob>,
    /// The finished study's JSON.
    output: Option<String>,
    /// The longest piece so far (ms): what a message may wait behind.
    longest_piece_ms: f64,
}

#[wasm_bindgen]
impl Sandbox {
    /// Starts a grid study of the current settings (replacing any under way):
    /// `axes` as `lr=0.01,0.1; batch-size=8,32` (empty: none), `data_seeds`
    /// draws x `seeds` seeds, the page's steps, and with a finite
    /// `until_train_loss` the matched-loss rule (checked every `check_every`
    /// steps, at most the page's steps). Errors (in JS) name what is wrong.
    #[wasm_bindgen(js_name = gridStart)]
    pub fn grid_start(
        &mut self,
        axes: &str,
        data_seeds: u32,
        seeds: u32,
        until_train_loss: f64,
        check_every: u32,
    ) -> Result<(), JsError> {
        self.grid = None;
        let stop = if until_train_loss.is_nan() {
            StopRule::Steps
        } else {
            StopRule::TrainLoss { target: until_train_loss, check_every: check_every as usize }
        };
        let spec = GridSpec::with_axes(self.pair().config.clone(), axes, data_seeds as usize, seeds as usize, stop)
            .map_err(|e| JsError::new(&e.to_string()))?;
        let grid = Grid::new(spec).map_err(|e| JsError::new(&e.to_string()))?;
        if grid.pairs() > PAGE_MAX_PAIRS {
            return Err(JsError::new(&format!(
                "grid: {} pairs (cells x data draws x seeds) is more than the page's {PAGE_MAX_PAIRS}; use the CLI \
                 (flatminima study --vary ...) for bigger grids",
                grid.pairs()
            )));
        }
        self.grid = Some(PageGrid { job: GridJob::new(grid, None), stats: None, output: None, longest_piece_ms: 0.0 });
        Ok(())
    }

    /// Works on the grid study for about `budget_ms` (pieces of at most
    /// 64 training steps, one evaluation, one sharpness piece or one bootstrap
    /// resample); returns its progress in [0, 1] (1 when there is none).
    #[wasm_bindgen(js_name = gridAdvance)]
    pub fn grid_advance(&mut self, budget_ms: f64) -> f64 {
        let start = self.clock.now();
        let Some(g) = self.grid.as_mut() else { return 1.0 };
        while g.output.is_none() {
            let t0 = self.clock.now();
            if !g.job.is_done() {
                g.job.advance(STEPS_PER_PIECE);
            } else {
                let (job, runs) = (&g.job, g.job.runs());
                let stats = g.stats.get_or_insert_with(|| StatsJob::new(job.grid(), runs));
                if stats.advance(job.grid(), runs) {
                    let stats = g.stats.take().expect("just advanced").finish();
                    g.output = Some(to_json(&g.job.output_with(stats)));
                }
            }
            let t1 = self.clock.now();
            g.longest_piece_ms = g.longest_piece_ms.max(t1 - t0);
            if t1 - start >= budget_ms {
                break;
            }
        }
        match (&g.output, &g.stats) {
            (Some(_), _) => 1.0,
            (None, Some(stats)) => 0.97 + 0.03 * stats.progress().min(0.99),
            (None, None) => 0.97 * g.job.progress(),
        }
    }

    /// `[runs done, runs in all, longest piece so far in ms]` of the grid study.
    #[wasm_bindgen(js_name = gridCounts)]
    pub fn grid_counts(&self) -> Vec<f64> {
        self.grid.as_ref().map_or(vec![0.0, 0.0, 0.0], |g| {
            let (done, all) = g.job.counts();
            vec![done as f64, all as f64, g.longest_piece_ms]
        })
    }

    /// The finished grid study as JSON (`flatminima study`'s output: spec,
    /// cells, evaluations, runs, stats), or "null" while it runs or when there is none.
    #[wasm_bindgen(js_name = gridResultJson)]
    pub fn grid_result_json(&self) -> String {
        self.grid.as_ref().and_then(|g| g.output.clone()).unwrap_or_else(|| "null".into())
    }

    /// Drops the grid study (finished or not).
    #[wasm_bindgen(js_name = gridCancel)]
    pub fn grid_cancel(&mut self) {
        self.grid = None;
    }
}
