//! The page's study module (`www/pkg-study`, feature `study-page`, built
//! without the sandbox): the worker loads it when the first study starts and
//! runs [`PageGrid`] (the study panel's grid) or [`SeedStudy`] (`el.study()`
//! of seeds) through it, a slice per scheduler tick.
//! The two modules share no memory: the study takes the page's settings as a
//! URL query and answers with JSON.

use wasm_bindgen::prelude::*;

use super::grid_study::PageGrid;
use super::seed_study;
use super::{install_panic_hook, performance};
use crate::study_grid::Shard;

/// Milliseconds on the worker's clock.
fn now(clock: &Option<web_sys::Performance>) -> f64 {
    clock.as_ref().map_or_else(js_sys::Date::now, |p| p.now())
}

/// A study of seeds for the worker (see `seed_study.rs`).
#[wasm_bindgen]
pub struct SeedStudy {
    study: seed_study::SeedStudy,
    clock: Option<web_sys::Performance>,
}

#[wasm_bindgen]
impl SeedStudy {
    /// Starts the study of `settingsQuery`'s settings: `replicas` seeds per
    /// side, `steps` steps each. Throws a message naming a bad count or setting.
    #[wasm_bindgen(constructor)]
    pub fn new(settings_query: &str, replicas: u32, steps: u32) -> Result<SeedStudy, JsError> {
        install_panic_hook();
        let clock = performance();
        let study = seed_study::SeedStudy::new(settings_query, replicas as usize, steps as usize, now(&clock))
            .map_err(|e| JsError::new(&e))?;
        Ok(SeedStudy { study, clock })
    }

    /// Trains for about `budgetMs`; returns the progress in [0, 1].
    pub fn advance(&mut self, budget_ms: f64) -> f64 {
        let clock = &self.clock;
        self.study.advance(budget_ms, || now(clock))
    }

    /// The finished study's report as JSON, or "null" while it runs.
    #[wasm_bindgen(js_name = resultJson)]
    pub fn result_json(&self) -> String {
        self.study.result_json().unwrap_or_else(|| "null".into())
    }
}

/// A grid study for the worker (see `grid_study.rs`).
#[wasm_bindgen]
pub struct GridStudy {
    grid: PageGrid,
    clock: Option<web_sys::Performance>,
}

#[wasm_bindgen]
impl GridStudy {
    /// Starts a study of `settingsQuery`'s settings (see `PageGrid::sharded`);
    /// `untilTrainLoss` NaN for the settings' steps; shard `shardIndex` of
    /// `shardCount` of its units (one worker each; count 1 for the whole
    /// study). Throws a message naming what is wrong.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings_query: &str,
        axes: &str,
        data_seeds: u32,
        seeds: u32,
        until_train_loss: f64,
        check_every: u32,
        shard_index: u32,
        shard_count: u32,
    ) -> Result<GridStudy, JsError> {
        install_panic_hook();
        let shard = (shard_count > 1 && shard_index < shard_count)
            .then_some(Shard { index: shard_index as usize, count: shard_count as usize });
        let grid = PageGrid::sharded(
            settings_query,
            axes,
            data_seeds as usize,
            seeds as usize,
            until_train_loss,
            check_every as usize,
            shard,
        )
        .map_err(|e| JsError::new(&e))?;
        Ok(GridStudy { grid, clock: performance() })
    }

    /// Works for about `budgetMs`; returns the progress in [0, 1]. Shard 0
    /// returns at once while it waits for the other shards (`isWaiting`).
    pub fn advance(&mut self, budget_ms: f64) -> Result<f64, JsError> {
        let clock = self.clock.clone();
        self.grid.advance(budget_ms, move || now(&clock)).map_err(|e| JsError::new(&e))
    }

    /// The study's (cell, data draw) units, in all shards: more shards than
    /// units would leave some with nothing to train.
    pub fn units(&self) -> u32 {
        self.grid.units() as u32
    }

    /// Shard 0: shard `index`'s finished runs (its `partRuns`). Throws if they do not fit.
    #[wasm_bindgen(js_name = addPart)]
    pub fn add_part(&mut self, index: u32, runs: &[f64]) -> Result<(), JsError> {
        self.grid.add_part(index as usize, runs).map_err(|e| JsError::new(&e))
    }

    /// Another shard, once its progress is 1: its runs as numbers (for shard 0's `addPart`).
    #[wasm_bindgen(js_name = partRuns)]
    pub fn part_runs(&self) -> Option<Vec<f64>> {
        self.grid.part_numbers()
    }

    /// From now on each unit is trained on the GPU (`setTrained`) or marked
    /// for the CPU (`trainHere`) before it starts; `wantedUnit` says which.
    #[wasm_bindgen(js_name = trainElsewhere)]
    pub fn train_elsewhere(&mut self) {
        self.grid.train_elsewhere();
    }

    /// The unit the study waits for (after `trainElsewhere`), or -1.
    #[wasm_bindgen(js_name = wantedUnit)]
    pub fn wanted_unit(&self) -> i32 {
        self.grid.wanted_unit().map_or(-1, |u| u as i32)
    }

    /// Unit `unit`'s runs' final weights (one of the GPU module's `gridUnits`), run after run.
    #[wasm_bindgen(js_name = setTrained)]
    pub fn set_trained(&mut self, unit: u32, weights: &[f64]) -> Result<(), JsError> {
        self.grid.set_trained(unit as usize, weights).map_err(|e| JsError::new(&e))
    }

    /// Unit `unit` trains on the CPU here.
    #[wasm_bindgen(js_name = trainHere)]
    pub fn train_here(&mut self, unit: u32) {
        self.grid.train_here(unit as usize);
    }

    /// Whether this shard's own runs are done and it waits for the other shards' parts.
    #[wasm_bindgen(js_name = isWaiting)]
    pub fn is_waiting(&self) -> bool {
        self.grid.waits_for_shards()
    }

    /// `[runs done, runs in all, longest piece so far in ms]`.
    pub fn counts(&self) -> Vec<f64> {
        self.grid.counts()
    }

    /// The finished study's JSON, or "null" while it runs.
    #[wasm_bindgen(js_name = resultJson)]
    pub fn result_json(&self) -> String {
        self.grid.result_json().unwrap_or("null").to_string()
    }
}
