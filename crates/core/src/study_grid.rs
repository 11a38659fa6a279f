//! A study grid: does the answer survive other data draws and other
//! hyperparameters? Any settings become axes (`lr=0.01,0.1`, `batch-size=4,32`,
//! `rho=...`: the flat vocabulary of `settings.rs`); every cell of their
//! product is trained on K data draws x S init/batch-order seeds, both sides
//! of every pair, and each trained run is measured (`RunResult`).
//!
//! Seeds. Draw k (0-based) uses data seed `config.seed + k`; within it, seed
//! index j trains from init and batch-order seed `config.seed + k + j * 2^32`.
//! So draw k, seed 0 is exactly `compare --set seed=<config.seed + k>`, and no
//! two pairs of a study share an init seed. Left and right of a pair share data,
//! init and batches (`study::Study` replicas), so each pair is a fair comparison.
//!
//! Evaluation axes. `shift` and `severity` change only the OOD test set, never
//! the training, so they are not trained per value: every run is tested on
//! every (shift, severity) of their product (`evaluations`).
//!
//! Work is split in units, one per (cell, draw): 2 S runs. A shard i/n takes
//! the units u with u mod n = i; concatenated in unit order, the shards' runs
//! are exactly the unsharded study's, so the statistics (`study_stats`) of a
//! merge are those of one run, bit for bit. Plain data, no files: the CLI
//! reads and writes them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{RunConfig, DEFAULT_RHO};
use crate::data::{ood_test_set, Dataset, ShiftConfig, ShiftKind};
use crate::error::{check_count, ConfigError};
use crate::job::Job;
use crate::pair::Pair;
use crate::settings::{apply_settings, SETTINGS};
use crate::sharpness::{SharpnessJob, SharpnessReport, SharpnessSettings};
use crate::study::{Replica, ReplicaRun, Study};

/// Version tag of a study's JSON (the unsharded output, a shard, a merge).
pub const STUDY_FORMAT: &str = "flatminima-study-grid/1";
/// The most data draws, seeds per draw, and pairs a study takes: a typo
/// (`--seeds 40000`) is refused instead of starting a week of work.
pub const MAX_DRAWS: usize = 10_000;
/// The most seeds per draw a study takes.
pub const MAX_SEEDS: usize = 10_000;
/// The most pairs (cells x draws x seeds) a study takes.
pub const MAX_PAIRS: usize = 10_000_000;
/// The most pairs a study in the page takes (cells x data draws x seeds):
/// 256 pairs of the reference net take tens of seconds there.
pub const PAGE_MAX_PAIRS: usize = 4096;
/// A run whose train accuracy (ID accuracy with label noise) is this far below
/// the best run of its cell and draw (either side, any seed), or within this of
/// chance, is flagged underfit.
pub const UNDERFIT_MARGIN: f64 = 0.05;

/// One axis: a setting and the values it takes, as written (`lr`, `0.01`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// The setting's name, as in `--set` (`lr`).
    pub name: String,
    /// The values it takes, as written (`0.01`).
    pub values: Vec<String>,
}

/// When a run stops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StopRule {
    /// The cell's `training.steps` steps.
    Steps,
    /// The matched-loss protocol (Jiang et al. 2020): stop when the loss on the
    /// whole training set first reaches `target`, checked every `check_every`
    /// steps, at most the cell's `training.steps` steps.
    TrainLoss {
        /// The training loss to reach.
        target: f64,
        /// Steps between two checks of the loss.
        check_every: usize,
    },
}

/// Everything a study does, as plain data: it determines every number of the
/// result (written into the output, compared when shards are merged).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSpec {
    /// The config every cell starts from; its seed is draw 0's data seed.
    pub base: RunConfig,
    /// Training and evaluation axes, in the order given (the last varies fastest).
    pub axes: Vec<Axis>,
    /// K: data draws.
    pub data_seeds: usize,
    /// S: init/batch-order seeds per draw.
    pub seeds: usize,
    /// When each run stops: after its steps, or at a target training loss.
    pub stop: StopRule,
    /// The same for every run (radii fixed so that values compare across
    /// cells); its seed is replaced by each pair's seed.
    pub sharpness: SharpnessSettings,
}

impl GridSpec {
    /// A study of `base` without axes: K draws x S seeds, fixed steps, the
    /// study's sharpness settings.
    pub fn new(base: RunConfig, data_seeds: usize, seeds: usize) -> GridSpec {
        GridSpec { base, axes: Vec::new(), data_seeds, seeds, stop: StopRule::Steps, sharpness: study_sharpness() }
    }

    /// A study of `base` over the axes in `axes` ([`parse_axes`]' text, as
    /// the page's study panel writes them): what the page runs.
    pub fn with_axes(
        base: RunConfig,
        axes: &str,
        data_seeds: usize,
        seeds: usize,
        stop: StopRule,
    ) -> Result<GridSpec, ConfigError> {
        Ok(GridSpec { axes: parse_axes(axes)?, stop, ..GridSpec::new(base, data_seeds, seeds) })
    }
}

/// The measures a study takes of every run: the page's quick budget (256
/// points, 20 power iterations, 8 Hutchinson samples) plus the dense spectrum
/// (exact lambda_max and trace where it fits), at SAM's default radius.
pub fn study_sharpness() -> SharpnessSettings {
    SharpnessSettings {
        spectrum: true,
        rho: DEFAULT_RHO,
        adaptive_rho: 10.0 * DEFAULT_RHO,
        ..SharpnessSettings::quick()
    }
}

/// The study panel's measures: those of [`study_sharpness`] but for lambda_max
/// by 20 Lanczos steps (the reference net's to ~1e-15, measured against the
/// dense spectrum: `crates/core/benches/study.rs`) and the exact trace from the
/// Hessian's diagonal, without the dense Hessian and its eigenvalues (which
/// took most of a study's time: ~15 ms of ~30 ms per run natively). The spec
/// records the settings, so `flatminima study --measures fast` gives the
/// page's numbers.
pub fn fast_study_sharpness() -> SharpnessSettings {
    SharpnessSettings { spectrum: false, lanczos_steps: 20, exact_trace: true, ..study_sharpness() }
}

