//! What a study grid's runs support, stated with its uncertainty.
//!
//! Paired differences. For every pair (cell, draw, seed) where neither side
//! diverged, d = right - left for each measure. The runs of one data draw share
//! their data, so they are not independent: the interval is over draws. Each
//! draw's differences are averaged (over its cells and seeds), and the 95%
//! interval is Student's t over those K draw means; the sign test counts the
//! draws whose mean favours each side. With one draw there is no interval:
//! one draw is an anecdote, not a verdict.
//!
//! Underfitting. An OOD "gain" of a side that fits its training data worse is
//! not robustness. We warn when the mean paired train accuracy or ID accuracy
//! difference (over all pairs, or in any one cell) is at least
//! [`UNDERFIT_POINTS`] in favour of one side. With label noise only the ID
//! accuracy counts: a lower accuracy on flipped training labels may be noise
//! that was not memorised.
//!
//! Flatness vs OOD performance. Kendall's tau-b between each sharpness measure
//! (and two references: the parameter norm and the final training loss) and
//! OOD accuracy, OOD loss and the OOD gap, over every non-diverged run (both
//! sides): raw; within training-loss bins (the runs split in
//! [`LOSS_BINS`] equal-count bins by final training loss, tau per bin, averaged
//! weighted by bin size), since runs that fit less are both flatter and worse
//! and that alone makes a correlation; and at matched loss (only the runs that
//! reached the `--until-train-loss` target). Each with a 95% percentile
//! bootstrap interval ([`BOOTSTRAP_RESAMPLES`] resamples of whole data draws,
//! or of runs when there is one draw). Jiang et al.'s granulated tau: for each
//! axis (and the side, SGD vs SAM, as one more), the tau within each group of
//! runs that differ only in that axis, averaged over the groups; no interval.

use serde::Serialize;

use crate::job::Job;
use crate::kendall::tau_b;
use crate::rng::Rng;
use crate::stats::{quantile, sign_test, t_interval, Interval};
use crate::study_grid::{Grid, RunResult};

/// A mean paired train or ID accuracy difference of this many (as a fraction:
/// 2 points) in favour of one side triggers the underfitting warning.
pub const UNDERFIT_POINTS: f64 = 0.02;
/// Training-loss bins for the binned tau.
pub const LOSS_BINS: usize = 4;
/// Bootstrap resamples behind each tau's interval.
pub const BOOTSTRAP_RESAMPLES: usize = 200;

/// A per-run number, by name.
type Getter = fn(&RunResult) -> f64;

/// How well a run fits (compared pair by pair, not predictors of robustness).
const FIT: [(&str, Getter); 6] = [
    ("train_acc", |r| r.train_acc),
    ("id_acc", |r| r.id_acc),
    ("train_loss", |r| r.train_loss),
    ("id_loss", |r| r.id_loss),
    ("steps", |r| r.steps as f64),
    ("param_norm", |r| r.param_norm),
];

/// The six sharpness measures.
const SHARPNESS: [(&str, Getter); 6] = [
    ("lambda_max", |r| r.sharpness.lambda_max),
    ("trace", |r| r.sharpness.trace),
    ("eps_sharpness", |r| r.sharpness.eps_sharpness),
    ("rho_sharpness", |r| r.sharpness.rho_sharpness),
    ("adaptive_sharpness", |r| r.sharpness.adaptive_sharpness),
    ("average_sharpness", |r| r.sharpness.average_sharpness),
];

/// The shift-independent measures compared pair by pair: fit, then sharpness.
fn paired_measures() -> impl Iterator<Item = (&'static str, Getter)> {
    FIT.into_iter().chain(SHARPNESS)
}

/// The predictors of the tau table: the sharpness measures, then two
/// references (the parameter norm, and the training loss, which alone often
/// predicts OOD accuracy better).
pub fn predictors() -> Vec<(&'static str, Getter)> {
    SHARPNESS.into_iter().chain([FIT[5], FIT[2]]).collect()
}

/// The OOD targets the tau table correlates with: accuracy, loss and the gap.
pub const TARGETS: [&str; 3] = ["ood_acc", "ood_loss", "ood_gap"];

