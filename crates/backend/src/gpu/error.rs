//! What can go wrong on the GPU path. Every variant means "use the CPU backend
//! instead"; the message says why, for the notice the page and the CLI show.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
/// Why the GPU path could not run; the caller falls back to the CPU backend.
pub enum GpuError {
    /// No WebGPU (browser) or Vulkan (native) adapter: the common case on
    /// machines and browsers without GPU support.
    NoAdapter(String),
    /// An adapter exists but refused to open a device with the limits we need.
    Device(String),
    /// A model or optimiser the kernels do not implement (see `gpu::shape`).
    Unsupported(String),
    /// A buffer would exceed the device's limits.
    TooLarge(String),
    /// A validation or out-of-memory error, a lost device or a failed readback.
    Failed(String),
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuError::NoAdapter(m) => write!(f, "no GPU adapter: {m}"),
            GpuError::Device(m) => write!(f, "could not open the GPU device: {m}"),
            GpuError::Unsupported(m) => write!(f, "not supported on the GPU: {m}"),
            GpuError::TooLarge(m) => write!(f, "too large for the GPU: {m}"),
            GpuError::Failed(m) => write!(f, "GPU failure: {m}"),
        }
    }
}

impl std::error::Error for GpuError {}
