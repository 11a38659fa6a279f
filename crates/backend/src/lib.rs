//! The backend layer: one interface over two implementations, the f64 CPU core
//! ([`CpuBackend`]) and the f32 GPU kernels of [`crate::gpu`] ([`GpuBackend`]),
//! chosen once at start-up by [`Backend::select`]. This module is the only code
//! that decides between CPU and GPU; callers (the CLI, later the page) ask the
//! [`Backend`] and get numbers, whichever side computed them.
//!
//! The methods are async because in the browser a GPU readback can only be
//! awaited; natively, wrap them in [`crate::gpu::block_on`]. The CPU
//! implementation does its work synchronously inside the future.
//!
//! Fallback rule: every method returns a result, never a panic and never a
//! blank result. If the GPU fails a call (unsupported shape or optimiser,
//! buffer too large, validation error, lost device), that call is computed on
//! the CPU and a notice is recorded ([`Backend::take_notices`]). If the
//! failure left the device unusable (lost, or any error outside an error
//! scope), the backend switches to the CPU for good and [`Backend::name`]
//! says "cpu" from then on.
//!
//! Numbers: the CPU computes in f64, the GPU in f32; [`Backend::boundary_grid`]
//! returns f32 probabilities either way, surfaces and replica metrics are f64
//! (the GPU's f32 widened). Tolerances between the two are in tests/backend.rs.
//!
//! Test switch: with the environment variable `FLATMINIMA_NO_GPU` set (to
//! anything but "" or "0"), [`Backend::select`] behaves as on a machine without
//! any GPU adapter. Natively only (wasm has no environment).

// Every public item says what it is (`make lint` runs clippy with -D warnings).
#![warn(missing_docs)]

pub mod gpu;
mod gpu_backend;
mod gpu_grid;
mod gpu_requests;

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

pub use self::gpu_backend::GpuBackend;
pub use self::gpu_grid::GridOnGpu;
use crate::gpu::GpuError;
pub use flatminima_core::cpu::{CpuBackend, ModelRef};
use flatminima_core::data::{Dataset, Splits};
use flatminima_core::error::ConfigError;
pub use flatminima_core::grid2d::Grid2d;
use flatminima_core::landscape::{Grid, Plane, Split, Surface};
use flatminima_core::model::Mlp;
pub use flatminima_core::requests;
pub use flatminima_core::study::{Replica, ReplicaMetrics};

/// The environment variable that hides every GPU adapter from [`Backend::select`] (for tests).
pub const NO_GPU_ENV: &str = "FLATMINIMA_NO_GPU";

/// Which backend to use: what the user asked for (`--backend`, the `backend` setting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The GPU when a hardware adapter exists and the model fits the kernels, else the CPU.
    #[default]
    Auto,
    /// The GPU on any adapter (software ones too); the CPU, with a notice, where that fails.
    Gpu,
    /// The f64 CPU core.
    Cpu,
}

impl BackendChoice {
    /// Every choice, in the order the page and the CLI list them.
    pub const ALL: [BackendChoice; 3] = [BackendChoice::Auto, BackendChoice::Gpu, BackendChoice::Cpu];

    /// The lowercase name used in configs, URLs and the CLI (`auto`, `gpu`, `cpu`).
    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Gpu => "gpu",
            BackendChoice::Cpu => "cpu",
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendChoice {
    type Err = ConfigError;

    /// "auto", "gpu" or "cpu" (case and surrounding blanks ignored); the error
    /// names the field `backend` and lists the allowed values.
    fn from_str(text: &str) -> Result<Self, ConfigError> {
        let wanted = text.trim();
        BackendChoice::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ConfigError::new("backend", format!("must be one of auto, gpu, cpu; got `{text}`")))
    }
}

/// The backend in use. Cheap to clone; clones share the notices and the
/// fallback state.
#[derive(Clone, Debug)]
pub struct Backend {
    imp: Imp,
    /// Set once a GPU failure left the device unusable: the CPU from then on.
    gpu_lost: Arc<AtomicBool>,
    /// Whether the last call that finished was computed on the GPU.
    last_on_gpu: Arc<AtomicBool>,
    notices: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone, Debug)]
