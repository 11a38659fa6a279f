//! GPU work as plain data, for the page. Its GPU kernels live in a second wasm
//! module (`www/pkg-gpu`, fetched only where WebGPU has an adapter, so that
//! pages without one never download wgpu) that cannot see the sandbox's
//! memory: the sandbox writes a request as JSON, the GPU module parses it and
//! runs it with [`GpuBackend`], and the answer goes back the same way. The
//! CPU answer to each request is here too, for tests and for the fallback.

use serde::{Deserialize, Serialize};

use super::{CpuBackend, GpuBackend, Grid2d, ModelRef};
use crate::data::Dataset;
use crate::gpu::GpuError;
use crate::landscape::{Grid, Plane, Split, Surface};
use crate::model::Architecture;
use crate::study::{Study, StudyReport};

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

    /// Probabilities, model after model, each `n * n * classes` (see `Backend::boundary_grid`).
    pub async fn run_gpu(&self, gpu: &GpuBackend) -> Result<Vec<f32>, GpuError> {
        let mlp = self.architecture.build();
        self.check(mlp.num_params())?;
        let models: Vec<ModelRef> = self.params.iter().map(|p| ModelRef { mlp: &mlp, params: p }).collect();
        gpu.boundary_grid(&models, &self.grid()).await
    }

    /// The same probabilities as `run_gpu`, computed on the f64 CPU core and narrowed to f32.
    pub fn run_cpu(&self) -> Vec<f32> {
        let mlp = self.architecture.build();
        let models: Vec<ModelRef> = self.params.iter().map(|p| ModelRef { mlp: &mlp, params: p }).collect();
        CpuBackend.boundary_grid(&models, &self.grid())
    }

    fn check(&self, n: usize) -> Result<(), GpuError> {
        match self.params.iter().find(|p| p.len() != n) {
            Some(p) => Err(GpuError::Unsupported(format!("{} parameters for a model with {n}", p.len()))),
            None => Ok(()),
        }
    }
}

/// One loss surface of the landscape view: `tag` says which (the page's
/// landscape generation and side), so that a late answer is not taken for a
/// newer surface. The answer is [`SurfaceRequest::values`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurfaceRequest {
    /// Which landscape generation and side this surface belongs to.
    pub tag: SurfaceTag,
    /// The network's shape; the plane's vectors must have its parameter count.
    pub architecture: Architecture,
    /// The 2D slice of parameter space: an origin and two directions.
    pub plane: Plane,
    /// Where on the plane the loss is evaluated.
    pub grid: Grid,
    /// The data sets to evaluate on, each with the split it stands for.
    pub sets: Vec<(Split, Dataset)>,
}

/// Which surface a request is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurfaceTag {
    /// The page's landscape generation; an answer from an older one is stale.
    pub generation: u32,
    /// Which side the surface is for (0 or 1, as the page orders the two sides).
    pub side: usize,
}

impl SurfaceRequest {
    /// The losses, every value of the first set, then the second (see [`Self::values`]).
    pub async fn run_gpu(&self, gpu: &GpuBackend) -> Result<Vec<f64>, GpuError> {
        let mlp = self.architecture.build();
        let n = mlp.num_params();
        if [&self.plane.origin, &self.plane.d1, &self.plane.d2].iter().any(|v| v.len() != n) {
            return Err(GpuError::Unsupported(format!("the plane does not fit a model with {n} parameters")));
        }
        let sets: Vec<(Split, &Dataset)> = self.sets.iter().map(|(s, d)| (*s, d)).collect();
        let surface = gpu.surface(&mlp, &self.plane, &self.grid, &sets).await?;
        Ok(self.values(&surface))
    }

    /// The same losses as `run_gpu`, computed on the f64 CPU core.
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

impl Study {
    /// Both sides on the GPU (SGD with or without SAM/ASAM; other optimisers are
    /// refused), reported like a CPU study. `now_ms` is the caller's clock (the
    /// core has none that works in a browser).
    pub async fn run_gpu(&self, gpu: &GpuBackend, now_ms: impl Fn() -> f64) -> Result<StudyReport, GpuError> {
        let mlp = self.mlp();
        let splits = self.splits.clone();
        let mut results = [Vec::new(), Vec::new()];
        let start = now_ms();
        for (side, result) in results.iter_mut().enumerate() {
            *result = gpu.train_replicas(&mlp, &splits, self.batch_size, &self.replicas(side), self.steps).await?;
        }
        Ok(StudyReport::new(self, &results, "gpu", now_ms() - start))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::config::RunConfig;
    use crate::gpu::block_on;
    use crate::live_landscape::{LiveLandscape, LiveSettings};
    use crate::pair::Pair;

    fn gpu() -> Option<GpuBackend> {
        match block_on(GpuBackend::open()) {
            Ok(gpu) => Some(gpu),
            Err(e) => {
                eprintln!("NOTICE: skipped, no GPU adapter ({e})");
                None
            }
        }
    }

    fn via_json<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
        serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
    }

