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
use flatminima_core::study_grid::{finish_units, Grid, RunResult, StudyOutput, UnitJob};
use flatminima_core::study_stats::StudyStats;

use crate::gpu::{check_supported, GpuError, ReplicaTrainer};
use crate::{GpuBackend, Replica};

/// Most runs trained in one replica batch: 128 units of 4 seeds (about 15 MB
/// of GPU scratch for the reference net at batch 32; a batch also stays
/// within the device's largest buffer, see `batch_from`).
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
    if let Err(GpuError::Unsupported(why)) = check_supported(mlp) {
        return Some(why);
    }
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

/// Units `first`, `first + 1`, ... of `grid` that can train as one replica
/// batch: as many as follow `first` with the same architecture, batch size
/// and steps, that the kernels can train, at most `max_units`,
/// [`MAX_BATCH_REPLICAS`] runs and a training scratch of `max_bytes` (the
/// device's largest buffer: one unit may need more, as before batching); or
/// unit `first` and why the kernels cannot train it.
fn batch_from(
    grid: &Grid,
    first: usize,
    max_units: usize,
    max_bytes: u64,
) -> Result<Vec<UnitJob>, Box<(UnitJob, String)>> {
    let head = UnitJob::new(grid, first);
    if let Some(why) = unsupported(&head, &head.replicas()) {
        return Err(Box::new((head, why)));
    }
    let (mlp, splits, batch_size, steps) = head.training();
    let (mlp, rows, runs_per_unit) = (mlp.clone(), splits.train.len(), 2 * grid.spec.seeds);
    let batch_of = |n: usize| batch_size.clamp(1, n);
    let scratch_per_unit = (runs_per_unit * ReplicaTrainer::scratch_floats(&mlp, batch_of(rows)) * 4) as u64;
    let mut batch = vec![head];
    for u in first + 1..grid.units() {
        let units = batch.len() + 1;
        if units > max_units
            || units * runs_per_unit > MAX_BATCH_REPLICAS
            || units as u64 * scratch_per_unit > max_bytes
        {
            break;
        }
        let unit = UnitJob::new(grid, u);
        let (m, s, b, n) = unit.training();
        // The same network, steps and batches (a set smaller than the batch shrinks it).
        let alike = *m == mlp && n == steps && b == batch_size && batch_of(s.train.len()) == batch_of(rows);
        if !alike || unsupported(&unit, &unit.replicas()).is_some() {
            break;
        }
        batch.push(unit);
    }
    Ok(batch)
}

impl GpuBackend {
    /// Trains units `first`, `first + 1`, ... of `grid` as one replica batch
    /// (as many as can: see `batch_from`, at most `max_units`), each on its
    /// data draw. Returns, per unit, every run's final weights in run order
    /// (`UnitJob::replicas`), for `UnitJob::with_trained` (at least one unit);
    /// `GpuError::Unsupported` says why unit `first` must train on the CPU instead.
    pub async fn train_grid_units(
        &self,
        grid: &Grid,
        first: usize,
        max_units: usize,
    ) -> Result<Vec<Vec<Vec<f64>>>, GpuError> {
        let max_bytes = self.context().max_binding_bytes();
        let batch = batch_from(grid, first, max_units, max_bytes).map_err(|e| GpuError::Unsupported(e.1))?;
        self.train_units(&batch).await
    }

    /// Trains `units` (from `batch_from`) as one replica batch: their runs' final weights, unit by unit.
    async fn train_units(&self, units: &[UnitJob]) -> Result<Vec<Vec<Vec<f64>>>, GpuError> {
        let (mlp, _, batch_size, steps) = units[0].training();
        let replicas: Vec<Vec<Replica>> = units.iter().map(UnitJob::replicas).collect();
        let groups: Vec<_> = units.iter().zip(&replicas).map(|(u, r)| (&u.training().1.train, &r[..])).collect();
        let mut trainer = ReplicaTrainer::on_sets(self.context(), mlp, &groups, batch_size)?;
        trainer.train(steps).await?;
        let mut params = trainer.params().await?.into_iter();
        Ok(replicas.iter().map(|r| params.by_ref().take(r.len()).collect()).collect())
    }

