//! The GPU implementation: the kernels of [`crate::gpu`] on an open device.
//! Every method returns `Err(GpuError)` rather than a partial result; the
//! [`super::Backend`] then redoes the call on the CPU.

use std::sync::Arc;

use crate::gpu::{GpuContext, GpuError, GpuModel, LossAccuracy, ReplicaTrainer};
use crate::{Grid2d, ModelRef, Replica, ReplicaMetrics};
use flatminima_core::data::{Dataset, Splits};
use flatminima_core::landscape::{Grid, Plane, Split, Surface};
use flatminima_core::model::Mlp;
use flatminima_core::study::diverged;

/// The f32 GPU kernels on one device.
#[derive(Clone, Debug)]
pub struct GpuBackend {
    ctx: GpuContext,
}

impl GpuBackend {
    /// Opens the best adapter and compiles the kernels (`GpuContext::new`).
    pub async fn open() -> Result<GpuBackend, GpuError> {
        Ok(GpuBackend { ctx: GpuContext::new().await? })
    }

    /// On a device someone else opened.
    pub fn with_context(ctx: GpuContext) -> GpuBackend {
        GpuBackend { ctx }
    }

    /// The GPU device and queue this backend runs on, e.g. to share them.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Adapter name, kind and API, e.g. "llvmpipe (LLVM 15.0.6, 256 bits) [Cpu, Vulkan]".
    pub fn description(&self) -> String {
        self.ctx.description()
    }

    /// A CPU emulation (lavapipe, SwiftShader) rather than a GPU.
    pub fn is_software(&self) -> bool {
        self.ctx.is_software()
    }

    /// `Err` once the device is lost or broken.
    pub fn check(&self) -> Result<(), GpuError> {
        self.ctx.check()
    }

    /// Destroys the device, as a driver reset would (tests of the fallback path).
    #[cfg(all(test, not(target_arch = "wasm32")))]
    pub(crate) fn destroy_device_for_tests(&self) {
        self.ctx.device.destroy();
    }

    /// See [`super::Backend::boundary_grid`].
    pub async fn boundary_grid(&self, models: &[ModelRef<'_>], grid: &Grid2d) -> Result<Vec<f32>, GpuError> {
        let models: Vec<GpuModel> = models.iter().map(|m| GpuModel { mlp: m.mlp, params: m.params }).collect();
        self.ctx.boundary_grid(&models, grid).await
    }

    /// See [`super::Backend::surface`].
    pub async fn surface(
        &self,
        mlp: &Mlp,
        plane: &Plane,
        grid: &Grid,
        sets: &[(Split, &Dataset)],
    ) -> Result<Surface, GpuError> {
        // Row-major like SurfaceJob: row i is betas[i], column j is alphas[j].
        let coords: Vec<[f64; 2]> = grid.betas.iter().flat_map(|&b| grid.alphas.iter().map(move |&a| [a, b])).collect();
        let mut surface = Surface {
            kind: plane.kind,
            alphas: grid.alphas.clone(),
            betas: grid.betas.clone(),
            train: None,
            id: None,
            ood: None,
            explained_variance: plane.explained_variance,
            eigenvalues: plane.eigenvalues,
        };
        for &(split, data) in sets {
            let result = self.ctx.surface(mlp, &plane.origin, &plane.d1, &plane.d2, &coords, data).await?;
            let values = Some(widen(&result.loss));
            match split {
                Split::Train => surface.train = values,
                Split::Id => surface.id = values,
                Split::Ood => surface.ood = values,
            }
        }
        Ok(surface)
    }

    /// See [`super::Backend::train_replicas`].
    pub async fn train_replicas(
        &self,
        mlp: &Mlp,
        splits: &Arc<Splits>,
        batch_size: usize,
        replicas: &[Replica],
        steps: usize,
    ) -> Result<Vec<ReplicaMetrics>, GpuError> {
        if mlp.has_dropout() {
            // The kernels train without masks; the CPU path has dropout.
            return Err(GpuError::Unsupported("dropout (the GPU kernels train without it)".into()));
        }
        if replicas.iter().any(|r| r.side.switch.is_some() || r.side.batch_size.is_some_and(|b| b != batch_size)) {
            return Err(GpuError::Unsupported("a switch of optimiser or a side's own batch size".into()));
        }
        let mut trainer = ReplicaTrainer::new(&self.ctx, mlp, &splits.train, batch_size, replicas)?;
        let initial = trainer.metrics().await?;
        trainer.train(steps).await?;
        let train = trainer.metrics().await?;
        let id = trainer.evaluate(&splits.id_test).await?;
        let ood = trainer.evaluate(&splits.ood_test).await?;
        let [initial, train, id, ood] = [initial, train, id, ood].map(|m| Widened::from(&m));
        Ok((0..replicas.len())
            .map(|i| ReplicaMetrics {
                train_loss: train.loss[i],
                train_acc: train.accuracy[i],
                id_loss: id.loss[i],
                id_acc: id.accuracy[i],
                ood_loss: ood.loss[i],
                ood_acc: ood.accuracy[i],
                diverged: diverged(initial.loss[i], train.loss[i]),
            })
            .collect())
    }
}

fn widen(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| v as f64).collect()
}

/// [`LossAccuracy`] in f64.
struct Widened {
    loss: Vec<f64>,
    accuracy: Vec<f64>,
}

impl From<&LossAccuracy> for Widened {
    fn from(m: &LossAccuracy) -> Self {
        Widened { loss: widen(&m.loss), accuracy: widen(&m.accuracy) }
    }
}
