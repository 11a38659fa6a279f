//! GPU work as plain data, for the page. Its GPU kernels live in a second wasm
//! module (`www/pkg-gpu`, fetched only where WebGPU has an adapter, so that
//! pages without one never download wgpu) that cannot see the sandbox's
//! memory: the sandbox writes a request as JSON, the GPU module parses it and
//! runs it with `flatminima_backend::GpuBackend` (`GpuBackend::boundary`,
//! `surface_request`, `study`), and the answer goes back the same way. The CPU
//! answer to each request is here, for tests and for the fallback.

use serde::{Deserialize, Serialize};

use crate::cpu::{CpuBackend, ModelRef};
use crate::data::Dataset;
use crate::grid2d::Grid2d;
use crate::landscape::{Grid, Plane, Split, Surface};
use crate::model::Architecture;

/// Class probabilities of several models (the two sides) over the centres of
/// an `n x n` image of `[lo, hi]^2`, first row at the top.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoundaryRequest {
    /// The network's shape; every parameter vector must fit it.
    pub architecture: Architecture,
    /// A diverged run's parameters may be NaN (null in JSON, NaN again when read).
    #[serde(deserialize_with = "crate::nan_as_null::vecs")]
    pub params: Vec<Vec<f64>>,
    /// Lower edge of the square image, in input coordinates.
    pub lo: f64,
    /// Upper edge of the square image, in input coordinates.
    pub hi: f64,
    /// Pixels per side: the answer holds `n * n` points per model.
    pub n: usize,
}

impl BoundaryRequest {
    /// The `n x n` cell centres the probabilities are computed at, first row at the top.
    pub fn grid(&self) -> Grid2d {
        Grid2d::cell_centres(self.lo, self.hi, self.n)
    }

    /// Probabilities, model after model, each `n * n * classes` (see `Backend::boundary_grid`), computed on the f64 CPU core and narrowed to f32.
    pub fn run_cpu(&self) -> Vec<f32> {
        let mlp = self.architecture.build();
        let models: Vec<ModelRef> = self.params.iter().map(|p| ModelRef { mlp: &mlp, params: p }).collect();
        CpuBackend.boundary_grid(&models, &self.grid())
    }

    /// `Err` names the first parameter vector that does not fit a model with `n` parameters.
    pub fn check(&self, n: usize) -> Result<(), String> {
        match self.params.iter().find(|p| p.len() != n) {
            Some(p) => Err(format!("{} parameters for a model with {n}", p.len())),
            None => Ok(()),
        }
    }
}

/// One loss surface of the landscape view, for side `side` of the landscape the
/// page has in progress (the page keeps at most one out per side, and drops an
/// answer whose landscape was replaced). The answer is [`SurfaceRequest::values`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurfaceRequest {
    /// Which side the surface is for (0 or 1, as the page orders the two sides).
    pub side: usize,
    /// The network's shape; the plane's vectors must have its parameter count.
    pub architecture: Architecture,
    /// The 2D slice of parameter space: an origin and two directions.
    pub plane: Plane,
    /// Where on the plane the loss is evaluated.
    pub grid: Grid,
    /// The data sets to evaluate on, each with the split it stands for.
    pub sets: Vec<(Split, Dataset)>,
}

impl SurfaceRequest {
    /// The losses, every value of the first set, then the second (see [`Self::values`]), computed on the f64 CPU core.
    pub fn run_cpu(&self) -> Vec<f64> {
        let sets: Vec<(Split, &Dataset)> = self.sets.iter().map(|(s, d)| (*s, d)).collect();
        self.values(&CpuBackend.surface(&self.architecture.build(), &self.plane, &self.grid, &sets))
    }

    /// The answer as it crosses back: the values of each set in `sets` order,
    /// one after the other (what `SurfaceJob::fill` takes).
    pub fn values(&self, surface: &Surface) -> Vec<f64> {
        self.sets.iter().flat_map(|(split, _)| surface.values(*split).unwrap_or(&[]).iter().copied()).collect()
    }
}
