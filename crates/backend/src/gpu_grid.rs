//! A grid study (`flatminima_core::study_grid`) with its training on the GPU's
//! replica kernels. Every (cell, data draw) unit's runs share the
//! architecture, the training data, the batch size and the steps, so they are
//! one replica batch (both sides, every seed, each with its own config, initial
//! weights and batch order). Consecutive units that also share the
//! architecture, batch size and steps (a cell's data draws, and cells that
//! differ only in hyperparameters the kernels take per replica: lr, rho,
//! momentum, ...) train as one batch too, each unit on its own training set
//! (`ReplicaTrainer::on_sets`): one sequence of dispatches for up to
//! [`MAX_BATCH_REPLICAS`] runs instead of one per unit. The final weights are
//! read back, and every run evaluated and measured on the CPU
//! (`UnitJob::with_trained`), as the issue allows. Units the kernels cannot
//! train go to the CPU, each cell with a notice: the matched-loss rule (the
//! kernels train fixed steps), dropout, Adam and the other optimisers, an
//! optimiser switch, a side's own batch size, weight averaging.
//!
//! The GPU trains in f32, so its runs equal the CPU study's up to f32 rounding
//! of the training (tests/backend.rs); a diverging replica keeps stepping where
//! a CPU run stops (both are flagged diverged and left unmeasured).

use flatminima_core::optim::OptimizerConfig;
use flatminima_core::study_grid::{Grid, RunResult, StudyOutput, UnitJob};
use flatminima_core::study_stats::StudyStats;

use crate::gpu::{GpuError, ReplicaTrainer};
use crate::{GpuBackend, Replica};

/// Most runs trained in one replica batch: 128 units of 4 seeds. On the
/// reference net that is about 15 MB of GPU scratch at batch 32.
pub const MAX_BATCH_REPLICAS: usize = 1024;

/// What a grid study trained where: the output, and a notice per cell trained on the CPU.
pub struct GridOnGpu {
    /// The study's output (runs and statistics), as `Grid::run` gives it.
    pub output: StudyOutput,
    /// Units trained on the GPU, and in all.
    pub gpu_units: usize,
    /// The study's units.
    pub units: usize,
    /// Why some cells were trained on the CPU (one line per cell).
    pub notices: Vec<String>,
}

/// Why the kernels cannot train `unit`'s runs, if they cannot (checked before
/// any upload, so that a unit the kernels cannot train never joins a batch).
fn unsupported(unit: &UnitJob, replicas: &[Replica]) -> Option<String> {
    let (mlp, _, batch_size, _) = unit.training();
    if unit.stops_at_a_loss() {
        return Some("the matched-loss rule (the GPU kernels train a fixed number of steps)".into());
    }
    if let Some(r) = replicas.iter().find(|r| !matches!(r.side.optimizer, OptimizerConfig::Sgd { .. })) {
        return Some(format!("{} (they implement SGD, with SAM/ASAM)", r.side.optimizer.display_name()));
    }
    if mlp.has_dropout() {
        return Some("dropout (the GPU kernels train without it)".into());
    }
    let side = |f: fn(&Replica) -> bool| replicas.iter().any(f);
    if side(|r| r.side.switch.is_some()) {
        return Some("a switch of optimiser".into());
    }
    if side(|r| r.side.average.is_some()) {
        return Some("weight averaging".into());
    }
    if replicas.iter().any(|r| r.side.batch_size.is_some_and(|b| b != batch_size)) {
        return Some("a side's own batch size".into());
    }
    None
}

