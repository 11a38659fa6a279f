//! The study panel's grid study (`crate::study_grid`): settings as axes over
//! the page's current settings, K data draws x S seeds, fixed steps (the
//! page's) or the matched-loss rule, trained and measured on the CPU a
//! bounded piece at a time (`GridJob`, then the statistics' `StatsJob`), so
//! that no worker task runs long and pause, cancel and new settings still take
//! effect between pieces. The answer is the CLI's study JSON, byte for byte
//! (`tests/web.rs` against the native fixture). Plain Rust: `study_page.rs`
//! exports it to the worker (feature `study-page`); tests call it directly.
//!
//! Units are dealt: the element's worker hands each (cell, data draw) unit to
//! whichever of its workers is free (`deal`, trained there or measured from
//! weights the GPU trained), itself included, so that a worker slowed by the
//! live page takes fewer. The element's worker's study collects every unit's
//! runs (`add_runs` for the study helpers', as plain numbers), puts them in
//! unit order and computes the statistics: the same JSON as one worker's,
//! byte for byte, whoever trained which unit. A unit dealt twice (a copy to
//! an idle worker near the end) counts once; its copies must agree to the bit.

use crate::job::{Job, Slicer};
use crate::study_grid::{page_grid, GridJob, RunResult};
use crate::study_stats::{StatsInput, StatsJob};

/// Training steps per piece: about 2 ms of SAM on the reference net in wasm.
pub const STEPS_PER_PIECE: usize = 64;

/// A grid study under way in one of the page's workers.
pub struct PageGrid {
    /// The units dealt to this worker.
    job: GridJob,
    /// The element's worker: every unit's runs as they come in, its own and
    /// the helpers' (None for a helper, whose runs `take_numbers` hands over).
    collected: Option<Vec<Option<Vec<RunResult>>>>,
    /// Units collected so far, and those collected since `take_collected`.
    collected_count: usize,
    newly_collected: Vec<usize>,
    /// Every run of the study in unit order, once all are in.
    merged: Option<Vec<RunResult>>,
    stats: Option<StatsJob>,
    /// The finished study's JSON.
    output: Option<String>,
    /// What went wrong in the last piece, for `advance` to return.
    error: Option<String>,
    /// The driver's pace for this study's pieces.
    slicer: Slicer,
    /// The longest piece so far (ms): how long a message may wait behind one.
    longest_piece_ms: f64,
}

impl PageGrid {
    /// The element's worker's study of the settings in `settings_query` (the
    /// page's, as a URL query: the sandbox's `settingsQuery`): `axes` as
    /// `lr=0.01,0.1; batch-size=8,32` (empty: none), `data_seeds` draws x
    /// `seeds` seeds, the settings' steps, and with a finite
    /// `until_train_loss` the matched-loss rule (checked every `check_every`
    /// steps). It trains the units dealt to it, collects every unit's runs
    /// and ends with the study's JSON. Errors name what is wrong.
    pub fn new(
        settings_query: &str,
        axes: &str,
        data_seeds: usize,
        seeds: usize,
        until_train_loss: f64,
        check_every: usize,
    ) -> Result<PageGrid, String> {
        let mut grid = PageGrid::helper(settings_query, axes, data_seeds, seeds, until_train_loss, check_every)?;
        grid.collected = Some(vec![None; grid.units()]);
        Ok(grid)
    }

    /// A study helper's: it trains the units dealt to it and hands their runs
    /// over (`take_numbers`) for the element's worker to collect.
    pub fn helper(
        settings_query: &str,
        axes: &str,
        data_seeds: usize,
        seeds: usize,
        until_train_loss: f64,
        check_every: usize,
    ) -> Result<PageGrid, String> {
        let grid = page_grid(settings_query, axes, data_seeds, seeds, until_train_loss, check_every)?;
        Ok(PageGrid {
            job: GridJob::dealt_one_by_one(grid).in_pieces(STEPS_PER_PIECE),
            collected: None,
            collected_count: 0,
            newly_collected: Vec::new(),
            merged: None,
            stats: None,
            output: None,
            error: None,
            slicer: Slicer::default(),
            longest_piece_ms: 0.0,
        })
    }