/// The study panel's grid: the page's settings (`settings_query`, a URL
/// query), `axes` as the panel writes them, `data_seeds` x `seeds`, the
/// settings' steps or, for a number `until_train_loss`, the matched-loss rule
/// checked every `check_every` steps; the page's measures. The study module
/// and the GPU module both build it from the same inputs. Errors name what is
/// wrong, including a grid over [`PAGE_MAX_PAIRS`].
pub fn page_grid(
    settings_query: &str,
    axes: &str,
    data_seeds: usize,
    seeds: usize,
    until_train_loss: f64,
    check_every: usize,
) -> Result<Grid, String> {
    let pairs = crate::settings::parse_query(settings_query);
    let (base, errors) = crate::settings::config_from_settings(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if let Some(e) = errors.first() {
        return Err(e.to_string());
    }
    let stop = if until_train_loss.is_nan() {
        StopRule::Steps
    } else {
        StopRule::TrainLoss { target: until_train_loss, check_every }
    };
    let mut spec = GridSpec::with_axes(base, axes, data_seeds, seeds, stop).map_err(|e| e.to_string())?;
    spec.sharpness = fast_study_sharpness();
    let grid = Grid::new(spec).map_err(|e| e.to_string())?;
    if grid.pairs() > PAGE_MAX_PAIRS {
        return Err(format!(
            "grid: {} pairs (cells x data draws x seeds) is more than the page's {PAGE_MAX_PAIRS}; use the CLI \
             (flatminima study --vary ...) for bigger grids",
            grid.pairs()
        ));
    }
    Ok(grid)
}

/// One cell: the training axes' values and the config they give.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// The training axes' (name, value) of this cell.
    pub settings: Vec<(String, String)>,
    /// The run config those values give (the base config with them applied).
    pub config: RunConfig,
}

/// A validated spec, expanded: its cells and the OOD sets every run is tested on.
#[derive(Clone, Debug)]
pub struct Grid {
    /// The spec it was expanded from.
    pub spec: GridSpec,
    /// Training axes only (shift and severity are evaluations).
    pub training_axes: Vec<Axis>,
    /// Every combination of the training axes' values, the last axis fastest.
    pub cells: Vec<Cell>,
    /// The OOD sets every run is tested on (one per shift x severity).
    pub evaluations: Vec<ShiftConfig>,
}

fn is_evaluation_axis(name: &str) -> bool {
    name == "shift" || name == "severity"
}

impl Grid {
    /// Checks every axis and every cell; errors name the axis, the value and
    /// what is wrong (`lr=abc: must be a number in [0, 100], got `abc``).
    pub fn new(spec: GridSpec) -> Result<Grid, ConfigError> {
        spec.base.validate()?;
        check_count("data-seeds", spec.data_seeds, 1, MAX_DRAWS)?;
        check_count("seeds", spec.seeds, 1, MAX_SEEDS)?;
        if let StopRule::TrainLoss { target, check_every } = spec.stop {
            if !(target.is_finite() && target > 0.0) {
                return Err(ConfigError::new(
                    "until-train-loss",
                    format!("must be a positive number (a mean cross-entropy, e.g. 0.05), got {target}"),
                ));
            }
            check_count("check-every", check_every, 1, 1_000_000)?;
        }
        if spec.base.train_points.is_some() && spec.data_seeds > 1 {
            return Err(ConfigError::new(
                "data-seeds",
                "the config pins its training points, so it has one data draw: use --data-seeds 1",
            ));
        }
        for (i, axis) in spec.axes.iter().enumerate() {
            if !SETTINGS.iter().any(|s| s.name == axis.name) {
                let names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
                return Err(ConfigError::new(&axis.name, format!("unknown setting; known ones: {}", names.join(", "))));
            }
            if axis.name == "seed" {
                return Err(ConfigError::new("seed", "is not an axis: use --data-seeds K and --seeds S"));
            }
            if spec.axes[..i].iter().any(|a| a.name == axis.name) {
                return Err(ConfigError::new(&axis.name, "is given twice; list all its values in one --vary"));
            }
            if axis.values.is_empty() || axis.values.iter().any(|v| v.trim().is_empty()) {
                return Err(ConfigError::new(&axis.name, "needs a list of values, e.g. lr=0.01,0.1"));
            }
            if let Some(v) = axis.values.iter().enumerate().find_map(|(k, v)| axis.values[..k].contains(v).then_some(v))
            {
                return Err(ConfigError::new(&axis.name, format!("lists the value `{v}` twice")));
            }
            // Each value on its own first, so the message names it.
            for v in &axis.values {
                apply_settings(&spec.base, [(axis.name.as_str(), v.as_str())])
                    .map_err(|e| ConfigError::new(format!("{}={v}", axis.name), first_message(&e)))?;
            }
        }
        let (evaluation_axes, training_axes): (Vec<Axis>, Vec<Axis>) =
            spec.axes.iter().cloned().partition(|a| is_evaluation_axis(&a.name));
        let cells_count = training_axes.iter().try_fold(1usize, |n, a| n.checked_mul(a.values.len()));
        let pairs = cells_count.and_then(|c| c.checked_mul(spec.data_seeds)).and_then(|u| u.checked_mul(spec.seeds));
        if pairs.is_none_or(|p| p > MAX_PAIRS) {
            return Err(ConfigError::new(
                "grid",
                format!("has more than {MAX_PAIRS} pairs (cells x data draws x seeds); split it into several studies"),
            ));
        }
        let mut cells = Vec::new();
        for coords in product(&training_axes.iter().map(|a| a.values.len()).collect::<Vec<_>>()) {
            let settings: Vec<(String, String)> =
                training_axes.iter().zip(&coords).map(|(a, &k)| (a.name.clone(), a.values[k].clone())).collect();
            let config =
                apply_settings(&spec.base, settings.iter().map(|(n, v)| (n.as_str(), v.as_str()))).map_err(|e| {
                    let cell: Vec<String> = settings.iter().map(|(n, v)| format!("{n}={v}")).collect();
                    ConfigError::new(format!("cell {}", cell.join(" ")), format!("{}: {}", e[0].field, e[0].message))
                })?;
            cells.push(Cell { settings, config });
        }
        let evaluations = evaluations(&spec.base, &evaluation_axes)?;
        Ok(Grid { spec, training_axes, cells, evaluations })
    }

    /// Units of work: one per (cell, draw), cell-major.
    pub fn units(&self) -> usize {
        self.cells.len() * self.spec.data_seeds
    }

    /// Pairs of runs (left and right) the whole grid trains: units x seeds per draw.
    pub fn pairs(&self) -> usize {
        self.units() * self.spec.seeds
    }

    /// Data seed of draw k, and the init/batch seed of seed index j in it.
    pub fn data_seed(&self, draw: usize) -> u64 {
        self.spec.base.seed.wrapping_add(draw as u64)
    }

    /// The init and batch-order seed of seed index `j` in draw `draw`: the draw's data seed plus `j` shifted 32 bits up.
    pub fn run_seed(&self, draw: usize, j: usize) -> u64 {
        self.data_seed(draw).wrapping_add((j as u64) << 32)
    }

