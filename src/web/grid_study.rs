//! The study panel's grid study (`crate::study_grid`): settings as axes over
//! the page's current settings, K data draws x S seeds, fixed steps (the
//! page's) or the matched-loss rule, trained and measured on the CPU a
//! bounded piece at a time (`GridJob`, then the statistics' `StatsJob`), so
//! that no worker task runs long and pause, cancel and new settings still take
//! effect between pieces. The answer is the CLI's study JSON, byte for byte
//! (`tests/web.rs` against the native fixture). Plain Rust: `study_page.rs`
//! exports it to the worker (feature `study-page`); tests call it directly.
//!
//! Two cores: the worker may split the study in shards (`PageGrid::sharded`),
//! one per worker, as `flatminima study --shard` does. Shard 0 takes the other
//! shards' runs (`add_part`, as plain numbers), merges them in unit order and
//! computes the statistics: the same JSON as one worker's, byte for byte.

use crate::job::{Job, Slicer};
use crate::study_grid::{page_grid, Grid, GridJob, RunResult, Shard, StudyOutput};
use crate::study_stats::{StatsInput, StatsJob};

/// Training steps per piece: about 2 ms of SAM on the reference net in wasm.
pub const STEPS_PER_PIECE: usize = 64;

/// A grid study under way in the page.
pub struct PageGrid {
    job: GridJob,
    shard: Option<Shard>,
    /// Shard 0: the other shards' outputs as they arrive.
    parts: Vec<StudyOutput>,
    /// Every run of the study in unit order, once all shards are in.
    merged: Option<(Grid, Vec<RunResult>)>,
    /// Whether units are trained elsewhere (the GPU module) and handed in
    /// ([`PageGrid::set_trained`]) or marked for the CPU, unit by unit.
    external: bool,
    /// Units handed in: their runs' weights, or None to train them here.
    handed: Vec<(usize, Option<Vec<Vec<f64>>>)>,
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
        PageGrid::sharded(settings_query, axes, data_seeds, seeds, until_train_loss, check_every, None)
    }

    /// [`PageGrid::new`], training only the units of `shard` (all for None).
    /// Shard 0 ends with the whole study's JSON once every other shard's runs
    /// are added ([`PageGrid::add_part`]); any other ends with its runs
    /// ([`PageGrid::part_numbers`]).
    pub fn sharded(
        settings_query: &str,
        axes: &str,
        data_seeds: usize,
        seeds: usize,
        until_train_loss: f64,
        check_every: usize,
        shard: Option<Shard>,
    ) -> Result<PageGrid, String> {
        let grid = page_grid(settings_query, axes, data_seeds, seeds, until_train_loss, check_every)?;
        let shard = shard.filter(|s| s.count > 1);
        Ok(PageGrid {
            job: GridJob::new(grid, shard).in_pieces(STEPS_PER_PIECE),
            shard,
            parts: Vec::new(),
            merged: None,
            external: false,
            handed: Vec::new(),
            stats: None,
            output: None,
            error: None,
            slicer: Slicer::default(),
            longest_piece_ms: 0.0,
        })
    }

    /// The study's (cell, data draw) units, in all shards.
    pub fn units(&self) -> usize {
        self.job.grid().units()
    }

    /// Shard 0: shard `index`'s finished runs (its [`PageGrid::part_numbers`]).
    /// Errors say what does not fit (another shard count, a repeated shard, a
    /// run of another unit: `Grid::merge_runs` checks every run).
    pub fn add_part(&mut self, index: usize, numbers: &[f64]) -> Result<(), String> {
        let Some(me) = self.shard.filter(|s| s.index == 0 && index > 0 && index < s.count) else {
            return Err(format!("shard {index}'s runs do not belong to this study's shards"));
        };
        let shard = Shard { index, count: me.count };
        if self.parts.iter().any(|p| p.shard == Some(shard)) {
            return Err(format!("shard {shard}'s runs were added twice"));
        }
        let grid = self.job.grid();
        let per_run = RunResult::numbers_len(grid.evaluations.len());
        if !numbers.len().is_multiple_of(per_run) {
            return Err(format!("shard {shard}'s runs: {} numbers, not runs of {per_run}", numbers.len()));
        }
        let runs = numbers
            .chunks_exact(per_run)
            .map(|n| RunResult::from_numbers(n, grid.evaluations.len()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        self.parts.push(grid.output_with(Some(shard), runs, None));
        Ok(())
    }

    /// Another shard (index > 0), once done: its runs as numbers for shard 0's `add_part`.
    pub fn part_numbers(&self) -> Option<Vec<f64>> {
        let mut out = Vec::new();
        (self.shard.is_some_and(|s| s.index > 0) && self.job.is_done())
            .then(|| self.job.runs().iter().for_each(|r| r.to_numbers(&mut out)))
            .map(|_| out)
    }

    /// Whether this shard's own work is done and it waits for the other shards' runs.
    pub fn waits_for_shards(&self) -> bool {
        self.output.is_none() && self.merged.is_none() && self.job.is_done() && self.shard.is_some_and(|s| s.index == 0)
    }

    /// From now on each unit waits until its runs' weights are handed in
    /// ([`PageGrid::set_trained`], trained on the GPU) or it is marked for
    /// the CPU ([`PageGrid::train_here`]); [`PageGrid::wanted_unit`] says which.
    pub fn train_elsewhere(&mut self) {
        self.external = true;
    }

    /// The unit the study waits for (see [`PageGrid::train_elsewhere`]).
    pub fn wanted_unit(&self) -> Option<usize> {
        let u = self.job.next_unit().filter(|_| self.external)?;
        (!self.handed.iter().any(|(h, _)| *h == u)).then_some(u)
    }

    /// Unit `unit`'s runs trained elsewhere: every run's weights, run after
    /// run (`UnitJob::replicas`' order), as one flat list. Errors if they do not fit.
    pub fn set_trained(&mut self, unit: usize, weights: &[f64]) -> Result<(), String> {
        let grid = self.job.grid();
        let runs = 2 * grid.spec.seeds;
        let p = weights.len() / runs;
        if unit >= grid.units() || p == 0 || weights.len() != runs * p {
            return Err(format!("unit {unit}: expected the weights of {runs} runs, got {} numbers", weights.len()));
        }
        self.handed.push((unit, Some(weights.chunks_exact(p).map(<[f64]>::to_vec).collect())));
        Ok(())
    }

    /// Unit `unit` trains here (the GPU cannot train it, or failed).
    pub fn train_here(&mut self, unit: usize) {
        self.handed.push((unit, None));
    }

    /// Merges every shard's runs in unit order once all are in; returns whether they are.
    fn merge_if_ready(&mut self) -> Result<bool, String> {
        if self.merged.is_none() {
            match self.shard {
                None => self.merged = Some((self.job.grid().clone(), self.job.runs().to_vec())),
                Some(s) if self.parts.len() + 1 < s.count => return Ok(false),
                Some(_) => {
                    let mut parts = std::mem::take(&mut self.parts);
                    parts.push(self.job.output());
                    self.merged = Some(Grid::merge_runs(parts).map_err(|e| e.to_string())?);
                }
            }
        }
        Ok(true)
    }

    /// Works for about `budget_ms` (pieces of at most [`STEPS_PER_PIECE`]
    /// training steps, one evaluation, one sharpness piece or one bootstrap
    /// resample), through the one driver every job of the page runs under
    /// (`Slicer::work_for`); returns the progress in [0, 1]. `now` reads a
    /// clock in ms. Shard 0 returns at once while it waits for the other
    /// shards; an error says that their runs do not fit together, or that
    /// weights handed in do not fit their unit.
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

    /// One piece of work: the next unit started with its handed-in weights,
    /// a piece of training or measuring, the shards' runs merged, or a piece
    /// of the statistics, ending with the study's JSON.
    fn piece(&mut self) -> Result<(), String> {
        if let Some(u) = self.job.next_unit().filter(|_| self.external) {
            if let Some(at) = self.handed.iter().position(|(h, _)| *h == u) {
                let (_, weights) = self.handed.swap_remove(at);
                self.job.start_next_unit(weights)?;
            } // else the unit's weights have not come yet (`is_waiting`)
        } else if !self.job.is_done() {
            self.job.advance(&mut ());
        } else if self.shard.is_none_or(|s| s.index == 0) && self.merge_if_ready()? {
            let (grid, runs) = self.merged.as_ref().expect("just merged");
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

impl Job for PageGrid {
    fn advance(&mut self, _: &mut ()) -> bool {
        if let Err(e) = self.piece() {
            self.error = Some(e);
        }
        self.is_done()
    }

    /// Fraction done: training and measuring, then the statistics (a few
    /// percent); another shard's is done (1) once its runs are.
    fn progress(&self) -> f64 {
        if self.shard.is_some_and(|s| s.index > 0) && self.job.is_done() {
            return 1.0;
        }
        match (&self.output, &self.stats) {
            (Some(_), _) => 1.0,
            (None, Some(stats)) => 0.97 + 0.03 * stats.progress().min(0.99),
            (None, None) => 0.97 * self.job.progress(),
        }
    }

    /// Whether the study has its JSON (or another shard its runs), or failed.
    fn is_done(&self) -> bool {
        self.output.is_some() || self.error.is_some() || (self.shard.is_some_and(|s| s.index > 0) && self.job.is_done())
    }

    /// Waiting for a unit's weights from the GPU module, or for the other shards' runs.
    fn is_waiting(&self) -> bool {
        let parts_missing = self.shard.is_some_and(|s| self.parts.len() + 1 < s.count);
        self.wanted_unit().is_some() || (self.waits_for_shards() && parts_missing)
    }
}