    fn trained_pair() -> Pair {
        let mut config = RunConfig::default();
        config.data.n_train = 128;
        config.data.n_test = 100;
        let mut pair = Pair::new(config).unwrap();
        pair.train(50);
        pair
    }

    /// Every request survives JSON (what crosses between the page's two
    /// modules) and the GPU's answer matches the CPU's.
    #[test]
    fn requests_cross_as_json_and_gpu_answers_match_the_cpu() {
        let pair = trained_pair();
        let boundary = BoundaryRequest {
            architecture: Architecture::of(&pair.left.mlp),
            params: vec![pair.left.params.clone(), pair.right.params.clone()],
            lo: -3.0,
            hi: 3.0,
            n: 37,
        };
        let live = LiveLandscape::new(&pair, LiveSettings { grid: 9, max_points: 64, ..Default::default() });
        let surface = live.surface_request(0, 7).expect("a surface to compute");
        let study = Study::new(&pair, 3, 20);
        let (boundary, surface, study) = (via_json(&boundary), via_json(&surface), via_json(&study));
        assert_eq!(surface.tag, SurfaceTag { generation: 7, side: 0 });

        let Some(gpu) = gpu() else { return };
        let (g, c) = (block_on(boundary.run_gpu(&gpu)).unwrap(), boundary.run_cpu());
        assert_eq!(g.len(), 2 * 37 * 37 * 2);
        let worst = g.iter().zip(&c).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-5, "boundary probabilities differ by {worst}");

        let (g, c) = (block_on(surface.run_gpu(&gpu)).unwrap(), surface.run_cpu());
        assert_eq!(g.len(), 2 * 81, "train then OOD");
        for (x, y) in g.iter().zip(&c) {
            assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "surface: gpu {x} vs cpu {y}");
        }

        let g = block_on(study.run_gpu(&gpu, || 0.0)).unwrap();
        assert_eq!((g.backend.as_str(), g.replicas, g.steps), ("gpu", 3, 20));
        let mut job = crate::study::StudyJob::new(&study);
        job.advance(usize::MAX);
        for (side, report) in [&g.left, &g.right].into_iter().enumerate() {
            for (a, b) in report.replicas.iter().zip(&job.results()[side]) {
                assert!((a.train_loss - b.train_loss).abs() < 1e-3, "side {side}: {a:?} vs {b:?}");
                assert!((a.ood_acc - b.ood_acc).abs() <= 0.02, "side {side}: {a:?} vs {b:?}");
            }
        }
    }

    /// A diverged run's parameters are not numbers; JSON writes them as null.
    /// Its requests must still cross (read back as NaN) and run, not fail to parse.
    #[test]
    fn a_diverged_runs_requests_cross_as_json_and_run() {
        let mut pair = trained_pair();
        pair.left.params.iter_mut().step_by(3).for_each(|w| *w = f64::NAN);
        pair.left.params[1] = f64::INFINITY;
        let boundary = via_json(&BoundaryRequest {
            architecture: Architecture::of(&pair.left.mlp),
            params: vec![pair.left.params.clone(), pair.right.params.clone()],
            lo: -3.0,
            hi: 3.0,
            n: 5,
        });
        assert!(boundary.params[0][0].is_nan() && boundary.params[0][1].is_nan());
        assert_eq!(boundary.params[1], pair.right.params, "finite numbers cross unchanged");
        let live = LiveLandscape::new(&pair, LiveSettings { grid: 5, max_points: 32, ..Default::default() });
        let surface = live.surface_request(0, 1).expect("a surface to compute");
        let crossed = via_json(&surface);
        assert!(crossed.plane.origin[0].is_nan());

        let Some(gpu) = gpu() else { return };
        assert_eq!(block_on(boundary.run_gpu(&gpu)).unwrap().len(), 2 * 5 * 5 * 2);
        let right = &block_on(boundary.run_gpu(&gpu)).unwrap()[5 * 5 * 2..];
        let cpu = &boundary.run_cpu()[5 * 5 * 2..];
        assert!(right.iter().zip(cpu).all(|(g, c)| (g - c).abs() < 1e-5), "the finite side is unaffected");
        assert_eq!(block_on(crossed.run_gpu(&gpu)).unwrap().len(), crossed.run_cpu().len());
    }

    #[test]
    fn a_request_whose_params_do_not_fit_is_refused() {
        let pair = trained_pair();
        let bad = BoundaryRequest {
            architecture: Architecture::of(&pair.left.mlp),
            params: vec![vec![0.0; 3]],
            lo: -1.0,
            hi: 1.0,
            n: 4,
        };
        let Some(gpu) = gpu() else { return };
        let e = block_on(bad.run_gpu(&gpu)).unwrap_err();
        assert!(e.to_string().contains("3 parameters"), "{e}");
    }
}
