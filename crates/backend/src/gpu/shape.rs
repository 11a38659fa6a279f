//! What the kernels support, and how shapes and settings are written into GPU
//! buffers: as plain 32-bit words, in the field order of the WGSL structs
//! (which hold only u32/f32 scalars and u32 arrays, so there is no padding).

use crate::gpu::GpuError;
use flatminima_core::activation::Activation;
use flatminima_core::model::Mlp;

/// Hidden layers a kernel handles (the `Shape.widths` array has room for 6 + 2).
pub const MAX_HIDDEN_LAYERS: usize = 6;
/// Widest layer: inputs, hidden units and classes (the kernels' private buffers).
pub const MAX_WIDTH: usize = 64;

/// A little-endian word buffer in WGSL struct order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Words(Vec<u32>);

impl Words {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.push(v);
        self
    }
    pub fn usize(self, v: usize) -> Self {
        self.u32(v as u32)
    }
    pub fn f32(self, v: f64) -> Self {
        self.u32((v as f32).to_bits())
    }
    /// The WGSL `Shape` struct: n_layers, activation, widths[8].
    pub fn shape(mut self, mlp: &Mlp) -> Self {
        let mut widths = [0u32; MAX_HIDDEN_LAYERS + 2];
        widths[0] = mlp.inputs as u32;
        for (w, layer) in widths[1..].iter_mut().zip(&mlp.layers) {
            *w = layer.fan_out as u32;
        }
        self = self.usize(mlp.layers.len()).u32(activation_code(mlp.activation));
        self.0.extend(widths);
        self
    }
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }
}

fn activation_code(a: Activation) -> u32 {
    match a {
        Activation::Tanh => 0,
        Activation::Relu => 1,
        Activation::Gelu => 2,
        Activation::Sigmoid => 3,
    }
}

/// Whether the kernels can run this network (any config the core validates can).
pub fn check_supported(mlp: &Mlp) -> Result<(), GpuError> {
    let hidden = mlp.layers.len().saturating_sub(1);
    if mlp.layers.is_empty() || hidden > MAX_HIDDEN_LAYERS {
        return Err(GpuError::Unsupported(format!("{hidden} hidden layers (at most {MAX_HIDDEN_LAYERS})")));
    }
    let widest = mlp.max_width();
    if widest > MAX_WIDTH {
        return Err(GpuError::Unsupported(format!("a layer of width {widest} (at most {MAX_WIDTH})")));
    }
    Ok(())
}

/// f64 parameters as the f32 the GPU computes in.
pub(crate) fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flatminima_core::model::ModelConfig;

    #[test]
    fn shape_words_follow_the_wgsl_struct() {
        let mlp = Mlp::new(
            2,
            &ModelConfig { hidden: vec![16, 8], activation: Activation::Gelu, label_smoothing: 0.0, dropout: vec![] },
            3,
        );
        let words: Vec<u32> = bytemuck::cast_slice(Words::new().shape(&mlp).as_bytes()).to_vec();
        // n_layers, activation, widths[8]
        assert_eq!(words, vec![3, 2, 2, 16, 8, 3, 0, 0, 0, 0]);
    }

    #[test]
    fn limits_match_the_config_limits() {
        let ok = Mlp::new(2, &ModelConfig { hidden: vec![64; 6], ..Default::default() }, 8);
        assert!(check_supported(&ok).is_ok());
        let deep = Mlp::new(2, &ModelConfig { hidden: vec![4; 7], ..Default::default() }, 2);
        assert!(matches!(check_supported(&deep), Err(GpuError::Unsupported(_))));
        let wide = Mlp::new(2, &ModelConfig { hidden: vec![65], ..Default::default() }, 2);
        assert!(matches!(check_supported(&wide), Err(GpuError::Unsupported(_))));
    }
}