    /// The value index of every training axis in cell `cell` (the last axis fastest).
    pub fn coords(&self, cell: usize) -> Vec<usize> {
        let mut rest = cell;
        let mut out = vec![0; self.training_axes.len()];
        for (i, axis) in self.training_axes.iter().enumerate().rev() {
            out[i] = rest % axis.values.len();
            rest /= axis.values.len();
        }
        out
    }

    /// Which unit `runs` are: all the runs of one (cell, draw) in the unit's
    /// order (seed after seed, left then right), each with the unit's data and
    /// init seeds and every evaluation. Runs from elsewhere (a shard file,
    /// another worker) are checked here, not trusted.
    pub fn unit_of(&self, runs: &[RunResult]) -> Result<usize, String> {
        let (draws, seeds) = (self.spec.data_seeds, self.spec.seeds);
        let Some(first) = runs.first() else {
            return Err("no runs are not a unit".into());
        };
        let (cell, draw) = (first.cell, first.draw);
        let fits = runs.len() == 2 * seeds
            && cell < self.cells.len()
            && draw < draws
            && runs.iter().enumerate().all(|(i, r)| {
                (r.cell, r.draw, r.seed_index, r.side) == (cell, draw, i / 2, i % 2)
                    && (r.data_seed, r.seed) == (self.data_seed(draw), self.run_seed(draw, i / 2))
                    && r.ood.len() == self.evaluations.len()
            });
        if fits {
            Ok(cell * draws + draw)
        } else {
            Err(format!("the runs of cell {cell}, draw {draw} are not a unit of this study"))
        }
    }

    /// Trains and measures unit `unit`: every seed of (cell, draw), left then
    /// right, with the underfit flags of the unit set. (A [`UnitJob`] run to
    /// its end: the page runs the same job a piece at a time.)
    pub fn run_unit(&self, unit: usize) -> Vec<RunResult> {
        UnitJob::new(self, unit).finish()
    }

    /// The units of shard `index` of `count` (round robin, so that every shard
    /// gets a share of every cell).
    pub fn shard_units(&self, shard: Shard) -> impl Iterator<Item = usize> {
        (shard.index..self.units()).step_by(shard.count)
    }

    /// Trains the units of `shard` (all of them for None) and returns the output
    /// with the statistics (None for a shard: they need every run).
    pub fn run(&self, shard: Option<Shard>, progress: impl FnMut(usize, usize)) -> StudyOutput {
        self.run_on_threads(shard, 1, progress)
    }

    /// [`Grid::run`] with the units spread over `threads` threads (see
    /// [`finish_units`]): the same output, byte for byte. `progress(done,
    /// units)` is told after each unit.
    pub fn run_on_threads(
        &self,
        shard: Option<Shard>,
        threads: usize,
        mut progress: impl FnMut(usize, usize),
    ) -> StudyOutput {
        let all = Shard { index: 0, count: 1 };
        let units: Vec<usize> = self.shard_units(shard.unwrap_or(all)).collect();
        let runs =
            finish_units(units.iter().copied(), threads, |u| UnitJob::new(self, u), |done| progress(done, units.len()));
        self.output(shard, runs)
    }

    fn output(&self, shard: Option<Shard>, runs: Vec<RunResult>) -> StudyOutput {
        let stats = shard.is_none().then(|| crate::study_stats::StudyStats::new(self, &runs));
        self.output_with(shard, runs, stats)
    }

    /// The output of `runs` (this shard's, or all of them for None) with
    /// statistics computed elsewhere (a `StatsJob` spread over many calls).
    pub fn output_with(
        &self,
        shard: Option<Shard>,
        runs: Vec<RunResult>,
        stats: Option<crate::study_stats::StudyStats>,
    ) -> StudyOutput {
        StudyOutput {
            format: STUDY_FORMAT.to_string(),
            spec: self.spec.clone(),
            shard,
            cells: self
                .cells
                .iter()
                .map(|c| CellInfo {
                    settings: c.settings.clone(),
                    left: c.config.left.label(),
                    right: c.config.right.label(),
                })
                .collect(),
            evaluations: self.evaluations.clone(),
            runs,
            stats,
        }
    }

    /// Joins the shards of one study into the output one unsharded run gives.
    /// Errors say which shard is missing, repeated or from another study.
    pub fn merge(parts: Vec<StudyOutput>) -> Result<StudyOutput, ConfigError> {
        let (grid, runs) = Grid::merge_runs(parts)?;
        Ok(grid.output(None, runs))
    }

    /// [`Grid::merge`] without the statistics: the study's grid and all its
    /// runs in unit order, checked (the page computes the statistics in pieces).
    pub fn merge_runs(parts: Vec<StudyOutput>) -> Result<(Grid, Vec<RunResult>), ConfigError> {
        let Some(first) = parts.first() else {
            return Err(ConfigError::new("merge", "needs the shard files of one study"));
        };
        let grid = Grid::new(first.spec.clone())?;
        let Some(count) = first.shard.map(|s| s.count) else {
            return Err(ConfigError::new("merge", "the first file is a finished study, not a shard"));
        };
        let mut seen = vec![false; count];
        for (i, part) in parts.iter().enumerate() {
            if part.format != STUDY_FORMAT {
                return Err(ConfigError::new(format!("file {}", i + 1), format!("is not a {STUDY_FORMAT} shard")));
            }
            if part.spec != first.spec {
                return Err(ConfigError::new(
                    format!("file {}", i + 1),
                    "is a shard of another study (its spec differs)",
                ));
            }
            match part.shard {
                Some(s) if s.count == count && s.index < count => {
                    if std::mem::replace(&mut seen[s.index], true) {
                        return Err(ConfigError::new(format!("file {}", i + 1), format!("repeats shard {s}")));
                    }
                }
                other => {
                    let what = other.map_or("a finished study".to_string(), |s| format!("shard {s}"));
                    return Err(ConfigError::new(
                        format!("file {}", i + 1),
                        format!("is {what}, expected one of {count} shards"),
                    ));
                }
            }
        }
        if let Some(missing) = seen.iter().position(|s| !s) {
            return Err(ConfigError::new("merge", format!("shard {missing}/{count} is missing")));
        }
        let mut runs: Vec<RunResult> = parts.into_iter().flat_map(|p| p.runs).collect();
        runs.sort_by_key(|r| (r.cell, r.draw, r.seed_index, r.side));
        if runs.len() != 2 * grid.pairs() {
            return Err(ConfigError::new(
                "merge",
                format!("the shards hold {} runs, the study has {}", runs.len(), 2 * grid.pairs()),
            ));
        }
        // Exactly the study's runs, each once, in unit order (an edited file is refused).
        for (k, unit_runs) in runs.chunks_exact(2 * grid.spec.seeds).enumerate() {
            let why = match grid.unit_of(unit_runs) {
                Ok(u) if u == k => continue,
                Ok(u) => format!("expected unit {k}, found unit {u}"),
                Err(e) => e,
            };
            return Err(ConfigError::new("merge", format!("the shards' runs are not those of the study: {why}")));
        }
        Ok((grid, runs))
    }
}

