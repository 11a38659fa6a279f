//! The page's study module (`www/pkg-study`, feature `study-page`, built
//! without the sandbox): the worker loads it when the study panel's Study is
//! first pressed and runs [`PageGrid`] through it, a slice per scheduler tick.
//! The two modules share no memory: the study takes the page's settings as a
//! URL query and answers with JSON.

use wasm_bindgen::prelude::*;

use super::grid_study::PageGrid;
use super::{install_panic_hook, performance};

/// A grid study for the worker (see `grid_study.rs`).
#[wasm_bindgen]
pub struct GridStudy {
    grid: PageGrid,
    clock: Option<web_sys::Performance>,
}

#[wasm_bindgen]
impl GridStudy {
    /// Starts a study of `settingsQuery`'s settings (see `PageGrid::new`);
    /// `untilTrainLoss` NaN for the settings' steps. Throws a message naming
    /// what is wrong.
    #[wasm_bindgen(constructor)]
    pub fn new(
        settings_query: &str,
        axes: &str,
        data_seeds: u32,
        seeds: u32,
        until_train_loss: f64,
        check_every: u32,
    ) -> Result<GridStudy, JsError> {
        install_panic_hook();
        let grid = PageGrid::new(
            settings_query,
            axes,
            data_seeds as usize,
            seeds as usize,
            until_train_loss,
            check_every as usize,
        )
        .map_err(|e| JsError::new(&e))?;
        Ok(GridStudy { grid, clock: performance() })
    }

    /// Works for about `budgetMs`; returns the progress in [0, 1].
    pub fn advance(&mut self, budget_ms: f64) -> f64 {
        let clock = self.clock.clone();
        self.grid.advance(budget_ms, move || clock.as_ref().map_or_else(js_sys::Date::now, |p| p.now()))
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
