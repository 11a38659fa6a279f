//! Kernel 1 (forward.wgsl): class probabilities of several models at many
//! points in one dispatch: decision boundaries for both sides, ensembles.

use crate::gpu::context::{dispatch, groups_for};
use crate::gpu::shape::{check_supported, to_f32, Words};
use crate::gpu::{GpuContext, GpuError, Grid2d};
use flatminima_core::model::Mlp;

/// A model to evaluate: its architecture and its flat parameter vector.
#[derive(Clone, Copy, Debug)]
pub struct GpuModel<'a> {
    /// The network's architecture, which says how `params` is laid out.
    pub mlp: &'a Mlp,
    /// All weights and biases as one flat f64 vector (narrowed to f32 on the GPU).
    pub params: &'a [f64],
}

/// Where the points come from.
enum Points<'a> {
    Grid(&'a Grid2d),
    List(&'a [f64]),
}

impl GpuContext {
    /// Softmax probabilities of every model at every grid point. The result is
    /// model after model, each `grid.len() x classes` (row-major, classes of that
    /// model), like `train::predict_proba` over `grid.points()`.
    pub async fn boundary_grid(&self, models: &[GpuModel<'_>], grid: &Grid2d) -> Result<Vec<f32>, GpuError> {
        if let Some(m) = models.iter().find(|m| m.mlp.inputs != 2) {
            return Err(GpuError::Unsupported(format!("a grid needs 2 inputs, the model has {}", m.mlp.inputs)));
        }
        self.probabilities(models, Points::Grid(grid), grid.len()).await
    }

    /// Softmax probabilities of every model at `points` (row-major, `inputs`
    /// numbers per point); same output layout as [`GpuContext::boundary_grid`].
    pub async fn predict_proba(&self, models: &[GpuModel<'_>], points: &[f64]) -> Result<Vec<f32>, GpuError> {
        let inputs = models.first().map_or(1, |m| m.mlp.inputs);
        if models.iter().any(|m| m.mlp.inputs != inputs) || !points.len().is_multiple_of(inputs) {
            return Err(GpuError::Unsupported("models with different input sizes, or a ragged point list".into()));
        }
        self.probabilities(models, Points::List(points), points.len() / inputs).await
    }

    async fn probabilities(
        &self,
        models: &[GpuModel<'_>],
        points: Points<'_>,
        n_points: usize,
    ) -> Result<Vec<f32>, GpuError> {
        let mut params = Vec::new();
        let mut descriptors = Words::new();
        let mut out_len = 0;
        for m in models {
            check_supported(m.mlp)?;
            if m.params.len() != m.mlp.num_params() {
                return Err(GpuError::Unsupported(format!(
                    "{} parameters for a model with {}",
                    m.params.len(),
                    m.mlp.num_params()
                )));
            }
            descriptors = descriptors.shape(m.mlp).usize(params.len()).usize(out_len);
            params.extend(to_f32(m.params));
            out_len += n_points * m.mlp.classes;
        }
        if out_len == 0 {
            return Ok(Vec::new());
        }
        let config = Words::new().usize(n_points).usize(models.len());
        let (config, point_data) = match points {
            Points::Grid(g) => (
                config
                    .u32(1)
                    .usize(g.nx)
                    .usize(g.ny)
                    .f32(g.x_range.0)
                    .f32(g.x_range.1)
                    .f32(g.y_range.0)
                    .f32(g.y_range.1),
                Vec::new(),
            ),
            Points::List(p) => (config.u32(0).u32(0).u32(0).f32(0.0).f32(0.0).f32(0.0).f32(0.0), to_f32(p)),
        };
        let k = &self.kernels;
        let config = self.upload("forward config", config.as_bytes())?;
        let descriptors = self.upload("models", descriptors.as_bytes())?;
        let params = self.upload("params", bytemuck::cast_slice(&params))?;
        let point_data = self.upload("points", bytemuck::cast_slice(&point_data))?;
        let probs = self.scratch("probabilities", out_len)?;
        let bind =
            self.bind(&k.forward, &[(0, &config), (1, &descriptors), (2, &params), (3, &point_data), (4, &probs)]);
        self.run_and_read("boundary", out_len, |encoder| {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            dispatch(&mut pass, &k.forward, &bind, groups_for(n_points * models.len()))?;
            Ok(probs.clone())
        })
        .await
    }
}
