//! The CPU implementation: the f64 core itself (`train::predict_proba`,
//! `landscape::SurfaceJob`, `study::ReplicaRun`). Always available, never fails.

use std::sync::Arc;

use crate::data::{Dataset, Splits};
use crate::grid2d::Grid2d;
use crate::landscape::{Grid, Plane, Split, Surface, SurfaceJob};
use crate::model::{Mlp, Workspace};
use crate::study::{Replica, ReplicaMetrics, ReplicaRun};
use crate::train::predict_proba;

/// A model to evaluate: its architecture and flat parameter vector.
#[derive(Clone, Copy, Debug)]
pub struct ModelRef<'a> {
    /// The network's architecture, which says how `params` is laid out.
    pub mlp: &'a Mlp,
    /// All weights and biases as one flat f64 vector, in the layout `mlp` defines.
    pub params: &'a [f64],
}

/// The f64 CPU core. Stateless.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBackend;

impl CpuBackend {
    /// See [`Backend::boundary_grid`].
    pub fn boundary_grid(&self, models: &[ModelRef<'_>], grid: &Grid2d) -> Vec<f32> {
        let points: Vec<f64> = grid.points().into_flattened();
        let mut out = Vec::with_capacity(models.iter().map(|m| grid.len() * m.mlp.classes).sum());
        let mut probs = Vec::new();
        for m in models {
            probs.resize(grid.len() * m.mlp.classes, 0.0);
            // A Workspace is sized for one architecture (`prepare` checks only the depth).
            predict_proba(m.mlp, m.params, &points, &mut probs, &mut Workspace::new());
            out.extend(probs.iter().map(|&p| p as f32));
        }
        out
    }

    /// See [`Backend::surface`]: a [`SurfaceJob`] run to the end.
    pub fn surface(&self, mlp: &Mlp, plane: &Plane, grid: &Grid, sets: &[(Split, &Dataset)]) -> Surface {
        // SurfaceJob reads its sets from a Splits; the sets not given stay empty and unused.
        let empty = || Dataset { points: vec![], labels: vec![], classes: mlp.classes };
        let mut splits = Splits { train: empty(), id_test: empty(), ood_test: empty() };
        for &(split, data) in sets {
            let slot = match split {
                Split::Train => &mut splits.train,
                Split::Id => &mut splits.id_test,
                Split::Ood => &mut splits.ood_test,
            };
            *slot = data.clone();
        }
        let which: Vec<Split> = sets.iter().map(|&(s, _)| s).collect();
        SurfaceJob::new(mlp, Arc::new(splits), plane.clone(), grid.clone(), &which).finish()
    }

    /// See [`Backend::train_replicas`]: R independent [`ReplicaRun`]s.
    pub fn train_replicas(
        &self,
        mlp: &Mlp,
        splits: &Arc<Splits>,
        batch_size: usize,
        replicas: &[Replica],
        steps: usize,
    ) -> Vec<ReplicaMetrics> {
        replicas
            .iter()
            .map(|r| {
                let mut run = ReplicaRun::new(r, mlp, splits, batch_size);
                run.train(steps);
                run.metrics()
            })
            .collect()
    }
}