    /// The study's (cell, data draw) units.
    pub fn units(&self) -> usize {
        self.job.grid().units()
    }

    /// Deals unit `unit` to this worker, after those dealt before: trained
    /// here for None, else measured from every run's weights trained
    /// elsewhere, run after run (`UnitJob::replicas`' order) in one flat
    /// list. Errors (dealing nothing) if the unit or weights do not fit.
    pub fn deal(&mut self, unit: usize, weights: Option<&[f64]>) -> Result<(), String> {
        let trained = match weights {
            None => None,
            Some(w) => {
                let runs = 2 * self.job.grid().spec.seeds;
                let p = w.len() / runs;
                if p == 0 || w.len() != runs * p {
                    return Err(format!("unit {unit}: expected the weights of {runs} runs, got {} numbers", w.len()));
                }
                Some(w.chunks_exact(p).map(<[f64]>::to_vec).collect())
            }
        };
        self.job.deal(unit, trained)
    }

    /// Drops unit `unit` if it is dealt here and not finished (another
    /// worker's copy finished first); returns whether it was.
    pub fn drop_unit(&mut self, unit: usize) -> bool {
        self.job.drop_unit(unit)
    }

    /// Units dealt here and not finished: 0 when this worker is free for another.
    pub fn holds(&self) -> usize {
        self.job.holds()
    }

    /// How far the unit under way here is, in [0, 1].
    pub fn unit_progress(&self) -> f64 {
        self.job.unit_progress()
    }

    /// A helper: the runs of the units it finished since the last call, as
    /// plain numbers (`RunResult::to_numbers`, unit after unit) for the
    /// element's worker's `add_runs`.
    pub fn take_numbers(&mut self) -> Vec<f64> {
        let mut out = Vec::new();
        for run in self.job.take_runs() {
            run.to_numbers(&mut out);
        }
        out
    }

    /// The element's worker: a helper's finished units' runs (its
    /// `take_numbers`). A unit already in must be the same to the bit (a
    /// unit's runs do not depend on who trains it); errors say what does
    /// not fit.
    pub fn add_runs(&mut self, numbers: &[f64]) -> Result<(), String> {
        let grid = self.job.grid();
        let per_run = RunResult::numbers_len(grid.evaluations.len());
        if !numbers.len().is_multiple_of(per_run) {
            return Err(format!("a helper's runs: {} numbers, not runs of {per_run}", numbers.len()));
        }
        let runs = numbers
            .chunks_exact(per_run)
            .map(|n| RunResult::from_numbers(n, grid.evaluations.len()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        self.collect(runs)
    }

    /// Files finished units' runs (whole units, in run order) under their units.
    fn collect(&mut self, runs: Vec<RunResult>) -> Result<(), String> {
        let grid = self.job.grid();
        let seeds = grid.spec.seeds;
        let Some(collected) = self.collected.as_mut() else {
            return Err("only the element's worker's study collects runs".into());
        };
        if !runs.len().is_multiple_of(2 * seeds) {
            return Err(format!("{} runs are not whole units of {} runs", runs.len(), 2 * seeds));
        }
        for unit_runs in runs.chunks_exact(2 * seeds) {
            let u = grid.unit_of(unit_runs)?;
            match &collected[u] {
                Some(earlier) => {
                    let bits = |runs: &[RunResult]| {
                        let mut out = Vec::new();
                        runs.iter().for_each(|r| r.to_numbers(&mut out));
                        out.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                    };
                    if bits(earlier) != bits(unit_runs) {
                        return Err(format!("two workers' runs of unit {u} differ"));
                    }
                }
                None => {
                    collected[u] = Some(unit_runs.to_vec());
                    self.collected_count += 1;
                    self.newly_collected.push(u);
                }
            }
        }
        Ok(())
    }

    /// The element's worker: the units whose runs came in since the last call
    /// (their copies elsewhere can be dropped).
    pub fn take_collected(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.newly_collected)
    }

    /// The element's worker: units whose runs are in.
    pub fn collected_units(&self) -> usize {
        self.collected_count
    }

    /// Works for about `budget_ms` (pieces of at most [`STEPS_PER_PIECE`]
    /// training steps, one evaluation, one sharpness piece or one bootstrap
    /// resample), through the one driver every job of the page runs under
    /// (`Slicer::work_for`); returns the progress in [0, 1]. `now` reads a
    /// clock in ms. It returns at once while it has no unit to work on and
    /// waits for one, or for the helpers' runs; an error says that runs or
    /// weights handed in do not fit.
    pub fn advance(&mut self, budget_ms: f64, now: impl Fn() -> f64) -> Result<f64, String> {
        // The longest stretch between two clock readings: how long a message to the worker may wait.
        let (mut last, mut longest) = (now(), self.longest_piece_ms);
        let mut clock = || {
            let t = now();
            longest = longest.max(t - last);
            last = t;
            t
        };
        let mut slicer = self.slicer;
        slicer.work_for(self, &mut (), budget_ms, &mut clock);
        self.slicer = slicer;
        self.longest_piece_ms = longest;
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(self.progress()),
        }
    }