    /// Trains and measures every unit of `grid` (see the module docs), calling
    /// `progress(done, units)` after each; the statistics as `Grid::run`'s.
    /// Each batch's units are measured on `threads` threads (natively; the
    /// same runs as one thread's). A GPU failure other than an unsupported
    /// unit ends it with the error (the caller can run the study on the CPU
    /// instead).
    pub async fn run_grid(
        &self,
        grid: &Grid,
        threads: usize,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<GridOnGpu, GpuError> {
        let units = grid.units();
        let mut runs: Vec<RunResult> = Vec::with_capacity(2 * grid.pairs());
        let (mut gpu_units, mut notices) = (0, Vec::new());
        let mut u = 0;
        while u < units {
            // The next units to measure, in unit order: trained on the GPU, or to train here.
            let ready: Vec<UnitJob> = match batch_from(grid, u, usize::MAX, self.context().max_binding_bytes()) {
                Ok(batch) => {
                    let trained = self.train_units(&batch).await?;
                    gpu_units += batch.len();
                    batch.into_iter().zip(trained).map(|(unit, params)| unit.with_trained(params)).collect()
                }
                Err(refused) => {
                    // It and the units after it that the kernels cannot train either (as many as
                    // there are threads): trained here, on the threads at once.
                    let (unit, why) = *refused;
                    let mut refused = vec![(unit, why)];
                    for v in u + 1..units.min(u + threads) {
                        let next = UnitJob::new(grid, v);
                        match unsupported(&next, &next.replicas()) {
                            Some(why) => refused.push((next, why)),
                            None => break,
                        }
                    }
                    let mut ready = Vec::with_capacity(refused.len());
                    for (unit, why) in refused {
                        let cell = unit.cell_and_draw().0;
                        let settings: Vec<String> =
                            grid.cells[cell].settings.iter().map(|(n, v)| format!("{n}={v}")).collect();
                        let name = if settings.is_empty() { "the study".to_string() } else { settings.join(" ") };
                        let notice = format!("{name}: trained on the CPU: the GPU kernels do not implement {why}");
                        if !notices.contains(&notice) {
                            notices.push(notice);
                        }
                        ready.push(unit);
                    }
                    ready
                }
            };
            let count = ready.len();
            runs.extend(finish_units(
                ready.into_iter(),
                threads.min(count),
                |job| job,
                |done| progress(u + done, units),
            ));
            u += count;
        }
        let stats = StudyStats::new(grid, &runs);
        Ok(GridOnGpu { output: grid.output_with(None, runs, Some(stats)), gpu_units, units, notices })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flatminima_core::config::RunConfig;
    use flatminima_core::settings::apply_settings;
    use flatminima_core::study_grid::{parse_axes, GridSpec};

    /// Cells x 2 draws x 2 seeds of a small net.
    fn grid(axes: &str) -> Grid {
        let base = apply_settings(&RunConfig::default(), [("points", "50"), ("hidden", "8"), ("steps", "5")]).unwrap();
        let mut spec = GridSpec::new(base, 2, 2);
        spec.axes = parse_axes(axes).unwrap();
        Grid::new(spec).unwrap()
    }

    fn units(batch: &[UnitJob]) -> Vec<(usize, usize)> {
        batch.iter().map(UnitJob::cell_and_draw).collect()
    }

    #[test]
    fn a_batch_runs_while_units_share_their_training_and_fit_the_limits() {
        let g = grid("lr=0.05,0.2; optimizer=sgd,adam");
        // Cells: (0.05, SGD), (0.05, Adam), (0.2, SGD), (0.2, Adam); units: cell x 2 draws.
        let batch = batch_from(&g, 0, usize::MAX, u64::MAX).map_err(|e| e.1).unwrap();
        assert_eq!(units(&batch), [(0, 0), (0, 1)], "Adam's cell ends the batch");
        let refused = batch_from(&g, 2, usize::MAX, u64::MAX).err().map(|e| e.1);
        assert!(refused.as_deref().is_some_and(|why| why.contains("Adam")), "{refused:?}");
        // Cells that differ in the learning rate only share a batch.
        let lrs = grid("lr=0.05,0.1,0.2");
        let all = batch_from(&lrs, 0, usize::MAX, u64::MAX).map_err(|e| e.1).unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(units(&batch_from(&lrs, 1, 3, u64::MAX).map_err(|e| e.1).unwrap()), [(0, 1), (1, 0), (1, 1)]);
        // The scratch limit: room for two units' replicas, then for less than one.
        let (unit, rows) = (&all[0], all[0].training().1.train.len());
        let per_unit = (4 * ReplicaTrainer::scratch_floats(unit.training().0, 32.min(rows)) * 4) as u64;
        assert_eq!(batch_from(&lrs, 0, usize::MAX, 2 * per_unit).map_err(|e| e.1).unwrap().len(), 2);
        assert_eq!(batch_from(&lrs, 0, usize::MAX, per_unit - 1).map_err(|e| e.1).unwrap().len(), 1, "one unit always");
    }
}