enum Imp {
    Cpu(CpuBackend),
    Gpu(Box<GpuBackend>),
}

impl Backend {
    /// The CPU backend (always available).
    pub fn cpu() -> Backend {
        Backend::from_imp(Imp::Cpu(CpuBackend))
    }

    /// A GPU backend on an already opened device.
    pub fn gpu(gpu: GpuBackend) -> Backend {
        Backend::from_imp(Imp::Gpu(Box::new(gpu)))
    }

    fn from_imp(imp: Imp) -> Backend {
        Backend { imp, gpu_lost: Arc::default(), last_on_gpu: Arc::default(), notices: Arc::default() }
    }

    /// Opens the backend `choice` asks for, without knowing the model yet.
    /// Returns the backend and, where it is not what was asked for (or `auto`
    /// chose the CPU), a notice saying why. See [`Backend::select_for`].
    pub async fn select(choice: BackendChoice) -> (Backend, Option<String>) {
        Backend::select_inner(choice, None).await
    }

    /// Like [`Backend::select`], and also falls back to the CPU (with a notice)
    /// when the GPU kernels cannot run `mlp` (more than `gpu::MAX_HIDDEN_LAYERS`
    /// hidden layers or a layer wider than `gpu::MAX_WIDTH`).
    ///
    /// - `Cpu`: the CPU, no notice.
    /// - `Gpu`: the GPU on any adapter, software ones included; the CPU with a
    ///   notice when there is no adapter, the device or the kernels fail, or the
    ///   shape is unsupported.
    /// - `Auto`: as `Gpu`, except that a software adapter (lavapipe, SwiftShader)
    ///   is passed over for the CPU: it emulates the GPU on the same CPU cores,
    ///   and the f64 core is as fast or faster for one-off work (README, "Backends").
    pub async fn select_for(choice: BackendChoice, mlp: &Mlp) -> (Backend, Option<String>) {
        Backend::select_inner(choice, Some(mlp)).await
    }

    async fn select_inner(choice: BackendChoice, mlp: Option<&Mlp>) -> (Backend, Option<String>) {
        let fallback = |why: String| {
            let notice = match choice {
                BackendChoice::Gpu => format!("the GPU backend was requested but {why}; using the CPU"),
                _ => format!("auto: {why}; using the CPU"),
            };
            (Backend::cpu(), Some(notice))
        };
        if choice == BackendChoice::Cpu {
            return (Backend::cpu(), None);
        }
        if gpu_hidden_by_env() {
            return fallback(format!("{NO_GPU_ENV} is set (no GPU adapter)"));
        }
        if let Some(mlp) = mlp {
            if let Err(e) = crate::gpu::check_supported(mlp) {
                return fallback(reason(&e));
            }
        }
        match GpuBackend::open().await {
            Err(e) => fallback(reason(&e)),
            Ok(gpu) if choice == BackendChoice::Auto && gpu.is_software() => fallback(format!(
                "the only GPU adapter, {}, is a software emulation (no faster than the CPU core; \
                 choose the gpu backend to use it anyway)",
                gpu.description()
            )),
            Ok(gpu) => (Backend::gpu(gpu), None),
        }
    }

