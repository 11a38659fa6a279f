//! A grid study (`flatminima_core::study_grid`) with its training on the GPU's
//! replica kernels. Every (cell, data draw) unit's runs share the
//! architecture, the training data, the batch size and the steps, so they are
//! one replica batch (both sides, every seed, each with its own config, initial
//! weights and batch order): trained for the unit's steps, their final weights
//! read back, and every run evaluated and measured on the CPU
//! (`UnitJob::with_trained`), as the issue allows. Units the kernels cannot
//! train go to the CPU, each cell with a notice: the matched-loss rule (the
//! kernels train fixed steps), dropout, Adam and the other optimisers, an
//! optimiser switch, a side's own batch size, weight averaging.
//!
//! The GPU trains in f32, so its runs equal the CPU study's up to f32 rounding
//! of the training (tests/backend.rs); a diverging replica keeps stepping where
//! a CPU run stops (both are flagged diverged and left unmeasured).

use flatminima_core::study_grid::{Grid, RunResult, StudyOutput, UnitJob};
use flatminima_core::study_stats::StudyStats;

use crate::gpu::{GpuError, ReplicaTrainer};
use crate::{GpuBackend, Replica};

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
/// any upload; the trainer refuses the optimisers it lacks itself).
fn unsupported(unit: &UnitJob, replicas: &[Replica]) -> Option<String> {
    let (mlp, _, batch_size, _) = unit.training();
    if unit.stops_at_a_loss() {
        return Some("the matched-loss rule (the GPU kernels train a fixed number of steps)".into());
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
    /// Trains unit `u` of `grid` on the replica kernels and returns every
    /// run's final weights in run order (`UnitJob::replicas`), for
    /// `UnitJob::with_trained`; `GpuError::Unsupported` says why a unit must
    /// train on the CPU instead.
    pub async fn train_grid_unit(&self, grid: &Grid, u: usize) -> Result<Vec<Vec<f64>>, GpuError> {
        let unit = UnitJob::new(grid, u);
        let replicas = unit.replicas();
        if let Some(why) = unsupported(&unit, &replicas) {
            return Err(GpuError::Unsupported(why));
        }
        let (mlp, splits, batch_size, steps) = unit.training();
        let mut trainer = ReplicaTrainer::new(self.context(), mlp, &splits.train, batch_size, &replicas)?;
        trainer.train(steps).await?;
        trainer.params().await
    }

    /// Trains and measures every unit of `grid` (see the module docs), calling
    /// `progress(done, units)` after each; the statistics as `Grid::run`'s.
    /// A GPU failure other than an unsupported unit ends it with the error
    /// (the caller can run the study on the CPU instead).
    pub async fn run_grid(&self, grid: &Grid, mut progress: impl FnMut(usize, usize)) -> Result<GridOnGpu, GpuError> {
        let units = grid.units();
        let mut runs: Vec<RunResult> = Vec::with_capacity(2 * grid.pairs());
        let (mut gpu_units, mut notices) = (0, Vec::new());
        for u in 0..units {
            let unit = UnitJob::new(grid, u);
            let trained = match self.train_grid_unit(grid, u).await {
                Ok(params) => Ok(params),
                Err(GpuError::Unsupported(why)) => Err(why),
                Err(e) => return Err(e),
            };
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
