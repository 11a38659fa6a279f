//! Kernel 2 (evaluate.wgsl, combine.wgsl): mean loss and accuracy of many
//! parameter vectors of one model over one dataset. Loss surfaces send only
//! w, d1, d2 and the (a, b) coordinates; the GPU forms each w + a d1 + b d2.

use crate::gpu::context::{dispatch, groups_for};
use crate::gpu::shape::{check_supported, to_f32, Words};
use crate::gpu::{GpuContext, GpuError};
use flatminima_core::data::Dataset;
use flatminima_core::model::Mlp;

/// Mean loss (softmax cross-entropy with the model's label smoothing) and
/// accuracy, one entry per parameter vector, as `Mlp::evaluate` computes them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LossAccuracy {
    /// Mean loss of each parameter vector (f32).
    pub loss: Vec<f32>,
    /// Accuracy of each parameter vector, as a fraction in [0, 1].
    pub accuracy: Vec<f32>,
}

impl LossAccuracy {
    fn from_pairs(pairs: &[f32]) -> Self {
        let (loss, accuracy) = pairs.chunks_exact(2).map(|p| (p[0], p[1])).unzip();
        LossAccuracy { loss, accuracy }
    }

    fn extend(&mut self, other: LossAccuracy) {
        self.loss.extend(other.loss);
        self.accuracy.extend(other.accuracy);
    }
}

/// A labelled point set on the GPU: points as f32 (row-major), labels as u32.
pub(crate) struct GpuDataset {
    pub xs: wgpu::Buffer,
    pub ys: wgpu::Buffer,
    pub len: usize,
}

impl GpuContext {
    pub(crate) fn upload_dataset(&self, data: &Dataset) -> Result<GpuDataset, GpuError> {
        let xs = to_f32(data.flat_points());
        let ys: Vec<u32> = data.labels.iter().map(|&y| y as u32).collect();
        Ok(GpuDataset {
            xs: self.upload("points", bytemuck::cast_slice(&xs))?,
            ys: self.upload("labels", bytemuck::cast_slice(&ys))?,
            len: data.len(),
        })
    }

    /// Loss and accuracy of each parameter vector in `params` over `data`.
    pub async fn losses(&self, mlp: &Mlp, params: &[&[f64]], data: &Dataset) -> Result<LossAccuracy, GpuError> {
        check_supported(mlp)?;
        let n = mlp.num_params();
        if let Some(p) = params.iter().find(|p| p.len() != n) {
            return Err(GpuError::Unsupported(format!("{} parameters for a model with {n}", p.len())));
        }
        let flat: Vec<f32> = params.iter().flat_map(|p| to_f32(p)).collect();
        let vectors = self.upload("param vectors", bytemuck::cast_slice(&flat))?;
        let data = self.upload_dataset(data)?;
        self.evaluate_vectors(mlp, &vectors, params.len(), &data, "losses", |_| Ok(())).await
    }

    /// The loss surface: loss and accuracy over `data` at `w + a d1 + b d2` for
    /// every `[a, b]` in `coords` (a 2D grid, or a 1D slice with b = 0).
    pub async fn surface(
        &self,
        mlp: &Mlp,
        w: &[f64],
        d1: &[f64],
        d2: &[f64],
        coords: &[[f64; 2]],
        data: &Dataset,
    ) -> Result<LossAccuracy, GpuError> {
        check_supported(mlp)?;
        let n = mlp.num_params();
        if w.len() != n || d1.len() != n || d2.len() != n {
            return Err(GpuError::Unsupported(format!("w, d1 and d2 must each have the model's {n} parameters")));
        }
        let k = &self.kernels;
        let w = self.upload("w", bytemuck::cast_slice(&to_f32(w)))?;
        let d1 = self.upload("d1", bytemuck::cast_slice(&to_f32(d1)))?;
        let d2 = self.upload("d2", bytemuck::cast_slice(&to_f32(d2)))?;
        let data = self.upload_dataset(data)?;
        // The materialised vectors of one chunk must fit one storage buffer.
        let per_chunk = ((self.max_binding_bytes() / (4 * n as u64)) as usize).clamp(1, 1 << 16);
        let mut result = LossAccuracy::default();
        for chunk in coords.chunks(per_chunk) {
            let ab: Vec<f32> = chunk.iter().flat_map(|c| [c[0] as f32, c[1] as f32]).collect();
            let ab = self.upload("coords", bytemuck::cast_slice(&ab))?;
            let config = self.upload("combine config", Words::new().usize(n).usize(chunk.len()).as_bytes())?;
            let vectors = self.scratch("surface vectors", n * chunk.len())?;
            let bind = self.bind(&k.combine, &[(0, &config), (1, &w), (2, &d1), (3, &d2), (4, &ab), (5, &vectors)]);
            let combine =
                |pass: &mut wgpu::ComputePass<'_>| dispatch(pass, &k.combine, &bind, groups_for(n * chunk.len()));
            result.extend(self.evaluate_vectors(mlp, &vectors, chunk.len(), &data, "surface", combine).await?);
        }
        Ok(result)
    }

    /// Runs evaluate.wgsl over `count` vectors stored back to back in `vectors`,
    /// after whatever `before` records in the same pass (e.g. forming them).
    pub(crate) async fn evaluate_vectors(
        &self,
        mlp: &Mlp,
        vectors: &wgpu::Buffer,
        count: usize,
        data: &GpuDataset,
        label: &str,
        before: impl FnOnce(&mut wgpu::ComputePass<'_>) -> Result<(), GpuError>,
    ) -> Result<LossAccuracy, GpuError> {
        if count == 0 {
            return Ok(LossAccuracy::default());
        }
        if data.len == 0 {
            let nan = vec![f32::NAN; count];
            return Ok(LossAccuracy { loss: nan.clone(), accuracy: nan });
        }
        let k = &self.kernels;
        let config =
            Words::new().shape(mlp).usize(mlp.num_params()).usize(count).usize(data.len).f32(mlp.label_smoothing);
        let config = self.upload("evaluate config", config.as_bytes())?;
        let results = self.scratch("loss and accuracy", 2 * count)?;
        let bind = self.bind(&k.evaluate, &[(0, &config), (1, vectors), (2, &data.xs), (3, &data.ys), (4, &results)]);
        let pairs = self
            .run_and_read(label, 2 * count, |encoder| {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                before(&mut pass)?;
                dispatch(&mut pass, &k.evaluate, &bind, count)?;
                Ok(results.clone())
            })
            .await?;
        Ok(LossAccuracy::from_pairs(&pairs))
    }
}