    /// "gpu" or "cpu": what computes the next call.
    pub fn name(&self) -> &'static str {
        if self.active_gpu().is_some() {
            "gpu"
        } else {
            "cpu"
        }
    }

    /// "gpu" or "cpu": what computed the last call that finished ("cpu" before any
    /// call). Differs from [`Backend::name`] after a call that fell back to the CPU.
    pub fn last_call_backend(&self) -> &'static str {
        if self.last_on_gpu.load(Ordering::Relaxed) {
            "gpu"
        } else {
            "cpu"
        }
    }

    /// The backend and its device, e.g. "gpu: llvmpipe (LLVM 15.0.6, 256 bits) [Cpu, Vulkan]".
    pub fn description(&self) -> String {
        match (&self.imp, self.active_gpu()) {
            (_, Some(gpu)) => format!("gpu: {} (f32)", gpu.description()),
            (Imp::Gpu(gpu), None) => format!("cpu: the f64 core (the GPU {} failed)", gpu.description()),
            (Imp::Cpu(_), None) => "cpu: the f64 core".to_string(),
        }
    }

    /// The notices recorded by calls that fell back to the CPU since the last
    /// call of this method (each distinct message once), oldest first.
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.notices.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn active_gpu(&self) -> Option<&GpuBackend> {
        match &self.imp {
            Imp::Gpu(gpu) if !self.gpu_lost.load(Ordering::Relaxed) => Some(gpu),
            _ => None,
        }
    }

    /// Records why the GPU could not do `what`; gives up on the GPU for good if
    /// the device is no longer usable.
    fn gpu_failed(&self, gpu: &GpuBackend, what: &str, e: GpuError) {
        let message = match gpu.check() {
            Ok(()) => format!("{what}: {}; computed on the CPU instead", reason(&e)),
            Err(broken) => {
                self.gpu_lost.store(true, Ordering::Relaxed);
                format!("{what}: {}; the GPU is unusable now ({broken}), using the CPU from here on", reason(&e))
            }
        };
        let mut notices = self.notices.lock().unwrap_or_else(|e| e.into_inner());
        if !notices.contains(&message) {
            notices.push(message);
        }
    }

    /// Class probabilities of every model at every grid point: model after model,
    /// each `grid.len() x classes` (row-major), as `train::predict_proba` over
    /// `grid.points()` lays them out. f32 on both backends (the CPU narrows its f64).
    ///
    /// # Panics
    /// If a model does not have 2 inputs or its parameters do not fit it.
    pub async fn boundary_grid(&self, models: &[ModelRef<'_>], grid: &Grid2d) -> Vec<f32> {
        for m in models {
            assert_eq!(m.mlp.inputs, 2, "a boundary grid needs models with 2 inputs");
            assert_eq!(m.params.len(), m.mlp.num_params(), "parameters do not fit the model");
        }
        if let Some(gpu) = self.active_gpu() {
            match gpu.boundary_grid(models, grid).await {
                Ok(probs) => return self.done_on(true, probs),
                Err(e) => self.gpu_failed(gpu, "boundary grid", e),
            }
        }
        self.done_on(false, CpuBackend.boundary_grid(models, grid))
    }

    /// The loss surface of `mlp` over `plane` at every `grid` cell, on each of
    /// `sets` (e.g. `[(Split::Train, &train), (Split::Ood, &ood)]`; subsets from
    /// `landscape::subset` for speed). Same layout as `landscape::SurfaceJob`:
    /// `values[i * alphas.len() + j]` at origin + alphas[j] d1 + betas[i] d2, sets
    /// not given are None. The GPU's f32 losses are widened to f64.
    ///
    /// # Panics
    /// If the plane's vectors do not have the model's parameter count.
    pub async fn surface(&self, mlp: &Mlp, plane: &Plane, grid: &Grid, sets: &[(Split, &Dataset)]) -> Surface {
        let n = mlp.num_params();
        assert!(
            plane.origin.len() == n && plane.d1.len() == n && plane.d2.len() == n,
            "the plane does not fit the model"
        );
        if let Some(gpu) = self.active_gpu() {
            match gpu.surface(mlp, plane, grid, sets).await {
                Ok(surface) => return self.done_on(true, surface),
                Err(e) => self.gpu_failed(gpu, "loss surface", e),
            }
        }
        self.done_on(false, CpuBackend.surface(mlp, plane, grid, sets))
    }

    /// Trains every replica for `steps` optimiser steps on `splits.train` (each
    /// replica its own config, initial parameters and batch-order seed; all share
    /// `mlp`, the data and `batch_size`), then evaluates each on the train, ID
    /// and OOD sets. One entry per replica, in order.
    ///
    /// The CPU trains R independent `train::Run`s; the GPU a `gpu::ReplicaTrainer`
    /// (SGD with or without SAM/ASAM: a replica with another optimiser sends the
    /// whole call to the CPU, with a notice).
    ///
    /// # Panics
    /// If a replica's initial parameters do not fit `mlp`.
    pub async fn train_replicas(
        &self,
        mlp: &Mlp,
        splits: &Arc<Splits>,
        batch_size: usize,
        replicas: &[Replica],
        steps: usize,
    ) -> Vec<ReplicaMetrics> {
        for r in replicas {
            assert_eq!(r.init.len(), mlp.num_params(), "initial parameters do not fit the model");
        }
        if replicas.is_empty() {
            return Vec::new();
        }
        if let Some(gpu) = self.active_gpu() {
            match gpu.train_replicas(mlp, splits, batch_size, replicas, steps).await {
                Ok(metrics) => return self.done_on(true, metrics),
                Err(e) => self.gpu_failed(gpu, "replica training", e),
            }
        }
        self.done_on(false, CpuBackend.train_replicas(mlp, splits, batch_size, replicas, steps))
    }

    fn done_on<T>(&self, gpu: bool, result: T) -> T {
        self.last_on_gpu.store(gpu, Ordering::Relaxed);
        result
    }
}