fn target(r: &RunResult, evaluation: usize, which: usize) -> f64 {
    let o = r.ood(evaluation);
    [o.acc, o.loss, o.gap][which]
}

/// One measure's paired comparison, right - left.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairedMeasure {
    /// The measure's name (`ood_acc`, `train_loss`, `lambda_max`, ...).
    pub measure: String,
    /// Mean of the per-draw mean differences, with its t interval over draws.
    pub difference: Interval,
    /// Draws whose mean difference is positive (right higher) / negative, and
    /// the two-sided sign test over them.
    pub draws_right_higher: usize,
    /// Draws whose mean difference is positive (right higher).
    pub draws_right_lower: usize,
    /// Draws whose mean difference is negative (right lower).
    pub sign_test_p: f64,
    /// Pairs (non-diverged, finite) and how many of them favour each side.
    pub pairs: usize,
    /// Pairs where the right side's value is higher.
    pub pairs_right_higher: usize,
    /// Pairs where it is lower (ties count in neither).
    pub pairs_right_lower: usize,
}

/// Kendall's tau-b of one predictor against one target, in one mode.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TauRow {
    /// The measure used as a predictor (a sharpness measure, `param_norm` or `train_loss`).
    pub predictor: String,
    /// The OOD target (one of [`TARGETS`]).
    pub target: String,
    /// "raw", "binned" (within training-loss bins) or "matched" (runs at the target loss).
    pub mode: String,
    /// Kendall's tau-b; None when it is undefined (fewer than two runs, or no variation).
    pub tau: Option<f64>,
    /// 95% percentile bootstrap interval (None when too few resamples had a tau).
    pub lo: Option<f64>,
    /// Upper end of that interval.
    pub hi: Option<f64>,
    /// Runs used.
    pub runs: usize,
}

/// Jiang et al.'s granulated tau of one predictor and target: per axis, and their mean.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GranulatedRow {
    /// The measure used as a predictor.
    pub predictor: String,
    /// The OOD target (one of [`TARGETS`]).
    pub target: String,
    /// Per axis with at least two values (and `side`): the mean tau within the groups of runs that differ only in that axis.
    pub per_axis: Vec<(String, Option<f64>)>,
    /// The mean of the defined per-axis taus.
    pub mean: Option<f64>,
}

/// Everything about one OOD evaluation (shift, severity).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvaluationStats {
    /// The shift's name.
    pub shift: String,
    /// Its severity, in [0, 1].
    pub severity: f64,
    /// ood_acc, ood_loss, ood_gap.
    pub paired: Vec<PairedMeasure>,
    /// One plain sentence on OOD accuracy.
    pub verdict: String,
    /// Kendall's tau of every predictor against every target, raw, binned and matched.
    pub tau: Vec<TauRow>,
    /// Jiang et al.'s granulated tau of every predictor against every target.
    pub granulated: Vec<GranulatedRow>,
}

/// One cell's paired OOD accuracy (first evaluation), train and ID accuracy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CellStats {
    /// The cell (index into the output's `cells`).
    pub cell: usize,
    /// Paired right - left OOD accuracy on the first evaluation, interval over draws.
    pub ood_acc: Interval,
    /// Paired right - left training accuracy, interval over draws.
    pub train_acc: Interval,
    /// Paired right - left ID test accuracy, interval over draws.
    pub id_acc: Interval,
}

/// What a grid's runs support: paired differences with intervals over data draws,
/// underfitting warnings, and how well sharpness predicts OOD performance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StudyStats {
    /// Pairs (left and right) in the study.
    pub pairs: usize,
    /// Pairs where neither side diverged: the paired statistics use these.
    pub pairs_used: usize,
    /// Per side (left, right).
    pub diverged: [usize; 2],
    /// Runs per side that underfit (see [`crate::study_grid::UNDERFIT_MARGIN`]).
    pub underfit: [usize; 2],
    /// Matched-loss rule only: runs per side that never reached the target.
    pub not_reached: Option<[usize; 2]>,
    /// How the bootstrap resampled: "draws" or "runs" (one draw only).
    pub bootstrap_over: String,
    /// The shift-independent measures (fit, then sharpness), pair by pair.
    pub paired: Vec<PairedMeasure>,
    /// One entry per OOD evaluation (shift, severity).
    pub evaluations: Vec<EvaluationStats>,
    /// Per cell (when the grid has more than one): the paired accuracies, intervals over draws.
    pub cells: Vec<CellStats>,
    /// Underfitting and other warnings, in plain words, to show with any verdict.
    pub warnings: Vec<String>,
}