/// A worker's part of a grid study, trained and measured a piece per
/// [`Job::advance`] call, unit after unit (see [`UnitJob`]), so that a page
/// can spread it over many short tasks and drop it to cancel. It trains the
/// units dealt to it, in the order dealt: a shard's at once
/// ([`GridJob::new`]), or one at a time ([`GridJob::deal`]) by a page that
/// hands each unit to whichever of its workers is free, each trained here or
/// measured from weights trained elsewhere (the GPU's). A unit's runs do not
/// depend on who trains it or in which pieces: dealt every unit in order, the
/// job's runs are [`Grid::run`]'s bit for bit.
pub struct GridJob {
    grid: Grid,
    shard: Option<Shard>,
    /// Units dealt and not started; `Some` job where the runs were trained elsewhere.
    dealt: std::collections::VecDeque<(usize, Option<UnitJob>)>,
    /// The unit under way.
    unit: Option<(usize, UnitJob)>,
    /// Units finished here.
    finished: usize,
    /// Their runs, unit after unit in the order they finished.
    runs: Vec<RunResult>,
    /// Training steps per piece (see [`UnitJob::in_pieces`]).
    steps_per_piece: usize,
}

impl GridJob {
    /// A job over the units of `shard` (every unit for None), each run
    /// trained in one piece until [`GridJob::in_pieces`] says otherwise.
    pub fn new(grid: Grid, shard: Option<Shard>) -> GridJob {
        let mut job = GridJob::dealt_one_by_one(grid);
        let units: Vec<usize> = job.grid.shard_units(shard.unwrap_or(Shard { index: 0, count: 1 })).collect();
        job.dealt.extend(units.into_iter().map(|u| (u, None)));
        job.shard = shard;
        job
    }

    /// A job with no unit yet: [`GridJob::deal`] hands them in.
    pub fn dealt_one_by_one(grid: Grid) -> GridJob {
        GridJob {
            grid,
            shard: None,
            dealt: Default::default(),
            unit: None,
            finished: 0,
            runs: Vec::new(),
            steps_per_piece: usize::MAX,
        }
    }

    /// Trains at most `steps` steps per piece (at least one; see [`UnitJob::in_pieces`]).
    pub fn in_pieces(mut self, steps: usize) -> GridJob {
        self.steps_per_piece = steps.max(1);
        self
    }

    /// The grid it trains.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// Deals unit `unit` to this job, after those dealt before: trained here
    /// for None, else measured from its runs' weights trained elsewhere
    /// (`trained[i]` run i's, in [`UnitJob::replicas`]' order). Errors (and
    /// deals nothing) for a unit the grid does not have, weights that do not
    /// fit the unit's runs, or weights for a unit that stops at a target
    /// loss (only a step-by-step trainer can run it).
    pub fn deal(&mut self, unit: usize, trained: Option<Vec<Vec<f64>>>) -> Result<(), String> {
        if unit >= self.grid.units() {
            return Err(format!("unit {unit}: the study has {} units", self.grid.units()));
        }
        let job = match trained {
            None => None,
            Some(p) => {
                let job = UnitJob::new(&self.grid, unit);
                let (runs, n) = (2 * self.grid.spec.seeds, job.training().0.num_params());
                if p.len() != runs || p.iter().any(|w| w.len() != n) || job.stops_at_a_loss() {
                    return Err(format!(
                        "unit {unit}: the trained weights do not fit its {runs} runs of {n} parameters"
                    ));
                }
                Some(job.with_trained(p))
            }
        };
        self.dealt.push_back((unit, job));
        Ok(())
    }

    /// Drops unit `unit` if it is dealt here and not finished (another
    /// worker finished it first); returns whether it was.
    pub fn drop_unit(&mut self, unit: usize) -> bool {
        if self.unit.as_ref().is_some_and(|(u, _)| *u == unit) {
            self.unit = None;
            return true;
        }
        let before = self.dealt.len();
        self.dealt.retain(|(u, _)| *u != unit);
        self.dealt.len() < before
    }

    /// Units dealt here and not finished (the one under way included).
    pub fn holds(&self) -> usize {
        self.dealt.len() + usize::from(self.unit.is_some())
    }

    /// How far the unit under way is, in [0, 1] (0 when none is).
    pub fn unit_progress(&self) -> f64 {
        self.unit.as_ref().map_or(0.0, |(_, job)| job.progress())
    }

    /// The runs of the finished units, unit after unit in the order they finished.
    pub fn runs(&self) -> &[RunResult] {
        &self.runs
    }

    /// Takes the runs of the units finished since the last call.
    pub fn take_runs(&mut self) -> Vec<RunResult> {
        std::mem::take(&mut self.runs)
    }

    /// Runs finished so far and in all (of the units dealt so far).
    pub fn counts(&self) -> (usize, usize) {
        let per_unit = 2 * self.grid.spec.seeds;
        (self.finished * per_unit, (self.finished + self.holds()) * per_unit)
    }

    /// The finished study's output, with its statistics when it is not a shard
    /// (the same as `Grid::run`). Call once done.
    pub fn output(&self) -> StudyOutput {
        self.grid.output(self.shard, self.runs.clone())
    }

    /// The output with statistics computed elsewhere (a `StatsJob` over
    /// `runs()`, spread over many calls), equal to `output()`'s.
    pub fn output_with(&self, stats: crate::study_stats::StudyStats) -> StudyOutput {
        self.grid.output_with(self.shard, self.runs.clone(), Some(stats))
    }
}

impl Job for GridJob {
    /// One piece of work (at most `in_pieces` training steps, an evaluation,
    /// or a piece of a sharpness measure); returns whether every unit dealt
    /// so far is done.
    fn advance(&mut self, _: &mut ()) -> bool {
        if self.unit.is_none() {
            let Some((u, job)) = self.dealt.pop_front() else { return true };
            let job = job.unwrap_or_else(|| UnitJob::new(&self.grid, u));
            self.unit = Some((u, job.in_pieces(self.steps_per_piece)));
        }
        let (_, unit) = self.unit.as_mut().expect("just set");
        if unit.advance(&mut ()) {
            let (_, unit) = self.unit.take().expect("just advanced");
            self.runs.extend(unit.runs);
            self.finished += 1;
        }
        self.is_done()
    }