    /// One piece of work: a piece of training or measuring a dealt unit (its
    /// runs collected once done), or, once every unit is in, a piece of the
    /// statistics, ending with the study's JSON.
    fn piece(&mut self) -> Result<(), String> {
        if !self.job.is_done() {
            self.job.advance(&mut ());
            if self.collected.is_some() && !self.job.runs().is_empty() {
                let runs = self.job.take_runs();
                self.collect(runs)?;
            }
        } else if self.output.is_none() && self.collected_count == self.units() {
            let grid = self.job.grid();
            // A copy (kept: a late copy of a unit is still checked against it).
            let runs = self.merged.get_or_insert_with(|| {
                let collected = self.collected.as_ref().expect("counted");
                collected.iter().flat_map(|u| u.clone().expect("every unit is in")).collect()
            });
            let stats = self.stats.get_or_insert_with(|| StatsJob::new(grid, runs));
            if stats.advance(&mut StatsInput { grid, runs }) {
                let stats = self.stats.take().expect("just advanced").finish();
                let value = serde_json::to_value(grid.output_with(None, runs.clone(), Some(stats)))
                    .expect("plain data serialises");
                self.output = Some(value.to_string());
            }
        }
        Ok(())
    }

    /// `[runs done, runs in all, longest piece so far in ms]`: the element's
    /// worker's are the whole study's runs collected; a helper's, those of the
    /// units dealt to it.
    pub fn counts(&self) -> Vec<f64> {
        let (done, all) = match self.collected {
            Some(_) => {
                let per_unit = 2 * self.job.grid().spec.seeds;
                (self.collected_count * per_unit, self.units() * per_unit)
            }
            None => self.job.counts(),
        };
        vec![done as f64, all as f64, self.longest_piece_ms]
    }

    /// The finished study as JSON (`flatminima study`'s output: spec, cells,
    /// evaluations, runs, stats), or None while it runs.
    pub fn result_json(&self) -> Option<&str> {
        self.output.as_deref()
    }
}

impl Job for PageGrid {
    fn advance(&mut self, _: &mut ()) -> bool {
        if let Err(e) = self.piece() {
            self.error = Some(e);
        }
        self.is_done()
    }

    /// Fraction done: the element's worker's, units collected (and its own
    /// unit's part) then the statistics (a few percent); a helper's, its
    /// unit under way's.
    fn progress(&self) -> f64 {
        if self.collected.is_none() {
            return self.job.unit_progress();
        }
        match (&self.output, &self.stats) {
            (Some(_), _) => 1.0,
            (None, Some(stats)) => 0.97 + 0.03 * stats.progress().min(0.99),
            (None, None) => {
                let units = self.units().max(1) as f64;
                (0.97 * (self.collected_count as f64 + self.job.unit_progress()) / units).min(0.97)
            }
        }
    }

    /// Whether the study has its JSON, or failed.
    fn is_done(&self) -> bool {
        self.output.is_some() || self.error.is_some()
    }

    /// Nothing dealt to work on, and (the element's worker) not every unit in yet.
    fn is_waiting(&self) -> bool {
        self.job.is_done() && (self.collected.is_none() || self.collected_count < self.units())
    }
}
