//! The GPU compute layer: WGSL kernels (crates/backend/src/gpu/shaders) run through wgpu, on
//! WebGPU in the browser and on Vulkan natively (a real GPU, or lavapipe on
//! machines without one). It computes in f32; the CPU core in f64 is the
//! reference, and the tests in tests/gpu.rs bound the difference.
//!
//! - [`GpuContext`]: opens the adapter and device, compiles the kernels.
//! - kernel 1, [`GpuContext::boundary_grid`] / [`GpuContext::predict_proba`]:
//!   class probabilities of several models at many points.
//! - kernel 2, [`GpuContext::surface`] / [`GpuContext::losses`]: loss and
//!   accuracy of many parameter vectors over a dataset.
//! - kernel 3, [`ReplicaTrainer`]: many SGD / SAM runs trained side by side.
//!
//! Every call is async, because in the browser a readback can only be awaited;
//! natively, wrap calls in [`block_on`]. Any [`GpuError`] means "fall back to the
//! CPU path".

mod context;
mod error;
mod evaluate;
mod forward;
mod pool;
mod readback;
mod replicas;
mod shape;

pub use context::GpuContext;
pub use error::GpuError;
pub use evaluate::LossAccuracy;
pub use flatminima_core::grid2d::Grid2d;
pub use flatminima_core::study::Replica;
pub use forward::GpuModel;
pub use replicas::ReplicaTrainer;
pub use shape::{check_supported, MAX_HIDDEN_LAYERS, MAX_WIDTH};

/// Runs a GPU future to completion on this thread (native only: a browser
/// cannot block, so there the futures are awaited).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    pollster::block_on(future)
}