    /// Fraction done, in [0, 1] (by units dealt so far, a run's training and
    /// measures weighted by their usual cost).
    fn progress(&self) -> f64 {
        let all = self.finished + self.holds();
        if all == 0 {
            return 1.0;
        }
        ((self.finished as f64 + self.unit_progress()) / all as f64).min(1.0)
    }

    /// Whether every unit dealt so far has been trained and measured.
    fn is_done(&self) -> bool {
        self.holds() == 0
    }
}

/// The runs of one unit (cell, draw), trained and measured a piece per
/// [`Job::advance`] call: the next run is set up and trained up to
/// [`UnitJob::in_pieces`] steps (for the matched-loss rule, whole check
/// intervals, at least one), then evaluated (one piece), then its sharpness
/// measured a [`SharpnessJob`] piece per call. Run to its end it is
/// [`Grid::run_unit`] (which runs it so).
pub struct UnitJob {
    cell: usize,
    draw: usize,
    study: Study,
    mlp: crate::model::Mlp,
    ood: Vec<Dataset>,
    data_seed: u64,
    classes: usize,
    label_noise: f64,
    steps: usize,
    stop: StopRule,
    sharpness: SharpnessSettings,
    /// The run under way: seed index * 2 + side.
    next: usize,
    phase: Phase,
    runs: Vec<RunResult>,
    /// Parameters trained elsewhere (the GPU's replica kernels), one per run
    /// in run order: measured instead of trained.
    trained: Option<Vec<Vec<f64>>>,
    /// Training steps per piece.
    steps_per_piece: usize,
}