/// The reason part of a notice: what the GPU error means in words.
fn reason(e: &GpuError) -> String {
    match e {
        GpuError::NoAdapter(m) => format!("there is no GPU adapter ({m})"),
        GpuError::Device(m) => format!("the GPU device could not be opened ({m})"),
        GpuError::Unsupported(m) => format!("the GPU kernels do not support this ({m})"),
        GpuError::TooLarge(m) => format!("the work is too large for the GPU ({m})"),
        GpuError::Failed(m) if m.contains("device lost") => format!("the GPU device was lost ({m})"),
        GpuError::Failed(m) => format!("the GPU failed ({m})"),
    }
}

/// True where [`NO_GPU_ENV`] asks to ignore every GPU (never in wasm).
fn gpu_hidden_by_env() -> bool {
    if cfg!(target_arch = "wasm32") {
        return false;
    }
    std::env::var(NO_GPU_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_print() {
        for c in BackendChoice::ALL {
            assert_eq!(c.name().parse::<BackendChoice>(), Ok(c));
            assert_eq!(c.to_string(), c.name());
        }
        assert_eq!(" GPU ".parse::<BackendChoice>(), Ok(BackendChoice::Gpu));
        let e = "vulkan".parse::<BackendChoice>().unwrap_err();
        assert_eq!(e.field, "backend");
        assert!(e.message.contains("auto, gpu, cpu") && e.message.contains("`vulkan`"), "{e}");
        assert_eq!(BackendChoice::default(), BackendChoice::Auto);
        assert_eq!(serde_json::to_string(&BackendChoice::Gpu).unwrap(), "\"gpu\"");
    }

    /// A lost device mid-session: the call is done on the CPU, a notice says so,
    /// and the backend stays on the CPU.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn a_lost_device_falls_back_for_good() {
        use flatminima_core::rng::Rng;
        let gpu = match crate::gpu::block_on(GpuBackend::open()) {
            Ok(gpu) => gpu,
            Err(e) => {
                eprintln!("NOTICE: skipped, no GPU ({e})");
                return;
            }
        };
        let backend = Backend::gpu(gpu.clone());
        let mlp = Mlp::new(2, &flatminima_core::model::ModelConfig { hidden: vec![4], ..Default::default() }, 2);
        let params = mlp.init_params(&mut Rng::new(1));
        let models = [ModelRef { mlp: &mlp, params: &params }];
        let grid = Grid2d::square(-1.0, 1.0, 5);
        let on_gpu = crate::gpu::block_on(backend.boundary_grid(&models, &grid));
        assert_eq!(backend.name(), "gpu");
        assert!(backend.take_notices().is_empty());
        gpu.destroy_device_for_tests();
        let on_cpu = crate::gpu::block_on(backend.boundary_grid(&models, &grid));
        assert_eq!(backend.name(), "cpu");
        let notices = backend.take_notices();
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(notices[0].contains("boundary grid") && notices[0].contains("from here on"), "{notices:?}");
        assert_eq!(on_cpu.len(), on_gpu.len());
        assert!(on_cpu.iter().zip(&on_gpu).all(|(c, g)| (c - g).abs() < 1e-4));
        assert!(backend.description().starts_with("cpu"));
    }
}