impl GpuBackend {
    /// Trains units `first`, `first + 1`, ... of `grid` as one replica batch:
    /// as many as follow `first` with the same architecture, batch size and
    /// steps, that the kernels can train, at most `max_units` and
    /// [`MAX_BATCH_REPLICAS`] runs. Returns, per unit, every run's final
    /// weights in run order (`UnitJob::replicas`), for `UnitJob::with_trained`
    /// (at least one unit); `GpuError::Unsupported` says why unit `first` must
    /// train on the CPU instead.
    pub async fn train_grid_units(
        &self,
        grid: &Grid,
        first: usize,
        max_units: usize,
    ) -> Result<Vec<Vec<Vec<f64>>>, GpuError> {
        let head = UnitJob::new(grid, first);
        let head_replicas = head.replicas();
        if let Some(why) = unsupported(&head, &head_replicas) {
            return Err(GpuError::Unsupported(why));
        }
        let (mlp, splits, batch_size, steps) = head.training();
        let batch_of = |n: usize| batch_size.clamp(1, n);
        let mut batch = vec![(splits.clone(), head_replicas)];
        for u in first + 1..grid.units() {
            let runs = batch.iter().map(|(_, r)| r.len()).sum::<usize>();
            if batch.len() >= max_units || runs + batch[0].1.len() > MAX_BATCH_REPLICAS {
                break;
            }
            let unit = UnitJob::new(grid, u);
            let replicas = unit.replicas();
            let (m, s, b, n) = unit.training();
            // The same network, steps and batches (a set smaller than the batch shrinks it).
            let alike =
                m == mlp && n == steps && b == batch_size && batch_of(s.train.len()) == batch_of(splits.train.len());
            if !alike || unsupported(&unit, &replicas).is_some() {
                break;
            }
            batch.push((s.clone(), replicas));
        }
        let groups: Vec<_> = batch.iter().map(|(s, r)| (&s.train, &r[..])).collect();
        let mut trainer = ReplicaTrainer::on_sets(self.context(), mlp, &groups, batch_size)?;
        trainer.train(steps).await?;
        let mut params = trainer.params().await?.into_iter();
        Ok(batch.iter().map(|(_, r)| params.by_ref().take(r.len()).collect()).collect())
    }

    /// Trains and measures every unit of `grid` (see the module docs), calling
    /// `progress(done, units)` after each; the statistics as `Grid::run`'s.
    /// A GPU failure other than an unsupported unit ends it with the error
    /// (the caller can run the study on the CPU instead).
    pub async fn run_grid(&self, grid: &Grid, mut progress: impl FnMut(usize, usize)) -> Result<GridOnGpu, GpuError> {
        let units = grid.units();
        let mut runs: Vec<RunResult> = Vec::with_capacity(2 * grid.pairs());
        let (mut gpu_units, mut notices) = (0, Vec::new());
        // Weights of units trained in the last batch, in unit order.
        let mut trained_ahead = std::collections::VecDeque::new();
        for u in 0..units {
            let unit = UnitJob::new(grid, u);
            if trained_ahead.is_empty() {
                match self.train_grid_units(grid, u, usize::MAX).await {
                    Ok(batch) => trained_ahead.extend(batch.into_iter().map(Ok)),
                    Err(GpuError::Unsupported(why)) => trained_ahead.push_back(Err(why)),
                    Err(e) => return Err(e),
                }
            }
            let trained = trained_ahead.pop_front().expect("a unit's weights or why not");
            let mut job = match trained {
                Ok(params) => {
                    gpu_units += 1;
                    unit.with_trained(params)
                }
                Err(why) => {
                    let cell = u / grid.spec.data_seeds;
                    let settings: Vec<String> =
                        grid.cells[cell].settings.iter().map(|(n, v)| format!("{n}={v}")).collect();
                    let name = if settings.is_empty() { "the study".to_string() } else { settings.join(" ") };
                    let notice = format!("{name}: trained on the CPU: the GPU kernels do not implement {why}");
                    if !notices.contains(&notice) {
                        notices.push(notice);
                    }
                    unit
                }
            };
            flatminima_core::job::finish(&mut job, &mut ());
            runs.extend(job.into_runs());
            progress(u + 1, units);
        }
        let stats = StudyStats::new(grid, &runs);
        Ok(GridOnGpu { output: grid.output_with(None, runs, Some(stats)), gpu_units, units, notices })
    }
}