/// Finishes the unit job `make(item)` of every one of `items` on `threads`
/// threads, each thread taking the next item not yet taken, and returns their
/// runs in the items' order; `done(k)` is told each time a k-th job is
/// finished. A unit's runs do not depend on the thread that runs it, so this
/// is one thread's result, bit for bit. Only the next item is taken under the
/// lock: `make` (which draws a unit's data) runs on the thread. A job that
/// panics stops the others at their next job, and the panic is passed on.
/// With one thread it runs them here, spawning none (so wasm, which has no
/// threads, may call it so: the page spreads its units over workers instead).
pub fn finish_units<T: Send>(
    items: impl Iterator<Item = T> + Send,
    threads: usize,
    make: impl Fn(T) -> UnitJob + Sync,
    mut done: impl FnMut(usize),
) -> Vec<RunResult> {
    if threads <= 1 {
        return items
            .enumerate()
            .flat_map(|(k, item)| {
                let runs = make(item).finish();
                done(k + 1);
                runs
            })
            .collect();
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Set when the thread holding it unwinds: the other threads then stop.
    struct StopOnPanic<'a>(&'a AtomicBool);
    impl Drop for StopOnPanic<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.store(true, Ordering::Relaxed);
            }
        }
    }
    let items = std::sync::Mutex::new(items.enumerate());
    let stop = AtomicBool::new(false);
    let mut finished: Vec<Vec<RunResult>> = Vec::new();
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..threads {
            let (tx, items, stop, make) = (tx.clone(), &items, &stop, &make);
            scope.spawn(move || {
                let _stop_others = StopOnPanic(stop);
                while !stop.load(Ordering::Relaxed) {
                    // The lock is never held while a job runs, so a panic cannot poison it.
                    let Some((i, item)) = items.lock().expect("not poisoned").next() else { break };
                    if tx.send((i, make(item).finish())).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (k, (i, runs)) in rx.iter().enumerate() {
            if finished.len() <= i {
                finished.resize_with(i + 1, Vec::new);
            }
            finished[i] = runs;
            done(k + 1);
        }
    });
    finished.into_iter().flatten().collect()
}

/// Where a [`UnitJob`]'s current run is. (One per job, moved once per piece:
/// its size does not matter.)
#[allow(clippy::large_enum_variant)]
enum Phase {
    /// Set up on the next call.
    Idle,
    Training {
        run: ReplicaRun,
        seed: u64,
        reached: Option<bool>,
    },
    Measuring {
        result: RunResult,
        job: SharpnessJob,
    },
    Done,
}

impl UnitJob {
    /// Unit `unit` of `grid` (one per (cell, draw), cell-major), nothing trained yet.
    pub fn new(grid: &Grid, unit: usize) -> UnitJob {
        let (cell, draw) = (unit / grid.spec.data_seeds, unit % grid.spec.data_seeds);
        let mut config = grid.cells[cell].config.clone();
        config.seed = grid.data_seed(draw);
        let steps = config.training.steps;
        let pair = Pair::new(config).expect("cells were validated");
        let mut study = Study::new(&pair, grid.spec.seeds, steps);
        study.seeds = (0..grid.spec.seeds).map(|j| grid.run_seed(draw, j)).collect();
        let ood =
            grid.evaluations.iter().map(|shift| ood_test_set(&pair.config.data, shift, pair.config.seed)).collect();
        UnitJob {
            cell,
            draw,
            mlp: study.mlp(),
            study,
            ood,
            data_seed: pair.config.seed,
            classes: pair.config.classes(),
            label_noise: pair.config.data.label_noise,
            steps,
            stop: grid.spec.stop.clone(),
            sharpness: grid.spec.sharpness.clone(),
            next: 0,
            phase: Phase::Idle,
            runs: Vec::with_capacity(2 * grid.spec.seeds),
            trained: None,
            steps_per_piece: usize::MAX,
        }
    }

    /// Every run of the unit as a [`Replica`] (both sides' configs, initial
    /// weights and batch-order seed), in run order: seed index j's left, then
    /// right. What another trainer (the GPU's) needs to train them.
    pub fn replicas(&self) -> Vec<Replica> {
        (0..2 * self.study.seeds.len()).map(|i| self.study.replica(&self.mlp, i % 2, i / 2)).collect()
    }

    /// The unit's cell and data draw.
    pub fn cell_and_draw(&self) -> (usize, usize) {
        (self.cell, self.draw)
    }

    /// The unit's network (shapes only), training data, batch size and steps per run.
    pub fn training(&self) -> (&crate::model::Mlp, &Arc<crate::data::Splits>, usize, usize) {
        (&self.mlp, &self.study.splits, self.study.batch_size, self.steps)
    }

    /// The unit's runs, once [`UnitJob::advance`] has returned true (with their underfit flags).
    pub fn into_runs(self) -> Vec<RunResult> {
        self.runs
    }

    /// Runs the job to its end and returns its runs.
    pub fn finish(mut self) -> Vec<RunResult> {
        crate::job::finish(&mut self, &mut ());
        self.runs
    }

    /// Whether the unit stops at a target loss (then only a step-by-step trainer can run it).
    pub fn stops_at_a_loss(&self) -> bool {
        matches!(self.stop, StopRule::TrainLoss { .. })
    }

    /// The unit with its runs trained elsewhere: `params[i]` are run i's
    /// weights after the unit's steps (run order as [`UnitJob::replicas`]);
    /// each is evaluated and measured as a run trained here would be (its
    /// divergence judged from the loss at its initial weights, as here). For
    /// fixed steps only; panics on another number of runs.
    pub fn with_trained(mut self, params: Vec<Vec<f64>>) -> UnitJob {
        assert_eq!(params.len(), 2 * self.study.seeds.len(), "one set of weights per run");
        assert!(!self.stops_at_a_loss(), "runs trained elsewhere have fixed steps");
        self.trained = Some(params);
        self
    }

    /// Trains at most `steps` steps per piece (at least one): the page's
    /// pieces stay a few ms long. The default, a whole run's training in one
    /// piece, suits a thread nothing else needs (the CLI). The results do
    /// not depend on it.
    pub fn in_pieces(mut self, steps: usize) -> UnitJob {
        self.steps_per_piece = steps.max(1);
        self
    }

    fn finish_run(&mut self, result: RunResult) -> Phase {
        self.runs.push(result);
        self.next += 1;
        Phase::Idle
    }
}

impl Job for UnitJob {
    /// One piece (see [`UnitJob`]); returns whether the unit is done.
    fn advance(&mut self, _: &mut ()) -> bool {
        let max_steps = self.steps_per_piece;
        if let Phase::Idle = self.phase {
            if self.next >= 2 * self.study.seeds.len() {
                flag_underfit(&mut self.runs, self.classes, self.label_noise);
                self.phase = Phase::Done;
                return true;
            }
            let (j, side) = (self.next / 2, self.next % 2);
            let replica = self.study.replica(&self.mlp, side, j);
            let mut run = ReplicaRun::new(&replica, &self.mlp, &self.study.splits, self.study.batch_size);
            if let Some(trained) = &mut self.trained {
                // Trained elsewhere: its final weights, its steps taken.
                let r = run.run_mut();
                r.params = std::mem::take(&mut trained[self.next]);
                r.step = self.steps;
            }
            self.phase = Phase::Training { run, seed: replica.seed, reached: None };
        }
        let at = [self.cell, self.draw, self.next / 2, self.next % 2];
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Training { mut run, seed, mut reached } => {
                let trained = match self.stop {
                    StopRule::Steps => {
                        let n = self.steps.saturating_sub(run.step()).min(max_steps);
                        run.train(n);
                        run.step() >= self.steps || run.run_mut().diverged.is_some()
                    }
                    StopRule::TrainLoss { target, check_every } => {
                        // `ReplicaRun::train_until_loss`, a few check intervals per call.
                        let check_every = check_every.max(1);
                        let mut taken = 0;
                        loop {
                            let splits = Arc::clone(&run.run_mut().splits);
                            if run.run_mut().evaluate_on(&splits.train).0 <= target {
                                reached = Some(true);
                                break true;
                            }
                            if run.step() >= self.steps || run.run_mut().diverged.is_some() {
                                reached = Some(false);
                                break true;
                            }
                            let n = check_every.min(self.steps - run.step());
                            run.train(n);
                            taken += n;
                            if taken >= max_steps {
                                break false;
                            }
                        }
                    }
                };
                self.phase = if trained {
                    let result = RunResult::evaluate(&mut run, at, self.data_seed, seed, reached, &self.ood);
                    if result.diverged {
                        // A diverged network's curvature means nothing (and may not be finite).
                        self.finish_run(result)
                    } else {
                        let settings = SharpnessSettings { seed, ..self.sharpness.clone() };
                        let r = run.run_mut();
                        let job = SharpnessJob::new(&r.mlp, &r.params, &r.splits.train, settings);
                        Phase::Measuring { result, job }
                    }
                } else {
                    Phase::Training { run, seed, reached }
                };
            }
            Phase::Measuring { mut result, mut job } => {
                self.phase = if job.advance(&mut ()) {
                    result.sharpness = RunSharpness::of(Some(job.report()));
                    self.finish_run(result)
                } else {
                    Phase::Measuring { result, job }
                };
            }
            Phase::Done => {
                self.phase = Phase::Done;
                return true;
            }
            Phase::Idle => unreachable!("set up above"),
        }
        false
    }

    /// Fraction of the unit done: each run counts 1, its training 0.6 and its measures 0.4
    /// (about their shares of the time for the reference net).
    fn progress(&self) -> f64 {
        let total = (2 * self.study.seeds.len()).max(1) as f64;
        let within = match &self.phase {
            Phase::Training { run, .. } => 0.6 * (run.step() as f64 / self.steps.max(1) as f64).min(1.0),
            Phase::Measuring { job, .. } => 0.6 + 0.4 * job.progress(),
            Phase::Done => return 1.0,
            Phase::Idle => 0.0,
        };
        ((self.next as f64 + within) / total).min(1.0)
    }

    /// Whether every run of the unit has been trained and measured.
    fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }
}

/// Shard `index` of `count` (0-based), written `index/count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard's number, from 0.
    pub index: usize,
    /// How many shards the study is split into.
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("expected I/N with 0 <= I < N (shard I of N, counted from 0), e.g. 0/4, got `{text}`");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) =
            (i.trim().parse::<usize>().map_err(|_| bad())?, n.trim().parse::<usize>().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// What a cell trains: its settings and both sides' labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellInfo {
    /// The training axes' (name, value) of this cell.
    pub settings: Vec<(String, String)>,
    /// The left side's optimiser label.
    pub left: String,
    /// The right side's optimiser label.
    pub right: String,
}

/// A study's JSON: the spec, the cells, every run, and (unsharded or merged)
/// the statistics.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StudyOutput {
    /// [`STUDY_FORMAT`]: which layout this JSON has.
    pub format: String,
    /// The spec that determines every number in it.
    pub spec: GridSpec,
    /// Which shard these runs are, if the study was split (absent once merged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Each cell's settings and labels, by cell index.
    pub cells: Vec<CellInfo>,
    /// The OOD sets, in the order of each run's `ood` list.
    pub evaluations: Vec<ShiftConfig>,
    /// Every run of this output (of its shard only, when sharded).
    pub runs: Vec<RunResult>,
    /// Recomputed from the runs on merge, never read back.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub stats: Option<crate::study_stats::StudyStats>,
}

