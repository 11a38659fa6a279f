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

/// A grid study for the worker (see `grid_study.rs`): the element's worker's
/// (it collects every unit's runs and computes the statistics) or a study
/// helper's (it trains the units dealt to it and hands their runs over).
#[wasm_bindgen]
pub struct GridStudy {
    grid: PageGrid,
    clock: Option<web_sys::Performance>,
}

#[wasm_bindgen]
impl GridStudy {
    /// Starts a study of `settingsQuery`'s settings (see `PageGrid::new`);
    /// `untilTrainLoss` NaN for the settings' steps; `helper` for a study
    /// helper's. No unit is dealt yet (`deal`). Throws a message naming what
    /// is wrong.
    #[wasm_bindgen(constructor)]
    pub fn new(
        settings_query: &str,
        axes: &str,
        data_seeds: u32,
        seeds: u32,
        until_train_loss: f64,
        check_every: u32,
        helper: bool,
    ) -> Result<GridStudy, JsError> {
        install_panic_hook();
        let make = if helper { PageGrid::helper } else { PageGrid::new };
        let grid =
            make(settings_query, axes, data_seeds as usize, seeds as usize, until_train_loss, check_every as usize)
                .map_err(|e| JsError::new(&e))?;
        Ok(GridStudy { grid, clock: performance() })
    }

    /// Works for about `budgetMs`; returns the progress in [0, 1] (a
    /// helper's: its unit under way's). Returns at once while it has no unit
    /// to work on (`holds` 0) or waits for the helpers' runs.
    pub fn advance(&mut self, budget_ms: f64) -> Result<f64, JsError> {
        let clock = self.clock.clone();
        self.grid.advance(budget_ms, move || now(&clock)).map_err(|e| JsError::new(&e))
    }

    /// The study's (cell, data draw) units.
    pub fn units(&self) -> u32 {
        self.grid.units() as u32
    }

    /// Deals unit `unit` to this worker: trained here for null, else measured
    /// from its runs' weights trained on the GPU (the GPU module's
    /// `gridUnits`), run after run. Throws if they do not fit.
    pub fn deal(&mut self, unit: u32, weights: Option<Vec<f64>>) -> Result<(), JsError> {
        self.grid.deal(unit as usize, weights.as_deref()).map_err(|e| JsError::new(&e))
    }

    /// Drops unit `unit` if it is dealt here and not finished (a copy
    /// finished elsewhere first); returns whether it was.
    #[wasm_bindgen(js_name = dropUnit)]
    pub fn drop_unit(&mut self, unit: u32) -> bool {
        self.grid.drop_unit(unit as usize)
    }

    /// Units dealt here and not finished: 0 when it is free for another.
    pub fn holds(&self) -> u32 {
        self.grid.holds() as u32
    }

    /// How far the unit under way here is, in [0, 1].
    #[wasm_bindgen(js_name = unitProgress)]
    pub fn unit_progress(&self) -> f64 {
        self.grid.unit_progress()
    }

    /// A helper: the runs of the units finished since the last call, as
    /// plain numbers (for the element's worker's `addRuns`); empty if none.
    #[wasm_bindgen(js_name = takeRuns)]
    pub fn take_runs(&mut self) -> Vec<f64> {
        self.grid.take_numbers()
    }

    /// The element's worker: a helper's finished units' runs. Throws if they
    /// do not fit, or differ from a copy of the same unit already in.
    #[wasm_bindgen(js_name = addRuns)]
    pub fn add_runs(&mut self, runs: &[f64]) -> Result<(), JsError> {
        self.grid.add_runs(runs).map_err(|e| JsError::new(&e))
    }

    /// The element's worker: the units whose runs came in since the last call.
    #[wasm_bindgen(js_name = takeCollected)]
    pub fn take_collected(&mut self) -> Vec<u32> {
        self.grid.take_collected().into_iter().map(|u| u as u32).collect()
    }

    /// The element's worker: units whose runs are in.
    #[wasm_bindgen(js_name = collectedUnits)]
    pub fn collected_units(&self) -> u32 {
        self.grid.collected_units() as u32
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