/// The runs of one pair: (left, right), both present.
fn pairs(runs: &[RunResult]) -> Vec<(&RunResult, &RunResult)> {
    runs.chunks_exact(2).filter(|p| p[0].side == 0 && p[1].side == 1).map(|p| (&p[0], &p[1])).collect()
}

impl StudyStats {
    /// `runs` as `Grid::run` orders them: by cell, draw, seed, side. (A
    /// [`StatsJob`] run to its end.)
    pub fn new(grid: &Grid, runs: &[RunResult]) -> StudyStats {
        let mut job = StatsJob::new(grid, runs);
        crate::job::finish(&mut job, &mut StatsInput { grid, runs });
        job.finish()
    }

    /// Everything but the tau tables and the granulated tau (left empty).
    fn start(grid: &Grid, runs: &[RunResult]) -> StudyStats {
        let all_pairs = pairs(runs);
        let used: Vec<(&RunResult, &RunResult)> =
            all_pairs.iter().copied().filter(|(l, r)| !l.diverged && !r.diverged).collect();
        let draws = grid.spec.data_seeds;
        let count =
            |f: fn(&RunResult) -> bool| [0, 1].map(|side| runs.iter().filter(|r| r.side == side && f(r)).count());
        let not_reached = matches!(grid.spec.stop, crate::study_grid::StopRule::TrainLoss { .. })
            .then(|| count(|r| r.reached_target == Some(false)));
        let paired: Vec<PairedMeasure> =
            paired_measures().map(|(name, get)| paired_measure(name, &used, draws, get)).collect();
        let mut warnings = Vec::new();
        // The sides' labels where every cell has the same ones, else "left" / "right".
        let label = |side: usize| {
            let of =
                |c: &crate::study_grid::Cell| if side == 0 { c.config.left.label() } else { c.config.right.label() };
            let first = of(&grid.cells[0]);
            let same = grid.cells.iter().all(|c| of(c) == first);
            if same {
                first
            } else {
                ["left", "right"][side].to_string()
            }
        };
        let labels = (label(0), label(1));
        if draws == 1 {
            warnings.push(
                "one data draw: the intervals over draws are undefined and any difference may be an accident of \
                 this draw; use --data-seeds 8 or more"
                    .to_string(),
            );
        }
        let mean_of = |name: &str| paired.iter().find(|p| p.measure == name).map_or(f64::NAN, |p| p.difference.mean);
        // With label noise a lower train accuracy may be noise not memorised: only ID accuracy counts.
        let noisy = |c: &crate::study_grid::Cell| c.config.data.label_noise > 0.0;
        let train_counts = |train: f64, noisy: bool| if noisy { 0.0 } else { train };
        let any_noisy = grid.cells.iter().any(noisy);
        warnings.extend(underfit_warning(
            train_counts(mean_of("train_acc"), any_noisy),
            mean_of("id_acc"),
            "",
            &labels,
        ));
        let cells: Vec<CellStats> = if grid.cells.len() > 1 {
            (0..grid.cells.len())
                .map(|c| {
                    let in_cell: Vec<_> = used.iter().copied().filter(|(l, _)| l.cell == c).collect();
                    let get = |name: &str, f: Getter| paired_measure(name, &in_cell, draws, f).difference;
                    CellStats {
                        cell: c,
                        ood_acc: paired_measure("ood_acc", &in_cell, draws, |r| r.ood(0).acc).difference,
                        train_acc: get("train_acc", |r| r.train_acc),
                        id_acc: get("id_acc", |r| r.id_acc),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        for c in &cells {
            let settings: Vec<String> = grid.cells[c.cell].settings.iter().map(|(n, v)| format!("{n}={v}")).collect();
            let cell_labels = (grid.cells[c.cell].config.left.label(), grid.cells[c.cell].config.right.label());
            let place = format!(" in cell {}", settings.join(" "));
            let train = train_counts(c.train_acc.mean, noisy(&grid.cells[c.cell]));
            warnings.extend(underfit_warning(train, c.id_acc.mean, &place, &cell_labels));
        }
        let left_out = all_pairs.len() - used.len();
        if left_out > 0 {
            warnings.push(format!(
                "{left_out} of {} pairs had a side that diverged and are left out of the paired statistics \
                 (a learning rate too large for that side?)",
                all_pairs.len()
            ));
        }
        if let Some([l, r]) = not_reached.filter(|[l, r]| l + r > 0) {
            warnings.push(format!(
                "{} of {} runs never reached the target train loss ({l} left, {r} right): the matched-loss tau \
                 uses only the others, and an unreached side compares at another loss",
                l + r,
                runs.len()
            ));
        }
        let bootstrap_over = if draws > 1 { "draws" } else { "runs" }.to_string();
        let evaluations = grid
            .evaluations
            .iter()
            .enumerate()
            .map(|(e, shift)| {
                let paired: Vec<PairedMeasure> = TARGETS
                    .iter()
                    .enumerate()
                    .map(|(t, &name)| paired_measure(name, &used, draws, |r| target(r, e, t)))
                    .collect();
                let verdict = verdict(&paired[0], &labels, draws);
                EvaluationStats {
                    shift: shift.kind.name().to_string(),
                    severity: shift.severity,
                    paired,
                    verdict,
                    tau: Vec::new(),
                    granulated: Vec::new(),
                }
            })
            .collect();
        StudyStats {
            pairs: all_pairs.len(),
            pairs_used: used.len(),
            diverged: count(|r| r.diverged),
            underfit: count(|r| r.underfit),
            not_reached,
            bootstrap_over,
            paired,
            evaluations,
            cells,
            warnings,
        }
    }
}

/// [`StudyStats`] computed a piece per [`Job::advance`] call, so that a
/// page can spread it over short tasks: the paired statistics and warnings at
/// once (cheap), then per evaluation one bootstrap resample of the tau table
/// per call (every predictor, target and mode: ~2 ms natively for 512 runs),
/// then its taus and its granulated tau. Its context, [`StatsInput`], must
/// hold the grid and runs given to `new`.
pub struct StatsJob {
    stats: StudyStats,
    /// The evaluation whose tau table is under way, and that table.
    evaluation: usize,
    table: Option<TauTable>,
}

impl StatsJob {
    /// The statistics of `runs` (the grid's results) to be computed a piece at a time.
    pub fn new(grid: &Grid, runs: &[RunResult]) -> StatsJob {
        StatsJob { stats: StudyStats::start(grid, runs), evaluation: 0, table: None }
    }

    /// The statistics (complete once `advance` returned true).
    pub fn finish(self) -> StudyStats {
        self.stats
    }
}

/// What a [`StatsJob`] works on and does not own: the grid and its runs.
pub struct StatsInput<'a> {
    /// The study's grid.
    pub grid: &'a Grid,
    /// Its runs, as `Grid::run` orders them.
    pub runs: &'a [RunResult],
}

impl<'a> Job<StatsInput<'a>> for StatsJob {
    /// One piece; returns whether the statistics are complete.
    fn advance(&mut self, input: &mut StatsInput<'a>) -> bool {
        let (grid, runs) = (input.grid, input.runs);
        let e = self.evaluation;
        if e >= self.stats.evaluations.len() {
            return true;
        }
        let table = self.table.get_or_insert_with(|| TauTable::new(grid, runs, e));
        if table.resample(runs) {
            let table = self.table.take().expect("just used");
            let stats = &mut self.stats.evaluations[e];
            stats.tau = table.finish(runs);
            stats.granulated = granulated(grid, runs, e);
            self.evaluation += 1;
        }
        self.is_done()
    }

    /// Whether every evaluation (bootstrap resample, table) is done, so the statistics are final.
    fn is_done(&self) -> bool {
        self.evaluation >= self.stats.evaluations.len()
    }

    /// Fraction done, in [0, 1].
    fn progress(&self) -> f64 {
        let n = self.stats.evaluations.len();
        if n == 0 {
            return 1.0;
        }
        let within = self.table.as_ref().map_or(0.0, |t| t.done as f64 / (BOOTSTRAP_RESAMPLES + 1) as f64);
        ((self.evaluation as f64 + within) / n as f64).min(1.0)
    }
}

/// The paired comparison of one measure over `pairs`, clustered over `draws`.
fn paired_measure(
    name: &str,
    pairs: &[(&RunResult, &RunResult)],
    draws: usize,
    get: impl Fn(&RunResult) -> f64,
) -> PairedMeasure {
    let mut sums = vec![(0.0, 0usize); draws];
    let (mut n, mut higher, mut lower) = (0, 0, 0);
    for (l, r) in pairs {
        let d = get(r) - get(l);
        if !d.is_finite() {
            continue;
        }
        sums[l.draw].0 += d;
        sums[l.draw].1 += 1;
        n += 1;
        higher += usize::from(d > 0.0);
        lower += usize::from(d < 0.0);
    }
    let means: Vec<f64> = sums.iter().filter(|(_, k)| *k > 0).map(|(s, k)| s / *k as f64).collect();
    let (draws_higher, draws_lower) =
        (means.iter().filter(|&&m| m > 0.0).count(), means.iter().filter(|&&m| m < 0.0).count());
    PairedMeasure {
        measure: name.to_string(),
        difference: t_interval(&means),
        draws_right_higher: draws_higher,
        draws_right_lower: draws_lower,
        sign_test_p: sign_test(draws_higher, draws_lower),
        pairs: n,
        pairs_right_higher: higher,
        pairs_right_lower: lower,
    }
}

/// The underfitting warning, if the mean paired (right - left) train or ID
/// accuracy difference is at least [`UNDERFIT_POINTS`] in one side's favour.
fn underfit_warning(train: f64, id: f64, place: &str, labels: &(String, String)) -> Option<String> {
    // (A NaN mean, no pairs, warns of nothing.)
    let clear = |d: f64| d.abs() >= UNDERFIT_POINTS;
    let worst = if clear(train) { train } else { id };
    if !clear(train) && !clear(id) {
        return None;
    }
    let (lower, other) = if worst < 0.0 { (&labels.1, &labels.0) } else { (&labels.0, &labels.1) };
    // Points below the other side (positive when the lower side is lower).
    let below = |d: f64| if worst < 0.0 { -100.0 * d } else { 100.0 * d } + 0.0; // (no "-0.0")
    let train_part = if train == 0.0 { String::new() } else { format!("train accuracy {:.1} and ", below(train)) };
    Some(format!(
        "{lower} underfits{place}: {train_part}ID accuracy {:.1} points below {other}'s on average; an OOD \
         difference there may reflect fitting less, not robustness",
        below(id)
    ))
}

/// One sentence on the paired OOD accuracy difference.
fn verdict(p: &PairedMeasure, labels: &(String, String), draws: usize) -> String {
    let i = p.difference;
    let (left, right) = labels;
    if !i.mean.is_finite() {
        return "no pair where both sides trained: nothing to compare".to_string();
    }
    if draws < 2 || !i.lo.is_finite() {
        return format!(
            "{right} minus {left} OOD accuracy: {:+.2} points on this one data draw; no interval over draws, so no verdict",
            100.0 * i.mean
        );
    }
    let range =
        format!("{:+.2} points [95% CI {:+.2}, {:+.2}] over {} draws", 100.0 * i.mean, 100.0 * i.lo, 100.0 * i.hi, i.n);
    let signs =
        format!("{} of {} draws favour {right} (sign test p = {})", p.draws_right_higher, i.n, format_p(p.sign_test_p));
    if i.excludes_zero() {
        let word = if i.mean > 0.0 { "higher" } else { "lower" };
        format!("{right}'s OOD accuracy is {word} than {left}'s: {range}; {signs}")
    } else {
        format!("no clear OOD accuracy difference between {right} and {left}: {range}; {signs}")
    }
}

/// A p-value with two significant digits, small ones in scientific notation.
pub fn format_p(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

/// The runs the tau table uses: not diverged (index into `runs`).
fn usable(runs: &[RunResult]) -> Vec<usize> {
    (0..runs.len()).filter(|&i| !runs[i].diverged).collect()
}

/// Tau of one predictor and target over `chosen` runs, in one mode.
fn tau_of(
    runs: &[RunResult],
    chosen: &[usize],
    predictor: Getter,
    e: usize,
    t: usize,
    mode: Mode,
) -> (Option<f64>, usize) {
    let mut rows: Vec<(f64, f64, f64)> = chosen
        .iter()
        .map(|&i| &runs[i])
        .filter(|r| mode != Mode::Matched || r.reached_target == Some(true))
        .map(|r| (predictor(r), target(r, e, t), r.train_loss))
        .filter(|(x, y, l)| x.is_finite() && y.is_finite() && l.is_finite())
        .collect();
    let n = rows.len();
    if mode != Mode::Binned {
        let (x, y): (Vec<f64>, Vec<f64>) = rows.iter().map(|&(x, y, _)| (x, y)).unzip();
        return (tau_b(&x, &y), n);
    }
    // Equal-count bins by training loss; tau per bin, weighted by its size.
    rows.sort_by(|a, b| a.2.total_cmp(&b.2));
    let (mut sum, mut weight) = (0.0, 0usize);
    for b in 0..LOSS_BINS {
        let bin = &rows[b * n / LOSS_BINS..(b + 1) * n / LOSS_BINS];
        let (x, y): (Vec<f64>, Vec<f64>) = bin.iter().map(|&(x, y, _)| (x, y)).unzip();
        if let Some(t) = tau_b(&x, &y) {
            sum += t * bin.len() as f64;
            weight += bin.len();
        }
    }
    ((weight > 0).then(|| sum / weight as f64), n)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Raw,
    Binned,
    Matched,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Raw => "raw",
            Mode::Binned => "binned",
            Mode::Matched => "matched",
        }
    }
}

/// Every (predictor, target, mode) tau of evaluation `e` with its bootstrap
/// interval, a resample per [`TauTable::resample`] call.
struct TauTable {
    e: usize,
    cases: Vec<(usize, usize, Mode)>,
    predictors: Vec<(&'static str, Getter)>,
    /// The same resamples for every case, seeded by the study.
    rng: Rng,
    chosen: Vec<usize>,
    by_draw: Vec<Vec<usize>>,
    samples: Vec<Vec<f64>>,
    /// Resamples taken.
    done: usize,
}

impl TauTable {
    fn new(grid: &Grid, runs: &[RunResult], e: usize) -> TauTable {
        let chosen = usable(runs);
        let mut modes = vec![Mode::Raw, Mode::Binned];
        if matches!(grid.spec.stop, crate::study_grid::StopRule::TrainLoss { .. }) {
            modes.push(Mode::Matched);
        }
        let predictors = predictors();
        let cases: Vec<(usize, usize, Mode)> = (0..predictors.len())
            .flat_map(|p| (0..TARGETS.len()).flat_map(move |t| [(p, t)]))
            .flat_map(|(p, t)| modes.iter().map(move |&m| (p, t, m)))
            .collect();
        let draws = grid.spec.data_seeds;
        let by_draw: Vec<Vec<usize>> =
            (0..draws).map(|d| chosen.iter().copied().filter(|&i| runs[i].draw == d).collect()).collect();
        TauTable {
            e,
            samples: vec![Vec::with_capacity(BOOTSTRAP_RESAMPLES); cases.len()],
            cases,
            predictors,
            rng: Rng::derive(grid.spec.base.seed, &format!("study-bootstrap-{e}")),
            chosen,
            by_draw,
            done: 0,
        }
    }

    /// One bootstrap resample: whole data draws (runs when there is one draw);
    /// returns whether all [`BOOTSTRAP_RESAMPLES`] are taken.
    fn resample(&mut self, runs: &[RunResult]) -> bool {
        if self.done >= BOOTSTRAP_RESAMPLES {
            return true;
        }
        let draws = self.by_draw.len();
        let resample: Vec<usize> = if draws > 1 {
            (0..draws).flat_map(|_| self.by_draw[self.rng.below(draws)].iter().copied()).collect()
        } else {
            (0..self.chosen.len()).map(|_| self.chosen[self.rng.below(self.chosen.len())]).collect()
        };
        for (k, &(p, t, m)) in self.cases.iter().enumerate() {
            if let (Some(tau), _) = tau_of(runs, &resample, self.predictors[p].1, self.e, t, m) {
                self.samples[k].push(tau);
            }
        }
        self.done += 1;
        self.done >= BOOTSTRAP_RESAMPLES
    }

    fn finish(self, runs: &[RunResult]) -> Vec<TauRow> {
        let (e, chosen, predictors) = (self.e, self.chosen, self.predictors);
        self.cases
            .iter()
            .zip(self.samples)
            .map(|(&(p, t, m), mut boot)| {
                let (tau, n) = tau_of(runs, &chosen, predictors[p].1, e, t, m);
                boot.sort_by(f64::total_cmp);
                // An interval from fewer than half the resamples would hide how often tau was undefined.
                let enough = boot.len() * 2 >= BOOTSTRAP_RESAMPLES;
                TauRow {
                    predictor: predictors[p].0.to_string(),
                    target: TARGETS[t].to_string(),
                    mode: m.name().to_string(),
                    tau,
                    lo: enough.then(|| quantile(&boot, 0.025)),
                    hi: enough.then(|| quantile(&boot, 0.975)),
                    runs: n,
                }
            })
            .collect()
    }
}

/// Jiang et al.'s granulated tau (raw mode) of evaluation `e`.
fn granulated(grid: &Grid, runs: &[RunResult], e: usize) -> Vec<GranulatedRow> {
    let chosen = usable(runs);
    let coords: Vec<Vec<usize>> = (0..grid.cells.len()).map(|c| grid.coords(c)).collect();
    // Axes with at least two values, then the side.
    let mut axes: Vec<(String, Option<usize>)> = grid
        .training_axes
        .iter()
        .enumerate()
        .filter(|(_, a)| a.values.len() > 1)
        .map(|(i, a)| (a.name.clone(), Some(i)))
        .collect();
    axes.push(("side".to_string(), None));
    let mut out = Vec::new();
    for &(predictor, get) in &predictors() {
        for (t, &target_name) in TARGETS.iter().enumerate() {
            let per_axis: Vec<(String, Option<f64>)> = axes
                .iter()
                .map(|(name, axis)| {
                    // Group key: everything but this axis.
                    let mut groups: std::collections::BTreeMap<Vec<usize>, Vec<usize>> = Default::default();
                    for &i in &chosen {
                        let r = &runs[i];
                        let mut key: Vec<usize> = coords[r.cell]
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| Some(*k) != *axis)
                            .map(|(_, &v)| v)
                            .collect();
                        key.extend([r.draw, r.seed_index]);
                        if axis.is_some() {
                            key.push(r.side);
                        }
                        groups.entry(key).or_default().push(i);
                    }
                    let taus: Vec<f64> =
                        groups.values().filter_map(|g| tau_of(runs, g, get, e, t, Mode::Raw).0).collect();
                    let mean = (!taus.is_empty()).then(|| taus.iter().sum::<f64>() / taus.len() as f64);
                    (name.clone(), mean)
                })
                .collect();
            let defined: Vec<f64> = per_axis.iter().filter_map(|(_, t)| *t).collect();
            let mean = (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64);
            out.push(GranulatedRow {
                predictor: predictor.to_string(),
                target: target_name.to_string(),
                per_axis,
                mean,
            });
        }
    }
    out
}