/// One OOD test: loss, accuracy and the gap ID accuracy - OOD accuracy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OodResult {
    /// Mean loss on the OOD set.
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub loss: f64,
    /// Accuracy on the OOD set.
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub acc: f64,
    /// ID test accuracy minus this OOD accuracy (the generalisation gap under the shift).
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub gap: f64,
}

/// One trained run and its measures at the end. Non-finite numbers (a
/// diverged run's, which are not measured) are written as null.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The cell (index into the output's `cells`).
    pub cell: usize,
    /// The data draw, from 0.
    pub draw: usize,
    /// The seed index within the draw, from 0.
    pub seed_index: usize,
    /// 0 left, 1 right.
    pub side: usize,
    /// The seed of this draw's data (train, ID and OOD sets).
    pub data_seed: u64,
    /// Init and batch-order seed.
    pub seed: u64,
    /// Steps trained (where the target was reached, for the matched-loss rule).
    pub steps: usize,
    /// Matched-loss rule only: whether the training loss reached the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached_target: Option<bool>,
    /// Mean loss on the whole training set at the end.
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub train_loss: f64,
    /// Accuracy on the whole training set at the end.
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub train_acc: f64,
    /// Mean loss on the ID test set.
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub id_loss: f64,
    /// Accuracy on the ID test set.
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub id_acc: f64,
    /// One per evaluation (shift, severity), in the output's `evaluations` order.
    pub ood: Vec<OodResult>,
    /// L2 norm of the parameters.
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub param_norm: f64,
    /// Not measured (all null) for a diverged run.
    #[serde(flatten)]
    pub sharpness: RunSharpness,
    /// Whether the run diverged (its measures are then null).
    pub diverged: bool,
    /// See [`UNDERFIT_MARGIN`].
    pub underfit: bool,
}

impl RunResult {
    /// The measures of a trained run but its sharpness (NaN until
    /// [`RunResult::set_sharpness`]); `at` is [cell, draw, seed index, side].
    fn evaluate(
        run: &mut ReplicaRun,
        at: [usize; 4],
        data_seed: u64,
        seed: u64,
        reached_target: Option<bool>,
        ood_sets: &[Dataset],
    ) -> RunResult {
        let steps = run.step();
        let diverged = run.metrics().diverged;
        let run = run.run_mut();
        let splits = Arc::clone(&run.splits);
        let (train_loss, train_acc) = run.evaluate_on(&splits.train);
        let (id_loss, id_acc) = run.evaluate_on(&splits.id_test);
        let ood = ood_sets
            .iter()
            .map(|set| {
                let (loss, acc) = run.evaluate_on(set);
                OodResult { loss, acc, gap: id_acc - acc }
            })
            .collect();
        let param_norm = libm::sqrt(run.params.iter().map(|p| p * p).sum());
        RunResult {
            cell: at[0],
            draw: at[1],
            seed_index: at[2],
            side: at[3],
            data_seed,
            seed,
            steps,
            reached_target,
            train_loss,
            train_acc,
            id_loss,
            id_acc,
            ood,
            param_norm,
            sharpness: RunSharpness::of(None),
            diverged,
            underfit: false,
        }
    }

    /// The OOD result of evaluation `e`.
    pub fn ood(&self, e: usize) -> OodResult {
        self.ood[e]
    }

    /// Numbers per run with `evaluations` OOD sets in [`RunResult::to_numbers`].
    pub fn numbers_len(evaluations: usize) -> usize {
        27 + 3 * evaluations
    }

    /// The run as plain numbers, appended to `out`: how the page's second
    /// worker hands its runs over without JSON (whose parser would double the
    /// study module). Every f64 keeps its bits; counts are exact below 2^53;
    /// the u64 seeds go as two 32-bit halves. [`RunResult::from_numbers`] reads it back.
    pub fn to_numbers(&self, out: &mut Vec<f64>) {
        let halves = |x: u64| [(x >> 32) as f64, (x & 0xffff_ffff) as f64];
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let s = &self.sharpness;
        out.extend([self.cell as f64, self.draw as f64, self.seed_index as f64, self.side as f64]);
        out.extend(halves(self.data_seed));
        out.extend(halves(self.seed));
        out.extend([self.steps as f64, self.reached_target.map_or(-1.0, flag)]);
        out.extend([self.train_loss, self.train_acc, self.id_loss, self.id_acc, self.param_norm]);
        out.extend([s.lambda_max, flag(s.lambda_max_exact), s.trace, s.trace_std_error, flag(s.trace_exact)]);
        out.extend([s.eps_sharpness, s.rho_sharpness, s.adaptive_sharpness, s.average_sharpness, s.average_std_error]);
        out.extend([flag(self.diverged), flag(self.underfit)]);
        out.extend(self.ood.iter().flat_map(|o| [o.loss, o.acc, o.gap]));
    }

    /// A run from the [`RunResult::numbers_len`] numbers `to_numbers` wrote.
    pub fn from_numbers(n: &[f64], evaluations: usize) -> Result<RunResult, ConfigError> {
        if n.len() != RunResult::numbers_len(evaluations) {
            return Err(ConfigError::new(
                "runs",
                format!("expected {} numbers per run", Self::numbers_len(evaluations)),
            ));
        }
        let count = |x: f64| x as usize;
        let seed = |hi: f64, lo: f64| ((hi as u64) << 32) | lo as u64;
        Ok(RunResult {
            cell: count(n[0]),
            draw: count(n[1]),
            seed_index: count(n[2]),
            side: count(n[3]),
            data_seed: seed(n[4], n[5]),
            seed: seed(n[6], n[7]),
            steps: count(n[8]),
            reached_target: (n[9] >= 0.0).then_some(n[9] == 1.0),
            train_loss: n[10],
            train_acc: n[11],
            id_loss: n[12],
            id_acc: n[13],
            param_norm: n[14],
            sharpness: RunSharpness {
                lambda_max: n[15],
                lambda_max_exact: n[16] == 1.0,
                trace: n[17],
                trace_std_error: n[18],
                trace_exact: n[19] == 1.0,
                eps_sharpness: n[20],
                rho_sharpness: n[21],
                adaptive_sharpness: n[22],
                average_sharpness: n[23],
                average_std_error: n[24],
            },
            diverged: n[25] == 1.0,
            underfit: n[26] == 1.0,
            ood: n[27..].chunks_exact(3).map(|o| OodResult { loss: o[0], acc: o[1], gap: o[2] }).collect(),
        })
    }
}

/// The sharpness measures of a run (from `sharpness::measure`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSharpness {
    /// The largest Hessian eigenvalue: exact (dense spectrum) when `lambda_max_exact`, else power iteration.
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub lambda_max: f64,
    /// Whether `lambda_max` is exact (from the dense spectrum).
    pub lambda_max_exact: bool,
    /// Exact (standard error 0) when `trace_exact`, else Hutchinson's estimate.
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub trace: f64,
    /// Standard error of `trace`: 0 when exact, else that of Hutchinson's mean.
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub trace_std_error: f64,
    /// Whether `trace` is the exact one (the sum of the dense spectrum).
    pub trace_exact: bool,
    /// Keskar et al.'s epsilon-sharpness (a percentage of 1 + L).
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub eps_sharpness: f64,
    /// max over norm(d) <= rho of L(w + d) - L(w).
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub rho_sharpness: f64,
    /// max over norm(d / abs(w)) <= adaptive rho of L(w + d) - L(w).
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub adaptive_sharpness: f64,
    /// E over d ~ N(0, sigma^2 I) of L(w + d) - L(w).
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub average_sharpness: f64,
    /// Standard error of `average_sharpness` over its random draws.
    #[serde(deserialize_with = "crate::nan_as_null::number")]
    pub average_std_error: f64,
}

impl RunSharpness {
    /// The numbers of `report`; all NaN (false) for a run that was not measured.
    pub fn of(report: Option<&SharpnessReport>) -> RunSharpness {
        let get = |f: fn(&SharpnessReport) -> f64| report.map_or(f64::NAN, f);
        RunSharpness {
            lambda_max: get(|r| r.exact_lambda_max().unwrap_or(r.lambda_max)),
            lambda_max_exact: report.is_some_and(|r| r.spectrum.is_some()),
            trace: get(|r| r.trace),
            trace_std_error: get(|r| r.trace_std_error),
            trace_exact: report.is_some_and(|r| r.trace_exact),
            eps_sharpness: get(|r| r.eps_sharpness),
            rho_sharpness: get(|r| r.rho_sharpness),
            adaptive_sharpness: get(|r| r.adaptive_sharpness),
            average_sharpness: get(|r| r.average_sharpness),
            average_std_error: get(|r| r.average_std_error),
        }
    }
}

/// Underfit: accuracy more than [`UNDERFIT_MARGIN`] below the best run of the
/// unit (same cell and data draw, either side, any seed), or no more than that
/// above chance (1 / classes). The accuracy is the training one, except with
/// label noise, where fitting the flipped training labels is memorising noise,
/// not fitting: there it is the (clean) ID accuracy. Diverged runs are not
/// flagged (they are counted as diverged).
fn flag_underfit(runs: &mut [RunResult], classes: usize, label_noise: f64) {
    let fit = |r: &RunResult| if label_noise > 0.0 { r.id_acc } else { r.train_acc };
    let best = runs.iter().filter(|r| !r.diverged).map(fit).fold(f64::NEG_INFINITY, f64::max);
    let chance = 1.0 / classes as f64;
    for r in runs.iter_mut().filter(|r| !r.diverged) {
        r.underfit = fit(r) < best - UNDERFIT_MARGIN || fit(r) <= chance + UNDERFIT_MARGIN;
    }
}

/// Every (shift, severity) of the evaluation axes' product; the base's own
/// shift when there are none. Each is checked against the data (spurious_flip
/// needs the spurious dataset).
fn evaluations(base: &RunConfig, axes: &[Axis]) -> Result<Vec<ShiftConfig>, ConfigError> {
    let values = |name: &str| axes.iter().find(|a| a.name == name).map(|a| a.values.clone());
    let kinds: Vec<ShiftKind> = match values("shift") {
        Some(v) => v
            .iter()
            .map(|s| s.parse().map_err(|e: ConfigError| e.within(&format!("shift={s}"))))
            .collect::<Result<_, _>>()?,
        None => vec![base.shift.kind],
    };
    let severities: Vec<f64> = match values("severity") {
        Some(v) => v
            .iter()
            .map(|s| {
                s.trim().parse::<f64>().ok().filter(|x| (0.0..=1.0).contains(x)).ok_or_else(|| {
                    ConfigError::new(format!("severity={s}"), format!("must be a number in [0, 1], got `{s}`"))
                })
            })
            .collect::<Result<_, _>>()?,
        None => vec![base.shift.severity],
    };
    let mut out = Vec::new();
    for &kind in &kinds {
        for &severity in &severities {
            let shift = ShiftConfig { kind, severity };
            shift.validate(&base.data).map_err(|e| e.within(&format!("shift={}", kind.name())))?;
            out.push(shift);
        }
    }
    Ok(out)
}

/// Axes written as the page and `--grid` lines take them, separated by `;`
/// or new lines: `lr=0.01,0.1; batch-size=8,32` (a `hidden` value joins its
/// widths with `x`: `hidden=16x16,32`). Empty text is no axis. Names and
/// values are checked by [`Grid::new`].
pub fn parse_axes(text: &str) -> Result<Vec<Axis>, ConfigError> {
    let mut axes = Vec::new();
    for part in text.split([';', '\n']).map(str::trim).filter(|p| !p.is_empty() && !p.starts_with('#')) {
        let (name, values) = part
            .split_once('=')
            .map(|(n, v)| (n.trim(), v.trim()))
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .ok_or_else(|| {
                ConfigError::new("axes", format!("expected NAME=V1,V2,..., e.g. lr=0.01,0.1, got `{part}`"))
            })?;
        let value = |v: &str| if name == "hidden" { v.trim().replace('x', ",") } else { v.trim().to_string() };
        axes.push(Axis { name: name.to_string(), values: values.split(',').map(value).collect() });
    }
    Ok(axes)
}

/// The first error's message (apply_settings reports a list).
fn first_message(errors: &[ConfigError]) -> String {
    errors.first().map_or(String::new(), |e| match e.field.as_str() {
        f if SETTINGS.iter().any(|s| s.name == f) => e.message.clone(),
        f => format!("{f}: {}", e.message),
    })
}

/// Every index vector of a mixed-radix counter with these sizes, the last
/// fastest (one empty vector for no sizes).
fn product(sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]];
    for &n in sizes {
        out = out.into_iter().flat_map(|prefix| (0..n).map(move |k| [prefix.clone(), vec![k]].concat())).collect();
    }
    out
}
